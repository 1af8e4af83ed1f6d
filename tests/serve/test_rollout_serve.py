"""Deployments through the real server (uvicorn on loopback) and the official openai SDK: shadow,
A/B, feedback, promote, and a restart over the same store. The tiny model and a LoRA adapter on it
stand in for production and candidate; greedy decoding makes each one's answer known in advance."""

from __future__ import annotations

import time

import httpx
import openai
import pytest

from tunesmith.rollout import create_deployment, promote, start_rollout
from tunesmith.store.deployments import list_decisions, rollout_requests
from tunesmith.store.queries import list_served_requests

from .conftest import register_adapter, start

PROMPTS = [f"Ticket {i}: my invoice is wrong." for i in range(8)]


def _client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0)


def _ask(client: openai.OpenAI, model: str, prompt: str, user: str | None = None):
    """(answer text, served-by header, request id header, model field)."""
    extra = {"user": user} if user else {}
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": prompt}], max_tokens=6, temperature=0, **extra)
    reply = raw.parse()
    return reply.choices[0].message.content, raw.headers["x-tunesmith-served-by"], raw.headers["x-tunesmith-request-id"], reply.model


@pytest.fixture
def setup(tiny_model_dir, adapter_dir):
    """A deployment "bot" on the tiny base, the adapter registered as "tiny-tuned", and the models served directly."""
    from tunesmith.serve import resolve_models

    tuned = register_adapter(tiny_model_dir, adapter_dir, "tiny-tuned")
    create_deployment("bot", str(tiny_model_dir))
    models, _ = resolve_models([str(tiny_model_dir), "tiny-tuned"])
    return models, tuned


def _wait_for_shadows(state, expected: int, rollout_id: str) -> list:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state.log.flush()
        shadows = [r for r in rollout_requests(rollout_id) if r.route == "shadow"]
        if len(shadows) >= expected and not state.shadow_tasks:
            return shadows
        time.sleep(0.05)
    raise AssertionError(f"only {len(shadows)} of {expected} shadow answers were logged")


@pytest.mark.parametrize("mixed_adapters", [False, True], ids=["one-adapter-batches", "mixed-adapter-batches"])
def test_shadow_answers_come_from_production_and_every_request_has_a_candidate_answer(setup, tiny_model_dir,
                                                                                      mixed_adapters):
    """The candidate's copy yields to callers (its own batch, however the engine batches
    adapters); the answers must be those each model gives alone."""
    models, tuned = setup
    rollout = start_rollout("bot", "tiny-tuned", "shadow").rollout_id
    with start(models, mixed_adapters=mixed_adapters, batch_wait_ms=20) as (url, state):
        client = _client(url)
        direct_base = [_ask(client, str(tiny_model_dir), p)[0] for p in PROMPTS]
        direct_tuned = [_ask(client, "tiny-tuned", p)[0] for p in PROMPTS]
        assert direct_base != direct_tuned  # the adapter changes what the model says
        answers = [_ask(client, "bot", p) for p in PROMPTS]
        assert [a[0] for a in answers] == direct_base
        assert {a[1] for a in answers} == {str(tiny_model_dir)} and {a[3] for a in answers} == {"bot"}
        shadows = _wait_for_shadows(state, len(PROMPTS), rollout)
    by_pair = {s.pair_id: s for s in shadows}
    for (_, _, request_id, _), tuned_answer in zip(answers, direct_tuned):
        assert by_pair[request_id].output_text == tuned_answer
        assert by_pair[request_id].model_id == tuned.id and by_pair[request_id].status_code == 200
    production_rows = [r for r in rollout_requests(rollout) if r.route == "production"]
    assert sorted(r.request_id for r in production_rows) == sorted(a[2] for a in answers)
    assert all(r.pair_id == r.request_id for r in production_rows)


def test_a_failing_shadow_is_logged_and_never_reaches_the_caller(setup, tiny_model_dir, tmp_path):
    from tunesmith.store.queries import register_model

    models, _ = setup
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "adapter_config.json").write_text("{not json")  # resolves, fails to load
    register_model(base_model=str(tiny_model_dir), method="lora", spec={}, name="broken", adapter_path=str(broken))
    rollout = start_rollout("bot", "broken", "shadow").rollout_id
    with start(models) as (url, state):
        answers = [_ask(_client(url), "bot", p) for p in PROMPTS[:3]]
        shadows = _wait_for_shadows(state, 3, rollout)
    assert all(a[0] is not None for a in answers)
    assert {s.status_code for s in shadows} == {500} and all(s.error for s in shadows)


def test_ab_is_sticky_per_subject_near_the_share_and_feedback_lands(setup, tiny_model_dir):
    models, tuned = setup
    rollout = start_rollout("bot", "tiny-tuned", "ab", 30).rollout_id
    with start(models) as (url, state):
        client = _client(url)
        seen = {}
        for i in range(60):
            subject = f"user-{i}"
            first = _ask(client, "bot", PROMPTS[i % 8], user=subject)
            second = httpx.post(f"{url}/v1/chat/completions", headers={"X-Tunesmith-Subject": subject},
                                json={"model": "bot", "max_tokens": 2, "messages": [{"role": "user", "content": "hi"}]})
            assert second.headers["x-tunesmith-served-by"] == first[1]  # the same side by either route
            seen[subject] = first
        candidates = sum(1 for a in seen.values() if a[1] == tuned.id)
        assert 6 <= candidates <= 30  # 30% of 60 is 18; three standard deviations either side
        request_id = seen["user-0"][2]
        ok = httpx.post(f"{url}/v1/feedback", json={"request_id": request_id, "thumbs": "up", "label": "billing"})
        assert ok.status_code == 200 and ok.json()["thumbs"] == 1
        unknown = httpx.post(f"{url}/v1/feedback", json={"request_id": "chatcmpl-nope", "score": 1})
        assert unknown.status_code == 404 and "chatcmpl-nope" in unknown.json()["error"]["message"]
        bad = httpx.post(f"{url}/v1/feedback", json={"request_id": request_id, "thumbs": "sideways"})
        assert bad.status_code == 400
        state.log.flush()
    rows = rollout_requests(rollout)
    assert len(rows) == 120
    for row in rows:  # the log says who served what, as the header did
        assert row.model_id == (tuned.id if row.route == "candidate" else str(tiny_model_dir))
        assert row.deployment == "bot" and row.model == "bot"


def test_promote_changes_what_the_name_serves_and_a_restart_loses_nothing(setup, tiny_model_dir):
    models, tuned = setup
    start_rollout("bot", "tiny-tuned", "ab", 0)
    with start(models, deployments_refresh_s=0.2) as (url, state):
        client = _client(url)
        assert _ask(client, "bot", PROMPTS[0])[1] == str(tiny_model_dir)
        listed = [m.id for m in client.models.list().data]
        assert "bot" in listed
        promote("bot")
        deadline = time.monotonic() + 10  # the server re-reads deployments every 0.2 s here (2 s by default)
        while _ask(client, "bot", PROMPTS[0])[1] != tuned.id:
            assert time.monotonic() < deadline, "the promotion never reached the server"
            time.sleep(0.1)
        last_id = _ask(client, "bot", PROMPTS[1])[2]
        gemini = httpx.post(f"{url}/v1beta/models/bot:generateContent",  # the Gemini API routes the name too
                            json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
                                  "generationConfig": {"maxOutputTokens": 2}})
        assert gemini.status_code == 200 and gemini.json()["modelVersion"] == "bot"
        assert gemini.headers["x-tunesmith-served-by"] == tuned.id
        assert gemini.headers["x-tunesmith-request-id"] == gemini.json()["responseId"]
        state.log.flush()
    before = len(list_served_requests(model="bot"))
    with start(models) as (url, state):  # a new server over the same store
        client = _client(url)
        assert _ask(client, "bot", PROMPTS[0])[1] == tuned.id
        assert httpx.post(f"{url}/v1/feedback", json={"request_id": last_id, "score": 0.5}).status_code == 200
        state.log.flush()
    assert len(list_served_requests(model="bot")) == before + 1
    assert [d.decision for d in list_decisions("bot")] == ["promote"]
