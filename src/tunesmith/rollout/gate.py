"""The gate: from a rollout's logged requests and their feedback to promote, roll back or keep.

Quality, candidate − production, higher is better:
  - answers and labels (feedback's correct answer), scored as evaluation scores them
    (evaluate/metrics.py): a label's correctness, a template's field accuracy, free text's ROUGE-L;
  - feedback scores; thumbs up (1) or down (0). A shadow caller only ever saw production's answer,
    so scores and thumbs say nothing about the candidate there: shadow quality is answers only.
Shadow pairs give a paired difference; A/B arms a two-sample one (sequential.py).

Guardrails, candidate against production, each with a tolerance (deployments.GUARDRAILS):
  - error_rate: share of failed requests, absolute difference;
  - latency_p95: share of the candidate's requests slower than (1 + tolerance) × production's p95;
    more than 5% means its p95 is past the tolerance;
  - format: invalid-format rate against the dominant template of production's answers;
  - length: mean output tokens, relative to production's.
A guardrail is harmed when its estimate is past its tolerance, and past for sure when its whole
confidence sequence is.

Decision: roll back when a guardrail is past for sure or quality is surely worse than the
tolerated loss δ (upper bound < −δ); promote when the lower bound is above −δ and no guardrail is
harmed; else keep collecting, with the number of further requests likely needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..lazy import numpy as np

from ..data.checks.format_drift import dominant_signature, template_from_signature
from ..errors import BadInputError
from ..evaluate.human.results import task_results
from ..evaluate.metrics import choose_scorer, score
from ..store import deployments, queries, schema
from . import deployments as deployments_module
from .sequential import (
    MIN_N,
    Interval,
    mean_cs,
    observations_needed,
    sample_ratio_pvalue,
    two_sample_cs,
)

_HEADLINE = {"label": "correct", "template": "field_accuracy", "free-text": "rougeL"}
_METRIC_WORDS = {"answer": "answer agreement", "label": "accuracy", "template": "field accuracy", "free-text": "ROUGE-L", "score": "mean score",
                 "thumbs": "thumbs-up rate"}
P95_SHARE = 0.05  # by definition, 5% of requests are slower than the p95
SRM_ALERT_P = 0.001  # GrowthBook's default threshold for a sample-ratio mismatch


@dataclass
class Guardrail:
    name: str
    tolerance: float
    interval: Interval | None  # None: not enough requests yet, or nothing to measure
    limit: float  # where harm begins, on the interval's scale
    note: str = ""

    @property
    def harmed(self) -> bool:
        return self.interval is not None and self.interval.n >= MIN_N and self.interval.estimate > self.limit

    @property
    def past(self) -> bool:
        return self.interval is not None and self.interval.n >= MIN_N and self.interval.low > self.limit

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "tolerance": self.tolerance, "limit": self.limit, "harmed": self.harmed,
                "past": self.past, "note": self.note, "interval": self.interval.to_dict() if self.interval else None}


@dataclass
class GateResult:
    deployment: str
    decision: str  # promote, rollback, keep; idle when no rollout runs
    sentence: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"deployment": self.deployment, "decision": self.decision, "sentence": self.sentence,
                "evidence": self.evidence}


def gate(name: str) -> GateResult:
    """What the gate says about the rollout running on `name`, in one sentence with its numbers."""
    deployment = deployments.get_deployment(name)
    if deployment.status != "running":
        return GateResult(name, "idle", f"{name} serves {deployment.production}; no rollout is running.")
    # Answers logged without text (a server run with --no-log) cannot be scored: they count for
    # the guardrails but not for quality.
    rows = deployments.rollout_requests(deployment.rollout_id)
    caller = [r for r in rows if r.route in ("production", "candidate")]
    feedback = deployments.feedback_for([r.request_id for r in caller if r.request_id])
    production = [r for r in rows if r.route == "production"]
    candidate = [r for r in rows if r.route in ("candidate", "shadow")]
    settings = deployment.settings
    quality, metric, unit, labeled = _quality(deployment, production, candidate, feedback)
    guardrails = _guardrails(settings.get("guardrails") or {}, production, candidate, settings)
    evidence: dict[str, Any] = {
        "mode": deployment.mode, "rollout_id": deployment.rollout_id, "metric": metric, "unit": unit,
        "delta": settings.get("delta", 0.0), "alpha": settings.get("alpha"),
        "requests": {"production": len(production), "candidate": len(candidate)}, "labeled": labeled,
        "quality": quality.to_dict() if quality else None, "guardrails": [g.to_dict() for g in guardrails],
    }
    if deployment.mode == "ab":
        evidence["sample_ratio"] = _sample_ratio(deployment, production, candidate)
    decision, sentence = _decide(deployment, quality, metric, unit, guardrails, evidence, len(caller))
    human = _human_verdict(deployment.rollout_id)
    if human is not None:  # reported beside the gate, not part of it: a bootstrap interval is no confidence sequence
        evidence["human"] = human
        sentence = f"{sentence} People: {human['verdict_text']}"
    return GateResult(name, decision, sentence, evidence)


def apply_gate(name: str) -> GateResult:
    """Act on the gate (the server's --auto): promote or roll back with the evidence, else nothing."""
    result = gate(name)
    if result.decision == "promote":
        deployments_module.promote(name, sentence=result.sentence, evidence=result.evidence, automatic=True)
    elif result.decision == "rollback":
        deployments_module.rollback(name, sentence=result.sentence, evidence=result.evidence, automatic=True)
    return result


def _human_verdict(rollout_id: str) -> dict[str, Any] | None:
    """The newest rating task of this rollout's shadow pairs with ratings (`tunesmith rollout rate`)."""
    for task in queries.list_rating_tasks(limit=1000):
        source = (task.settings or {}).get("source")
        if isinstance(source, dict) and source.get("rollout") == rollout_id and queries.task_ratings(task.id):
            results = task_results(task.id, resamples=1000)
            return {"task": task.id, "verdict_text": results["verdict_text"], "pairwise": results["pairwise"]}
    return None


# --- Quality --------------------------------------------------------------------------


def _quality(deployment: schema.Deployment, production: list[schema.ServedRequest],
             candidate: list[schema.ServedRequest], feedback: dict[str, dict[str, Any]],
             ) -> tuple[Interval | None, str, str, int]:
    """The quality difference, the metric's name, the unit counted (pairs, requests), and how many were labeled."""
    settings = deployment.settings
    metric = settings.get("metric", "auto")
    has = {key: any(key in f for f in feedback.values()) for key in ("answer", "score", "thumbs")}
    if metric == "auto":
        metric = next((m for m in ("answer", "score", "thumbs") if has[m] and (m == "answer" or deployment.mode == "ab")),
                      "answer")
    alpha, planned_n = settings.get("alpha", 0.05), settings.get("planned_n", 1000)
    if deployment.mode == "shadow":
        if metric != "answer":
            return None, _METRIC_WORDS[metric], "pairs", 0  # the caller never saw the candidate's answer
        shadows = {r.pair_id: r for r in candidate if r.pair_id}
        pairs = [(p, shadows[p.request_id], feedback[p.request_id]["answer"]) for p in production
                 if p.request_id in shadows and "answer" in feedback.get(p.request_id, {})
                 and _scorable(p) and _scorable(shadows[p.request_id])]
        if not pairs:
            return None, _METRIC_WORDS["answer"], "pairs", 0
        scorer = choose_scorer([a for _, _, a in pairs])
        diffs = [_answer_value(scorer, s, a) - _answer_value(scorer, p, a) for p, s, a in pairs]
        return mean_cs(diffs, alpha, planned_n), _metric_name(scorer.kind), "pairs", len(pairs)
    values: dict[str, list[float]] = {"production": [], "candidate": []}
    labeled = [(r, feedback[r.request_id]) for r in production + candidate if r.request_id in feedback]
    labeled = [(r, f) for r, f in labeled if metric in f and (metric != "answer" or _scorable(r))]
    if not labeled:
        return None, _METRIC_WORDS[metric], "requests", 0
    scorer = choose_scorer([f["answer"] for _, f in labeled]) if metric == "answer" else None
    for request, given in labeled:
        if metric == "answer":
            value = _answer_value(scorer, request, given["answer"])
        else:
            value = float(given[metric])
        values[request.route].append(value)
    name = _metric_name(scorer.kind) if scorer else _METRIC_WORDS[metric]
    interval = two_sample_cs(values["production"], values["candidate"], alpha, planned_n)
    return interval, name, "requests", len(labeled)


def _scorable(request: schema.ServedRequest) -> bool:
    return request.status_code != 200 or request.output_text is not None


def _answer_value(scorer, request: schema.ServedRequest, answer: str) -> float:
    if request.status_code != 200 or request.output_text is None:
        return 0.0  # no answer is a wrong answer
    return float(score(scorer, request.output_text, answer)[_HEADLINE[scorer.kind]])


def _metric_name(kind: str) -> str:
    return _METRIC_WORDS[kind]


# --- Guardrails -----------------------------------------------------------------------


def _guardrails(tolerances: dict[str, float], production: list[schema.ServedRequest],
                candidate: list[schema.ServedRequest], settings: dict[str, Any]) -> list[Guardrail]:
    alpha, planned_n = settings.get("alpha", 0.05), settings.get("planned_n", 1000)
    answered = [[r for r in rows if r.status_code == 200] for rows in (production, candidate)]
    out = []
    for name, tolerance in tolerances.items():
        if name == "error_rate":
            failed = [[float(r.status_code not in (200, 499)) for r in rows] for rows in (production, candidate)]
            out.append(Guardrail(name, tolerance, two_sample_cs(*failed, alpha, planned_n), tolerance))
        elif name == "latency_p95":
            out.append(_latency_guardrail(tolerance, *answered, alpha, planned_n))
        elif name == "format":
            out.append(_format_guardrail(tolerance, *answered, alpha, planned_n))
        elif name == "length":
            lengths = [[float(r.completion_tokens or 0) for r in rows] for rows in answered]
            mean = np.mean(lengths[0]) if lengths[0] else 0.0
            if mean > 0 and len(lengths[1]) >= 2:
                relative = [[x / mean for x in rows] for rows in lengths]
                out.append(Guardrail(name, tolerance, two_sample_cs(*relative, alpha, planned_n), tolerance,
                                     "relative to production's mean output tokens"))
            else:
                out.append(Guardrail(name, tolerance, None, tolerance, "not enough answers yet"))
    return out


def _latency_guardrail(tolerance: float, production: list[schema.ServedRequest], candidate: list[schema.ServedRequest],
                       alpha: float, planned_n: int) -> Guardrail:
    latencies = [r.latency_s for r in production if r.latency_s is not None]
    if len(latencies) < MIN_N or len(candidate) < 2:
        return Guardrail("latency_p95", tolerance, None, P95_SHARE, "not enough answers yet")
    p95 = float(np.quantile(latencies, 0.95))
    threshold = (1 + tolerance) * p95
    slower = [float((r.latency_s or 0.0) > threshold) for r in candidate]
    candidate_p95 = float(np.quantile([r.latency_s or 0.0 for r in candidate], 0.95))
    return Guardrail("latency_p95", tolerance, mean_cs(slower, alpha, planned_n), P95_SHARE,
                     f"production p95 {p95:.3f} s, candidate p95 {candidate_p95:.3f} s; share of the candidate's "
                     f"requests over {threshold:.3f} s")


def _format_guardrail(tolerance: float, production: list[schema.ServedRequest], candidate: list[schema.ServedRequest],
                      alpha: float, planned_n: int) -> Guardrail:
    dominant = dominant_signature([r.output_text or "" for r in production])
    if dominant is None:
        return Guardrail("format", tolerance, None, tolerance, "production's answers share no template")
    template = template_from_signature(dominant[0])
    invalid = [[float(not template.matches(r.output_text or "")) for r in rows] for rows in (production, candidate)]
    return Guardrail("format", tolerance, two_sample_cs(*invalid, alpha, planned_n), tolerance,
                     f"template: {template.describe()}")


def _sample_ratio(deployment: schema.Deployment, production: list[schema.ServedRequest],
                  candidate: list[schema.ServedRequest]) -> dict[str, Any]:
    """χ² of the subjects seen on each side against the configured split."""
    subjects = [len({r.subject for r in rows}) for rows in (production, candidate)]
    share = deployment.percent / 100
    p = sample_ratio_pvalue(subjects, [1 - share, share])
    return {"subjects": {"production": subjects[0], "candidate": subjects[1]}, "expected_share": share,
            "p_value": p, "mismatch": p is not None and p < SRM_ALERT_P}


# --- The decision and its sentence ----------------------------------------------------


def _decide(deployment: schema.Deployment, quality: Interval | None, metric: str, unit: str,
            guardrails: list[Guardrail], evidence: dict[str, Any], requests: int) -> tuple[str, str]:
    delta = deployment.settings.get("delta", 0.0)
    level = 1 - deployment.settings.get("alpha", 0.05)
    names = f"{model_label(deployment.candidate)} − {model_label(deployment.production)}"
    guard_text = _guardrail_text(guardrails)
    srm = evidence.get("sample_ratio") or {}
    srm_text = (f" Warning: sample-ratio mismatch (χ² p = {srm['p_value']:.2g}): the split is off."
                if srm.get("mismatch") else "")
    past = [g for g in guardrails if g.past]
    if past:
        first = past[0]
        return "rollback", (f"Roll back: the {first.name} guardrail is past its tolerance for sure "
                            f"(estimate {first.interval.estimate:.3f}, interval {first.interval.low:.3f} to "
                            f"{first.interval.high:.3f}, limit {first.limit:g}; {first.note or 'candidate − production'})."
                            + srm_text)
    if quality is None or not np.isfinite(quality.low):
        n = quality.n if quality else 0
        return "keep", (f"Keep collecting: {n} labeled {unit} so far, too few to measure the {metric} difference "
                        f"(feedback with answers or labels on requests to {deployment.name} is what the gate needs); "
                        f"{guard_text}.{srm_text}")
    numbers = (f"{names} {metric} is {quality.estimate:+.3f} ({level:.0%} confidence sequence "
               f"{quality.low:+.3f} to {quality.high:+.3f}, {quality.n} labeled {unit})")
    too_few = quality.n < MIN_N
    if not too_few and quality.high < -delta:
        return "rollback", f"Roll back: {numbers}, surely worse than the tolerated loss {delta:g}; {guard_text}.{srm_text}"
    harmed = [g.name for g in guardrails if g.harmed]
    if not too_few and quality.low > -delta and not harmed:
        return "promote", f"Promote: {numbers}, above −{delta:g}; {guard_text}.{srm_text}"
    if not too_few and quality.low > -delta:
        wait = f"quality is clear but {', '.join(harmed)} {'looks' if len(harmed) == 1 else 'look'} worse than tolerated"
        return "keep", f"Keep collecting: {numbers}; {wait}; {guard_text}.{srm_text}"
    more = _more_needed(quality, delta, deployment.settings, evidence, requests)
    return "keep", f"Keep collecting: {numbers}; {more}; {guard_text}.{srm_text}"


def model_label(ref: str) -> str:
    """A model as people name it: its registry alias when it has one."""
    try:
        return queries.get_model(ref).name or ref
    except BadInputError:
        return ref


def _more_needed(quality: Interval, delta: float, settings: dict[str, Any], evidence: dict[str, Any],
                 requests: int) -> str:
    alpha, planned_n = settings.get("alpha", 0.05), settings.get("planned_n", 1000)
    promote_margin = quality.estimate + delta
    if promote_margin > 0:
        goal, needed = f"a promotion needs the lower bound above −{delta:g}", observations_needed(
            promote_margin, quality.sd, alpha, planned_n)
    else:
        goal, needed = (f"a rollback needs the upper bound below −{delta:g}",
                        observations_needed(-delta - quality.estimate, quality.sd, alpha, planned_n))
    if needed is None:
        evidence["more_needed"] = None
        return f"{goal}; the estimate sits at the tolerance, so no sample size is likely to decide"
    more = max(needed - quality.n, 1)
    labeled_per_request = quality.n / requests if requests else 0
    evidence["more_needed"] = {"labeled": more, "requests": round(more / labeled_per_request) if labeled_per_request else None}
    if labeled_per_request:
        return (f"{goal}, likely after about {more:,} more labeled ({round(more / labeled_per_request):,} requests "
                f"at the current {labeled_per_request:.0%} label rate)")
    return f"{goal}, likely after about {more:,} more labeled"


def _guardrail_text(guardrails: list[Guardrail]) -> str:
    if not guardrails:
        return "no guardrails"
    harmed = [g for g in guardrails if g.harmed]
    measured = [g for g in guardrails if g.interval is not None and g.interval.n >= MIN_N]
    if harmed:
        return "guardrails watching " + ", ".join(f"{g.name} ({g.interval.estimate:.3f} > {g.limit:g})" for g in harmed)
    if not measured:
        return "guardrails not measured yet"
    return f"guardrails within tolerance ({', '.join(g.name for g in measured)})"
