"""Deployments whose models are tuned on Vertex AI and served through their endpoints (a loopback
stand-in, as in test_proxy.py): a proxied candidate shadows and takes A/B traffic like a local one."""

from __future__ import annotations

import time

import httpx

from tunesmith.rollout import create_deployment, start_rollout
from tunesmith.store.deployments import rollout_requests
from tunesmith.store.queries import register_model

from .conftest import API_KEY
from .test_proxy import ANSWER, ASK, LOCATION, PROJECT, proxied  # noqa: F401 - proxied is a fixture

CANDIDATE_ENDPOINT = f"projects/{PROJECT}/locations/{LOCATION}/endpoints/456"


def _candidate():
    return register_model(base_model="gemini-2.5-flash", method="vertex-sft", name="gem-cand",
                          spec={"project": PROJECT, "location": LOCATION},
                          remote_model=f"projects/{PROJECT}/locations/{LOCATION}/models/9@2",
                          remote_endpoint=CANDIDATE_ENDPOINT)


def _ask(url: str, subject: str = "alice") -> httpx.Response:
    return httpx.post(f"{url}/v1/chat/completions", headers={"Authorization": f"Bearer {API_KEY}",
                                                             "X-Tunesmith-Subject": subject},
                      json={"model": "support", "messages": ASK, "max_tokens": 20}, timeout=60)


def test_a_proxied_candidate_shadows_and_takes_ab_traffic(proxied):  # noqa: F811
    url, state, fake, production = proxied
    candidate = _candidate()
    create_deployment("support", "gem-tuned")
    rollout = start_rollout("support", "gem-cand", "shadow").rollout_id
    state.router.refresh()
    reply = _ask(url)
    assert reply.status_code == 200 and reply.json()["choices"][0]["message"]["content"] == ANSWER
    assert reply.headers["x-tunesmith-served-by"] == production.id
    deadline = time.monotonic() + 30
    while not any(path.endswith(f"{CANDIDATE_ENDPOINT}:generateContent") for path, _, _ in fake.requests):
        assert time.monotonic() < deadline, "the shadow call never reached the candidate's endpoint"
        time.sleep(0.05)
    while state.shadow_tasks:
        time.sleep(0.05)
    state.log.flush()
    shadow = [r for r in rollout_requests(rollout) if r.route == "shadow"]
    assert [(r.model_id, r.pair_id, r.output_text) for r in shadow] == [(candidate.id, reply.json()["id"], ANSWER)]

    from tunesmith.rollout import stop_rollout

    stop_rollout("support")
    start_rollout("support", "gem-cand", "ab", 100)
    state.router.refresh()
    before = len(fake.requests)
    reply = _ask(url, "bob")
    assert reply.headers["x-tunesmith-served-by"] == candidate.id and reply.json()["model"] == "support"
    assert fake.requests[before][0].endswith(f"{CANDIDATE_ENDPOINT}:generateContent")
