"""`--engine llama.cpp`: llama-server behind tunesmith's server, on the embedded model's GGUF
file, through the official openai client. Runs where llama.cpp's llama-server is installed
(on PATH, or named by $TUNESMITH_LLAMA_SERVER); skipped elsewhere."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from tunesmith.models.catalog import DEFAULT_BASE_MODEL

from .conftest import register_adapter

LLAMA_SERVER = os.environ.get("TUNESMITH_LLAMA_SERVER") or shutil.which("llama-server")
needs_llama_server = pytest.mark.skipif(LLAMA_SERVER is None, reason="llama.cpp's llama-server is not installed here "
                                                                     "(put it on PATH or set TUNESMITH_LLAMA_SERVER)")


@pytest.fixture(scope="module")
def llama_url(tmp_path_factory):
    from tunesmith.serve import serve_in_background

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TUNESMITH_HOME", str(tmp_path_factory.mktemp("home")))
        with serve_in_background([DEFAULT_BASE_MODEL], engine="llama.cpp", llama_server=LLAMA_SERVER,
                                 max_batch_size=4, threads=2) as url:
            yield url


@needs_llama_server
def test_llama_cpp_answers_streams_and_logs_like_the_built_in_engine(llama_url):
    import openai

    from tunesmith.store.queries import list_served_requests

    client = openai.OpenAI(base_url=f"{llama_url}/v1", api_key="unused", max_retries=0)
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    whole = client.chat.completions.create(model=DEFAULT_BASE_MODEL, messages=messages, temperature=0, max_tokens=24)
    assert whole.model == DEFAULT_BASE_MODEL
    assert whole.choices[0].message.content.strip()
    assert whole.usage.completion_tokens > 0 and whole.usage.prompt_tokens > 10
    chunks = list(client.chat.completions.create(model=DEFAULT_BASE_MODEL, messages=messages, temperature=0,
                                                 max_tokens=24, stream=True))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == whole.choices[0].message.content  # greedy: the same text whole or streamed
    short = client.chat.completions.create(model=DEFAULT_BASE_MODEL, messages=messages, temperature=0, max_tokens=2)
    assert short.choices[0].finish_reason == "length" and short.usage.completion_tokens == 2
    deadline = time.monotonic() + 10  # the log is written by a background thread
    while len(logged := list_served_requests(limit=10)) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [r.status_code for r in logged] == [200] * 3 and logged[0].output_text == whole.choices[0].message.content


def test_a_missing_llama_server_is_a_clear_error(tmp_path):
    missing = tmp_path / "no-llama-server"
    result = subprocess.run([sys.executable, "-m", "tunesmith", "serve", "--engine", "llama.cpp",
                             "--llama-server", str(missing)], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "TUNESMITH_HOME": str(tmp_path / "home")})
    assert result.returncode == 2, result.stderr
    assert "llama-server" in result.stderr and "Traceback" not in result.stderr


@needs_llama_server
def test_a_tuned_model_is_exported_once_and_served(tiny_model_dir, adapter_dir, tmp_path, monkeypatch):
    import openai

    from tunesmith.serve import serve_in_background

    monkeypatch.setenv("TUNESMITH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TUNESMITH_CACHE", str(tmp_path / "cache"))
    register_adapter(tiny_model_dir, adapter_dir, "tiny-tuned")
    with serve_in_background(["tiny-tuned"], engine="llama.cpp", llama_server=LLAMA_SERVER, threads=1) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        reply = client.chat.completions.create(model="tiny-tuned", messages=[{"role": "user", "content": "hello"}],
                                               temperature=0, max_tokens=6)
    assert reply.usage.completion_tokens == 6 and reply.choices[0].finish_reason == "length"
    [exported] = list((tmp_path / "cache" / "gguf").glob("*/model.gguf"))  # merged, cached for the next start
    assert exported.stat().st_size > 0


@needs_llama_server
def test_structured_outputs_and_output_spaces_reach_llama_cpp_as_grammars(llama_url, tmp_path):
    import openai

    from tunesmith.data.output_space import OutputSpace
    from tunesmith.serve import ServeConfig
    from tunesmith.serve.app import create_app
    from tunesmith.serve.models import ServedModel
    from tunesmith.serve.server import run_in_thread

    client = openai.OpenAI(base_url=f"{llama_url}/v1", api_key="unused", max_retries=0)
    messages = [{"role": "user", "content": "My card has not arrived yet, where is it?"}]
    intents = ["card_arrival", "lost_or_stolen_card", "refund_not_showing_up"]
    choice = client.chat.completions.create(model=DEFAULT_BASE_MODEL, messages=messages, temperature=0,
                                            max_tokens=16, extra_body={"guided_choice": intents})
    assert choice.choices[0].message.content in intents
    schema = {"type": "object", "properties": {"intent": {"enum": intents}, "urgent": {"type": "boolean"}}}
    structured = client.chat.completions.create(
        model=DEFAULT_BASE_MODEL, messages=messages, temperature=0, max_tokens=40,
        response_format={"type": "json_schema", "json_schema": {"name": "ticket", "schema": schema}})
    answer = json.loads(structured.choices[0].message.content)
    assert answer["intent"] in intents and isinstance(answer["urgent"], bool)

    # A tuned model's learned output space holds its answers unless a request asks for text.
    labelled = ServedModel("intents", ("intents",), DEFAULT_BASE_MODEL,
                           output_space=OutputSpace("labels", labels=tuple(intents)))
    config = ServeConfig(engine="llama.cpp", llama_server=LLAMA_SERVER, threads=2)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TUNESMITH_HOME", str(tmp_path / "home"))
        with run_in_thread(create_app(config, [labelled])) as url:
            own = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
            held = own.chat.completions.create(model="intents", messages=messages, temperature=0, max_tokens=16)
            free = own.chat.completions.create(model="intents", messages=messages, temperature=0, max_tokens=16,
                                               response_format={"type": "text"})
    assert held.choices[0].message.content in intents
    assert free.choices[0].message.content not in intents  # the base model alone answers in prose


def test_auto_serves_through_llama_cpp_where_it_is_the_faster(monkeypatch, tmp_path):
    from tunesmith.models import llama_server
    from tunesmith.serve import ServeConfig
    from tunesmith.serve.app import engine_for

    binary = tmp_path / "llama-server"
    binary.write_text("#!/bin/sh\nexit 1\n")
    binary.chmod(0o755)
    monkeypatch.setattr(llama_server, "inference_device", lambda: "cpu")  # where auto picks llama.cpp
    auto = ServeConfig(engine="auto", llama_server=str(binary))
    assert engine_for(auto) == "llama.cpp"
    assert engine_for(auto.model_copy(update={"mixed_adapters": True})) == "local"  # only the built-in engine mixes
    assert engine_for(ServeConfig(engine="local")) == "local"
