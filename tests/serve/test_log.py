"""Every request lands in the store; logged traffic becomes a dataset."""

from __future__ import annotations

import json
import time

import httpx
import openai
from typer.testing import CliRunner

from tunesmith.cli import app as cli_app
from tunesmith.data.formats import read_file
from tunesmith.serve import dataset_from_log
from tunesmith.store.queries import list_served_requests

from .conftest import start

HI = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello."}]


def _traffic(url: str, base: str) -> str:
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0)
    answer = client.chat.completions.create(model=base, messages=HI, max_tokens=5, temperature=1.0, seed=1)
    streamed = client.chat.completions.create(model="tiny-tuned", messages=HI[1:], max_tokens=4, stream=True, seed=2)
    assert "".join(c.choices[0].delta.content or "" for c in streamed)
    assert httpx.post(f"{url}/v1/chat/completions", json={"model": "missing", "messages": HI}).status_code == 404
    gemini = httpx.post(f"{url}/v1beta/models/{base}:generateContent",
                        json={"contents": [{"parts": [{"text": "Hi"}]}], "generationConfig": {"maxOutputTokens": 3}})
    assert gemini.status_code == 200
    return answer.choices[0].message.content


def test_requests_are_logged_and_become_a_dataset(served, tmp_path):
    models, version = served
    with start(models) as (url, state):
        first_answer = _traffic(url, models[0].name)
        state.log.flush()
    rows = list_served_requests()
    assert [(r.api, r.status_code) for r in rows] == [("openai", 200), ("openai", 200), ("openai", 404), ("gemini", 200)]
    first = rows[0]
    assert first.model == models[0].name and first.system_text == "Be brief."
    assert first.input_messages == {"turns": [{"role": "user", "text": "Say hello."}]}
    assert first.output_text == first_answer
    assert first.prompt_tokens > 5 and first.completion_tokens <= 5 and first.latency_s > 0
    assert rows[1].model == "tiny-tuned" and rows[1].model_id == version.id and rows[1].output_text
    assert rows[2].error and "missing" in rows[2].error
    assert [r.id for r in list_served_requests(model=version.id)] == [r.id for r in list_served_requests(model="tiny-tuned")] == [rows[1].id]

    out = tmp_path / "from-log.jsonl"
    summary = dataset_from_log(out)
    assert (summary.requests, summary.written, summary.skipped) == (4, 3, {"failed or refused": 1})
    examples = read_file(out).examples
    assert [e.output_text for e in examples][0] == first_answer
    assert examples[0].system == "Be brief." and examples[0].meta["served_request"] == first.id
    assert examples[1].meta["model"] == version.id

    # The command: a filter and another format.
    result = CliRunner().invoke(cli_app, ["data", "from-log", "--out", str(tmp_path / "gem.jsonl"),
                                          "--model", "tiny-tuned", "--format", "gemini", "--since", "1h"])
    assert result.exit_code == 0, result.output
    assert "1 logged requests -> 1 examples" in result.output
    record = json.loads((tmp_path / "gem.jsonl").read_text())
    assert record["contents"][-1]["role"] == "model"


def test_no_log_keeps_counts_but_no_text(served, tmp_path):
    models, _ = served
    with start(models, log_requests=False) as (url, state):
        _traffic(url, models[0].name)
        state.log.flush()
    rows = list_served_requests()
    assert len(rows) == 4
    assert all(r.input_messages is None and r.output_text is None and r.system_text is None for r in rows)
    assert rows[0].completion_tokens and rows[0].prompt_tokens
    summary = dataset_from_log(tmp_path / "none.jsonl")
    assert (summary.written, summary.skipped) == (0, {"failed or refused": 1, "logged without text (--no-log)": 3})


def test_refused_keys_are_logged_too(served):
    models, _ = served
    with start(models, api_key="k") as (url, state):
        assert httpx.get(f"{url}/v1/models").status_code == 401
        state.log.flush()
    (row,) = list_served_requests()
    assert row.status_code == 401 and row.output_text is None


def test_a_client_that_leaves_mid_stream_is_logged_and_its_row_stops(served):
    models, _ = served
    base = models[0].name
    body = {"model": base, "messages": HI, "max_tokens": 60, "stream": True, "temperature": 1.0, "seed": 3}
    with start(models) as (url, state):
        with httpx.stream("POST", f"{url}/v1/chat/completions", json=body) as response:
            next(response.iter_lines())  # the first event, then hang up
        reply = httpx.post(f"{url}/v1/chat/completions", json={**body, "stream": False, "max_tokens": 2})
        assert reply.status_code == 200
        deadline = time.monotonic() + 30
        while len(list_served_requests()) < 2 and time.monotonic() < deadline:
            state.log.flush()
            time.sleep(0.1)
        generated = sum(float(line.split()[-1]) for line in state.metrics.render().splitlines()
                        if line.startswith("tunesmith_generated_tokens_total"))
    statuses = sorted(r.status_code for r in list_served_requests())
    assert statuses == [200, 499]
    assert generated < 60 + 2  # the left stream's row stopped before its max_tokens
