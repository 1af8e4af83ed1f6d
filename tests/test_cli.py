"""The CLI as a user meets it: a real process, exit codes, no tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .data._factory import ticket_records, write_jsonl


def run(*args: str, cwd: Path, home: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200", "TUNESMITH_HOME": str(home or cwd / ".tunesmith")}
    return subprocess.run([sys.executable, "-m", "tunesmith", *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=300)


def test_check_clean_data_exits_0_and_writes_reports(tmp_path):
    raw = write_jsonl(tmp_path / "train.jsonl", ticket_records())
    result = run("data", "check", str(raw), "--json", "r.json", "--html", "r.html", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert set(report) >= {"summary", "stats", "findings"}
    assert set(report["summary"]) >= {"examples", "unreadable_lines", "errors", "warnings"}
    assert report["summary"]["examples"] == 268
    per_role = report["stats"]["tokens"]["per_role"]
    assert set(per_role["total"]) >= {"p5", "p50", "p95", "max"}
    assert report["stats"]["label_distribution"]["Security"] == 8
    assert (tmp_path / "r.html").read_text().lstrip().lower().startswith("<!doctype html")


def test_check_with_error_findings_exits_1_and_lists_every_line(tmp_path):
    raw = tmp_path / "bad.jsonl"
    raw.write_text('{"input_text": "a", "output_text": "b"}\nnot json\n{"input_text": "c", "output_text": ""}\n')
    result = run("data", "check", str(raw), "--json", "r.json", cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    findings = {f["code"]: f for f in json.loads((tmp_path / "r.json").read_text())["findings"]}
    assert findings["unreadable-line"]["locations"] == [{"file": str(raw), "line": 2}]
    assert findings["too-few-examples"]["severity"] == "error"


def test_bad_input_exits_2_without_traceback(tmp_path):
    missing = run("data", "check", "nope.jsonl", cwd=tmp_path)
    assert missing.returncode == 2 and "no such file" in missing.stderr and "Traceback" not in missing.stderr
    (tmp_path / "x.jsonl").write_text('{"q": 1}\n')
    unknown = run("data", "check", "x.jsonl", cwd=tmp_path)
    assert unknown.returncode == 2 and "--format" in unknown.stderr
    shares = run("data", "prepare", "x.jsonl", "--out", "p", "--validation", "0.7", "--test", "0.5", cwd=tmp_path)
    assert shares.returncode == 2 and "validation + test" in shares.stderr and "Traceback" not in shares.stderr
    usage = run("data", "check", cwd=tmp_path)
    assert usage.returncode == 2
    target = run("data", "check", "x.jsonl", "--format", "input-output", "--target", "nope", cwd=tmp_path)
    assert target.returncode == 2 and "unknown tuning target" in target.stderr


def test_tickets_prepare_export_round(tmp_path):
    assert run("examples", "tickets", "--out", "t.jsonl", "-n", "300", cwd=tmp_path).returncode == 0
    prep = run("data", "prepare", "t.jsonl", "--out", "p", "--dedupe", "--drop-conflicts", cwd=tmp_path)
    assert prep.returncode == 0, prep.stderr
    assert "test" in prep.stdout and "quarantine" in prep.stdout
    exp = run("data", "export", "p", "--to", "gemini", "--out", "g", cwd=tmp_path)
    assert exp.returncode == 0, exp.stderr
    assert (tmp_path / "g" / "train.jsonl").is_file()
