"""A store with a little of everything (a prepared dataset whose examples carry markup, jobs
with metrics and events, models, an evaluation with wins, losses and ties), the app on it,
and, for the `browser` tests, one headless Chromium per session."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from tunesmith.data.prepare import PrepareOptions, prepare
from tunesmith.examples.tickets import write_tickets
from tunesmith.store import queries

SCRIPT = "<script>window.__xss = 1</script>"
IMG = '<img src="x" onerror="window.__xss = 2">'
LOOPBACK = "http://127.0.0.1:7860"


@pytest.fixture(scope="session")
def prepared_with_markup(tmp_path_factory) -> Path:
    """Support tickets prepared as usual, three of them carrying markup in their text."""
    folder = tmp_path_factory.mktemp("web-data")
    raw = folder / "tickets.jsonl"
    write_tickets(raw, n=100, seed=0)
    with open(raw, "a", encoding="utf-8") as f:
        for i, text in enumerate([SCRIPT, IMG, f"</textarea>{SCRIPT}"]):
            f.write(json.dumps({"input_text": f"Classify the following customer support ticket: 'help {i} {text}'",
                                "output_text": f"Category: Technical\nPriority: Low\nAction: Reply {text}"}) + "\n")
    out = folder / "prepared"
    prepare([raw], out, PrepareOptions(dedupe=True, validation=0.2, test=0.1, seed=0))
    return out


@dataclass
class Filled:
    dataset: str
    done_job: str
    failed_job: str
    remote_job: str
    model: str
    other_model: str
    eval_run: str


def fill_store(prepared: Path, markup: bool = True) -> Filled:
    """`markup`: put script and image tags in the text the pages show (off for the docs' screenshots)."""
    script, img = (SCRIPT, IMG) if markup else ("", "")
    manifest = json.loads((prepared / "manifest.json").read_text())
    version = manifest["dataset_version"]
    queries.record_dataset_version(version, prepared, manifest)
    spec = {"data": str(prepared), "base_model": "tiny", "method": "lora", "learning_rate": 2e-4, "max_steps": 20,
            "lora": {"r": 8, "alpha": 16}, "note": script}
    done = queries.create_job("local", spec, "/tmp/run-done", "tiny", "lora", dataset_version=version)
    queries.transition_job(done.id, "running")
    queries.add_event(done.id, "data", "80 train and 20 validation examples, 4,000 trained tokens per epoch",
                      {"train": 80, "validation": 20, "trained_tokens_per_epoch": 4000})
    for step in range(1, 21):
        queries.add_metrics(done.id, step, step / 10, train_loss=3.0 - step * 0.1, learning_rate=2e-4,
                            token_accuracy=0.1 + step / 40, tokens_per_s=250.0, max_steps=20)
        if step % 5 == 0:
            queries.add_metrics(done.id, step, step / 10, eval_loss=[2.5, 2.2, 2.3, 2.4][step // 5 - 1],
                                eval_token_accuracy=0.3, train_loss=3.0 - step * 0.1)
    evidence = {"best_step": 10, "best_eval_loss": 2.2,
                "evaluations": [{"step": 10, "train_loss": 2.0, "eval_loss": 2.2},
                                {"step": 15, "train_loss": 1.5, "eval_loss": 2.3},
                                {"step": 20, "train_loss": 1.0, "eval_loss": 2.4}]}
    queries.add_event(done.id, "stopped_early", "validation loss has not improved for 2 evaluations (best 2.2000 at step 10) "
                      f"while training loss kept falling: the model is overfitting; keeping the checkpoint from step 10 {script}", evidence)
    queries.transition_job(done.id, "succeeded", stop_reason="stopped_early")
    model = queries.register_model(base_model="tiny", method="lora", spec=spec, job_id=done.id, name="tickets-v1",
                                   dataset_version=version, best_metrics={"step": 10, "eval_loss": 2.2},
                                   final_metrics={"step": 20, "eval_loss": 2.4}, stop_reason="stopped_early",
                                   lineage={"evidence": evidence})
    other = queries.register_model(base_model="tiny", method="lora", spec=spec, dataset_version=version)
    failed = queries.create_job("local", spec, "/tmp/run-failed", "tiny", "full", dataset_version=version)
    queries.transition_job(failed.id, "failed", stop_reason="nan_loss", error=f"the loss became nan {script}")
    remote = queries.create_job("vertex", {"base_model": "gemini-2.5-flash"}, "/tmp/run-remote", "gemini-2.5-flash",
                                "vertex-supervised")
    queries.transition_job(remote.id, "running", remote_name="projects/p/locations/l/tuningJobs/1",
                           remote_state="JOB_STATE_RUNNING/TUNING_JOB_STATE_WAITING_FOR_QUOTA")
    items = []
    for i, (m, b) in enumerate([(1, 0), (0, 1), (1, 1), (0, 0)] * 3):
        items.append({"example_id": f"ex-{i}", "input_text": f"ticket {i} {script if i == 1 else ''}",
                      "reference": "Technical" if i % 2 else "Billing",
                      "outputs": {"model": f"model answer {i} {img if i == 2 else ''}", "baseline": f"base answer {i}"},
                      "scores": {"model": {"correct": m}, "baseline": {"correct": b}}})
    summary = {"model": model.id, "baseline": "tiny", "metrics": [{
        "metric": "accuracy", "label": "accuracy", "model": 0.5, "model_interval": [0.25, 0.75], "baseline": 0.5,
        "baseline_interval": [0.25, 0.75], "difference": 0.0, "difference_interval": [-0.2, 0.2], "p_value": 1.0,
        "test": "mcnemar-exact", "examples_needed": None, "shown": "percent", "directional": True, "significant": False}],
        "scorer": "labels", "warnings": []}
    run = queries.record_eval_run(id=queries.new_id("ev"), model_ref=model.id, model_id=model.id, baseline_ref="base",
                                  data_path=str(prepared), metrics_kind="label", examples=len(items), items=items,
                                  dataset_version=version, split="test", verdict="no_difference",
                                  verdict_text="no difference on accuracy", summary=summary)
    return Filled(version, done.id, failed.id, remote.id, model.id, other.id, run.id)


@pytest.fixture
def filled(prepared_with_markup) -> Filled:
    return fill_store(prepared_with_markup)


@pytest.fixture
def client():
    from fastapi.testclient import TestClient

    from tunesmith.web.app import create_app

    with TestClient(create_app(), base_url=LOOPBACK, raise_server_exceptions=False) as c:
        yield c


# --- the browser ----------------------------------------------------------------------

CHROMIUM = Path("/usr/bin/chromium")
# Headless, and off the network: no background requests, updates, sync, metrics or component downloads.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update",
                 "--disable-default-apps", "--disable-sync", "--metrics-recording-only", "--no-first-run",
                 "--disable-features=Translate,OptimizationHints,MediaRouter", "--disable-domain-reliability"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (make test does it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def app_url():
    """The app in a background thread for the whole session. Every query reads TUNESMITH_HOME
    when it runs, so each test still sees its own store."""
    from tunesmith.web.server import ui_in_background

    with ui_in_background() as url:
        yield url


@pytest.fixture
def page(browser, app_url):
    """A fresh page that records console errors and uncaught exceptions in `page.problems`."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=app_url)
    tab = context.new_page()
    tab.problems = []
    tab.on("console", lambda m: tab.problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    tab.on("pageerror", lambda e: tab.problems.append(f"page error: {e}"))
    yield tab
    context.close()
