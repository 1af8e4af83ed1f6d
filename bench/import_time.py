"""How long the public API takes to import, against a bare interpreter, in fresh processes.

    python bench/import_time.py [--runs 9]

Four cases, each timed inside a new interpreter (the median of --runs): every public name
(`getattr(tunesmith, name)` for all of `__all__`), the four a notebook starts with, `import
tunesmith` alone, and `tunesmith --help` as a whole process. The baseline is the same interpreter
running `pass`, so the ratio shows what tunesmith adds. The target is under 0.3 s for all names.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from tunesmith.hardware import cpu_flags

CASES = {
    "all public names": "import tunesmith\nfor name in tunesmith.__all__: getattr(tunesmith, name)",
    "check, prepare, train, evaluate": "from tunesmith import check, prepare, train, evaluate",
    "import tunesmith": "import tunesmith",
}
TIMED = "import time\nstart = time.perf_counter()\n{code}\nprint(time.perf_counter() - start)"


def inside(code: str, runs: int) -> float:
    """Median seconds that `code` takes inside a fresh interpreter (its start-up not counted)."""
    script = TIMED.format(code=code)
    return statistics.median(float(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                                  check=True).stdout) for _ in range(runs))


def whole(command: list[str], runs: int) -> float:
    """Median wall seconds of a whole process."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    subprocess.run([sys.executable, "-c", CASES["all public names"]], check=True)  # bytecode written, caches warm
    print(f"CPU flags: {' '.join(cpu_flags())}; {args.runs} fresh interpreters per case, medians")
    for name, code in CASES.items():
        print(f"{name:34s} {inside(code, args.runs):6.3f} s")
    tunesmith = str(Path(sys.executable).with_name("tunesmith"))
    bare, cli = whole([sys.executable, "-c", "pass"], args.runs), whole([tunesmith, "--help"], args.runs)
    print(f"{'bare interpreter (baseline)':34s} {bare:6.3f} s  (whole process)")
    print(f"{'tunesmith --help':34s} {cli:6.3f} s  (whole process, {cli / bare:.1f}x the baseline)")


if __name__ == "__main__":
    main()
