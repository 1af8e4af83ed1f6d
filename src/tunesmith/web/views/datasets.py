"""Datasets: every prepared version the store knows, its manifest, examples and data-check report."""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from ...data.check import check
from ...data.dataset import SPLITS
from ...data.report_html import render_html
from ...store import queries
from ..app import Section
from ..pages import PAGE_SIZE, NotFound, Paging, dataset_or_404, is_htmx, page_number, render

EXAMPLES_PER_PAGE = 10
JOBS_SHOWN = 20
REPORTS_KEPT = 8  # data-check reports kept in memory, newest used first
router = APIRouter()
_reports: OrderedDict[tuple[str, str, float], str] = OrderedDict()


@router.get("/datasets")
def datasets(request: Request, page: int | None = None):
    paging = Paging(page_number(page), PAGE_SIZE, 0)
    rows, paging.total = queries.list_dataset_versions(paging.size, paging.offset)
    return render(request, "datasets.html", {"datasets": rows, "paging": paging})


@router.get("/datasets/{version}")
def dataset(request: Request, version: str):
    row = dataset_or_404(version)
    jobs, job_total = queries.jobs_page(dataset_version=row.id, limit=JOBS_SHOWN)
    manifest = row.manifest or {}
    return render(request, "dataset.html", {
        "d": row, "m": manifest, "shown_manifest": _without_id_lists(manifest), "present": _folder(row).is_dir(),
        "counts": manifest.get("counts") or {}, "splits": [s for s in SPLITS if s in (manifest.get("splits") or {})],
        "jobs": jobs, "job_total": job_total,
    })


@router.get("/datasets/{version}/examples")
def examples(request: Request, version: str, split: str = "train", page: int | None = None):
    """A page of one split's examples, as text (never as markup)."""
    row = dataset_or_404(version)
    if split not in SPLITS + ("quarantine",):
        raise NotFound(f"no split {split!r}", f"use one of: {', '.join(SPLITS)}, quarantine")
    path = _folder(row) / f"{split}.jsonl"
    if not path.is_file():
        raise NotFound(f"{path} is not there", "the prepared folder was moved or deleted; train on it again to "
                                               "record where it is")
    with open(path, encoding="utf-8") as f:
        lines = [line for line in f if line.strip()]
    paging = Paging(page_number(page), EXAMPLES_PER_PAGE, len(lines))
    shown = [_example(line) for line in lines[paging.offset:paging.offset + paging.size]]
    context = {"d": row, "split": split, "examples": shown, "paging": paging}
    return render(request, "_examples.html" if is_htmx(request) else "examples.html", context)


@router.get("/datasets/{version}/report", response_class=HTMLResponse)
def report(version: str):
    """The `tunesmith data check` page of the prepared folder (checked on first view, kept in memory)."""
    row = dataset_or_404(version)
    folder = _folder(row)
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        raise NotFound(f"the prepared folder {folder} is not there", "it was moved or deleted")
    key = (row.id, str(folder), manifest.stat().st_mtime)
    if key not in _reports:
        _reports[key] = render_html(check([folder]).data)
        while len(_reports) > REPORTS_KEPT:
            _reports.popitem(last=False)
    _reports.move_to_end(key)
    # The report is a whole page of its own; it is shown in a sandboxed frame that runs no script.
    return HTMLResponse(_reports[key], headers={"Content-Security-Policy": "script-src 'none'"})


def _without_id_lists(manifest: dict) -> dict:
    """The manifest as shown: the long lists in it (each fix's example ids, each split's content
    hashes: thousands on a large dataset) as their counts."""
    shown = dict(manifest)
    if manifest.get("fixes"):
        shown["fixes"] = [{**f, "ids": f"{len(f.get('ids') or [])} example ids (in manifest.json)"}
                          for f in manifest["fixes"]]
    if manifest.get("splits"):
        shown["splits"] = {name: {**seal, "content_hashes": f"{len(seal.get('content_hashes') or [])} hashes "
                                                            "(in manifest.json)"} if "content_hashes" in seal else seal
                           for name, seal in manifest["splits"].items()}
    return shown


def _folder(row) -> Path:
    return Path(row.path)


def _example(line: str) -> dict:
    """A canonical record (or a quarantined one: the record inside, with the fix and the reason)."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return {"id": "?", "turns": [{"role": "unreadable", "text": line}]}
    fix, reason = record.get("fix"), record.get("reason")
    if "example" in record or "raw" in record:
        record = record.get("example") or {"turns": [{"role": "raw", "text": str(record.get("raw", ""))}]}
    turns = record.get("turns") or []
    return {"id": record.get("id", ""), "system": record.get("system"), "label": record.get("label"),
            "turns": [{"role": t.get("role", "?"), "text": t.get("text", "")} for t in turns if isinstance(t, dict)],
            "fix": fix, "reason": reason}


SECTION = Section(router, nav=("Datasets", "/datasets"))
