from __future__ import annotations

import html
import re

import pytest

from tunesmith.data.report_html import MAX_LABEL_BARS, bar_chart_svg, histogram_svg, render_html


def locations(file: str, lines) -> list[dict]:
    return [{"file": file, "line": line} for line in lines]


def sample_report() -> dict:
    """A report shaped like the one `tunesmith data check` writes for the bundled tickets."""
    return {
        "schema_version": 1,
        "tool": "tunesmith 0.1.0",
        "created_at": "2026-11-25T14:00:00Z",
        "inputs": [
            {"file": "data/train.jsonl", "format": "input-output", "split": "train", "records": 1000, "examples": 999, "unreadable": 1},
            {"file": "data/validation.jsonl", "format": "input-output", "split": "validation", "records": 100, "examples": 100, "unreadable": 0},
            {"file": "data/test.jsonl", "format": "input-output", "split": "test", "records": 100, "examples": 99, "unreadable": 1},
        ],
        "target": {"name": "local/smollm2-135m-instruct", "token_method": "smollm2-135m-instruct tokenizer (exact)"},
        "summary": {"examples": 1198, "unreadable_lines": 2, "errors": 2, "warnings": 2, "infos": 1},
        "stats": {
            "examples_per_split": {"train": 999, "validation": 100, "test": 99},
            "label_source": 'the "Category" line of the output',
            "label_distribution": {"Technical": 311, "Billing": 266, "Account": 236, "Shipping": 181, "Returns": 169, "Security": 7},
            "label_distribution_per_split": {
                "train": {"Technical": 260, "Billing": 221, "Account": 197, "Shipping": 151, "Returns": 141, "Security": 6},
                "validation": {"Technical": 26, "Billing": 22, "Account": 20, "Shipping": 15, "Returns": 14},
                "test": {"Technical": 25, "Billing": 23, "Account": 19, "Shipping": 15, "Returns": 14, "Security": 1},
            },
            "tokens": {
                "method": "smollm2-135m-instruct tokenizer (exact)",
                "per_role": {
                    "system": {"p5": 0, "p50": 0, "p95": 0, "max": 0, "mean": 0.0},
                    "user": {"p5": 22, "p50": 41, "p95": 78, "max": 96, "mean": 44.3},
                    "model": {"p5": 16, "p50": 19, "p95": 24, "max": 31, "mean": 19.6},
                    "total": {"p5": 49, "p50": 71, "p95": 112, "max": 137, "mean": 74.9},
                },
                "histogram": {
                    "edges": [round(40 + 4.85 * i, 1) for i in range(21)],
                    "counts": [12, 48, 95, 140, 170, 160, 131, 102, 80, 61, 50, 38, 30, 24, 19, 14, 10, 7, 4, 3],
                },
            },
            "timestamps": {"with_timestamp": 1198, "oldest": "2021-11-09T13:10:46+00:00", "newest": "2026-10-30T22:41:05+00:00"},
        },
        "findings": [
            {"code": "near-duplicate", "severity": "warning", "message": "18 examples are near-duplicates of another example.",
             "hint": "run tunesmith data prepare to keep one of each group", "count": 18,
             "examples": [f"{i:016x}" for i in range(18)], "locations": locations("data/train.jsonl", range(10, 28))},
            {"code": "unreadable", "severity": "error", "message": "2 lines could not be read.",
             "hint": "fix the lines, or remove them", "count": 2, "examples": [],
             "locations": [{"file": "data/train.jsonl", "line": 1001}, {"file": "data/test.jsonl", "line": 100}]},
            {"code": "rare-class", "severity": "info", "message": 'The label "Security" has only 7 examples.',
             "hint": "collect more examples of it", "count": 7, "examples": [], "locations": locations("data/train.jsonl", [3, 9])},
            {"code": "split-leak", "severity": "error", "message": "4 test examples also appear in train.",
             "hint": "split again with near-duplicates grouped", "count": 4, "examples": ["ab12cd34ef56ab12"],
             "locations": locations("data/test.jsonl", [1, 2, 3, 4])},
            {"code": "pii", "severity": "warning", "message": "5 examples contain personal data.", "hint": "redact it",
             "count": 5, "examples": [], "locations": locations("data/train.jsonl", [5, 6, 7, 8, 9])},
        ],
    }


@pytest.fixture
def page() -> str:
    return render_html(sample_report())


def test_a_full_report_renders_every_part(page):
    assert page.startswith("<!doctype html>")
    for text in ("data/train.jsonl", "input-output", "local/smollm2-135m-instruct", "smollm2-135m-instruct tokenizer (exact)",
                 "1,198", "Examples per split", "Security", "2021-11-09T13:10:46+00:00", "p95", "74.9"):
        assert text in page, text
    assert 'class="band fail"' in page


def test_findings_are_ordered_most_severe_first(page):
    order = [page.index(f"<code class=\"code\">{code}</code>") for code in ("split-leak", "unreadable", "near-duplicate", "pii", "rare-class")]
    assert order == sorted(order)


def test_a_minimal_report_renders():
    page = render_html({"summary": {"examples": 120, "unreadable_lines": 0, "errors": 0, "warnings": 0, "infos": 0}, "findings": []})
    assert "No findings." in page
    assert 'class="band pass"' in page
    assert "<svg" not in page


def test_an_empty_report_renders():
    page = render_html({})
    assert "No inputs recorded." in page and "No findings." in page


def test_missing_and_null_fields_render_gracefully():
    report = sample_report()
    report["inputs"][0]["split"] = None
    report["stats"]["label_source"] = None
    report["stats"]["tokens"]["histogram"] = {"edges": [], "counts": []}
    report["stats"]["timestamps"] = {"with_timestamp": 0}
    report["findings"].append({"code": "odd", "severity": "unknown"})
    del report["summary"]
    page = render_html(report)
    assert "None" not in page
    assert "No example has a timestamp" in page
    assert 'class="band fail"' in page  # the summary is rebuilt from the findings


def test_everything_is_escaped():
    report = sample_report()
    report["findings"][0]["message"] = "<script>alert(1)</script> in the output"
    report["findings"][0]["locations"] = [{"file": "<b>evil</b>.jsonl", "line": 1}]
    report["stats"]["label_distribution"]["<img src=x>"] = 3
    page = render_html(report)
    assert "<script>" not in page and "<b>evil" not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;evil&lt;/b&gt;.jsonl:1" in page


def test_every_location_of_a_large_finding_is_listed():
    report = sample_report()
    many = locations("data/train.jsonl", range(1, 5001))
    report["findings"].append({"code": "format-drift", "severity": "warning", "message": "5000 outputs drift.",
                               "hint": "", "count": 5000, "examples": [f"id{i}" for i in range(5000)], "locations": many})
    page = render_html(report)
    listed = set(re.findall(r"data/train\.jsonl:(\d+)", page))
    assert listed >= {str(i) for i in range(1, 5001)}
    assert "id4999" in page
    assert page.count("<pre") <= 2 * len(report["findings"])  # one block per list, not one element per line
    assert page.count("<li") < 20


def test_charts_are_inline_svg_when_stats_exist(page):
    assert page.count("<svg") == 3  # splits, labels, token histogram
    assert "Tokens per example" in page


def test_long_label_lists_are_cut_and_summed_up():
    report = sample_report()
    report["stats"]["label_distribution"] = {f"intent_{i:03d}": 1000 - i for i in range(MAX_LABEL_BARS + 12)}
    page = render_html(report)
    assert "intent_039" in page and "intent_040" not in page
    assert "and 12 more labels" in page


def test_the_page_fetches_nothing(page):
    assert not re.search(r"https?://", page)
    assert not re.search(r"<(script|link|img|iframe)\b", page)
    assert "url(" not in page and "@import" not in page


def test_chart_helpers():
    bars = bar_chart_svg([("a", 3), ("b", 0)], "t")
    assert bars.count("<rect") == 2 and ">3<" in bars
    assert bar_chart_svg([], "t") is None
    hist = histogram_svg([0, 10, 20], [4, 1])
    assert hist.count("<rect") == 2 and "0–10 tokens: 4 examples" in html.unescape(str(hist))
    assert histogram_svg([], []) is None and histogram_svg([5], [3]) is None
