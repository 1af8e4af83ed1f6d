"""`tunesmith monitor MODEL_OR_DEPLOYMENT`: drift against the training data, quality on fresh
labels, and whether to re-tune. Exit 0: no action needed; 1: a re-tune is advised; 2: bad input."""

from __future__ import annotations

import sys
from pathlib import Path

import typer


def monitor_command(
    subject: str = typer.Argument(..., help="a registered model (id or name) or a deployment name clients call"),
    since: str = typer.Option("7d", help="the period to look back over: 30m, 12h, 7d, 2w"),
    window: str = typer.Option("1d", help="the length of each window within the period (the trend)"),
    reference: Path | None = typer.Option(None, help="the training data (default: the model's, through lineage)"),
    current: Path | None = typer.Option(None, help="inputs and outputs from a file instead of the request log"),
    labels: Path | None = typer.Option(None, help="fresh labels: recent inputs with their correct outputs"),
    tolerance: float = typer.Option(0.02, min=0, max=1, help="a quality drop smaller than this is not worth a re-tune"),
    json_path: Path | None = typer.Option(None, "--json", help="write the summary JSON here (default: the run's folder)"),
    html: Path | None = typer.Option(None, help="write the HTML report here (default: the run's folder)"),
    no_cost: bool = typer.Option(False, "--no-cost", help="skip the re-tune cost estimate (tunesmith plan)"),
) -> None:
    """Is it time to re-tune? Drift of production traffic, coverage gaps, fresh-label quality, a dated answer."""
    from ..monitor import monitor

    result = monitor(subject, since=since, window=window, reference=reference, current=current, labels=labels,
                     json_out=json_path, html_out=html, tolerance=tolerance, estimate_cost=not no_cost,
                     progress=lambda message: print(message, file=sys.stderr))
    summary = result.summary
    print(result.answer.paragraph)
    print(f"summary  {summary['summary_path']}\nreport   {summary['report_path']}\n"
          f"queue    {summary['queue_path']} ({summary['queue_size']} inputs to label)")
    raise typer.Exit(result.exit_code)
