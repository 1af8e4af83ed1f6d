"""This machine's compute: whether its CPU multiplies bfloat16 natively, which precision a run
gets for "auto", and how fast large matrix products run (the ceiling of any training step).

torch is imported inside the functions that need it: planning and the data commands import
this module without paying for torch."""

from __future__ import annotations

import os
import time

PROBE_SIZE = 2048  # square matrices: large enough to reach the peak, small enough to take ~2 s in all
PROBE_REPEATS = 4  # products a trial
PROBE_TRIALS = 5  # trials, the fastest kept


# The CPU features that decide how fast a model runs here (benchmarks print them with their figures).
NOTABLE_CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8", "neon")


# torch's own switch for its CPU kernels. ATEN_CPU_CAPABILITY=avx2 (or default) makes torch run the
# AVX2 (or plain) kernels on a CPU that has more, so a run's precision and the plan follow it: this
# machine then behaves as an AVX2-only one does, which is how the benchmarks stand in for one
# (with ONEDNN_MAX_CPU_ISA and MKL_ENABLE_INSTRUCTIONS capping the matmul libraries the same way).
AVX512_AND_AMX = ("avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")
FLAGS_ABOVE_CAPABILITY = {"avx2": AVX512_AND_AMX, "default": ("avx2", *AVX512_AND_AMX)}


def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> list[str]:
    """This CPU's notable feature flags (Linux's /proc/cpuinfo; empty where it cannot be read),
    less those above the capability torch is told to run at (ATEN_CPU_CAPABILITY)."""
    try:
        with open(cpuinfo, encoding="ascii", errors="replace") as f:
            line = next((line for line in f if line.startswith(("flags", "Features"))), "")
    except OSError:
        return []
    present = set(line.partition(":")[2].split())
    capped = FLAGS_ABOVE_CAPABILITY.get(os.environ.get("ATEN_CPU_CAPABILITY", "").lower(), ())
    return [flag for flag in NOTABLE_CPU_FLAGS
            if (flag in present or (flag == "neon" and "asimd" in present)) and flag not in capped]


def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AVX-512 BF16 or AMX): there bf16 matrix
    products run 3-8x faster than fp32 ones (the plan's probe on a two-core AMX machine);
    elsewhere bf16 is emulated and slower."""
    return any(flag in cpu_flags() for flag in ("avx512_bf16", "amx_bf16"))


def resolve_precision(precision: str) -> str:
    """auto: bf16 on a GPU that supports it, else fp16 on a GPU; on a CPU bf16 autocast
    (fp32 master weights) where the CPU has native bf16, else fp32. Anything else as given."""
    import torch

    if precision != "auto":
        return precision
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if cpu_has_bf16() else "fp32"


def inference_device() -> str:
    """Where generation runs: the GPU when there is one."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def inference_dtype(device: str) -> str:
    """The weights' dtype for generating on `device` ("cpu" or "cuda..."): bfloat16 where it is
    native, else float32. Evaluation and serving both load by this rule, so an evaluated model
    answers as the served one does."""
    if not device.startswith("cuda"):
        return cpu_dtype()
    import torch

    return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"


def cpu_dtype() -> str:
    """The dtype this CPU computes fast in: bfloat16 where it is native, else float32."""
    return "bfloat16" if cpu_has_bf16() else "float32"


def matmul_peak_tflops(dtype, device: str = "cpu") -> float:
    """The rate of large square matrix products: the ceiling any training step runs under.

    The fastest of PROBE_TRIALS timings: another process busy for a moment slows a trial, never
    speeds one up. (A single timing on this 2-core machine once read 87 GFLOP/s for bf16, under
    half the quiet rate, and the plan, which caches the probe for a month, then put a 5-minute
    run at 30 minutes.)"""
    import torch

    a = torch.randn(PROBE_SIZE, PROBE_SIZE, dtype=dtype, device=device)
    b = torch.randn(PROBE_SIZE, PROBE_SIZE, dtype=dtype, device=device)
    for _ in range(2):  # warm-up: thread pools, kernels
        a @ b
    _sync(device)
    fastest = float("inf")
    for _ in range(PROBE_TRIALS):
        start = time.perf_counter()
        for _ in range(PROBE_REPEATS):
            a @ b
        _sync(device)
        fastest = min(fastest, time.perf_counter() - start)
    return 2 * PROBE_SIZE**3 * PROBE_REPEATS / fastest / 1e12


def _sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()
