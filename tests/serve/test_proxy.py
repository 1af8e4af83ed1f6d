"""A model tuned on Vertex AI, served by the real server as a proxy to its endpoint: the
official openai and google-genai SDKs call the server, the server's google-genai client calls
a loopback stand-in for the endpoint, with a service account's token from the fake token service."""

from __future__ import annotations

import json
import os
from pathlib import Path

import openai
import pytest
from fastapi import FastAPI, Request  # at module level: the routes' annotations are resolved here
from fastapi.responses import JSONResponse, StreamingResponse
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from tests.train._fake_vertex import FakeVertex, service_account_file
from tunesmith.errors import BadInputError
from tunesmith.serve import ServeConfig, resolve_models
from tunesmith.serve.server import run_in_thread
from tunesmith.serve.vllm import vllm_command
from tunesmith.store.queries import list_served_requests, register_model

from .conftest import API_KEY, start

PROJECT, LOCATION = "p1", "us-central1"
ENDPOINT = f"projects/{PROJECT}/locations/{LOCATION}/endpoints/123"
PIECES = ["Duplicate charge: ", "refund issued."]
ANSWER = "".join(PIECES)
QUOTA = "Quota exceeded for aiplatform.googleapis.com/generate_content_requests_per_minute."
ASK = [{"role": "system", "content": "Answer in one line."}, {"role": "user", "content": "I was charged twice."}]


class TunedEndpoint:
    """generateContent and streamGenerateContent of a tuned endpoint; keeps every request
    (path, body, Authorization header); answers `failure` (status, body) while it is set."""

    def __init__(self, token: str):
        self.token = token
        self.requests: list[tuple[str, dict, str | None]] = []
        self.failure: tuple[int, dict] | None = None

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/{path:path}")
        async def answer(path: str, request: Request):
            self.requests.append((path, await request.json(), request.headers.get("authorization")))
            if request.headers.get("authorization") != f"Bearer {self.token}":
                return JSONResponse({"error": {"code": 401, "message": "bad token", "status": "UNAUTHENTICATED"}}, 401)
            if self.failure:
                return JSONResponse(self.failure[1], self.failure[0])
            usage = {"promptTokenCount": 12, "candidatesTokenCount": 5, "totalTokenCount": 17}
            if path.endswith(":streamGenerateContent"):
                chunks = [{"candidates": [{"content": {"role": "model", "parts": [{"text": PIECES[0]}]}, "index": 0}]},
                          {"candidates": [{"content": {"role": "model", "parts": [{"text": PIECES[1]}]},
                                           "finishReason": "STOP", "index": 0}], "usageMetadata": usage}]
                return StreamingResponse((f"data: {json.dumps(c)}\r\n\r\n" for c in chunks),
                                         media_type="text/event-stream")
            return {"candidates": [{"content": {"role": "model", "parts": [{"text": ANSWER}]}, "finishReason": "STOP",
                                    "index": 0}], "usageMetadata": usage}

        return app


@pytest.fixture
def proxied(tmp_path, monkeypatch):
    """(server URL, server state, fake endpoint, registered version) for a server of one proxied model."""
    with FakeVertex() as tokens:
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(service_account_file(tmp_path, tokens, PROJECT)))
        for name in ("GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION",
                     "GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_GENAI_USE_ENTERPRISE", "GOOGLE_GENAI_API_VERSION"):
            monkeypatch.delenv(name, raising=False)
        fake = TunedEndpoint(tokens.token)
        with run_in_thread(fake.app()) as fake_url:
            monkeypatch.setenv("GOOGLE_VERTEX_BASE_URL", fake_url)
            version = register_model(base_model="gemini-2.5-flash", method="vertex-sft", name="gem-tuned",
                                     spec={"project": PROJECT, "location": LOCATION},
                                     remote_model=f"projects/{PROJECT}/locations/{LOCATION}/models/9@1",
                                     remote_endpoint=ENDPOINT)
            models, _ = resolve_models(["gem-tuned"])
            with start(models, api_key=API_KEY) as (url, state):
                yield url, state, fake, version


def _openai(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=API_KEY, max_retries=0)


def _gemini(url: str) -> genai.Client:
    return genai.Client(api_key=API_KEY, http_options=types.HttpOptions(base_url=url))


def test_openai_sdk_gets_the_endpoints_answer_with_the_request_forwarded(proxied):
    url, state, fake, version = proxied
    reply = _openai(url).chat.completions.create(model="gem-tuned", messages=ASK, temperature=0.2, top_p=0.9,
                                                 max_tokens=40, stop=["END"], seed=7)
    assert reply.choices[0].message.content == ANSWER and reply.choices[0].finish_reason == "stop"
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (12, 5)
    path, body, _ = fake.requests[-1]
    assert path.endswith(f"{ENDPOINT}:generateContent")  # the tuned endpoint, by its resource name
    assert body["contents"] == [{"role": "user", "parts": [{"text": "I was charged twice."}]}]
    assert body["systemInstruction"]["parts"] == [{"text": "Answer in one line."}]
    assert body["generationConfig"] == {"temperature": 0.2, "topP": 0.9, "maxOutputTokens": 40,
                                        "stopSequences": ["END"], "seed": 7}
    by_id = _openai(url).chat.completions.create(model=version.id, messages=ASK[1:], max_tokens=8)
    assert by_id.choices[0].message.content == ANSWER and "systemInstruction" not in fake.requests[-1][1]

    state.log.flush()
    first, second = list_served_requests()
    assert (first.model, first.model_id, first.status_code, first.api) == ("gem-tuned", version.id, 200, "openai")
    assert (first.prompt_tokens, first.completion_tokens) == (12, 5) and first.latency_s > 0
    assert first.system_text == "Answer in one line." and first.output_text == ANSWER
    assert first.input_messages == {"turns": [{"role": "user", "text": "I was charged twice."}]}
    assert second.model == version.id and second.model_id == version.id
    assert state.engine.pool.loads == 0 and state.engine.pool.loaded() == {}  # no local weights were loaded


def test_openai_streaming_is_forwarded_as_a_stream(proxied):
    url, state, fake, _ = proxied
    chunks = list(_openai(url).chat.completions.create(model="gem-tuned", messages=ASK, max_tokens=40, stream=True,
                                                       stream_options={"include_usage": True}))
    deltas = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    assert [d for d in deltas if d] == PIECES
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (12, 5)
    assert fake.requests[-1][0].endswith(f"{ENDPOINT}:streamGenerateContent")
    state.log.flush()
    [row] = list_served_requests()
    assert row.output_text == ANSWER and (row.prompt_tokens, row.completion_tokens) == (12, 5)


def test_gemini_sdk_generate_content_and_stream(proxied):
    url, state, fake, _ = proxied
    client = _gemini(url)
    config = types.GenerateContentConfig(system_instruction="Answer in one line.", temperature=0.5,
                                         max_output_tokens=30)
    reply = client.models.generate_content(model="gem-tuned", contents="I was charged twice.", config=config)
    assert reply.text == ANSWER and reply.usage_metadata.candidates_token_count == 5
    _, body, _ = fake.requests[-1]
    assert body["systemInstruction"]["parts"] == [{"text": "Answer in one line."}]
    assert body["generationConfig"]["temperature"] == 0.5 and body["generationConfig"]["maxOutputTokens"] == 30
    pieces = [c.text for c in client.models.generate_content_stream(model="gem-tuned", contents="Again?") if c.text]
    assert pieces == PIECES and fake.requests[-1][0].endswith(":streamGenerateContent")
    state.log.flush()
    assert [(r.api, r.status_code, r.completion_tokens) for r in list_served_requests()] == [("gemini", 200, 5)] * 2


def test_a_failing_endpoint_is_a_502_and_the_server_keeps_serving(proxied):
    url, state, fake, _ = proxied
    fake.failure = (429, {"error": {"code": 429, "message": QUOTA, "status": "RESOURCE_EXHAUSTED"}})
    with pytest.raises(openai.InternalServerError) as caught:
        _openai(url).chat.completions.create(model="gem-tuned", messages=ASK, max_tokens=8)
    assert caught.value.status_code == 502 and QUOTA in caught.value.message
    assert caught.value.body["type"] == "server_error"
    gemini = _gemini(url)  # kept: a garbage-collected Client closes its connection
    with pytest.raises(genai_errors.ServerError) as gemini_caught:
        gemini.models.generate_content(model="gem-tuned", contents="Hi")
    assert gemini_caught.value.code == 502 and QUOTA in gemini_caught.value.message
    assert gemini_caught.value.status == "UNAVAILABLE"
    with pytest.raises(openai.InternalServerError, match="Quota exceeded"):  # failed before the first chunk: a status
        _openai(url).chat.completions.create(model="gem-tuned", messages=ASK, max_tokens=8, stream=True)
    fake.failure = None
    assert _openai(url).chat.completions.create(model="gem-tuned", messages=ASK).choices[0].message.content == ANSWER
    state.log.flush()
    rows = list_served_requests()
    assert [r.status_code for r in rows] == [502, 502, 502, 200]
    assert QUOTA in rows[0].error and rows[0].output_text is None


def test_no_token_in_the_store_or_the_answers(proxied):
    url, state, fake, _ = proxied
    raw = _openai(url).chat.completions.with_raw_response.create(model="gem-tuned", messages=ASK)
    fake.failure = (403, {"error": {"code": 403, "message": "Permission denied on the endpoint.",
                                    "status": "PERMISSION_DENIED"}})
    refused = _openai(url).chat.completions.with_raw_response
    with pytest.raises(openai.InternalServerError) as caught:
        refused.create(model="gem-tuned", messages=ASK)
    state.log.flush()
    token = fake.token
    assert fake.requests[0][2] == f"Bearer {token}"  # the service account's token went to the endpoint
    assert token not in raw.http_response.text and token not in caught.value.response.text
    home = Path(os.environ["TUNESMITH_HOME"])
    files = [p for p in home.rglob("*") if p.is_file()]
    assert files and not any(token.encode() in p.read_bytes() for p in files)


def test_models_list_shows_proxied_models(proxied):
    url, *_ = proxied
    [model] = _openai(url).models.list().data
    assert (model.id, model.owned_by) == ("gem-tuned", "vertex")
    assert model.model_extra["root"] == "gemini-2.5-flash"


def test_vllm_does_not_take_a_proxied_model(proxied):
    _, state, _, _ = proxied
    with pytest.raises(BadInputError, match="served by Vertex AI"):
        vllm_command(state.models, ServeConfig())
