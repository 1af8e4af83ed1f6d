"""`evaluate` and `compare` end to end on a tiny registered adapter, the overlap guard,
storage, the report, and the CLI's exit codes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from tests.test_cli import run
from tunesmith.errors import BadInputError
from tunesmith.evaluate import compare, evaluate
from tunesmith.evaluate.report import render_report
from tunesmith.store import queries

FAST = {"limit": 6, "max_new_tokens": 6}


def test_evaluate_against_the_base_on_the_test_split(registered, tickets):
    result = evaluate("tiny-v1", **FAST)
    s = result.summary
    assert (s["model_id"], s["split"], s["examples"], s["kind"]) == (registered.id, "test", 6, "template")
    assert s["data"] == str(tickets) and s["dataset_version"] == registered.dataset_version
    assert s["verdict"] in ("better", "no_difference", "worse") and s["verdict_text"]
    assert [row["metric"] for row in s["metrics"]][:3] == ["field_accuracy", "exact_match", "valid_format"]
    assert s["metrics"][0]["test"] == "paired-bootstrap" and s["metrics"][1]["test"] == "mcnemar-exact"

    # every number can be recomputed from the results file
    lines = [json.loads(line) for line in Path(s["results_path"]).read_text().splitlines()]
    test_ids = [ex["id"] for ex in map(json.loads, (tickets / "test.jsonl").read_text().splitlines())][:6]
    assert [line["id"] for line in lines] == test_ids
    assert set(lines[0]) == {"id", "input", "reference", "outputs", "scores"}
    for role, key in (("model", "model"), ("baseline", "baseline")):
        mean = np.mean([line["scores"][role]["field_accuracy"] for line in lines])
        assert s["metrics"][0][key] == pytest.approx(mean)
    assert any(line["outputs"]["model"] != line["outputs"]["baseline"] for line in lines)  # the adapter is used

    stored = queries.list_eval_runs(registered.id)
    assert [r.id for r in stored] == [result.id] and stored[0].verdict == s["verdict"]
    assert len(queries.eval_items(result.id)) == 6 and queries.get_eval_run(result.id[:18]).examples == 6
    report = Path(s["report_path"]).read_text()
    assert report.index(s["verdict_text"].split(":")[0]) < report.index("<h2>Metrics")
    assert "Lineage" in report and registered.id in report and "<script" not in report
    assert json.loads(Path(s["summary_path"]).read_text())["id"] == result.id


def test_the_overlap_guard_names_the_training_examples(registered, tickets):
    with pytest.raises(BadInputError) as refused:
        evaluate("tiny-v1", split="train", limit=3, max_new_tokens=2)
    first_train = json.loads((tickets / "train.jsonl").read_text().splitlines()[0])["id"]
    assert "3 of 3 evaluation examples are in the training data" in refused.value.message
    assert first_train in refused.value.message and "--allow-overlap" in refused.value.hint
    allowed = evaluate("tiny-v1", split="validation", limit=2, max_new_tokens=2, allow_overlap=True)
    assert [o["split"] for o in allowed.summary["overlap"]] == ["validation", "validation"]


def test_bad_input(registered, tickets, tmp_path):
    with pytest.raises(BadInputError, match="unknown model"):
        evaluate("no-such-model", data=tickets, limit=2)
    with pytest.raises(BadInputError, match="no 'holdout' split"):
        evaluate("tiny-v1", split="holdout")
    with pytest.raises(BadInputError, match="no data"):
        evaluate(registered.base_model, baseline=None)
    with pytest.raises(BadInputError, match='"base"'):
        evaluate(registered.base_model, data=tickets)


def test_without_a_baseline_and_on_a_file(registered, tickets):
    result = evaluate(registered.base_model, baseline=None, data=tickets / "test.jsonl", limit=4, max_new_tokens=4)
    s = result.summary
    assert s["verdict"] is None and s["baseline"] is None and s["split"] == "test"
    assert {"value", "interval"} <= set(s["metrics"][0])
    assert queries.list_eval_runs()[0].model_id is None
    assert "No baseline" in Path(s["report_path"]).read_text()


def test_compare_ranks_models_on_the_same_examples(registered, tickets, tiny_base, tiny_adapter):
    from .conftest import register_tiny

    register_tiny(tickets, tiny_base, tiny_adapter, name="tiny-v2")  # a second candidate on the same base
    summary = compare(["tiny-v1", "tiny-v2", "base"], limit=4, max_new_tokens=4)
    ranking = summary["ranking"]
    assert [e["rank"] for e in ranking] == [1, 2, 3] and sorted(e["model"] for e in ranking) == ["base", "tiny-v1", "tiny-v2"]
    values = [e["metrics"][0]["value"] for e in ranking]
    assert values == sorted(values, reverse=True)
    assert "against_best" not in ranking[0] and {"difference", "p_value"} <= set(ranking[1]["against_best"])
    lines = [json.loads(line) for line in Path(summary["results_path"]).read_text().splitlines()]
    v1, v2 = [line["outputs"]["tiny-v1"] for line in lines], [line["outputs"]["tiny-v2"] for line in lines]
    assert v1 == v2  # the same adapter under two names: the same answers
    assert [line["outputs"]["base"] for line in lines] != v1  # and the base's own, with both switched off
    with pytest.raises(BadInputError):
        compare(["tiny-v1"])


def test_report_renders_label_kind_with_classes_and_curves():
    summary = {
        "id": "ev-1", "created_at": "now", "model": "tuned", "baseline": "base", "data": "d", "split": "test",
        "examples": 2, "scorer": "label-like outputs (2 classes)", "verdict": "better", "verdict_text": "Better: yes.",
        "metrics": [{"metric": "accuracy", "label": "accuracy", "model": 1.0, "model_interval": [0.3, 1.0],
                     "baseline": 0.5, "baseline_interval": [0.1, 0.9], "difference": 0.5,
                     "difference_interval": [0.0, 1.0], "p_value": 0.5, "test": "mcnemar-exact", "significant": False,
                     "shown": "percent"}],
        "per_class": {"model": {"classes": [{"class": "yes", "precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}],
                                "confusion": {"labels": ["yes", "other"], "matrix": [[1, 0]]}}},
        "wins": [{"id": "x1", "input": "q", "reference": "yes", "outputs": {"model": "yes", "baseline": "no"}}],
        "regressions": [], "bootstrap": {"resamples": 2000, "seed": 0}, "generation": [], "max_new_tokens": 8,
        "results_path": "r.jsonl", "warnings": [], "overlap": [],
    }
    page = render_report(summary)
    assert page.index("Better: yes.") < page.index("Metrics") < page.index("Per class") < page.index("Largest wins")
    assert "+50.0" in page and "confusion matrix" in page and "No regressions" in page and "<svg" in page


def test_the_cli_exit_codes_and_models_show(registered, tickets, tmp_path):
    home = Path(os.environ["TUNESMITH_HOME"])
    done = run("eval", "tiny-v1", "--limit", "3", "--max-new-tokens", "3", "--html", "r.html", "--json", "s.json",
               cwd=tmp_path, home=home)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "field accuracy" in done.stdout and (tmp_path / "r.html").is_file()
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["report_path"] == str(tmp_path / "r.html") and summary["examples"] == 3
    overlap = run("eval", "tiny-v1", "--split", "train", "--limit", "2", cwd=tmp_path, home=home)
    assert overlap.returncode == 2 and "--allow-overlap" in overlap.stderr and "Traceback" not in overlap.stderr
    assert run("eval", "no-such-model", "--data", str(tickets), cwd=tmp_path, home=home).returncode == 2
    shown = json.loads(run("models", "show", "tiny-v1", "--json", cwd=tmp_path, home=home).stdout)
    assert [e["id"] for e in shown["eval_runs"]] == [summary["id"]]
    assert summary["id"] in run("models", "show", "tiny-v1", cwd=tmp_path, home=home).stdout
    ranked = run("models", "compare", "tiny-v1", "base", "--limit", "2", cwd=tmp_path, home=home)
    assert ranked.returncode == 0, ranked.stderr
    assert "field accuracy" in ranked.stdout and "best" in ranked.stdout and "tiny-v1" in ranked.stdout


def test_a_model_is_held_to_its_output_space_and_the_first_evaluation_shows_both(registered, tickets):
    result = evaluate("tiny-v1", baseline=None, limit=4, max_new_tokens=60, resamples=1000)
    decoding = result.summary["decoding"]
    assert decoding["mode"] == "constrained" and set(decoding) >= {"constrained", "free", "space"}
    assert decoding["space"].startswith('"Key: value" lines: Category')
    for line in map(json.loads, Path(result.summary["results_path"]).read_text().splitlines()):
        # held to the template: the closed fields come out of their sets, whatever the random model says
        assert line["outputs"]["model"].startswith("Category: ")
    assert decoding["constrained"]["fields"]["Category"] >= 0.0 and decoding["free"]["valid_rate"] <= 1.0
    again = evaluate("tiny-v1", baseline=None, limit=4, max_new_tokens=60, resamples=1000).summary["decoding"]
    assert "free" not in again  # only the first time
    free = evaluate("tiny-v1", baseline=None, limit=4, max_new_tokens=60, resamples=1000, free=True).summary["decoding"]
    assert free["mode"] == "free" and "constrained" not in free
