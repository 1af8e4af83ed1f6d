"""The memory estimate against real runs (slow: a real SmolLM2 training step each).

On a CPU (Linux) the measure is the training process's peak resident set size (VmHWM), which holds
the runtime, the weights and everything training allocates; the estimate for a CPU counts the
runtime as its overhead. On a CUDA GPU the measure is torch.cuda.max_memory_allocated, which
excludes the CUDA context the estimate adds as overhead."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tunesmith.plan.planner import preflight
from tunesmith.train.spec import LocalSpec

from ..train._data import prepared_tickets

pytestmark = pytest.mark.slow
TOLERANCE = 0.20

# One optimizer step is enough: the largest batch comes first (length-grouped sampling puts it
# there: the specs below ask for it, since training draws random batches by default, and a random
# first batch shorter than the longest left the measured peak at the edge of the tolerance), and
# AdamW's moments exist from the first step on.
# The peak is VmHWM, this process's own high-water mark. Not getrusage's ru_maxrss: Linux carries
# that across fork and exec, so a child of a large pytest process reports the parent's size.
RUN = """
import json, os, sys
from tunesmith.train.jobs import start_job
from tunesmith.train.spec import LocalSpec
spec = LocalSpec(**json.loads(sys.argv[1]))
job = start_job(spec)
with open("/proc/self/status") as status:
    hwm_kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
peak = {"rss_gib": hwm_kib / 2**20, "status": job.status, "error": job.error}
try:
    import torch
    if torch.cuda.is_available():
        peak["cuda_gib"] = torch.cuda.max_memory_allocated() / 2**30
except ImportError:
    pass
print("PEAK " + json.dumps(peak))
"""


def measured_peak(spec: LocalSpec) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", RUN, spec.model_dump_json(exclude_unset=True)], capture_output=True, text=True,
                          timeout=600, env=env)
    line = next((l for l in done.stdout.splitlines() if l.startswith("PEAK ")), None)
    assert line, done.stdout[-2000:] + done.stderr[-4000:]
    peak = json.loads(line[5:])
    assert peak["status"] == "succeeded", peak["error"]
    return peak


@pytest.mark.parametrize("method", ["lora", "full"])
def test_estimate_is_within_20_percent_of_the_measured_peak(tmp_path, smollm2_dir, method):
    prepared = prepared_tickets(tmp_path, n=120, validation=0.05)  # a short evaluation at the one step
    spec = LocalSpec(data=prepared, method=method, batch_size=4, max_seq_length=256, max_steps=1, eval_interval=1,
                     group_by_length=True)
    estimate, machine, lines = preflight(spec)
    peak = measured_peak(spec)
    measured = peak.get("cuda_gib", peak["rss_gib"])
    expected = estimate.total_gib - (estimate.overhead_gib if "cuda_gib" in peak else 0.0)
    print(f"{method}: estimate {expected:.3f} GiB, measured {measured:.3f} GiB "
          f"({'cuda max_memory_allocated' if 'cuda_gib' in peak else 'peak RSS'}); {lines[0]}")
    assert abs(expected - measured) <= TOLERANCE * measured, (expected, measured, estimate)
