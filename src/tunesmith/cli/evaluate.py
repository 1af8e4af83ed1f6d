"""`tunesmith eval MODEL`: the model against its base on the sealed test split, with a verdict."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

METRICS_HELP = "auto (from the references), label, template or free-text"
WEIGHTS_HELP = ("how a local model holds its weights: auto (bf16 where native, else fp32), fp32, bf16, "
                "or int8 (CPU; 8-bit weights, docs/serving.md has the quality cost)")
ENGINE_HELP = ("what generates for local models: local (transformers with continuous batching), llama.cpp "
               "(llama-server on each model's GGUF file, exported once, f16) or auto (llama.cpp where it is "
               "the faster on this machine: docs/serving.md)")
LLAMA_SERVER_HELP = "the llama-server binary for --engine llama.cpp (default: the one on PATH)"
BASE_URL_HELP = "an OpenAI-compatible (openai:MODEL) or Gemini (gemini:MODEL) endpoint; default $OPENAI_BASE_URL"


def eval_command(
    model: str = typer.Argument(..., help="a registry id or name, a catalog name, a folder, gemini:MODEL or openai:MODEL"),
    baseline: str = typer.Option("base", help='what to compare with: "base" (the model\'s base model), '
                                              'any model reference, or "none"'),
    data: Path | None = typer.Option(None, help="a prepared folder or a file (default: the data the model was trained on)"),
    split: str | None = typer.Option(None, help="the split to evaluate on (default: test)"),
    metrics: str = typer.Option("auto", help=METRICS_HELP),
    limit: int | None = typer.Option(None, min=1, help="evaluate the first N examples only"),
    json_path: Path | None = typer.Option(None, "--json", help="write the summary JSON here (default: the eval folder)"),
    html: Path | None = typer.Option(None, help="write the HTML report here (default: the eval folder)"),
    allow_overlap: bool = typer.Option(False, help="evaluate even on examples the model was trained on"),
    base_url: str | None = typer.Option(None, help=BASE_URL_HELP),
    api_key: str | None = typer.Option(None, help="the endpoint's key (default: $OPENAI_API_KEY or $GOOGLE_API_KEY)"),
    batch_size: int = typer.Option(16, min=1, help="prompts generated together by a local model"),
    max_new_tokens: int | None = typer.Option(None, min=1, help="default: 1.5 x the longest reference, plus 16"),
    seed: int = typer.Option(0, help="the bootstrap's seed"),
    free: bool = typer.Option(False, "--free", help="do not hold the model to its training data's output space "
                                                   "(labels, template, JSON fields)"),
    weights: str = typer.Option("auto", help=WEIGHTS_HELP),
    engine: str = typer.Option("local", help=ENGINE_HELP),
    llama_server: str | None = typer.Option(None, "--llama-server", help=LLAMA_SERVER_HELP),
) -> None:
    """Evaluate a model against its baseline: metrics with 95% intervals, paired tests, a verdict, a report."""
    from ..evaluate import evaluate

    result = evaluate(model, baseline=None if baseline == "none" else baseline, data=data, split=split,
                      metrics=metrics, limit=limit, json_out=json_path, html_out=html, allow_overlap=allow_overlap,
                      base_url=base_url, api_key=api_key, batch_size=batch_size, max_new_tokens=max_new_tokens,
                      seed=seed, progress=lambda message: print(message, file=sys.stderr), free=free,
                      weights=weights, engine=engine, llama_server=llama_server)
    print_result(result.summary)


def print_result(summary: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    from ..evaluate.verdict import (
        format_difference,
        format_p,
        format_range,
        format_value,
    )

    console = Console(highlight=False)
    for warning in summary["warnings"]:
        console.print(f"warning: {warning}", markup=False)
    baseline = summary["baseline"]
    table = Table("metric", summary["model"], *([baseline, "difference (95% CI)", "p"] if baseline else ["95% CI"]))
    for row in summary["metrics"]:
        shown = row["shown"]
        if baseline:
            table.add_row(row["label"], format_value(row["model"], shown), format_value(row["baseline"], shown),
                          f"{format_difference(row['difference'], shown, unit=False)} "
                          f"({format_range(*row['difference_interval'], shown)})", format_p(row["p_value"]))
        else:
            low, high = row["interval"]
            table.add_row(row["label"], format_value(row["value"], shown),
                          f"{format_value(low, shown)} – {format_value(high, shown)}")
    console.print(f"{summary['examples']} examples from the {summary['split']} split of {summary['data']}; "
                  f"{summary['scorer']}", markup=False)
    console.print(table)
    if summary["verdict_text"]:
        console.print(summary["verdict_text"], markup=False)
    decoding = summary.get("decoding")
    if decoding:
        for mode in ("constrained", "free"):
            if mode in decoding:
                d = decoding[mode]
                fields = "".join(f", {k} {v:.1%}" for k, v in (d.get("fields") or {}).items())
                how = "held to the space" if mode == "constrained" else "free"
                console.print(f"{how} ({decoding['space']}): exact {d['exact_match']:.1%}, "
                              f"inside the output space {d['valid_rate']:.1%}{fields}", markup=False)
    console.print(f"results  {summary['results_path']}\nsummary  {summary['summary_path']}\n"
                  f"report   {summary['report_path']}", markup=False)


def print_ranking(summary: dict, json_out: bool) -> None:
    if json_out:
        print(json.dumps(summary, indent=2))
        return
    from rich.console import Console

    from ..evaluate.verdict import format_difference, format_p, format_value
    from ._display import id_table

    rows = []
    for entry in summary["ranking"]:
        primary = entry["metrics"][0]
        shown, against = primary["shown"], entry.get("against_best")
        low, high = primary["interval"]
        rows.append([str(entry["rank"]), entry["model"], format_value(primary["value"], shown),
                     f"{format_value(low, shown)} – {format_value(high, shown)}",
                     format_difference(against["difference"], shown) if against else "best",
                     format_p(against["p_value"]) if against else ""])
    table = id_table(["rank", "model", summary["ranked_by"], "95% CI", "vs best", "p"], rows, id_columns=(1,))
    console = Console(highlight=False)
    console.print(f"{summary['examples']} examples from the {summary['split']} split of {summary['data']}; "
                  f"{summary['scorer']}", markup=False)
    console.print(table)
    console.print(f"results  {summary['results_path']}\nsummary  {summary['summary_path']}", markup=False)
