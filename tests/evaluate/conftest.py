"""Fixtures for evaluation tests: prepared tickets, a tiny registered LoRA adapter, and a
loopback server that answers like OpenAI's chat completions and Gemini's generateContent."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import pytest
from fastapi import FastAPI, Request  # at module level: the routes' annotations are resolved here

from tests.train._data import prepared_tickets
from tunesmith.store import queries


@pytest.fixture(scope="session")
def tickets(tmp_path_factory) -> Path:
    return prepared_tickets(tmp_path_factory.mktemp("eval-data"), n=120, validation=0.2, test=0.2)


@pytest.fixture(scope="session")
def tiny_base(tiny_model_dir, tmp_path_factory) -> Path:
    """The tiny model with its own output layer: tied to the input embeddings, a random model
    repeats its last token (a newline after the generation prompt) and answers nothing."""
    import torch
    from transformers import AutoConfig, AutoTokenizer, LlamaForCausalLM

    config = AutoConfig.from_pretrained(str(tiny_model_dir))
    config.tie_word_embeddings = False
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("tiny-untied")
    LlamaForCausalLM(config).save_pretrained(str(out))
    AutoTokenizer.from_pretrained(str(tiny_model_dir)).save_pretrained(str(out))
    return out


@pytest.fixture(scope="session")
def tiny_adapter(tiny_base, tmp_path_factory) -> Path:
    """A LoRA adapter on the tiny model, initialised away from zero so that it changes outputs."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(str(tiny_base)),
                           LoraConfig(r=4, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    out = tmp_path_factory.mktemp("tiny-adapter")
    model.save_pretrained(str(out))
    return out


def register_tiny(tickets: Path, base: Path, adapter: Path, name: str = "tiny-v1"):
    """The tiny adapter in this test's registry, trained (so the store says) on `tickets`."""
    manifest = json.loads((tickets / "manifest.json").read_text())
    queries.record_dataset_version(manifest["dataset_version"], tickets, manifest)
    return queries.register_model(base_model=str(base), method="lora", spec={"seed": 0}, name=name,
                                  adapter_path=str(adapter), dataset_version=manifest["dataset_version"],
                                  lineage={"data": str(tickets)})


@pytest.fixture
def registered(tickets, tiny_base, tiny_adapter):
    return register_tiny(tickets, tiny_base, tiny_adapter)


class FakeEndpoints:
    """Answers chat completions with `openai_answer(prompt)` and generateContent with
    `gemini_answer(prompt)`; keeps every request body."""

    def __init__(self, openai_answer, gemini_answer):
        self.openai_answer, self.gemini_answer = openai_answer, gemini_answer
        self.requests: list[tuple[str, dict]] = []

    def app(self):
        app = FastAPI()

        @app.post("/{path:path}")
        async def answer(path: str, request: Request):
            body = await request.json()
            self.requests.append((path, body))
            if path.endswith("chat/completions"):
                prompt = body["messages"][-1]["content"]
                return {"id": "c1", "object": "chat.completion", "created": 0, "model": body["model"],
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": self.openai_answer(prompt)}}],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
            prompt = body["contents"][-1]["parts"][0]["text"]
            return {"candidates": [{"content": {"role": "model", "parts": [{"text": self.gemini_answer(prompt)}]},
                                    "finishReason": "STOP", "index": 0}]}

        return app


def serve_in_thread(app):
    """Start uvicorn on a free loopback port; returns (base URL, server) once it accepts connections."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the fake endpoint did not start"
    return f"http://127.0.0.1:{port}", server


GEMINI_ANSWER = "It sounds like a billing problem to me."


def fake_endpoints(monkeypatch, openai_answer):
    """OpenAI- and Gemini-compatible fakes on one loopback server, with the SDKs' environment
    pointed at it and stripped of real keys; yields (fake, url). For a fixture: `yield from`."""
    fake = FakeEndpoints(openai_answer=openai_answer, gemini_answer=lambda prompt: GEMINI_ANSWER)
    url, server = serve_in_thread(fake.app())
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", url)
    yield fake, url
    server.should_exit = True
