"""Hardware to train on: GPUs as data files (plan/hardware/*.yaml), and this machine, measured
(by the probes of tunesmith.hardware).

A GPU file holds its memory, its dense peak for the precision it trains in, an assumed
utilization and its prices, each price with its date and source. "this-machine" is measured:
its memory, and its matmul peak from a two-second probe, cached with a timestamp in the user
cache folder (the probe is the only place planning imports torch)."""

from __future__ import annotations

import json
import os
import time
from functools import cache
from importlib import resources

from pydantic import BaseModel, ConfigDict

from ..errors import BadInputError
from ..fileio import atomic_write_text
from ..hardware import cpu_dtype, matmul_peak_tflops
from ..lazy import yaml
from ..paths import cache_dir

THIS_MACHINE = "this-machine"
PROBE_MAX_AGE_S = 30 * 24 * 3600  # re-measure monthly: the probe is cheap, hardware rarely changes
# Named by the probe's method, so a probe taken the old way is measured again: "machine.json" held a
# single timing, which a busy moment could halve; v2 keeps the fastest of several.
PROBE_CACHE = "machine-v2.json"
# Share of the matmul peak a CPU training step reaches: attention, norms, the optimizer and Python
# overhead run far below peak. Assumed; bench/train_throughput.py prints the share this machine reaches.
CPU_UTILIZATION = 0.3


class Price(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: str
    usd_per_hour: float
    as_of: str
    source: str


class Hardware(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    label: str
    memory_gib: float
    peak_tflops: float  # dense, in `precision`
    precision: str
    utilization: float
    kind: str = "gpu"  # "gpu" | "cpu"
    prices: list[Price] = []
    purchase_usd: float | None = None
    purchase_as_of: str | None = None
    purchase_source: str | None = None
    measured_at: float | None = None  # this machine: when the probe ran (Unix time)

    @property
    def cheapest(self) -> Price | None:
        return min(self.prices, key=lambda p: p.usd_per_hour) if self.prices else None


@cache
def gpus() -> dict[str, Hardware]:
    folder = resources.files("tunesmith.plan") / "hardware"
    found = [Hardware(**yaml.safe_load(f.read_text(encoding="utf-8"))) for f in folder.iterdir() if f.name.endswith(".yaml")]
    return {h.name: h for h in sorted(found, key=lambda h: (h.memory_gib, h.peak_tflops))}


def hardware_names() -> list[str]:
    return [*gpus(), THIS_MACHINE]


def resolve_hardware(name: str) -> list[Hardware]:
    """One GPU by name, "this-machine", or "all" (every GPU file and this machine)."""
    if name == "all":
        return [*gpus().values(), this_machine()]
    if name == THIS_MACHINE:
        return [this_machine()]
    if name not in gpus():
        raise BadInputError(f"unknown GPU {name!r}", f"choose one of {', '.join(hardware_names())}, or all")
    return [gpus()[name]]


def this_machine(refresh: bool = False) -> Hardware:
    """This machine's accelerator (CUDA GPU 0) or CPU, from the cached probe or a new one."""
    path = cache_dir() / PROBE_CACHE
    if not refresh and path.is_file():
        try:
            cached = Hardware(**json.loads(path.read_text(encoding="utf-8")))
            fresh = time.time() - (cached.measured_at or 0) < PROBE_MAX_AGE_S
            # A CPU probe counts for the precision runs get now (ATEN_CPU_CAPABILITY can change it).
            same_precision = cached.kind != "cpu" or cached.precision == cpu_dtype()
            if fresh and same_precision:
                return cached
        except (ValueError, TypeError):
            pass  # an unreadable cache is measured again
    machine = _probe()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, machine.model_dump_json(indent=2) + "\n")
    return machine


def _probe() -> Hardware:
    import torch

    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return Hardware(name=THIS_MACHINE, label=f"this machine: {props.name}", memory_gib=props.total_memory / 2**30,
                        peak_tflops=matmul_peak_tflops(dtype, "cuda"), precision=str(dtype).removeprefix("torch."),
                        utilization=gpus()["a100-80gb"].utilization, measured_at=time.time())
    dtype = getattr(torch, cpu_dtype())
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return Hardware(name=THIS_MACHINE, label=f"this machine: CPU, {os.cpu_count()} cores", kind="cpu",
                    memory_gib=memory_gib, peak_tflops=matmul_peak_tflops(dtype, "cpu"),
                    precision=str(dtype).removeprefix("torch."), utilization=CPU_UTILIZATION, measured_at=time.time())
