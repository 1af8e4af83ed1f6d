"""`tunesmith train`'s memory estimate before a run starts (fast: a tiny model, nothing trains)."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import pytest

from tunesmith.cli.plan import print_preflight
from tunesmith.plan.hardware import PROBE_CACHE
from tunesmith.plan.planner import preflight
from tunesmith.train.spec import LocalSpec

from ..train._data import prepared_tickets


def machine_with(monkeypatch, tmp_path, memory_gib: float) -> None:
    cache = tmp_path / "cache"
    cache.mkdir(exist_ok=True)
    (cache / PROBE_CACHE).write_text(json.dumps({
        "name": "this-machine", "label": "this machine: CPU", "memory_gib": memory_gib, "peak_tflops": 0.15,
        "precision": "bfloat16", "utilization": 0.3, "kind": "cpu", "measured_at": time.time()}))
    monkeypatch.setenv("TUNESMITH_CACHE", str(cache))


@pytest.fixture
def spec(tmp_path, tiny_model_dir):
    return LocalSpec(data=prepared_tickets(tmp_path, n=120), base_model=str(tiny_model_dir), batch_size=4,
                     max_seq_length=128)


def test_preflight_counts_the_spec_and_says_when_it_fits(spec, monkeypatch, tmp_path, capsys):
    machine_with(monkeypatch, tmp_path, 16.0)
    estimate, machine, lines = preflight(spec)
    assert machine.memory_gib == 16.0 and estimate.fits(16.0)
    assert estimate.method == "lora" and estimate.device == "cpu" and not estimate.gradient_checkpointing
    assert len(lines) == 1 and "GiB at its peak" in lines[0]
    print_preflight(spec)
    assert "plan: lora on" in capsys.readouterr().err


def test_preflight_warns_when_the_run_will_not_fit(spec, monkeypatch, tmp_path, capsys):
    machine_with(monkeypatch, tmp_path, 0.25)
    print_preflight(spec)
    assert "warning: this run will probably not fit in 0.2 GiB" in capsys.readouterr().err


def test_a_longer_cap_or_a_larger_batch_needs_more(spec, monkeypatch, tmp_path):
    machine_with(monkeypatch, tmp_path, 16.0)
    small, _, _ = preflight(spec)
    larger, _, _ = preflight(spec.model_copy(update={"batch_size": 8}))
    full, _, _ = preflight(spec.model_copy(update={"method": "full"}))
    assert small.activations_gib < larger.activations_gib
    assert small.optimizer_gib < full.optimizer_gib


def test_managed_runs_are_not_planned_here(capsys):
    print_preflight(SimpleNamespace(backend="vertex"))
    assert capsys.readouterr().err == ""


def test_auto_turns_gradient_checkpointing_on_only_where_the_run_would_not_fit(spec, monkeypatch, tmp_path):
    machine_with(monkeypatch, tmp_path, 16.0)
    without, _, lines = preflight(spec)
    assert not without.gradient_checkpointing and not any("checkpointing" in line for line in lines)
    recomputed, _, _ = preflight(spec.model_copy(update={"gradient_checkpointing": True}))
    assert recomputed.gradient_checkpointing and recomputed.activations_gib < without.activations_gib
    machine_with(monkeypatch, tmp_path, (recomputed.total_gib + without.total_gib) / 2)
    chosen, _, lines = preflight(spec)
    assert chosen.gradient_checkpointing and chosen.total_gib == recomputed.total_gib
    assert lines[1].startswith("plan: gradient checkpointing on: without it the run needs about")
    assert not any(line.startswith("warning") for line in lines)
    refused, _, lines = preflight(spec.model_copy(update={"gradient_checkpointing": False}))
    assert not refused.gradient_checkpointing and lines[-1].startswith("warning: this run will probably not fit")
