"""The real server, called through the official openai and google-genai SDKs."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest
from google import genai
from google.genai import types

from .conftest import API_KEY

HI = [{"role": "user", "content": "Say hello."}]


def _openai(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=API_KEY, max_retries=0)


def _gemini(url: str) -> genai.Client:
    return genai.Client(api_key=API_KEY, http_options=types.HttpOptions(base_url=url))


def test_openai_chat_completion(server):
    url, _, base = server
    reply = _openai(url).chat.completions.create(model=base, messages=HI, max_tokens=6, temperature=0.9, seed=3)
    choice = reply.choices[0]
    assert choice.message.role == "assistant" and choice.message.content
    assert choice.finish_reason in ("length", "stop")
    assert reply.usage.prompt_tokens > 5
    assert 1 <= reply.usage.completion_tokens <= 6
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    assert reply.model == base and reply.id.startswith("chatcmpl-")


def test_seed_makes_sampling_repeatable(server):
    url, _, base = server
    client = _openai(url)

    def text(seed: int) -> str:
        return client.chat.completions.create(model=base, messages=HI, max_tokens=8, temperature=1.0,
                                              seed=seed).choices[0].message.content

    assert text(7) == text(7)
    assert text(7) != text(8)


def test_openai_streaming_gives_the_same_text(server):
    url, _, base = server
    client = _openai(url)
    whole = client.chat.completions.create(model=base, messages=HI, max_tokens=8, temperature=1.0, seed=5)
    chunks = list(client.chat.completions.create(model=base, messages=HI, max_tokens=8, temperature=1.0, seed=5,
                                                 stream=True, stream_options={"include_usage": True}))
    deltas = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    assert sum(1 for d in deltas if d) >= 2  # it streams token by token, not in one piece
    assert "".join(deltas) == whole.choices[0].message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == whole.choices[0].finish_reason
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_max_tokens_and_stop_sequences(server):
    url, _, base = server
    client = _openai(url)
    full = client.chat.completions.create(model=base, messages=HI, max_tokens=12, temperature=1.0, seed=11)
    assert full.usage.completion_tokens == 12 and full.choices[0].finish_reason == "length"
    text = full.choices[0].message.content
    stop = text[len(text) // 2:len(text) // 2 + 3]
    expected = text[:text.find(stop)]
    cut = client.chat.completions.create(model=base, messages=HI, max_tokens=12, temperature=1.0, seed=11, stop=[stop])
    assert cut.choices[0].message.content == expected
    assert cut.choices[0].finish_reason == "stop"
    streamed = client.chat.completions.create(model=base, messages=HI, max_tokens=12, temperature=1.0, seed=11,
                                              stop=stop, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in streamed) == expected


def test_gemini_generate_content_and_stream(server):
    url, _, base = server
    client = _gemini(url)
    config = types.GenerateContentConfig(max_output_tokens=8, temperature=1.0, seed=5,
                                         system_instruction="You are terse.")
    reply = client.models.generate_content(model=base, contents="Say hello.", config=config)
    assert reply.text
    assert reply.usage_metadata.candidates_token_count <= 8
    assert reply.candidates[0].finish_reason in (types.FinishReason.MAX_TOKENS, types.FinishReason.STOP)
    pieces = list(client.models.generate_content_stream(model=base, contents="Say hello.", config=config))
    assert len(pieces) >= 2
    assert "".join(p.text or "" for p in pieces) == reply.text
    # The same conversation through the OpenAI API gives the same text.
    same = _openai(url).chat.completions.create(
        model=base, max_tokens=8, temperature=1.0, seed=5,
        messages=[{"role": "system", "content": "You are terse."}, *HI])
    assert same.choices[0].message.content == reply.text


def test_gemini_multi_turn_and_v1beta_path(server):
    url, _, base = server
    body = {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}, {"role": "model", "parts": [{"text": "Hello"}]},
                         {"role": "user", "parts": [{"text": "Again"}]}],
            "generationConfig": {"maxOutputTokens": 3, "temperature": 0}}
    answer = httpx.post(f"{url}/v1beta/models/{base}:generateContent", json=body, headers={"x-goog-api-key": API_KEY})
    assert answer.status_code == 200
    assert answer.json()["usageMetadata"]["candidatesTokenCount"] <= 3


def test_model_list_shows_the_base_and_the_adapter(server, served):
    url, _, base = server
    _, version = served
    listed = {m.id: m for m in _openai(url).models.list()}
    assert set(listed) == {base, "tiny-tuned"}
    # a registry id works as well as its alias
    reply = _openai(url).chat.completions.create(model=version.id, messages=HI, max_tokens=3)
    assert reply.choices[0].message.content is not None


def test_adapter_changes_the_answer_and_base_stays_the_same(server):
    url, _, base = server
    client = _openai(url)

    def text(model: str) -> str:
        return client.chat.completions.create(model=model, messages=HI, max_tokens=8, temperature=1.0,
                                              seed=21).choices[0].message.content

    before = text(base)
    tuned = text("tiny-tuned")
    assert tuned != before
    assert text(base) == before  # the adapter is off again for base requests
    assert text("tiny-tuned") == tuned


def test_concurrent_clients_are_batched(server):
    url, state, base = server
    client = _openai(url)
    prompts = [f"Question number {i}: what is {i} plus {i}?" * (1 + i % 3) for i in range(8)]

    def ask(i: int) -> str:  # mixed models, greedy and seeded sampling in one burst
        return client.chat.completions.create(model=base if i % 2 else "tiny-tuned", max_tokens=10,
                                              temperature=0 if i % 4 == 0 else 1.0, seed=i, messages=[{"role": "user", "content": prompts[i]}]
                                              ).choices[0].message.content

    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(ask, range(8)))
    assert state.metrics.max_batch_size() > 1
    # A row's text does not depend on its batch: alone, each seeded request says the same.
    assert [ask(i) for i in range(8)] == together
    metrics = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {API_KEY}"}).text
    assert "# TYPE tunesmith_batch_size histogram" in metrics
    assert 'tunesmith_requests_total{api="openai",model="tiny-tuned",status="200"}' in metrics


def test_health_needs_no_key(server):
    url, _, base = server
    assert httpx.get(f"{url}/health").json() == {"status": "ok", "models": [base, "tiny-tuned"]}


@pytest.mark.parametrize("headers, api", [
    ({}, "openai"),
    ({"Authorization": "Bearer wrong"}, "openai"),
    ({}, "gemini"),
    ({"x-goog-api-key": "wrong"}, "gemini"),
])
def test_missing_or_wrong_key_is_401(server, headers, api):
    url, _, base = server
    if api == "openai":
        answer = httpx.post(f"{url}/v1/chat/completions", json={"model": base, "messages": HI}, headers=headers)
        assert answer.status_code == 401 and answer.json()["error"]["code"] == "invalid_api_key"
    else:
        answer = httpx.post(f"{url}/v1beta/models/{base}:generateContent", headers=headers,
                            json={"contents": [{"parts": [{"text": "hi"}]}]})
        assert answer.status_code == 401 and answer.json()["error"]["status"] == "UNAUTHENTICATED"
    _good_request_works(url, base)


def test_sdks_raise_their_own_errors_for_a_bad_key(server):
    url, _, base = server
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{url}/v1", api_key="nope", max_retries=0).models.list()
    client = genai.Client(api_key="nope", http_options=types.HttpOptions(base_url=url))  # kept: closed when collected
    with pytest.raises(genai.errors.ClientError) as caught:
        client.models.generate_content(model=base, contents="hi")
    assert caught.value.code == 401


def _post(url: str, path: str, **kwargs) -> httpx.Response:
    headers = {"Authorization": f"Bearer {API_KEY}", **kwargs.pop("headers", {})}
    return httpx.post(f"{url}{path}", headers=headers, **kwargs)


def _good_request_works(url: str, base: str) -> None:
    answer = _post(url, "/v1/chat/completions", json={"model": base, "messages": HI, "max_tokens": 2})
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("case", ["malformed", "not-an-object", "no-messages", "empty-messages", "bad-role",
                                  "last-not-user", "bad-temperature", "over-cap", "n-2", "unknown-model", "too-big"])
def test_bad_openai_requests(server, case):
    url, _, base = server
    good = {"model": base, "messages": HI, "max_tokens": 2}
    bodies = {
        "no-messages": {"model": base}, "empty-messages": {**good, "messages": []},
        "bad-role": {**good, "messages": [{"role": "robot", "content": "x"}]},
        "last-not-user": {**good, "messages": [*HI, {"role": "assistant", "content": "x"}]},
        "bad-temperature": {**good, "temperature": 5}, "over-cap": {**good, "max_tokens": 65},
        "n-2": {**good, "n": 2}, "unknown-model": {**good, "model": "no-such-model"},
        "too-big": {**good, "messages": [{"role": "user", "content": "x" * 30_000}]},
    }
    if case == "malformed":
        answer = _post(url, "/v1/chat/completions", content=b'{"model": ', headers={"Content-Type": "application/json"})
    elif case == "not-an-object":
        answer = _post(url, "/v1/chat/completions", json=[1, 2])
    else:
        answer = _post(url, "/v1/chat/completions", json=bodies[case])
    expected = {"unknown-model": 404, "too-big": 413}.get(case, 400)
    assert answer.status_code == expected, answer.text
    error = answer.json()["error"]
    assert error["message"] and error["type"]
    if case == "over-cap":
        assert error["param"] == "max_tokens" and "64" in error["message"]
    _good_request_works(url, base)


def test_sdk_sees_404_and_400(server):
    url, _, base = server
    client = _openai(url)
    with pytest.raises(openai.NotFoundError, match="no-such-model"):
        client.chat.completions.create(model="no-such-model", messages=HI)
    with pytest.raises(openai.BadRequestError, match="cap"):
        client.chat.completions.create(model=base, messages=HI, max_tokens=10_000)


@pytest.mark.parametrize("case", ["malformed", "no-contents", "text-less-part", "unknown-model", "over-cap",
                                  "too-big", "unknown-method"])
def test_bad_gemini_requests(server, case):
    url, _, base = server
    good = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}], "generationConfig": {"maxOutputTokens": 2}}
    path, body = f"/v1beta/models/{base}:generateContent", good
    if case == "no-contents":
        body = {"generationConfig": {}}
    elif case == "text-less-part":
        body = {"contents": [{"parts": [{"inlineData": {"data": "AAAA"}}]}]}
    elif case == "unknown-model":
        path = "/v1beta/models/nope:generateContent"
    elif case == "over-cap":
        body = {**good, "generationConfig": {"maxOutputTokens": 1000}}
    elif case == "too-big":
        body = {"contents": [{"parts": [{"text": "x" * 30_000}]}]}
    elif case == "unknown-method":
        path = f"/v1beta/models/{base}:countTokens"
    if case == "malformed":
        answer = _post(url, path, content=b"{{", headers={"x-goog-api-key": API_KEY})
    else:
        answer = _post(url, path, json=body)
    expected = {"unknown-model": 404, "unknown-method": 404, "too-big": 413}.get(case, 400)
    assert answer.status_code == expected, answer.text
    error = answer.json()["error"]
    assert error["code"] == expected and error["status"] and error["message"]
    _good_request_works(url, base)
