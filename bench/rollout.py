"""Benchmark: what a shadow candidate costs the production caller. The same requests, through the
real server and the official openai client, in one run, to three deployments on one server:

    plain             production only (the baseline)
    shadow-adapter    production + a shadow candidate that is a LoRA adapter on the same base
    shadow-separate   production + a shadow candidate with weights of its own (a second copy of the base)

Prints the callers' p50 and p95 latency of each, the ratios to the baseline, and the CPU flags.
The shadow copy starts once the caller has its answer and yields to callers in the engine
(decoded only while no caller's request waits or runs), so a caller waits at most for one
shadow step; the shadows lag behind instead, and each phase reports how long after its last
caller the last shadow answer was logged ("shadow_lag_s") and how many were skipped. The
baseline runs twice (first and last) to show the noise. Results also go to bench/results/rollout.json.

    .venv/bin/python bench/rollout.py [--requests 16] [--clients 4] [--max-tokens 16] [--tiny]

--tiny uses a randomly initialised two-layer model (a check that the benchmark runs, not a measurement).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tunesmith.hardware import cpu_flags

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from serve import ticket_prompts, tiny_model  # noqa: E402 - bench/serve.py's helpers

SHADOWED = ("shadow-adapter", "shadow-separate")
RESULTS = Path(__file__).resolve().parent / "results" / "rollout.json"


def random_adapter(base: str, out: Path) -> str:
    """A LoRA adapter with random (not zero) weights on `base`, so the candidate's answers differ."""
    import torch
    from peft import LoraConfig, get_peft_model

    from tunesmith.models.loading import load_model

    torch.manual_seed(1)
    model = load_model(base, dtype="float32", device="cpu")
    config = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(model, config).save_pretrained(str(out))
    return str(out)


def second_copy(base: str, out: Path) -> str:
    """The same weights under another folder: the server loads it as a model of its own."""
    from tunesmith.models.embedded import model_dir, tokenizer_dir

    out.mkdir()
    sources = [Path(base)] if Path(base).is_dir() else [model_dir(base), tokenizer_dir(base)]
    for source in sources:
        for item in source.iterdir():
            if not (out / item.name).exists():
                (out / item.name).symlink_to(item)
    return str(out)


def run(client, deployment: str, prompts: list[str], clients: int, max_tokens: int) -> dict:
    def one(prompt: str) -> float:
        start = time.perf_counter()
        client.chat.completions.create(model=deployment, messages=[{"role": "user", "content": prompt}],
                                       temperature=0, max_tokens=max_tokens)
        return time.perf_counter() - start

    with ThreadPoolExecutor(clients) as pool:
        latencies = sorted(pool.map(one, prompts))
    return {"requests": len(prompts), "latency_p50_s": round(statistics.median(latencies), 4),
            "latency_p95_s": round(latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))], 4)}


def drain(state) -> float:
    """Wait for shadow answers still generating, so one phase's work does not slow the next; the seconds waited."""
    start = time.perf_counter()
    while state.shadow_tasks:
        time.sleep(0.05)
    return round(time.perf_counter() - start, 3)


def skipped(state) -> int:
    """Shadow copies the engine skipped under load (tunesmith_background_skipped_total)."""
    lines = state.metrics.render().splitlines()
    return int(sum(float(line.split()[-1]) for line in lines if line.startswith("tunesmith_background_skipped_total{")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--tiny", action="store_true", help="a random tiny model: checks the benchmark runs")
    args = parser.parse_args()

    import openai
    import torch

    from tunesmith.models.catalog import DEFAULT_BASE_MODEL
    from tunesmith.rollout import create_deployment, start_rollout
    from tunesmith.serve import ServeConfig
    from tunesmith.serve.app import create_app
    from tunesmith.serve.server import run_in_thread
    from tunesmith.store.queries import register_model

    prompts = ticket_prompts(args.requests)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["TUNESMITH_HOME"] = str(Path(tmp) / "home")  # this run's store only
        base = tiny_model(Path(tmp) / "tiny") if args.tiny else DEFAULT_BASE_MODEL
        adapter = register_model(base_model=base, method="lora", spec={}, name="candidate-adapter",
                                 adapter_path=random_adapter(base, Path(tmp) / "adapter"))
        separate = second_copy(base, Path(tmp) / "copy")
        for name, candidate in (("plain", None), ("shadow-adapter", adapter.id), ("shadow-separate", separate)):
            create_deployment(name, base)
            if candidate:
                start_rollout(name, candidate, "shadow")
        phases = {}
        config = ServeConfig(models=[base], max_batch_size=max(args.clients * 2, 2), threads=args.threads)
        app = create_app(config)
        with run_in_thread(app) as url:
            state = app.state.tunesmith
            client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=600)
            for name in ("plain", "shadow-adapter", "shadow-separate"):  # warm-up: load every model
                run(client, name, prompts[:2], 1, 2)
                drain(state)
            for phase in ("plain", "shadow-adapter", "shadow-separate", "plain-again"):
                phases[phase] = run(client, phase.replace("-again", ""), prompts, args.clients, args.max_tokens)
                phases[phase]["shadow_lag_s"] = drain(state)
                phases[phase]["shadows_skipped"] = skipped(state)
        from tunesmith.store.queries import list_served_requests

        shadows = [r for r in list_served_requests() if r.route == "shadow"]

    baseline = statistics.mean([phases["plain"]["latency_p50_s"], phases["plain-again"]["latency_p50_s"]])
    baseline_p95 = statistics.mean([phases["plain"]["latency_p95_s"], phases["plain-again"]["latency_p95_s"]])
    result = {
        "model": "tiny (random)" if args.tiny else DEFAULT_BASE_MODEL, "requests": args.requests,
        "clients": args.clients, "max_tokens": args.max_tokens, "phases": phases,
        "p50_ratio": {k: round(phases[k]["latency_p50_s"] / baseline, 3) for k in SHADOWED},
        "p95_ratio": {k: round(phases[k]["latency_p95_s"] / baseline_p95, 3) for k in SHADOWED},
        "shadow_answers_logged": len(shadows), "torch_threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(), "cpu_flags": " ".join(cpu_flags()),
        "cores": len(os.sched_getaffinity(0)), "python": sys.version.split()[0], "torch": torch.__version__,
    }
    for name, r in phases.items():
        print(f"{name:16} caller latency p50 {r['latency_p50_s']:.3f} s, p95 {r['latency_p95_s']:.3f} s; the last "
              f"shadow answer {r['shadow_lag_s']:.1f} s after the last caller's, {r['shadows_skipped']} skipped so far")
    for name in SHADOWED:
        print(f"{name}: p50 {result['p50_ratio'][name]:.2f}x, p95 {result['p95_ratio'][name]:.2f}x the baseline "
              f"(mean of the two plain runs)")
    print(f"shadow answers logged: {len(shadows)}; {result['cores']} cores usable; CPU flags: {result['cpu_flags']}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    from tunesmith.fileio import atomic_write_text

    atomic_write_text(RESULTS, json.dumps(result, indent=2) + "\n")
    print(f"results: {RESULTS}")


if __name__ == "__main__":
    main()
