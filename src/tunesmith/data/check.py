"""`tunesmith data check`: read files as the splits of one dataset, run every check, and
collect the findings and statistics into a `Report`."""

from __future__ import annotations

import importlib
from datetime import datetime, timezone
from pathlib import Path

from ..targets import DEFAULT_TARGET, load_target
from .checks import Check, CheckContext
from .dataset import Dataset, load_dataset
from .findings import Finding, sort_findings
from .report import Report, build_report
from .seal import verify_seal
from .tokens import count_tokens, counter_for

# Modules under data/checks, in the order their findings are computed.
CHECK_MODULES = ("structure", "size", "duplicates", "label_checks", "format_drift", "staleness", "pii")


def all_checks() -> list[Check]:
    checks: list[Check] = []
    for name in CHECK_MODULES:
        checks += importlib.import_module(f"tunesmith.data.checks.{name}").CHECKS
    return checks


def check(
    paths: list[str | Path],
    *,
    format: str | None = None,
    columns: dict[str, str] | None = None,
    target: str = DEFAULT_TARGET,
    label_field: str | None = None,
    timestamp_field: str | None = None,
    max_age_days: float | None = None,
    template: str | None = None,
    now: datetime | None = None,
) -> Report:
    dataset = load_dataset(paths, format, columns, label_field, timestamp_field)
    return check_dataset(dataset, target=target, max_age_days=max_age_days, template=template, now=now)


def check_dataset(dataset: Dataset, *, target: str = DEFAULT_TARGET, max_age_days: float | None = None,
                  template: str | None = None, now: datetime | None = None) -> Report:
    resolved = load_target(target)
    counter = counter_for(resolved)
    ctx = CheckContext(
        target=resolved,
        tokens=count_tokens(dataset.examples, counter),
        now=now or datetime.now(timezone.utc),
        template=template,
        max_age_days=max_age_days,
        label_source=dataset.label_source,
        splits=dataset.splits,
        unreadable=dataset.unreadable,
        prepared_dir=dataset.prepared_dir,
        manifest=dataset.manifest,
    )
    findings: list[Finding] = []
    for run in all_checks():
        findings += run(dataset.examples, ctx)
    if dataset.prepared_dir is not None and dataset.manifest is not None:
        findings += verify_seal(dataset.prepared_dir, dataset.manifest, dataset.examples)
    return build_report(dataset, ctx, counter.method, sort_findings(findings))
