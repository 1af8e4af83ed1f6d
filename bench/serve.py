"""Benchmark: tunesmith's serving engine against llama.cpp's `llama-server` on the same model
and prompts, in one run. Each engine is sent the same requests by 16 concurrent clients and
then by one client at a time, through the official openai client, streaming.

Prints per engine and load: completion tokens/s, p50/p95 latency, p50 time to first token,
the fraction of the compute roofline reached (2 x parameters FLOP per token against this
machine's measured matmul peak in the serving dtype), and the ratios tunesmith/llama.cpp.
Greedy decoding and a fixed max_tokens. Results go to bench/results/serve.json.

    .venv/bin/python bench/serve.py [--llama-server PATH] [--requests 32] [--clients 16]
                                    [--max-tokens 32] [--threads N] [--tiny]

Three engines when --llama-server is given: tunesmith's built-in engine (the same weights,
de-quantized, in bf16 where the CPU has native bf16, fp32 otherwise), tunesmith's server with
llama.cpp behind it (`--engine llama.cpp`), and llama-server alone on the embedded model's own
GGUF file (Q4_1), continuous batching with `--parallel CLIENTS`. Without it only the
built-in engine is measured.
--tiny uses a randomly initialised two-layer model (a check that the benchmark runs, not a
measurement). On a CPU shared with other work compare within one invocation only.

`ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2` in front of it stands
in for an AVX2-only CPU (docs/serving.md, "llama.cpp", says how and what it leaves out).
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

os.environ.setdefault("HF_HUB_OFFLINE", "1")

RESULTS = Path(__file__).resolve().parent / "results" / "serve.json"


def ticket_prompts(n: int) -> list[str]:
    """Support tickets from the bundled generator: realistic prompts of varied length."""
    from tunesmith.examples.tickets import MIN_TICKETS, generate_tickets

    records = generate_tickets(n=max(n, MIN_TICKETS), seed=5).records
    return [f"Classify this support ticket.\n\n{r['input_text']}" for r in records[:n]]


def tiny_model(folder: Path) -> str:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from tunesmith.models.catalog import DEFAULT_BASE_MODEL
    from tunesmith.models.embedded import tokenizer_dir

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir(DEFAULT_BASE_MODEL)))
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, intermediate_size=128, tie_word_embeddings=True,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return str(folder)


def run(client, model: str, prompts: list[str], clients: int, max_tokens: int) -> dict:
    def one(prompt: str) -> tuple[float, float, int, str]:
        start = time.perf_counter()
        first = None
        tokens = 0
        text = ""
        stream = client.chat.completions.create(model=model, messages=[{"role": "user", "content": prompt}],
                                                temperature=0, max_tokens=max_tokens, stream=True,
                                                stream_options={"include_usage": True})
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                first = first if first is not None else time.perf_counter() - start
                text += chunk.choices[0].delta.content
            if chunk.usage is not None:
                tokens = chunk.usage.completion_tokens
        total = time.perf_counter() - start
        return total, first if first is not None else total, tokens, text

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(one, prompts))
    wall_s = time.perf_counter() - start
    latencies = sorted(r[0] for r in results)
    tokens = sum(r[2] for r in results)
    return {
        "clients": clients, "requests": len(prompts), "completion_tokens": tokens, "wall_s": round(wall_s, 3),
        "tokens_per_s": round(tokens / wall_s, 2),
        "latency_p50_s": round(statistics.median(latencies), 3),
        "latency_p95_s": round(latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))], 3),
        "first_token_p50_s": round(statistics.median(r[1] for r in results), 3),
        "answers": [r[3] for r in results],
    }


def measure(url: str, model: str, prompts: list[str], clients: int, max_tokens: int) -> dict:
    import openai

    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=600)
    run(client, model, prompts[:2], 1, 4)  # warm-up: load the model, fill the thread pools
    return {"concurrent": run(client, model, prompts, clients, max_tokens),
            "sequential": run(client, model, prompts, 1, max_tokens)}


def roofline(tokens_per_s: float, parameters: int, peak_tflops: float) -> float:
    """The share of the matmul peak that decoding reached: each token costs ~2 FLOP per parameter."""
    return tokens_per_s * 2 * parameters / (peak_tflops * 1e12)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llama-server", help="path of llama.cpp's llama-server binary, to compare against")
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for generation (default: torch's)")
    parser.add_argument("--tiny", action="store_true", help="a random tiny model: checks the benchmark runs")
    args = parser.parse_args()

    import torch

    from tunesmith.hardware import cpu_flags, inference_dtype, matmul_peak_tflops
    from tunesmith.models.catalog import DEFAULT_BASE_MODEL
    from tunesmith.models.embedded import gguf_path
    from tunesmith.models.llama_server import LlamaServer
    from tunesmith.serve import serve_in_background

    threads = args.threads or torch.get_num_threads()
    prompts = ticket_prompts(args.requests)
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("TUNESMITH_HOME", str(Path(tmp) / "home"))  # the request log of this run only
        model = tiny_model(Path(tmp) / "tiny") if args.tiny else DEFAULT_BASE_MODEL
        with serve_in_background([model], max_batch_size=args.clients, log_requests=False, threads=threads) as url:
            results["tunesmith"] = measure(url, model, prompts, args.clients, args.max_tokens)
        if args.llama_server and not args.tiny:
            # tunesmith's server with llama.cpp behind it (--engine llama.cpp), then llama-server alone.
            with serve_in_background([model], max_batch_size=args.clients, log_requests=False, threads=threads,
                                     engine="llama.cpp", llama_server=args.llama_server) as url:
                results["tunesmith+llama.cpp"] = measure(url, model, prompts, args.clients, args.max_tokens)
            with LlamaServer(args.llama_server, gguf_path(DEFAULT_BASE_MODEL), parallel=args.clients,
                             threads=threads, context_per_slot=1024) as server:
                results["llama.cpp"] = measure(server.url, model, prompts, args.clients, args.max_tokens)

    from tunesmith.models.loading import load_model

    parameters = sum(p.numel() for p in load_model(model, dtype=torch.float32, device="cpu").parameters()) \
        if not args.tiny else 0
    dtype = inference_dtype("cpu")
    peak = matmul_peak_tflops(getattr(torch, dtype))
    for engine, loads in results.items():
        for name, r in loads.items():
            if parameters:
                r["roofline_fraction"] = round(roofline(r["tokens_per_s"], parameters, peak), 3)
            print(f"{engine:19} {r['clients']:>2} client(s): {r['tokens_per_s']:7.1f} tokens/s, latency p50 "
                  f"{r['latency_p50_s']:.2f} s, p95 {r['latency_p95_s']:.2f} s, first token p50 "
                  f"{r['first_token_p50_s']:.2f} s, {r.get('roofline_fraction', 0):.1%} of the roofline "
                  f"({r['completion_tokens']} tokens in {r['wall_s']:.1f} s)")
    ours = results["tunesmith"]
    ratios = {"batching_gain": round(ours["concurrent"]["tokens_per_s"] / ours["sequential"]["tokens_per_s"], 2)}
    print(f"tunesmith's batching gain: {ratios['batching_gain']:.2f}x its one-client throughput")
    if "llama.cpp" in results:
        theirs = results["llama.cpp"]
        for engine in ("tunesmith", "tunesmith+llama.cpp"):
            ours = results[engine]
            key = engine.replace("+", "_with_").replace(".", "_")
            ratios[f"{key}_concurrent_tokens_per_s_vs_llama_cpp"] = tokens = round(
                ours["concurrent"]["tokens_per_s"] / theirs["concurrent"]["tokens_per_s"], 2)
            ratios[f"{key}_sequential_latency_vs_llama_cpp"] = latency = round(
                ours["sequential"]["latency_p50_s"] / theirs["sequential"]["latency_p50_s"], 2)
            same = [a == b for a, b in zip(ours["sequential"]["answers"], theirs["sequential"]["answers"])]
            ratios[f"{key}_identical_answers_vs_llama_cpp"] = round(sum(same) / len(same), 3)
            print(f"{engine} / llama.cpp: {tokens:.2f}x the tokens/s at {args.clients} clients (target >= 1), "
                  f"{latency:.2f}x the p50 latency one client at a time (target <= 1.5); identical greedy answers: "
                  f"{sum(same)} of {len(same)}")
        print("(llama.cpp computes on the GGUF file's 4-bit weights; the built-in engine on them de-quantized)")
    else:
        print("llama.cpp: not measured (pass --llama-server PATH)")
    print(f"machine: {threads} threads, CPU flags: {' '.join(cpu_flags())}; serving dtype {dtype}, "
          f"matmul peak {peak * 1000:.0f} GFLOP/s")
    result = {
        "model": "tiny (random)" if args.tiny else DEFAULT_BASE_MODEL, "max_tokens": args.max_tokens,
        "engines": results, "ratios": ratios, "threads": threads, "cpu_flags": cpu_flags(),
        "serving_dtype": dtype, "matmul_peak_tflops": round(peak, 4),
        "cpu": platform.processor() or platform.machine(),
        "python": sys.version.split()[0], "torch": torch.__version__,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    from tunesmith.fileio import atomic_write_text

    atomic_write_text(RESULTS, json.dumps(result, indent=2) + "\n")
    print(f"results: {RESULTS}")


if __name__ == "__main__":
    main()
