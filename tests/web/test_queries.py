"""The store's side of the web app: the one-production-model-per-family rule and the paged reads."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tunesmith.errors import BadInputError
from tunesmith.store import queries
from tunesmith.store.schema import MODEL_STAGES


def test_a_second_production_model_in_a_family_is_refused_with_a_hint():
    first = queries.register_model(base_model="base-a", method="lora", spec={}, name="first")
    second = queries.register_model(base_model="base-a", method="lora", spec={})
    other_base = queries.register_model(base_model="base-b", method="lora", spec={})
    queries.set_model_stage(first.id, "production")
    with pytest.raises(BadInputError, match="already in production for base-a") as refused:
        queries.set_model_stage(second.id, "production")
    assert first.id in refused.value.message and "staging or archived" in refused.value.hint
    queries.set_model_stage(other_base.id, "production")  # another family
    queries.set_model_stage(first.id, "production")  # staying put is no second model
    queries.set_model_stage(first.id, "archived")
    queries.set_model_stage(second.id, "production")  # the deliberate pair of steps
    assert queries.get_model(second.id).stage == "production"


def test_a_family_set_by_hand_groups_across_base_models():
    a = queries.register_model(base_model="base-a", method="lora", spec={}, family="tickets")
    b = queries.register_model(base_model="base-b", method="lora", spec={})
    queries.set_model_stage(a.id, "production")
    queries.set_model_family(b.id, "tickets")
    with pytest.raises(BadInputError, match="already in production for tickets"):
        queries.set_model_stage(b.id, "production")
    # a model named by its base model's family meets models without a family there
    c = queries.register_model(base_model="base-c", method="lora", spec={})
    queries.set_model_stage(c.id, "production")
    with pytest.raises(BadInputError, match="already in production for base-c"):
        queries.set_model_family(a.id, "base-c")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 4), st.sampled_from(MODEL_STAGES + ("family-x", "family-y", "family-"))),
                max_size=30))
def test_no_sequence_of_changes_makes_two_production_models_in_a_family(steps):
    from sqlalchemy import delete

    from tunesmith.store.db import session_scope
    from tunesmith.store.schema import ModelVersion

    with session_scope() as s:
        s.execute(delete(ModelVersion))
    models = [queries.register_model(base_model=f"base-{i % 2}", method="lora", spec={}).id for i in range(5)]
    for index, change in steps:
        try:
            if change.startswith("family-"):
                queries.set_model_family(models[index], change.removeprefix("family-"))
            else:
                queries.set_model_stage(models[index], change)
        except BadInputError:
            pass
        production = Counter(queries.model_family(m) for m in queries.models_page(stage="production", limit=100)[0])
        assert all(n == 1 for n in production.values()), production


def test_paged_reads_count_everything_and_return_a_page():
    for i in range(7):
        queries.create_job("local", {}, f"/tmp/r{i}", "base", "lora", status="failed" if i % 2 else "queued")
    rows, total = queries.jobs_page(limit=3, offset=3)
    assert total == 7 and len(rows) == 3
    assert queries.jobs_page(status="failed")[1] == 3
    assert queries.job_status_counts() == {"failed": 3, "queued": 4}
    job = rows[0]
    for step in range(5):
        queries.add_metrics(job.id, step, 0.1 * step, train_loss=1.0 / (step + 1))
    values = queries.job_metric_values(job.id)
    assert [v[1] for v in values] == [0, 1, 2, 3, 4] and values[2][3] == pytest.approx(1 / 3)
    assert [v[1] for v in queries.job_metric_values(job.id, after_id=values[2][0])] == [3, 4]


def test_a_long_run_is_thinned_for_the_chart_but_keeps_evaluations_and_the_newest_row():
    job = queries.create_job("local", {}, "/tmp/r", "base", "lora")
    from tunesmith.store.db import session_scope

    with session_scope() as s:
        for step in range(1, 1001):
            queries.add_metrics(job.id, step, step / 100, train_loss=1.0, session=s)
            if step % 100 == 0:
                queries.add_metrics(job.id, step, step / 100, eval_loss=2.0, session=s)
        queries.add_metrics(job.id, 1001, 10.01, train_loss=0.5, session=s)
    everything = queries.job_metric_values(job.id)
    thinned = queries.job_metric_values(job.id, max_points=100)
    assert len(everything) == 1011 and 100 <= len(thinned) <= 120
    assert [r for r in everything if r[4] is not None] == [r for r in thinned if r[4] is not None]  # every evaluation
    assert thinned[-1] == everything[-1]  # the cursor for what comes next
    assert queries.job_metric_values(job.id, max_points=5000) == everything
