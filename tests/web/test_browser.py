"""The app in headless Chromium: pages load without console errors, a real training job's
curves grow while it runs (no reload), cancel from the page stops it, the stage rule shows
its refusal, and nothing from the data runs as script."""

from __future__ import annotations

import time

import pytest

from tunesmith.store import queries
from tunesmith.train import jobs
from tunesmith.train.backends.local import pid_alive
from tunesmith.train.spec import load_spec

from ..train._data import wait_for
from .conftest import ARTIFACTS, SCRIPT
from .test_pages import pages

pytestmark = pytest.mark.browser


def test_every_page_loads_without_console_errors(page, filled):
    for path in pages(filled):
        response = page.goto(path)
        assert response.status == 200, path
        page.wait_for_load_state("networkidle")
    page.goto(f"/datasets/{filled.dataset}")
    page.get_by_role("link", name="validation").click()  # htmx swaps the examples in place
    page.wait_for_selector("#examples a.here:text('validation')")
    page.goto("/jobs")
    page.select_option("select[name=status]", "failed")
    page.wait_for_function("() => location.search.includes('status=failed')")
    assert page.locator("#jobs-table tbody tr").count() == 1
    page.goto(f"/evals/{filled.eval_run}")
    page.click("label.tab:has-text('wins')")  # the per-example browser swaps its list in place
    page.wait_for_function("() => document.querySelectorAll('#items article.item').length === 3")
    page.wait_for_load_state("networkidle")  # the list (and its search box) is swapped in place: type in the last one
    page.fill("#items-q", "answer 8")
    page.wait_for_function("() => document.querySelectorAll('#items article.item').length === 1")
    assert page.evaluate("document.activeElement.id") == "items-q"  # typing keeps its place
    assert page.problems == []


def test_a_job_page_draws_the_curves_and_marks_where_the_watch_stopped(page, filled):
    page.goto(f"/jobs/{filled.done_job}")
    page.wait_for_selector("#chart-loss canvas")
    assert page.locator("#chart-loss").get_attribute("data-points") == "20"
    assert "validation loss has not improved" in page.locator("#stop-note").inner_text()
    page.check("input[name=xaxis][value=tokens]")  # tokens seen = epoch x trained tokens per epoch
    page.wait_for_selector("#chart-loss .u-legend :text('tokens seen')")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "job-finished.png"), full_page=True)
    assert page.problems == []


def test_a_job_that_overfit_by_its_last_evaluation_shows_the_kept_checkpoint(page, filled):
    job = queries.create_job("local", {"base_model": "tiny"}, "/tmp/run-overfit", "tiny", "lora")
    queries.transition_job(job.id, "running")
    for step in range(1, 9):
        queries.add_metrics(job.id, step, step / 4, train_loss=3.0 - step * 0.2, max_steps=8)
    for step, loss in ((4, 2.2), (8, 2.3)):
        queries.add_metrics(job.id, step, step / 4, eval_loss=loss, train_loss=3.0 - step * 0.2)
    evidence = {"best_step": 4, "best_eval_loss": 2.2, "evaluations": [{"step": 4, "train_loss": 2.2, "eval_loss": 2.2},
                                                                        {"step": 8, "train_loss": 1.4, "eval_loss": 2.3}]}
    queries.add_event(job.id, "overfitting", "validation loss has not improved for 1 evaluations (best 2.2000 at step 4) "
                      "while training loss kept falling: the model is overfitting; keeping the checkpoint from step 4", evidence)
    queries.transition_job(job.id, "succeeded", stop_reason="completed")
    page.goto(f"/jobs/{job.id}")
    page.wait_for_selector("#chart-loss canvas")
    assert "keeping the checkpoint from step 4" in page.locator("#stop-note").inner_text()
    assert page.problems == []


def test_a_running_job_grows_its_curves_live_and_cancel_stops_it(page, prepared_with_markup, tiny_model_dir):
    spec = load_spec(data=prepared_with_markup, base_model=str(tiny_model_dir), batch_size=4, max_steps=2000,
                     eval_interval=10, precision="fp32")
    job = jobs.start_job(spec, detach=True)
    try:
        page.goto(f"/jobs/{job.id}")
        page.evaluate("window.__sameDocument = true")
        page.wait_for_function("() => Number(document.querySelector('#chart-loss').dataset.points) >= 2",
                               timeout=180_000)

        def shown_step() -> int:
            return int(page.locator("#chart-loss").get_attribute("data-last-step") or 0)

        def stored_step() -> int:
            rows = queries.job_metric_values(job.id)
            return rows[-1][1] if rows else 0

        # A new row in the store reaches the chart within two seconds, three times over.
        for _ in range(3):
            before = stored_step()
            assert wait_for(lambda: stored_step() > before, 60)
            written_at, target = time.monotonic(), stored_step()
            assert wait_for(lambda: shown_step() >= target, 5)
            assert time.monotonic() - written_at < 2.0
        assert page.evaluate("window.__sameDocument") is True  # no reload happened
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "job-live.png"), full_page=True)

        page.once("dialog", lambda dialog: dialog.accept())
        page.click("#cancel-button")
        page.wait_for_selector("#job-status :text('cancelled')", timeout=90_000)
        stopped = queries.get_job(job.id)
        assert (stopped.status, stopped.stop_reason) == ("cancelled", "cancelled")
        assert wait_for(lambda: not pid_alive(job.pid), 60)  # it checkpointed and exited
        page.click("#resume-button")  # continues from the checkpoint in the background; the page reloads
        page.wait_for_selector("#job-status :text('running')", timeout=60_000)
        assert queries.get_job(job.id).status == "running"
        assert page.problems == []
    finally:
        if pid_alive(queries.get_job(job.id).pid):
            jobs.cancel_job(job.id)


def test_a_second_production_model_is_refused_on_the_page(page, filled):
    queries.set_model_stage(filled.model, "production")
    page.goto(f"/models/{filled.other_model}")
    page.select_option("#stage-select", "production")
    page.click("#stage-button")
    page.wait_for_selector("#flash :text('already in production')")
    assert queries.get_model(filled.other_model).stage == "candidate"
    page.select_option("#stage-select", "staging")
    page.click("#stage-button")
    page.wait_for_selector("#stage-saved")
    assert queries.get_model(filled.other_model).stage == "staging"
    assert page.problems == [] or all("400" in p for p in page.problems)  # the refusal's own status line


def test_text_from_the_data_never_runs(page, filled):
    visited = [f"/datasets/{filled.dataset}/examples?split={s}&page={p}" for s in ("train", "test") for p in range(1, 10)]
    visited += [f"/jobs/{filled.done_job}", f"/jobs/{filled.failed_job}", f"/evals/{filled.eval_run}",
                f"/models/{filled.model}"]
    seen = ""
    for path in visited:
        page.goto(path)
        assert page.evaluate("typeof window.__xss") == "undefined", path
        seen += page.locator("main").inner_text()
    assert SCRIPT in seen  # shown as text
