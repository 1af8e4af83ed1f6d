"""The server's view of deployments (no model loaded): re-read from the store, routed per request,
and acted on by the --auto gate."""

from __future__ import annotations

import pytest

from tunesmith.rollout import RolloutSettings, create_deployment, record_feedback, start_rollout
from tunesmith.serve.deployments import DeploymentRouter
from tunesmith.store.deployments import get_deployment, list_decisions
from tunesmith.store.queries import add_served_requests, register_model


@pytest.fixture
def ids(tmp_path):
    ids = {}
    for name in ("prod-v1", "cand-v2"):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "adapter_config.json").write_text("{}")
        ids[name] = register_model(base_model="smollm2-135m", method="lora", spec={}, name=name,
                                   adapter_path=str(folder)).id
    return ids


def test_a_change_in_the_store_reaches_the_routes_at_the_next_refresh(ids):
    router = DeploymentRouter()
    router.refresh()
    assert router.route("bot", "alice", "r1") is None  # not a deployment (yet): the name is looked up as a model
    create_deployment("bot", "prod-v1")
    router.refresh()
    route = router.route("bot", "alice", "r1")
    assert (route.served.model_id, route.arm, route.shadow, route.rollout_id) == (ids["prod-v1"], "production", None, None)
    start_rollout("bot", "cand-v2", "ab", 100)
    assert router.route("bot", "alice", "r2").arm == "production"  # not re-read yet
    router.refresh()
    route = router.route("bot", "alice", "r2")
    assert (route.served.model_id, route.arm) == (ids["cand-v2"], "candidate")
    assert route.rollout_id == get_deployment("bot").rollout_id
    assert router.route("bot", None, "r3").subject.startswith("anonymous-")


def test_shadow_routes_carry_the_candidate_for_the_share_asked(ids):
    create_deployment("bot", "prod-v1")
    start_rollout("bot", "cand-v2", "shadow", 30)
    router = DeploymentRouter()
    router.refresh()
    routes = [router.route("bot", "alice", f"req-{i}") for i in range(2000)]
    assert {r.served.model_id for r in routes} == {ids["prod-v1"]}
    share = sum(r.shadow is not None for r in routes) / len(routes)
    assert 0.25 < share < 0.35
    assert all(r.shadow.model_id == ids["cand-v2"] for r in routes if r.shadow)


def test_the_auto_gate_promotes_by_itself_and_records_why(ids):
    create_deployment("bot", "prod-v1")
    rollout = start_rollout("bot", "cand-v2", "ab", 50, RolloutSettings(auto=True)).rollout_id
    rows = []
    for i in range(400):
        arm = "candidate" if i % 2 else "production"
        label = ["billing", "shipping", "refund"][i % 3]
        right = arm == "candidate" or i % 4 == 0
        rows.append({"api": "openai", "model": "bot", "status_code": 200, "latency_s": 0.1, "completion_tokens": 3,
                     "request_id": f"r{i}", "deployment": "bot", "rollout_id": rollout, "route": arm,
                     "subject": f"s{i}", "output_text": label if right else "other"})
    add_served_requests(rows)
    for i in range(400):
        record_feedback({"request_id": f"r{i}", "label": ["billing", "shipping", "refund"][i % 3]})
    router = DeploymentRouter()
    router.refresh()
    router._auto_gate()
    (decision,) = list_decisions("bot")
    assert decision.decision == "promote" and decision.automatic and decision.sentence.startswith("Promote: ")
    router.refresh()
    assert router.route("bot", "anyone", "r").served.model_id == ids["cand-v2"]
