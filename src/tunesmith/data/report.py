"""The report of a data check: findings and statistics, rendered to the terminal (rich),
to JSON (a stable, documented schema: docs/report-schema.md) and to a self-contained HTML page."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ..lazy import numpy as np

from .. import __version__
from ..fileio import atomic_write_text
from .checks import CheckContext
from .checks.staleness import parse_timestamp
from .dataset import Dataset
from .findings import Finding

SCHEMA_VERSION = 1
HISTOGRAM_BINS = 20


@dataclass
class Report:
    data: dict  # the JSON document
    findings: list[Finding]

    @property
    def errors(self) -> int:
        return self.data["summary"]["errors"]

    @property
    def exit_code(self) -> int:
        """0: no error findings; 1: error findings (unreadable input is exit 2, raised earlier)."""
        return 1 if self.errors else 0

    def write_json(self, path: str | Path) -> None:
        atomic_write_text(path, json.dumps(self.data, indent=2, ensure_ascii=False) + "\n")

    def write_html(self, path: str | Path) -> None:
        from .report_html import render_html

        atomic_write_text(path, render_html(self.data))


def _percentiles(values: list[int]) -> dict:
    if not values:
        return {"p5": 0, "p50": 0, "p95": 0, "max": 0, "mean": 0.0}
    arr = np.asarray(values)
    p5, p50, p95 = np.percentile(arr, [5, 50, 95])
    return {"p5": int(p5), "p50": int(p50), "p95": int(p95), "max": int(arr.max()), "mean": round(float(arr.mean()), 1)}


def _histogram(values: list[int]) -> dict:
    if not values:
        return {"edges": [], "counts": []}
    counts, edges = np.histogram(np.asarray(values), bins=HISTOGRAM_BINS)
    return {"edges": [round(float(e), 1) for e in edges], "counts": [int(c) for c in counts]}


def _timestamps(dataset: Dataset) -> dict:
    parsed = [t for t in (parse_timestamp(ex.timestamp) for ex in dataset.examples if ex.timestamp) if t]
    if not parsed:
        return {"with_timestamp": 0}
    return {"with_timestamp": len(parsed), "oldest": min(parsed).isoformat(), "newest": max(parsed).isoformat()}


def _label_distribution(examples) -> dict:
    counts = Counter(ex.label for ex in examples if ex.label is not None)
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def build_report(dataset: Dataset, ctx: CheckContext, token_method: str, findings: list[Finding]) -> Report:
    by_severity = Counter(f.severity for f in findings)
    tokens = ctx.tokens
    data = {
        "schema_version": SCHEMA_VERSION,
        "tool": f"tunesmith {__version__}",
        "created_at": datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "inputs": [
            {"file": f.path, "format": f.format, "split": ", ".join(dict.fromkeys(ex.split for ex in f.examples)) or None,
             "records": f.records, "examples": len(f.examples), "unreadable": len(f.unreadable)}
            for f in dataset.files
        ],
        "target": {"name": ctx.target.name, "token_method": token_method},
        "summary": {
            "examples": len(dataset.examples),
            "unreadable_lines": len(dataset.unreadable),
            "errors": by_severity.get("error", 0),
            "warnings": by_severity.get("warning", 0),
            "infos": by_severity.get("info", 0),
        },
        "stats": {
            "examples_per_split": {s: len(dataset.split(s)) for s in dataset.splits},
            "label_source": dataset.label_source,
            "label_distribution": _label_distribution(dataset.examples),
            "label_distribution_per_split": {s: _label_distribution(dataset.split(s)) for s in dataset.splits},
            "tokens": {
                "method": token_method,
                "per_role": {role: _percentiles(getattr(tokens, role)) for role in ("system", "user", "model", "total")},
                "histogram": _histogram(tokens.total),
            },
            "timestamps": _timestamps(dataset),
        },
        "findings": [f.to_dict() for f in findings],
    }
    return Report(data, findings)


SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}
LOCATIONS_SHOWN = 5


def render_terminal(report: Report, console=None) -> None:
    """A summary table, then the findings, most severe first."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    data = report.data
    summary = data["summary"]
    table = Table(title=f"tunesmith data check — target {data['target']['name']}", show_header=True)
    for column in ("file", "split", "format", "records", "examples", "unreadable"):
        table.add_column(column, justify="right" if column in ("records", "examples", "unreadable") else "left")
    for item in data["inputs"]:
        table.add_row(item["file"], str(item["split"] or ""), item["format"], str(item["records"]),
                      str(item["examples"]), str(item["unreadable"]))
    console.print(table)
    stats = data["stats"]
    total = stats["tokens"]["per_role"]["total"]
    console.print(f"tokens per example: p50 {total['p50']}, p95 {total['p95']}, max {total['max']} "
                  f"[dim]({stats['tokens']['method']})[/dim]")
    labels = stats["label_distribution"]
    if labels:
        console.print(f"labels ({stats['label_source']}): {len(labels)} classes, "
                      f"largest {max(labels.values())}, smallest {min(labels.values())}")
    if not report.findings:
        console.print("[green]No findings: the data looks ready for tuning.[/green]")
    for f in report.findings:
        style = SEVERITY_STYLE[f.severity]
        console.print(f"\n[{style}]{f.severity.upper():7}[/{style}] [bold]{f.code}[/bold] ({f.count}) {f.message}",
                      highlight=False)
        if f.hint:
            console.print(f"         [dim]hint:[/dim] {f.hint}", highlight=False)
        if f.locations:
            shown = ", ".join(f"{loc.file}:{loc.line}" for loc in f.locations[:LOCATIONS_SHOWN])
            more = len(f.locations) - LOCATIONS_SHOWN
            console.print(f"         [dim]at {shown}{f' and {more} more (all in --json)' if more > 0 else ''}[/dim]",
                          highlight=False)
    verdict = "[bold red]errors found[/bold red]" if summary["errors"] else "[green]no errors[/green]"
    console.print(f"\n{summary['examples']} examples, {summary['unreadable_lines']} unreadable lines, "
                  f"{summary['errors']} errors, {summary['warnings']} warnings, {summary['infos']} notes: {verdict}")
