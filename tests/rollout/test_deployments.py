"""Deployments, feedback and the gate on a real SQLite store (one per test)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tunesmith.cli import app as cli_app
from tunesmith.errors import BadInputError
from tunesmith.rollout import (
    RolloutSettings,
    assign_arm,
    create_deployment,
    gate,
    import_labels,
    promote,
    record_feedback,
    rollback,
    start_rollout,
    stop_rollout,
)
from tunesmith.store.deployments import (
    UnknownRequestError,
    deployment_events,
    get_deployment,
    list_decisions,
    list_deployments,
)
from tunesmith.store.queries import get_model

from .conftest import log_requests


def test_create_start_promote_moves_the_name_and_the_registry(models):
    create_deployment("bot", "prod-v1")
    started = start_rollout("bot", "cand-v2", "ab", 20, RolloutSettings(delta=0.01))
    assert (started.status, started.candidate, started.percent) == ("running", models["cand-v2"], 20)
    assert started.rollout_id.startswith("ro-")
    decision = promote("bot", sentence="looks good", evidence={"quality": {"low": 0.1}})
    deployment = get_deployment("bot")
    assert (deployment.production, deployment.candidate, deployment.status) == (models["cand-v2"], None, "idle")
    assert get_model("cand-v2").stage == "production" and get_model("prod-v1").stage == "staging"
    recorded = list_decisions("bot")
    assert [(d.id, d.decision, d.candidate_model_id, d.production_model_id, d.evidence) for d in recorded] == [
        (decision.id, "promote", models["cand-v2"], models["prod-v1"], {"quality": {"low": 0.1}})]
    assert [e.kind for e in deployment_events("bot")] == ["create", "start", "promote"]
    assert deployment_events("bot")[1].data["candidate"] == models["cand-v2"]


def test_rollback_archives_the_candidate_and_keeps_production(models):
    create_deployment("bot", "prod-v1")
    start_rollout("bot", "cand-v2", "shadow")
    rollback("bot", sentence="worse")
    assert get_deployment("bot").production == models["prod-v1"]
    assert get_model("cand-v2").stage == "archived" and get_model("prod-v1").stage == "production"
    start_rollout("bot", "other-v3", "shadow")  # a new rollout may start after one ended
    stop_rollout("bot")
    assert [e.kind for e in deployment_events("bot")] == ["create", "start", "rollback", "start", "stop"]
    assert [d.decision for d in list_decisions("bot")] == ["rollback"]


@pytest.mark.parametrize("change, message", [
    (lambda: create_deployment("bot2", "no-such-model"), "unknown model"),
    (lambda: create_deployment("bot", "prod-v1"), "exists already"),
    (lambda: create_deployment("bad name!", "prod-v1"), "cannot name a deployment"),
    (lambda: start_rollout("bot", "no-such-model", "ab"), "unknown model"),
    (lambda: start_rollout("bot", "cand-v2", "ab", 101), "from 0 to 100"),
    (lambda: start_rollout("bot", "cand-v2", "ab", -1), "from 0 to 100"),
    (lambda: start_rollout("bot", "cand-v2", "canary"), "unknown mode"),
    (lambda: start_rollout("bot", "prod-v1", "ab"), "already"),
    (lambda: start_rollout("nobot", "cand-v2", "ab"), "no deployment"),
    (lambda: start_rollout("bot", "cand-v2", "ab", settings=RolloutSettings(metric="vibes")), "unknown metric"),
    (lambda: promote("bot"), "no rollout is running"),
])
def test_bad_changes_are_refused_and_leave_nothing_behind(models, change, message):
    create_deployment("bot", "prod-v1")
    before = [e.to_dict() for e in list_deployments()], len(deployment_events("bot"))
    with pytest.raises(BadInputError, match=message):
        change()
    assert ([e.to_dict() for e in list_deployments()], len(deployment_events("bot"))) == before


def test_a_second_rollout_on_one_name_is_refused(models):
    create_deployment("bot", "prod-v1")
    start_rollout("bot", "cand-v2", "ab")
    with pytest.raises(BadInputError, match="already running"):
        start_rollout("bot", "other-v3", "shadow")
    assert get_deployment("bot").candidate == models["cand-v2"]


def test_a_promotion_the_registry_refuses_writes_nothing(models, tmp_path):
    """The candidate's family has another production model: the stage change fails, so the
    decision, the deployment's change and the history line are not written either."""
    from tunesmith.store.queries import register_model, set_model_stage

    folder = tmp_path / "x"
    folder.mkdir()
    (folder / "adapter_config.json").write_text("{}")
    elsewhere = register_model(base_model="smollm2-135m", method="lora", spec={}, adapter_path=str(folder), family="f2")
    set_model_stage(elsewhere.id, "production")
    stray = register_model(base_model="smollm2-135m", method="lora", spec={}, adapter_path=str(folder), family="f2")
    create_deployment("bot", "prod-v1")
    start_rollout("bot", stray.id, "ab")
    with pytest.raises(BadInputError, match="already in production"):
        promote("bot")
    assert get_deployment("bot").status == "running" and list_decisions("bot") == []
    assert get_model("prod-v1").stage == "production"


@settings(max_examples=50, deadline=None)
@given(subject=st.text(min_size=1, max_size=40), percent=st.floats(0, 100))
def test_assignment_is_sticky_and_follows_the_extremes(subject, percent):
    arm = assign_arm("seed", "ro-1", subject, percent)
    assert all(assign_arm("seed", "ro-1", subject, percent) == arm for _ in range(3))
    assert assign_arm("seed", "ro-1", subject, 0) == "production"
    assert assign_arm("seed", "ro-1", subject, 100) == "candidate"


def test_assignment_share_is_near_the_percent():
    arms = [assign_arm("s", "ro-1", f"user-{i}", 10) for i in range(20_000)]
    share = arms.count("candidate") / len(arms)
    assert abs(share - 0.10) < 3 * np.sqrt(0.1 * 0.9 / 20_000)


# --- Feedback -------------------------------------------------------------------------


def test_feedback_is_stored_against_a_known_request_only():
    log_requests([{"request_id": "chatcmpl-1", "deployment": "bot"}])
    assert record_feedback({"request_id": "chatcmpl-1", "thumbs": "up", "label": "billing"})["thumbs"] == 1
    with pytest.raises(UnknownRequestError, match="chatcmpl-2"):
        record_feedback({"request_id": "chatcmpl-2", "score": 1})
    for body, message in [({"request_id": "chatcmpl-1"}, "nothing to record"),
                          ({"request_id": "chatcmpl-1", "score": "high"}, "score must be a number"),
                          ({"request_id": "chatcmpl-1", "thumbs": "sideways"}, "thumbs must be"),
                          ({"score": 1}, "request_id is missing"),
                          ({"request_id": "chatcmpl-1", "stars": 5}, "unknown field")]:
        with pytest.raises(BadInputError, match=message):
            record_feedback(body)


def test_label_import_names_the_bad_line_and_stores_nothing(models, tmp_path):
    from tunesmith.store.deployments import feedback_for

    create_deployment("bot", "prod-v1")
    log_requests([{"request_id": f"r{i}", "deployment": "bot"} for i in range(3)])
    good = tmp_path / "labels.jsonl"
    good.write_text("\n".join(json.dumps({"request_id": f"r{i}", "label": "billing"}) for i in range(3)) + "\n")
    assert import_labels("bot", good) == 3
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"request_id": "r0", "label": "x"}\n{"request_id": "r1", "label": ""}\n')
    with pytest.raises(BadInputError, match="bad.jsonl:2"):
        import_labels("bot", bad)
    unknown = tmp_path / "unknown.jsonl"
    unknown.write_text('{"request_id": "r0", "label": "x"}\n\n{"request_id": "nope", "label": "x"}\n')
    with pytest.raises(BadInputError, match="unknown.jsonl:3: no served request"):
        import_labels("bot", unknown)
    assert {k: v["answer"] for k, v in feedback_for(["r0", "r1", "r2"]).items()} == dict.fromkeys(("r0", "r1", "r2"), "billing")


# --- The gate on logged requests --------------------------------------------------------


def _ab_traffic(rollout_id, n, p_production, p_candidate, seed=0, candidate_status=200):
    """n requests per arm with labels; answers right with the given probabilities."""
    rng = np.random.default_rng(seed)
    classes = ["billing", "shipping", "refund"]
    rows, labels = [], []
    for arm, p, status in (("production", p_production, 200), ("candidate", p_candidate, candidate_status)):
        for i in range(n):
            label = classes[i % 3]
            answer = label if rng.random() < p else classes[(i + 1) % 3]
            rid = f"{arm}-{i}"
            rows.append({"request_id": rid, "deployment": "bot", "rollout_id": rollout_id, "route": arm,
                         "subject": f"{arm}-subject-{i}", "output_text": answer,
                         "status_code": status, "latency_s": 0.1 + rng.random() * 0.01})
            labels.append({"request_id": rid, "label": label})
    log_requests(rows)
    return labels


def _label(labels):
    for label in labels:
        record_feedback(label)


def test_gate_keeps_collecting_with_few_labels_and_says_how_many_more(models):
    create_deployment("bot", "prod-v1")
    rollout = start_rollout("bot", "cand-v2", "ab", 50).rollout_id
    _label(_ab_traffic(rollout, 40, 0.7, 0.75))
    result = gate("bot")
    assert result.decision == "keep"
    assert result.sentence.startswith("Keep collecting: cand-v2 − prod-v1 accuracy is ")
    assert "more labeled" in result.sentence or "no sample size" in result.sentence
    assert result.evidence["quality"]["n"] == 80


def test_gate_promotes_a_clearly_better_candidate_and_rolls_back_a_worse_one(models):
    create_deployment("bot", "prod-v1")
    rollout = start_rollout("bot", "cand-v2", "ab", 50).rollout_id
    _label(_ab_traffic(rollout, 300, 0.5, 0.9))
    result = gate("bot")
    assert result.decision == "promote", result.sentence
    assert result.sentence.startswith("Promote: ")
    stop_rollout("bot")
    rollout = start_rollout("bot", "cand-v2", "ab", 50).rollout_id
    _label(_ab_traffic(rollout, 300, 0.9, 0.5, seed=1))
    assert gate("bot").decision == "rollback"


def test_a_failing_candidate_trips_the_error_guardrail(models):
    create_deployment("bot", "prod-v1")
    rollout = start_rollout("bot", "cand-v2", "ab", 50).rollout_id
    _ab_traffic(rollout, 100, 0.7, 0.7, candidate_status=500)
    result = gate("bot")
    assert result.decision == "rollback" and "error_rate guardrail" in result.sentence


def test_shadow_quality_is_paired_and_apply_gate_records_why(models):
    create_deployment("bot", "prod-v1")
    rollout = start_rollout("bot", "cand-v2", "shadow", settings=RolloutSettings(auto=True)).rollout_id
    rows = []
    for i in range(200):
        rid = f"r{i}"
        rows.append({"request_id": rid, "pair_id": rid, "deployment": "bot", "rollout_id": rollout,
                     "route": "production", "output_text": "billing" if i % 2 else "shipping"})
        rows.append({"request_id": f"{rid}.shadow", "pair_id": rid, "deployment": "bot", "rollout_id": rollout,
                     "route": "shadow", "output_text": "billing"})
    log_requests(rows)
    _label({"request_id": f"r{i}", "label": "billing"} for i in range(200))
    from tunesmith.rollout import apply_gate

    result = apply_gate("bot")
    assert result.decision == "promote" and result.evidence["unit"] == "pairs"
    assert result.evidence["quality"]["estimate"] == pytest.approx(0.5)
    (decision,) = list_decisions("bot")
    assert decision.automatic and decision.sentence == result.sentence
    assert get_deployment("bot").production == models["cand-v2"]


# --- CLI ------------------------------------------------------------------------------


def test_cli_round_trip_and_exit_code_2_for_bad_input(models):
    runner = CliRunner()
    created = runner.invoke(cli_app, ["rollout", "create", "bot", "--production", "prod-v1", "--json"])
    assert created.exit_code == 0 and json.loads(created.stdout)["production"] == models["prod-v1"]
    from tunesmith.cli import main  # noqa: F401 - exit codes of TunesmithError come from main()

    bad = runner.invoke(cli_app, ["rollout", "start", "bot", "--candidate", "cand-v2", "--mode", "ab", "--percent", "150"])
    assert isinstance(bad.exception, BadInputError) and bad.exception.exit_code == 2
    started = runner.invoke(cli_app, ["rollout", "start", "bot", "--candidate", "cand-v2", "--mode", "ab",
                                      "--guardrail", "error_rate=0.02", "--json"])
    assert json.loads(started.stdout)["settings"]["guardrails"] == {"error_rate": 0.02}
    status = runner.invoke(cli_app, ["rollout", "status", "bot"])
    assert status.stdout.startswith("Keep collecting: 0 labeled requests")
    listed = json.loads(runner.invoke(cli_app, ["rollout", "list", "--json"]).stdout)
    assert [d["status"] for d in listed] == ["running"]
    promoted = runner.invoke(cli_app, ["rollout", "promote", "bot", "--json"])
    assert json.loads(promoted.stdout)["decision"] == "promote"


# --- Shadow pairs to human rating ---------------------------------------------------------


def test_shadow_pairs_become_a_blind_rating_task(models):
    from tunesmith.rollout.rating import rate_shadow_pairs
    from tunesmith.store.queries import get_rating_task, rating_items

    create_deployment("bot", "prod-v1")
    with pytest.raises(BadInputError, match="no shadow rollout"):
        rate_shadow_pairs("bot", ["ana"])
    rollout = start_rollout("bot", "cand-v2", "shadow").rollout_id
    with pytest.raises(BadInputError, match="no answered pairs"):
        rate_shadow_pairs("bot", ["ana"])
    rows = []
    for i in range(6):
        turns = {"turns": [{"role": "user", "text": f"ticket {i}"}]}
        rows.append({"request_id": f"r{i}", "pair_id": f"r{i}", "deployment": "bot", "rollout_id": rollout,
                     "route": "production", "output_text": f"old {i}", "input_messages": turns})
        rows.append({"request_id": f"r{i}.shadow", "pair_id": f"r{i}", "deployment": "bot", "rollout_id": rollout,
                     "route": "shadow", "output_text": f"new {i}", "input_messages": turns,
                     "status_code": 500 if i == 5 else 200})  # a failed shadow answer is no pair to rate
    log_requests(rows)
    created = rate_shadow_pairs("bot", ["ana", "ben"], items=4, seed=1)
    task = get_rating_task(created.task.id)
    assert task.models["labels"] == {"production": "prod-v1", "candidate": "cand-v2"}
    assert task.settings["source"] == {"rollout": rollout, "deployment": "bot"}
    items = rating_items(task.id)
    assert len(items) == 4 and all(i.example_id in {f"r{n}" for n in range(5)} for i in items)
    assert all(i.first_output == f"old {i.example_id[1:]}" and i.second_output == f"new {i.example_id[1:]}"
               and i.input_text == f"ticket {i.example_id[1:]}" for i in items)
    assert [name for name, _ in created.links] == ["ana", "ben"] and all("/rate/" in link for _, link in created.links)
    # two raters prefer the candidate's answers: the gate reports it beside its own numbers
    from tunesmith.evaluate.human.rating import next_item, submit

    for _, link in created.links:
        token = link.rsplit("/", 1)[1]
        while (item := next_item(token)["item"]) is not None:
            submit(token, item["n"], choice="left" if item["left"].startswith("new") else "right")
    result = gate("bot")
    assert result.evidence["human"]["task"] == task.id
    assert "People: Raters preferred cand-v2 on 100% of 4 inputs" in result.sentence
