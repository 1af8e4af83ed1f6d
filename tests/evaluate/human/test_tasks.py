"""Rating tasks in a real store: creation, refusals that leave no rows, ratings, results, export, CLI."""

from __future__ import annotations

import csv
import json
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from tests.evaluate.human._factory import eval_run_with_outputs
from tunesmith.cli import app
from tunesmith.errors import BadInputError
from tunesmith.evaluate.human import create_task, export_ratings, human_verdict, next_item, submit, task_results
from tunesmith.evaluate.human.errors import AlreadyRatedError, ClosedLinkError, RatingError, UnknownLinkError
from tunesmith.store import db, queries
from tunesmith.store.schema import RatingTask

RATING_TABLES = ("rating_tasks", "rating_items", "raters", "rating_assignments", "ratings")


def _row_counts() -> dict[str, int]:
    with db.get_engine().connect() as conn:
        return {t: conn.execute(sa.text(f"SELECT COUNT(*) FROM {t}")).scalar() for t in RATING_TABLES}


def _token(link: str) -> str:
    return link.rsplit("/", 1)[1]


def _rate_all(token: str, prefer_first_text: str = "one)", agree: bool = True) -> None:
    """Rate the whole queue: prefer the output containing `prefer_first_text` (else the other)."""
    state = next_item(token)
    while state["item"]:
        item = state["item"]
        left_is_it = (prefer_first_text in item["left"]) == agree
        state = submit(token, item["n"], choice="left" if left_is_it else "right",
                       left_score=4 if left_is_it else 2, right_score=2 if left_is_it else 4)


def test_a_task_from_an_eval_run_has_items_raters_and_private_links():
    run = eval_run_with_outputs(20)
    created = create_task(eval_run=run, raters=["ana", "ben"], overlap=0.25, link_base="http://host:9")
    task = created.task
    assert task.eval_run_id == run and task.status == "open" and task.mode == "both"
    assert task.models == {"keys": ["model", "baseline"], "labels": {"model": "zebra-tuned-7", "baseline": "okapi-base-3"}}
    assert [r for r, _ in created.links] == ["ana", "ben"]
    assert all(link.startswith("http://host:9/rate/") for _, link in created.links)
    assert len({_token(link) for _, link in created.links}) == 2
    assert _row_counts() == {"rating_tasks": 1, "rating_items": 20, "raters": 2, "rating_assignments": 25,
                             "ratings": 0}


@pytest.mark.parametrize("kwargs, message", [
    ({"raters": []}, "no raters"),
    ({"raters": ["ana", "ana"]}, "rater named twice"),
    ({"mode": "stars"}, "unknown mode"),
    ({"overlap": 1.5}, "share between 0 and 1"),
    ({"items": 0}, "at least 1"),
])
def test_bad_options_are_refused_before_anything_is_written(kwargs, message):
    run = eval_run_with_outputs(5)
    with pytest.raises(BadInputError, match=message):
        create_task(**{"eval_run": run, "raters": ["ana"], **kwargs})
    assert _row_counts() == dict.fromkeys(RATING_TABLES, 0)


def test_an_eval_run_without_outputs_or_without_a_baseline_is_refused_without_rows():
    empty = eval_run_with_outputs(0)
    with pytest.raises(BadInputError, match="has no outputs to rate"):
        create_task(eval_run=empty, raters=["ana"])
    single = eval_run_with_outputs(5, baseline=False)
    with pytest.raises(BadInputError, match="outputs of one model only"):
        create_task(eval_run=single, raters=["ana"])
    with pytest.raises(BadInputError, match="no eval run"):
        create_task(eval_run="ev-nope", raters=["ana"])
    assert _row_counts() == dict.fromkeys(RATING_TABLES, 0)


def test_a_bad_gold_file_names_its_line_and_writes_nothing(tmp_path):
    gold = tmp_path / "gold.jsonl"
    gold.write_text('{"input": "q", "better": "good", "worse": "bad"}\n{"input": "q2", "better": "good"}\n')
    with pytest.raises(BadInputError, match=r"gold.jsonl:2: missing or empty worse"):
        create_task(eval_run=eval_run_with_outputs(5), raters=["ana"], gold=gold)
    assert _row_counts() == dict.fromkeys(RATING_TABLES, 0)


def test_links_refuse_unknown_tokens_closed_and_expired_tasks():
    created = create_task(eval_run=eval_run_with_outputs(4), raters=["ana", "ben"])
    ana, ben = (_token(link) for _, link in created.links)
    with pytest.raises(UnknownLinkError):
        next_item("not-a-token")
    with db.session_scope() as s:
        s.get(RatingTask, created.task.id).expires_at = queries.utc_now() - timedelta(seconds=1)
    with pytest.raises(ClosedLinkError, match="expired"):
        next_item(ana)
    with db.session_scope() as s:
        s.get(RatingTask, created.task.id).expires_at = None
    assert next_item(ben)["item"] is not None
    queries.close_rating_task(created.task.id)
    with pytest.raises(ClosedLinkError, match="closed"):
        submit(ben, 1, choice="tie", left_score=3, right_score=3)
    assert _row_counts()["ratings"] == 0


def test_a_double_submission_or_an_incomplete_rating_leaves_one_row_or_none():
    created = create_task(eval_run=eval_run_with_outputs(3), raters=["ana"], mode="both")
    token = _token(created.links[0][1])
    with pytest.raises(RatingError, match="score from 1 to 5"):
        submit(token, 1, choice="left", left_score=4)
    with pytest.raises(RatingError, match="choose which answer"):
        submit(token, 1, choice="sideways", left_score=4, right_score=2)
    with pytest.raises(RatingError, match="no item 9"):
        submit(token, 9, choice="left", left_score=4, right_score=2)
    assert _row_counts()["ratings"] == 0
    state = submit(token, 1, choice="left", left_score=4, right_score=2, comment="  clear  ")
    assert state["done"] == 1 and state["item"]["n"] == 2
    with pytest.raises(AlreadyRatedError):
        submit(token, 1, choice="right", left_score=1, right_score=5)
    ratings = queries.task_ratings(created.task.id)
    assert len(ratings) == 1 and ratings[0].choice == "left" and ratings[0].comment == "clear"


def test_pairwise_and_scale_modes_ask_for_their_own_fields_only():
    pairwise = create_task(eval_run=eval_run_with_outputs(2), raters=["ana"], mode="pairwise")
    with pytest.raises(RatingError, match="not scores"):
        submit(_token(pairwise.links[0][1]), 1, choice="tie", left_score=3, right_score=3)
    scale = create_task(eval_run=eval_run_with_outputs(2), raters=["ana"], mode="scale")
    with pytest.raises(RatingError, match="not a choice"):
        submit(_token(scale.links[0][1]), 1, choice="tie", left_score=3, right_score=3)
    assert submit(_token(scale.links[0][1]), 1, left_score=3, right_score=3)["done"] == 1


def test_a_rating_keeps_the_order_it_was_shown_in_and_the_results_undo_it():
    run = eval_run_with_outputs(30)
    created = create_task(eval_run=run, raters=["ana", "ben"], overlap=0.5)
    for _, link in created.links:
        _rate_all(_token(link))  # both always prefer the tuned model's output ("… one)")
    ratings = queries.task_ratings(created.task.id)
    lefts = Counter(r.left_model for r in ratings)
    assert abs(lefts["model"] - lefts["baseline"]) <= 2  # the order was balanced
    results = task_results(created.task.id)
    w = results["pairwise"]["win_rates"][0]
    assert (w["model"], w["win_rate"], w["inputs"], w["ratings"]) == ("zebra-tuned-7", 1.0, 30, 45)
    assert results["agreement"]["pairwise"]["units"] == 15
    assert results["agreement"]["scale"]["alpha"] == pytest.approx(1.0)
    assert results["verdict_text"].startswith("Raters preferred zebra-tuned-7 on 100% of 30 inputs (95% CI 100%–100%)")
    assert results["power"]["status"] == "decided"
    assert human_verdict(run) == results["verdict_text"]
    assert not results["pairwise"]["position_bias"]["biased"]


def test_gold_items_check_raters_and_stay_out_of_the_model_statistics(tmp_path):
    gold = tmp_path / "gold.jsonl"
    gold.write_text("\n".join(json.dumps({"input": f"gold question {i}", "better": f"right answer {i} one)",
                                          "worse": f"wrong answer {i}", "scores": [5, 1]}) for i in range(3)) + "\n")
    created = create_task(eval_run=eval_run_with_outputs(6), raters=["ana", "ben"], overlap=0, gold=gold)
    ana, ben = (_token(link) for _, link in created.links)
    _rate_all(ana)  # picks "… one)": the right gold answers
    _rate_all(ben, agree=False)  # picks the other: wrong on gold, and prefers the baseline
    results = task_results(created.task.id)
    by_rater = {r["rater"]: r for r in results["raters"]}
    assert by_rater["ana"]["gold"]["choice_accuracy"] == 1.0 and by_rater["ben"]["gold"]["choice_accuracy"] == 0.0
    assert by_rater["ana"]["gold"]["items"] == 3
    assert by_rater["ana"]["gold"]["score_error"] == pytest.approx(1.0)  # gave 4 and 2 where gold says 5 and 1
    w = results["pairwise"]["win_rates"][0]
    assert w["ratings"] == 6  # gold left out
    assert results["task"]["settings"]["gold_items"] == 3


def test_a_task_with_one_rater_warns_that_agreement_cannot_be_measured():
    created = create_task(eval_run=eval_run_with_outputs(4), raters=["ana"], overlap=0.5)
    assert "agreement cannot be measured" in created.warnings[0]
    _rate_all(_token(created.links[0][1]))
    assert "agreement not measured yet" in task_results(created.task.id)["verdict_text"]


def test_human_verdict_is_none_until_someone_rates():
    run = eval_run_with_outputs(4)
    assert human_verdict(run) is None
    create_task(eval_run=run, raters=["ana"])
    assert human_verdict(run) is None


def test_export_writes_every_rating_unblinded_as_csv_and_jsonl(tmp_path):
    created = create_task(eval_run=eval_run_with_outputs(5), raters=["ana"])
    _rate_all(_token(created.links[0][1]))
    paths = export_ratings(created.task.id, tmp_path)
    rows = list(csv.DictReader(Path(paths["csv"]).read_text(encoding="utf-8").splitlines()))
    lines = [json.loads(line) for line in Path(paths["jsonl"]).read_text(encoding="utf-8").splitlines()]
    assert len(rows) == len(lines) == paths["ratings"] == 5
    assert {r["preferred_model"] for r in rows} == {"zebra-tuned-7"}
    assert {lines[0]["left_model"], lines[0]["right_model"]} == {"zebra-tuned-7", "okapi-base-3"}


def test_cli_create_show_list_export_close_and_models_show(tmp_path):
    model = queries.register_model(base_model="tiny", method="lora", spec={}, name="tiny-v1")
    run = eval_run_with_outputs(8)
    with db.session_scope() as s:
        s.get(queries.EvalRun, run).model_id = model.id
    runner = CliRunner()
    out = runner.invoke(app, ["rate", "create", run, "--raters", "ana,ben", "--json"])
    assert out.exit_code == 0, out.output
    created = json.loads(out.output)
    for link in created["links"]:
        _rate_all(_token(link["link"]))
    shown = runner.invoke(app, ["rate", "show", created["id"]])
    assert shown.exit_code == 0 and "Raters preferred zebra-tuned-7" in shown.output and "agreement" in shown.output
    assert json.loads(runner.invoke(app, ["rate", "show", created["id"], "--json"]).output)["progress"]["ratings"] == 10
    assert created["id"] in runner.invoke(app, ["rate", "list"]).output
    models_show = runner.invoke(app, ["models", "show", "tiny-v1"])
    assert "human: Raters preferred zebra-tuned-7" in models_show.output
    exported = json.loads(runner.invoke(app, ["rate", "export", created["id"], "--out", str(tmp_path), "--json"]).output)
    assert exported["ratings"] == 10
    assert runner.invoke(app, ["rate", "close", created["id"]]).exit_code == 0
    assert queries.get_rating_task(created["id"]).status == "closed"


def test_cli_bad_input_is_a_sentence_and_exit_code_2():
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "tunesmith", "rate", "create", "--models", "only-one",
                             "--raters", "ana"], capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert "error: --models needs two or more models" in result.stderr and "Traceback" not in result.stderr


def test_three_models_get_bradley_terry_and_power_advice_per_pair():
    from tunesmith.store.schema import RatingItem

    created = create_task(eval_run=eval_run_with_outputs(12), raters=["ana"], mode="pairwise")
    # A third model's outputs, as if generated: one more pair per input (model vs third, baseline vs third).
    with db.session_scope() as s:
        task = s.get(RatingTask, created.task.id)
        task.models = {"keys": ["model", "baseline", "third"],
                       "labels": {"model": "zebra-tuned-7", "baseline": "okapi-base-3", "third": "lynx-9"}}
        for item in queries.rating_items(task.id, session=s):
            for other in ("model", "baseline"):
                s.add(RatingItem(task_id=task.id, example_id=item.example_id, input_text=item.input_text,
                                 reference=item.reference, first_model=other, second_model="third",
                                 first_output=f"{other} output one)", second_output="third output", gold=None))
        s.flush()
        rater = queries.task_raters(task.id, session=s)[0]
        count = len(queries.rating_items(task.id, session=s))
        s.query(queries.RatingAssignment).filter_by(task_id=task.id).delete()
        for n, item in enumerate(queries.rating_items(task.id, session=s), 1):
            s.add(queries.RatingAssignment(task_id=task.id, rater_id=rater.id, item_id=item.id, sequence=n,
                                           first_on_left=n % 2 == 0))
    assert count == 36
    token = created.links[0][1].rsplit("/", 1)[1]
    state = next_item(token)
    while state["item"]:  # prefer "one)" (the tuned model over both, the baseline over the third), else tie
        left, right = state["item"]["left"], state["item"]["right"]
        choice = "tie" if ("one)" in left) == ("one)" in right) else ("left" if "one)" in left else "right")
        state = submit(token, state["item"]["n"], choice=choice)
    results = task_results(created.task.id)
    strengths = [row["model"] for row in results["pairwise"]["bradley_terry"]]
    assert strengths[0] == "zebra-tuned-7" and len(strengths) == 3
    assert results["verdict_text"].startswith("Raters ranked zebra-tuned-7 first of 3 models on 12 inputs")
    assert all("power" in w for w in results["pairwise"]["win_rates"])
