"""`tunesmith rate …`: blind human rating of model outputs by domain experts."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from ..errors import BadInputError

app = typer.Typer(help="Human rating: blind rating tasks, private links, agreement, the human verdict.",
                  no_args_is_help=True)


@app.command("create")
def create_command(
    sources: list[str] = typer.Argument(..., help="an evaluation run whose outputs to rate; with --models, "
                                                  "two or more models whose outputs to generate", show_default=False),
    models: bool = typer.Option(False, "--models", help="the arguments are models (rate create --models A B --data DIR)"),
    data: Path | None = typer.Option(None, help="with --models: a prepared folder or a file"),
    split: str | None = typer.Option(None, help="with --models: the split (default: test)"),
    raters: str = typer.Option(..., help="the raters' names, comma-separated: ana,ben"),
    mode: str = typer.Option("both", help="pairwise (which is better), scale (1-5 each) or both"),
    items: int | None = typer.Option(None, min=1, help="rate N inputs drawn at random (default: all)"),
    overlap: float = typer.Option(0.2, help="share of items rated by several raters, for agreement"),
    overlap_raters: int = typer.Option(2, min=2, help="raters on each overlapping item"),
    gold: Path | None = typer.Option(None, help='JSONL of gold items {"input", "better", "worse"} given to every rater'),
    instructions: str | None = typer.Option(None, help="shown to raters above every item"),
    expires_days: float | None = typer.Option(None, help="links stop working after this many days"),
    seed: int = typer.Option(0, help="seed of the sampling, assignment and left/right order"),
    url: str | None = typer.Option(None, help="the web app's address in the links (default $TUNESMITH_UI_URL "
                                              "or http://127.0.0.1:7860)"),
    base_url: str | None = typer.Option(None, help="with --models: the endpoint of openai:MODEL or gemini:MODEL"),
    api_key: str | None = typer.Option(None, help="with --models: the endpoint's key"),
    max_new_tokens: int | None = typer.Option(None, min=1, help="with --models: default 1.5 x the longest reference, plus 16"),
    json_out: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Create a rating task and print one private link per rater."""
    from ..evaluate.human import create_task

    eval_run, model_refs = _sources(sources, models)
    created = create_task(eval_run=eval_run, models=model_refs, data=data, split=split, raters=raters.split(","),
                          mode=mode, items=items, overlap=overlap, overlap_raters=overlap_raters, gold=gold,
                          instructions=instructions, expires_days=expires_days, seed=seed, link_base=url,
                          progress=lambda message: print(message, file=sys.stderr), base_url=base_url,
                          api_key=api_key, max_new_tokens=max_new_tokens)
    task = created.task
    if json_out:
        print(json.dumps({"id": task.id, "mode": task.mode, "settings": task.settings, "warnings": created.warnings,
                          "links": [{"rater": r, "link": link} for r, link in created.links]}, indent=2))
        return
    for warning in created.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    s = task.settings
    print(f"rating task {task.id}: {s['items']} items from {s['inputs']} inputs ({task.mode})"
          + (f" + {s['gold_items']} gold" if s["gold_items"] else "") + f", overlap {s['overlap']:.0%}")
    print("private links (send each rater only their own; served by `tunesmith ui`):")
    for rater, link in created.links:
        print(f"  {rater:16} {link}")


def _sources(sources: list[str], models: bool) -> tuple[str | None, list[str] | None]:
    """(eval run, None) or (None, models): `--models` is a flag that makes the arguments models."""
    if models:
        if len(sources) < 2:
            raise BadInputError("--models needs two or more models", "e.g. rate create --models tuned-v1 base --data DIR")
        return None, sources
    if len(sources) != 1:
        raise BadInputError("name one evaluation run, or use --models to rate several models' outputs",
                            "tunesmith rate create EVAL_RUN --raters … or tunesmith rate create --models A B --data DIR …")
    return sources[0], None


@app.command("list")
def list_command(eval_run: str | None = typer.Option(None, help="only the tasks of this evaluation run"),
                 json_out: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """Rating tasks, newest first, with their progress."""
    from ..store import queries

    rows = []
    for task in queries.list_rating_tasks(eval_run_id=queries.get_eval_run(eval_run).id if eval_run else None):
        rows.append({"id": task.id, "created_at": task.created_at.isoformat(), "status": task.status,
                     "mode": task.mode, "eval_run_id": task.eval_run_id,
                     "models": [task.models["labels"][k] for k in task.models["keys"]],
                     "raters": len(queries.task_raters(task.id)),
                     "ratings": len(queries.task_ratings(task.id)),
                     "assignments": len(queries.rating_assignments(task.id))})
    if json_out:
        print(json.dumps(rows, indent=2))
        return
    if not rows:
        print("no rating tasks (tunesmith rate create EVAL_RUN --raters NAME,...)")
    for r in rows:
        print(f"{r['id']}  {r['created_at'][:19]}  {r['status']:6}  {r['mode']:8}  {' vs '.join(r['models'])}  "
              f"{r['ratings']}/{r['assignments']} rated by {r['raters']} raters")


@app.command("show")
def show_command(task_id: str, links: bool = typer.Option(False, help="print the raters' private links too"),
                 url: str | None = typer.Option(None, help="the web app's address in the links"),
                 json_out: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """Results: win rates, scores, agreement, position bias, gold checks, power advice, the verdict."""
    from ..evaluate.human import rating_link, task_results
    from ..store import queries

    results = task_results(task_id)
    if links:
        results["links"] = [{"rater": r.name, "link": rating_link(r.token, url)}
                            for r in queries.task_raters(results["task"]["id"])]
    if json_out:
        print(json.dumps(results, indent=2, ensure_ascii=False))
        return
    print_results(results)


def print_results(results: dict) -> None:
    t, progress = results["task"], results["progress"]
    print(f"{t['id']}  {t['status']}  {t['mode']}  {' vs '.join(t['models'])}"
          + (f"  (eval run {t['eval_run_id']})" if t["eval_run_id"] else ""))
    print(f"progress  {progress['ratings']}/{progress['assignments']} ratings: "
          + ", ".join(f"{p['rater']} {p['done']}/{p['total']}" for p in progress["per_rater"]))
    if results["verdict_text"]:
        print(f"\n{results['verdict_text']}")
    if results["power"]:
        print(f"power     {results['power']['text']}")
    pairwise, scale = results["pairwise"], results["scale"]
    if pairwise:
        print("\npairwise (ties and 'both bad' count half; 95% CI by bootstrap over inputs)")
        for w in pairwise["win_rates"]:
            low, high = w["interval"]
            print(f"  {w['model']} vs {w['other']}: {w['win_rate']:.1%} ({low:.1%}–{high:.1%}) over "
                  f"{w['ratings']} ratings of {w['inputs']} inputs: {w['wins']} won, {w['losses']} lost, {w['ties']} tied")
            if len(t["models"]) > 2:
                print(f"    power: {w['power']['text']}")
        for b in pairwise["bradley_terry"] or []:
            print(f"  Bradley–Terry {b['model']}: {b['strength']:+.2f} ({b['interval'][0]:+.2f} to "
                  f"{b['interval'][1]:+.2f}), Elo-like {b['elo']:.0f}")
        bias = pairwise["position_bias"]
        if bias:
            side = "left" if bias["left_share"] > 0.5 else "right"
            verdict = f"raters favour the {side} side" if bias["biased"] else "no sign of a side preference"
            print(f"  left chosen in {bias['left_share']:.0%} of {bias['strict_preferences']} strict preferences "
                  f"(p = {bias['p_value']:.3f}): {verdict}")
    if scale:
        print("\nscale (1–5; 95% CI by bootstrap over inputs)")
        for row in scale["means"]:
            print(f"  {row['model']}: mean {row['mean']:.2f} ({row['interval'][0]:.2f}–{row['interval'][1]:.2f}) "
                  f"over {row['ratings']} ratings")
        for d in scale["differences"]:
            print(f"  {d['model']} − {d['other']}: {d['difference']:+.2f} ({d['interval'][0]:+.2f} to "
                  f"{d['interval'][1]:+.2f}) on {d['inputs']} inputs")
    for name, a in results["agreement"].items():
        alpha = f"α = {a['alpha']:.2f} ({a['reading']})" if a["alpha"] is not None else "α not measured"
        fleiss = a["fleiss"] and a["fleiss"]["kappa"]
        print(f"\nagreement, {name} ({a['level']}, {a['units']} units rated twice or more): {alpha}"
              + (f", Fleiss' κ = {fleiss:.2f}" if fleiss is not None and fleiss is not False else ""))
        for c in a["cohen"]:
            if c["kappa"] is not None:
                print(f"  Cohen's κ {c['raters'][0]} / {c['raters'][1]}: {c['kappa']:.2f} on {c['units']} units")
    if results["agreement"]:
        print("  reading α: ≥ 0.8 reliable, 0.667–0.8 tentative, below: do not rely on it")
    print("\nraters")
    for r in results["raters"]:
        parts = [f"{r['ratings']} ratings"]
        if r["choice_agreement"] is not None:
            parts.append(f"same choice as others {r['choice_agreement']:.0%}")
        if r["score_gap"] is not None:
            parts.append(f"score gap {r['score_gap']:.2f}")
        gold = r["gold"]
        if gold["choice_accuracy"] is not None:
            parts.append(f"gold right {gold['choice_accuracy']:.0%} of {gold['items']}")
        if gold["score_error"] is not None:
            parts.append(f"gold score error {gold['score_error']:.2f}")
        print(f"  {r['rater']:16} " + ", ".join(parts))
    for link in results.get("links", []):
        print(f"  link {link['rater']:11} {link['link']}")


@app.command("export")
def export_command(task_id: str, out: Path = typer.Option(Path("."), help="folder to write into"),
                   json_out: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """Write every rating (unblinded) as CSV and JSONL."""
    from ..evaluate.human import export_ratings

    paths = export_ratings(task_id, out)
    if json_out:
        print(json.dumps(paths, indent=2))
    else:
        print(f"{paths['ratings']} ratings\ncsv    {paths['csv']}\njsonl  {paths['jsonl']}")


@app.command("close")
def close_command(task_id: str, json_out: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """Close a task: the links stop working; ratings stay."""
    from ..store import queries

    task = queries.close_rating_task(task_id)
    if json_out:
        print(json.dumps({"id": task.id, "status": task.status, "closed_at": task.closed_at.isoformat()}))
    else:
        print(f"closed {task.id}: its links no longer work")
