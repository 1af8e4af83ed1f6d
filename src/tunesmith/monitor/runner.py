"""`monitor`: production traffic against the training data, quality on fresh labels, and a
dated answer to "is it time to re-tune?".

    result = monitor("support-bot", since="7d", window="1d")
    print(result.answer.paragraph); result.exit_code   # 0: no action, 1: re-tune advised

The steps, in order: find the subject (a registered model or a deployment name) and its
traffic in the period -> the reference (the training split, through lineage, or --reference)
-> input drift and coverage over the whole period and per window -> output drift against the
training outputs -> quality on fresh labels against the release evaluation -> the trend's
forecast, the cost of a re-tune from `plan`, the answer -> summary.json, report.html and
queue.jsonl (the coverage gaps' inputs, ready to label) in $TUNESMITH_HOME/monitor/<run-id>/.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

from ..lazy import numpy as np

from ..errors import BadInputError, TunesmithError
from ..evaluate.metrics import choose_scorer
from ..fileio import atomic_write_text
from ..paths import monitor_dir
from ..plan.planner import plan
from ..store import queries, schema
from . import advice, drift
from .coverage import Coverage, ReferenceIndex, coverage
from .outputs import OutputProfile
from .quality import TOLERANCE, quality
from .report import render_report
from .sources import (
    Traffic,
    feedback_labels,
    find_subject,
    load_current_file,
    load_labels,
    load_reference,
    load_traffic,
    parse_duration,
    subject_lineage,
)

MIN_WINDOW_REQUESTS = 20  # a window with fewer requests is shown but not tested
SUMMARY_FILE, REPORT_FILE, QUEUE_FILE = "summary.json", "report.html", "queue.jsonl"

Progress = Callable[[str], None]


@dataclass
class MonitorResult:
    id: str
    summary: dict
    answer: advice.Answer
    folder: Path

    @property
    def exit_code(self) -> int:
        """For schedulers: 0 when no action is needed, 1 when a re-tune is advised."""
        return 1 if self.answer.retune_advised else 0


def monitor(subject: str, since: str = "7d", window: str = "1d", reference: str | Path | None = None,
            current: str | Path | None = None, labels: str | Path | None = None, json_out: str | Path | None = None,
            html_out: str | Path | None = None, tolerance: float = TOLERANCE, now: datetime | None = None,
            estimate_cost: bool = True, seed: int = 0, progress: Progress | None = None) -> MonitorResult:
    """Monitor `subject` (a registered model or a deployment name) over the last `since`."""
    say = progress or (lambda _message: None)
    started = time.perf_counter()
    now = now or datetime.now(timezone.utc)
    period, step = parse_duration(since, "--since"), parse_duration(window, "--window")
    step = min(step, period)  # one window when the window is longer than the period
    start = now - period
    found = find_subject(subject)
    if current is not None:
        traffic = load_current_file(current, now)
        keep = [i for i, t in enumerate(traffic.times) if start <= t < now]
        traffic = Traffic(*([getattr(traffic, f)[i] for i in keep] for f in ("times", "inputs", "outputs", "model_ids")))
    else:
        traffic = load_traffic(found, start, now)
    if not traffic.inputs:
        where = f"in {current}" if current else "in the request log"
        raise BadInputError(f"no traffic for {subject!r} {where} between {start:%Y-%m-%d %H:%M} and {now:%Y-%m-%d %H:%M} UTC",
                            "check the name clients call (a model or deployment), or widen the period with --since")
    lineage = subject_lineage(found, traffic)
    ref = load_reference(reference, lineage, subject)
    # Fresh labels: the --labels file (bad labels fail before the work), else feedback on the logged requests.
    matched = load_labels(labels, traffic) if labels is not None else feedback_labels(traffic)
    say(f"{len(traffic.inputs)} requests against {len(ref.inputs)} training inputs from {ref.path}")

    # Input drift and coverage, over the whole period and per window.
    index = ReferenceIndex(ref.inputs)
    overall_drift = drift.two_sample_test(ref.inputs, traffic.inputs, seed=seed)
    overall_coverage = coverage(index, traffic.inputs, seed=seed)
    profile = OutputProfile(ref.outputs)
    windows = _windows(traffic, start, now, step)
    for w in windows:
        inputs = [traffic.inputs[i] for i in w["indices"]]
        outputs = [traffic.outputs[i] for i in w["indices"]]
        w["requests"] = len(inputs)
        if len(inputs) >= MIN_WINDOW_REQUESTS:
            w["drift"] = drift.two_sample_test(ref.inputs, inputs, seed=seed).to_dict()
            far = overall_coverage.far[w["indices"]]
            w["far_share"] = float(far.mean())
            w["uncovered"] = max(0.0, w["far_share"] - overall_coverage.summary()["expected_far_share"])
            w["outputs"] = _brief_outputs(profile.compare(outputs))
    say(f"input drift: AUC {overall_drift.auc:.3f}, p {overall_drift.p_value:.3g}; "
        f"{100 * overall_coverage.far_share:.1f}% far from the training data")

    # Quality on fresh labels, against the release evaluation.
    fresh = None
    if matched is not None:
        indices, correct = matched
        scorer = choose_scorer(ref.outputs)
        answered = [traffic.outputs[i] for i in indices]
        fresh = quality(scorer, answered, correct, _release(lineage, scorer.kind), tolerance).to_dict()
        _window_quality(windows, indices, scorer, answered, correct)

    tested = [w for w in windows if "drift" in w]
    latest = tested[-1] if tested else None
    uncovered = latest["uncovered"] if latest else overall_coverage.excess_far_share
    trend = advice.forecast([w["end"] for w in tested], [w["uncovered"] for w in tested], now)
    cost = _retune_cost(lineage, ref) if estimate_cost else None
    answer = advice.answer(subject=subject, input_drift=overall_drift.to_dict(), latest=latest and latest["drift"],
                           uncovered=uncovered, requests=len(traffic.inputs), quality=fresh, trend=trend, cost=cost,
                           now=now)

    run_id = queries.new_id("mon")
    folder = monitor_dir() / run_id
    queue_path = folder / QUEUE_FILE
    summary = {
        "id": run_id, "created_at": now.isoformat(timespec="seconds"), "subject": subject,
        "model_id": lineage.id if lineage else None, "base_model": lineage.base_model if lineage else None,
        "period": {"since": start.isoformat(timespec="seconds"), "until": now.isoformat(timespec="seconds"),
                   "window": window},
        "reference": {"path": ref.path, "inputs": len(ref.inputs)},
        "current": {"source": str(current) if current else "request log", "requests": len(traffic.inputs)},
        "input_drift": overall_drift.to_dict(), "coverage": overall_coverage.summary(),
        "output_drift": profile.compare(traffic.outputs),
        "windows": [{k: (v.isoformat(timespec="seconds") if isinstance(v, datetime) else v)
                     for k, v in w.items() if k != "indices"} for w in windows],
        "quality": fresh, "forecast": trend.to_dict() if trend else None, "cost": cost,
        "answer": answer.to_dict(), "exit_code": 1 if answer.retune_advised else 0,
        "queue_path": str(queue_path), "queue_size": sum(len(g.queue) for g in overall_coverage.gaps),
        "seconds": round(time.perf_counter() - started, 2),
    }
    summary_path = Path(json_out or folder / SUMMARY_FILE).resolve()
    report_path = Path(html_out or folder / REPORT_FILE).resolve()
    summary.update(summary_path=str(summary_path), report_path=str(report_path))
    _write_queue(queue_path, overall_coverage)
    atomic_write_text(summary_path, json.dumps(summary, indent=2, default=_jsonable) + "\n")
    if summary_path != (folder / SUMMARY_FILE).resolve():  # the run's folder always has its copy (the web page lists them)
        atomic_write_text(folder / SUMMARY_FILE, json.dumps(summary, indent=2, default=_jsonable) + "\n")
    atomic_write_text(report_path, render_report(summary))
    return MonitorResult(run_id, summary, answer, folder)


def _jsonable(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def _windows(traffic: Traffic, start: datetime, now: datetime, step: timedelta) -> list[dict]:
    """Consecutive windows of length `step` ending at `now` (the first may be shorter)."""
    times = np.array([(t - start).total_seconds() for t in traffic.times])
    total = (now - start).total_seconds()
    size = step.total_seconds()
    count = int(np.ceil(total / size - 1e-9))
    edges = [max(0.0, total - (count - k) * size) for k in range(count + 1)]
    windows = []
    for k in range(count):
        inside = np.flatnonzero((times >= edges[k]) & (times < edges[k + 1]))
        windows.append({"start": start + timedelta(seconds=edges[k]), "end": start + timedelta(seconds=edges[k + 1]),
                        "indices": inside})
    return windows


def _brief_outputs(result: dict) -> dict:
    keep = ("psi", "valid_share", "mean_words", "refusal_share")
    brief = {k: result.get(k) for k in keep}
    if "labels" in result:
        brief["chi2_p"] = result["labels"]["chi2_p"]
    return brief


def _window_quality(windows: list[dict], indices: list[int], scorer, answered: list[str], correct: list[str]) -> None:
    from .quality import per_example_scores

    values, _, _ = per_example_scores(scorer, answered, correct)
    where = np.asarray(indices)
    for w in windows:
        inside = np.isin(where, w["indices"])
        if inside.any():
            w["quality"] = {"n": int(inside.sum()), "value": float(values[inside].mean())}


def _release(model: schema.ModelVersion | None, kind: str) -> tuple[float, str] | None:
    """The headline metric of the model's latest evaluation of the same output kind."""
    if model is None:
        return None
    for run in queries.list_eval_runs(model_id=model.id):
        rows = (run.summary or {}).get("metrics") or []
        if run.metrics_kind == kind and rows:
            row = rows[0]
            value = row.get("model", row.get("value"))
            if value is not None:
                return float(value), run.id
    return None


def _retune_cost(model: schema.ModelVersion | None, ref) -> dict | None:
    """What a re-tune on the training data would cost on each path (`tunesmith plan`)."""
    if model is None:
        return None
    try:
        p = plan(model=model.base_model, data=ref.path if ref.prepared else None)
    except (TunesmithError, OSError, ValueError) as exc:
        return {"error": str(getattr(exc, "message", exc))}
    managed = p.managed[0] if p.managed else None
    return {
        "model": p.model, "examples": p.workload.get("examples"),
        # plan counts a prepared folder's train split; for anything else it assumes a workload
        "workload": "the training data" if ref.prepared else "an assumed workload (the reference is not a prepared folder)",
        "managed": {"target": managed.target, "usd": managed.usd} if managed else None,
        "self_hosted": [{"method": mp.method, "gpu": mp.cheapest.gpu, "usd": mp.cheapest.usd,
                         "time_s": mp.cheapest.time_s} for mp in p.methods if mp.cheapest],
        "recommendation": p.recommendation.reason,
    }


def _write_queue(path: Path, cov: Coverage) -> None:
    """The coverage gaps' inputs in the input-output format, to be labelled (fill in
    output_text) and given to `tunesmith data prepare`."""
    lines = [json.dumps({"input_text": q["text"], "output_text": "", "gap": g, "gap_terms": gap.terms,
                         "similarity": q["similarity"]}, ensure_ascii=False)
             for g, gap in enumerate(cov.gaps, 1) for q in gap.queue]
    atomic_write_text(path, "".join(line + "\n" for line in lines))
