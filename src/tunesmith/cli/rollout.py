"""`tunesmith rollout …`: deployments, shadow and A/B rollouts, labels, and the gate's decisions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from ._options import row_dict

app = typer.Typer(help="Deployments: shadow and A/B rollouts behind `tunesmith serve`, with a promotion gate.",
                  no_args_is_help=True)

JSON_OPTION = typer.Option(False, "--json", help="print JSON")


def _print(data, json_out: bool, text: str) -> None:
    print(json.dumps(data, indent=2) if json_out else text)


@app.command("create")
def create_command(name: str, production: str = typer.Option(..., "--production", help="registry id, alias or base model"),
                   json_out: bool = JSON_OPTION) -> None:
    """Make a deployment: a name clients call as a model, serving PRODUCTION."""
    from ..rollout import create_deployment

    deployment = create_deployment(name, production)
    _print(row_dict(deployment), json_out, f"{name} serves {deployment.production}")


@app.command("start")
def start_command(
    name: str,
    candidate: str = typer.Option(..., "--candidate", help="registry id, alias or base model to try"),
    mode: str = typer.Option("shadow", "--mode", help="shadow (mirror every request) or ab (a share of subjects)"),
    percent: Optional[float] = typer.Option(None, "--percent", help="ab: share of subjects on the candidate (default 10); shadow: share of requests mirrored (default 100)"),
    metric: str = typer.Option("auto", "--metric", help="quality: auto, answer (labels and answers), score or thumbs"),
    guardrail: Optional[list[str]] = typer.Option(None, "--guardrail", help="NAME or NAME=TOLERANCE: latency_p95, error_rate, format, length (default: all four)"),
    delta: float = typer.Option(0.0, "--delta", help="tolerated quality loss δ: promote when the lower bound is above −δ"),
    alpha: float = typer.Option(0.05, "--alpha", help="error rate of the confidence sequences"),
    planned: int = typer.Option(1000, "--planned", help="labeled observations where the intervals are tightest"),
    auto: bool = typer.Option(False, "--auto", help="let the server promote or roll back by itself when the gate decides"),
    json_out: bool = JSON_OPTION,
) -> None:
    """Start trying CANDIDATE on a deployment (one rollout at a time)."""
    from ..rollout import RolloutSettings, parse_guardrails, start_rollout

    settings = RolloutSettings(metric=metric, guardrails=parse_guardrails(guardrail), delta=delta, alpha=alpha,
                               planned_n=planned, auto=auto)
    deployment = start_rollout(name, candidate, mode, percent, settings)
    _print(row_dict(deployment), json_out,
           f"{name}: {mode} rollout {deployment.rollout_id} of {deployment.candidate} against {deployment.production} "
           f"({deployment.percent:g}%{', automatic gate' if auto else ''})")


@app.command("status")
def status_command(name: str, json_out: bool = JSON_OPTION) -> None:
    """What the gate says now, in one sentence with the numbers."""
    from ..rollout import gate

    result = gate(name)
    _print(result.to_dict(), json_out, result.sentence)


@app.command("promote")
def promote_command(name: str, json_out: bool = JSON_OPTION) -> None:
    """Make the candidate the production model (the decision is recorded with the gate's evidence)."""
    _decide(name, "promote", json_out)


@app.command("rollback")
def rollback_command(name: str, json_out: bool = JSON_OPTION) -> None:
    """Drop the candidate (recorded with the gate's evidence; the candidate is archived in the registry)."""
    _decide(name, "rollback", json_out)


def _decide(name: str, decision: str, json_out: bool) -> None:
    from ..rollout import gate, promote, rollback

    result = gate(name)
    act = promote if decision == "promote" else rollback
    record = act(name, sentence=f"{decision} by hand; the gate said: {result.sentence}", evidence=result.evidence)
    _print(row_dict(record), json_out, f"{record.id}: {record.sentence}")


@app.command("stop")
def stop_command(name: str, json_out: bool = JSON_OPTION) -> None:
    """End the rollout without a decision: the name serves production only."""
    from ..rollout import stop_rollout

    deployment = stop_rollout(name)
    _print(row_dict(deployment), json_out, f"{name} serves {deployment.production}; the rollout stopped")


@app.command("list")
def list_command(json_out: bool = JSON_OPTION) -> None:
    """Deployments, with what each serves."""
    from ..store.deployments import list_deployments

    rows = list_deployments()
    if json_out:
        print(json.dumps([row_dict(d) for d in rows], indent=2))
        return
    from rich.console import Console

    from ._display import id_table

    table = [[d.name, d.production, d.status, d.mode or "", d.candidate or "", f"{d.percent:g}" if d.mode else "",
              d.rollout_id or ""] for d in rows]
    Console().print(id_table(["deployment", "production", "status", "mode", "candidate", "%", "rollout"], table))


@app.command("history")
def history_command(name: str, json_out: bool = JSON_OPTION) -> None:
    """Every change to a deployment and every decision, oldest first."""
    from ..store.deployments import deployment_events, get_deployment, list_decisions

    get_deployment(name)
    events, decisions = deployment_events(name), list_decisions(name)
    if json_out:
        print(json.dumps({"events": [row_dict(e) for e in events], "decisions": [row_dict(d) for d in decisions]},
                         indent=2))
        return
    for event in events:
        print(f"{event.time:%Y-%m-%d %H:%M:%S}  {event.kind:9} {event.message}")


@app.command("rate")
def rate_command(
    name: str,
    raters: str = typer.Option(..., "--raters", help="comma-separated rater names"),
    items: Optional[int] = typer.Option(None, "--items", help="pairs to rate at most (seeded sample; default all)"),
    mode: str = typer.Option("pairwise", "--mode", help="pairwise, scale or both"),
    overlap: float = typer.Option(0.2, "--overlap", help="share of pairs rated by two raters (agreement)"),
    json_out: bool = JSON_OPTION,
) -> None:
    """Send a shadow rollout's pairs to blind human rating: one private link per rater (`tunesmith ui` serves them)."""
    from ..rollout.rating import rate_shadow_pairs

    created = rate_shadow_pairs(name, raters.split(","), items=items, mode=mode, overlap=overlap)
    links = dict(created.links)
    _print({"task": created.task.id, "links": links, "warnings": created.warnings}, json_out,
           "\n".join([f"rating task {created.task.id}", *(f"{r}: {link}" for r, link in links.items()),
                      *(f"warning: {w}" for w in created.warnings)]))


@app.command("label")
def label_command(name: str, file: Path, json_out: bool = JSON_OPTION) -> None:
    """Import labels for requests to NAME: JSONL, one {"request_id", "label" | "answer" | "score" | "thumbs"} a line."""
    from ..rollout import import_labels

    count = import_labels(name, file)
    _print({"deployment": name, "imported": count}, json_out, f"imported {count} labels for {name}")
