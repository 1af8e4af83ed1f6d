"""Benchmark: the server's batching. The same requests, sent by 16 concurrent clients and
then one at a time, through the real server and the official openai client, in one run.

Prints completion tokens per second and requests per second of both, the ratio (batching's
gain), and p50/p95 latency of each. Greedy decoding and a fixed max_tokens, so both runs
generate the same tokens. Results also go to bench/results/serve.json.

    .venv/bin/python bench/serve.py [--requests 32] [--clients 16] [--max-tokens 32] [--threads N] [--tiny]

--tiny uses a randomly initialised two-layer model instead of SmolLM2-135M-Instruct (a
check that the benchmark runs, not a measurement). On a CPU shared with other work the
numbers are noisy: compare the two runs of one invocation, not runs across invocations.
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
    def one(prompt: str) -> tuple[float, int]:
        start = time.perf_counter()
        reply = client.chat.completions.create(model=model, messages=[{"role": "user", "content": prompt}],
                                               temperature=0, max_tokens=max_tokens)
        return time.perf_counter() - start, reply.usage.completion_tokens

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(one, prompts))
    wall_s = time.perf_counter() - start
    latencies = sorted(r[0] for r in results)
    tokens = sum(r[1] for r in results)
    return {
        "clients": clients, "requests": len(prompts), "completion_tokens": tokens, "wall_s": round(wall_s, 3),
        "tokens_per_s": round(tokens / wall_s, 2), "requests_per_s": round(len(prompts) / wall_s, 3),
        "latency_p50_s": round(statistics.median(latencies), 3),
        "latency_p95_s": round(latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for generation (default: torch's)")
    parser.add_argument("--tiny", action="store_true", help="a random tiny model: checks the benchmark runs")
    args = parser.parse_args()

    import openai
    import torch

    from tunesmith.models.catalog import DEFAULT_BASE_MODEL
    from tunesmith.serve import serve_in_background

    prompts = ticket_prompts(args.requests)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("TUNESMITH_HOME", str(Path(tmp) / "home"))  # the request log of this run only
        model = tiny_model(Path(tmp) / "tiny") if args.tiny else DEFAULT_BASE_MODEL
        with serve_in_background([model], max_batch_size=args.clients, log_requests=False,
                                 threads=args.threads) as url:
            client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=600)
            run(client, model, prompts[:2], 1, 4)  # warm-up: load the model
            concurrent = run(client, model, prompts, args.clients, args.max_tokens)
            sequential = run(client, model, prompts, 1, args.max_tokens)

    ratio = concurrent["tokens_per_s"] / sequential["tokens_per_s"]
    result = {
        "model": "tiny (random)" if args.tiny else DEFAULT_BASE_MODEL, "max_tokens": args.max_tokens,
        "concurrent": concurrent, "sequential": sequential, "throughput_ratio": round(ratio, 2),
        "torch_threads": torch.get_num_threads(),  # as the server left it
        "cpu": platform.processor() or platform.machine(),
        "python": sys.version.split()[0], "torch": torch.__version__,
    }
    for name in ("concurrent", "sequential"):
        r = result[name]
        print(f"{name:10} {r['clients']:>2} client(s): {r['tokens_per_s']:8.1f} tokens/s, {r['requests_per_s']:6.2f} "
              f"requests/s, latency p50 {r['latency_p50_s']:.2f} s, p95 {r['latency_p95_s']:.2f} s "
              f"({r['completion_tokens']} tokens in {r['wall_s']:.1f} s)")
    print(f"batching gain: {ratio:.2f}x the sequential throughput (target: at least 3x)")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    from tunesmith.fileio import atomic_write_text

    atomic_write_text(RESULTS, json.dumps(result, indent=2) + "\n")
    print(f"results: {RESULTS}")


if __name__ == "__main__":
    main()
