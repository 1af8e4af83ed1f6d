"""Structured outputs on the real server, through the official SDKs: response_format
json_schema and json_object, the guided_choice extension (extra_body), Gemini's
responseSchema; a tuned model held to its learned output space unless the request asks for
text; and a batch that mixes constrained and free rows."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest
from google import genai
from google.genai import types

from tunesmith.data.output_space import OutputSpace

from .conftest import API_KEY, register_adapter, start

LABELS = ["card_arrival", "refund_not_showing_up", "top_up_failed"]


@pytest.fixture(scope="module")
def structured_server(tiny_model_dir, adapter_dir, tmp_path_factory):
    """The tiny base, and the adapter registered with a label output space (alias "tiny-labels")."""
    from tunesmith.serve import resolve_models
    from tunesmith.store.db import session_scope
    from tunesmith.store.schema import ModelVersion

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TUNESMITH_HOME", str(tmp_path_factory.mktemp("registry-structured")))
        version = register_adapter(tiny_model_dir, adapter_dir, "tiny-labels")
        with session_scope() as s:
            s.get(ModelVersion, version.id).output_space = OutputSpace("labels", labels=tuple(LABELS)).to_dict()
        models, _ = resolve_models([str(tiny_model_dir), "tiny-labels"])
    with start(models, api_key=API_KEY, batch_wait_ms=60, max_tokens_cap=96) as (url, state):
        yield url, state, models[0].name


def _client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=API_KEY, max_retries=0)


def _ask(client, model, text, **kw) -> str:
    return client.chat.completions.create(model=model, messages=[{"role": "user", "content": text}],
                                          max_tokens=kw.pop("max_tokens", 60), temperature=0, **kw
                                          ).choices[0].message.content


def test_json_schema_is_honoured(structured_server):
    url, _, base = structured_server
    schema = {"type": "object", "properties": {"intent": {"type": "string", "enum": LABELS},
                                               "urgent": {"type": "boolean"}, "count": {"type": "integer"}}}
    text = _ask(_client(url), base, "Classify: where is my card?", max_tokens=96,
                response_format={"type": "json_schema", "json_schema": {"name": "intent", "schema": schema}})
    value = json.loads(text)
    assert value["intent"] in LABELS and isinstance(value["urgent"], bool) and isinstance(value["count"], int)


def test_json_object_is_a_json_object(structured_server):
    url, _, base = structured_server
    reply = _client(url).chat.completions.create(model=base, messages=[{"role": "user", "content": "Give JSON."}],
                                                 max_tokens=96, temperature=0, response_format={"type": "json_object"})
    text = reply.choices[0].message.content
    if reply.choices[0].finish_reason == "stop":
        assert isinstance(json.loads(text), dict)
    else:  # cut at max_tokens: a JSON object begun
        assert text.startswith("{")


def test_guided_choice_through_extra_body(structured_server):
    url, _, base = structured_server
    for text in ("hello", "my top up failed", "refund?"):
        assert _ask(_client(url), base, text, extra_body={"guided_choice": ["yes", "no", "maybe later"]}) in (
            "yes", "no", "maybe later")


def test_a_tuned_model_answers_in_its_output_space_unless_asked_for_text(structured_server):
    url, _, _ = structured_server
    client = _client(url)
    texts = ["where is my card?", "refund please", "hi", "top-up failed"]
    assert all(_ask(client, "tiny-labels", t) in LABELS for t in texts)
    free = [_ask(client, "tiny-labels", t, max_tokens=12, response_format={"type": "text"}) for t in texts]
    assert any(answer not in LABELS for answer in free)  # the random adapter alone writes anything


def test_gemini_response_schema(structured_server):
    url, _, base = structured_server
    client = genai.Client(api_key=API_KEY, http_options=types.HttpOptions(base_url=url))
    config = types.GenerateContentConfig(max_output_tokens=40, temperature=0, response_mime_type="text/x.enum",
                                         response_schema={"type": "STRING", "enum": LABELS})
    assert client.models.generate_content(model=base, contents="where is my card?", config=config).text in LABELS
    config = types.GenerateContentConfig(max_output_tokens=60, temperature=0, response_mime_type="application/json",
                                         response_schema={"type": "OBJECT", "properties": {
                                             "intent": {"type": "STRING", "enum": LABELS}}})
    value = json.loads(client.models.generate_content(model=base, contents="card?", config=config).text)
    assert value["intent"] in LABELS


def test_a_batch_mixes_constrained_and_free_rows(structured_server):
    url, state, base = structured_server
    client = _client(url)
    texts = [f"message number {i}, about my card" for i in range(8)]

    # Odd rows decode held to a JSON schema token by token (a greedy choice list is scored instead, below).
    schema = {"type": "json_schema", "json_schema": {"name": "intent", "schema": {
        "type": "object", "properties": {"intent": {"enum": LABELS}}, "required": ["intent"]}}}

    def ask(i: int) -> str:
        extra = {"response_format": schema} if i % 2 else {}
        return _ask(client, base, texts[i], max_tokens=24, **extra)

    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(ask, range(8)))
    assert state.metrics.max_batch_size() > 1
    assert all(json.loads(together[i])["intent"] in LABELS for i in range(1, 8, 2))
    assert [ask(i) for i in range(8)] == together  # alone, each row says what it said in the batch


def test_greedy_label_requests_are_answered_by_scoring_beside_decoding_rows(structured_server):
    url, state, base = structured_server
    client = _client(url)
    texts = [f"message number {i}, about my card" for i in range(6)]

    def ask(i: int) -> str:
        extra = {"extra_body": {"guided_choice": LABELS}} if i % 2 else {}
        return _ask(client, base, texts[i], max_tokens=10, **extra)

    with ThreadPoolExecutor(6) as pool:
        together = list(pool.map(ask, range(6)))
    assert all(together[i] in LABELS for i in range(1, 6, 2))
    assert [ask(i) for i in range(0, 6, 2)] == together[0::2]  # the free rows are what they are alone


@pytest.mark.parametrize("body", [
    {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "array"}}}},
    {"response_format": {"type": "yaml"}},
    {"guided_choice": []},
    {"guided_choice": ["a"], "response_format": {"type": "text"}},
])
def test_bad_structured_requests_are_400(structured_server, body):
    url, _, base = structured_server
    with pytest.raises(openai.BadRequestError):
        _client(url).chat.completions.create(model=base, messages=[{"role": "user", "content": "x"}], max_tokens=4,
                                             extra_body=body)
