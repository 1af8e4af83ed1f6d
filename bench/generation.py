"""Benchmark: tunesmith's evaluation generation (greedy, continuous batching over a KV cache,
prompts in order of length) against two baselines in one run, same model
(SmolLM2-135M-Instruct), prompts and token limit: a naive loop that calls `generate` on one
prompt at a time, and the static batches evaluation used before (one `generate` call per
batch of prompts sorted by length).

Prints examples per second of each, the ratios, and how often they give the same answer
(greedy decoding in a padded batch can flip a near-tie). Results also go to
bench/results/generation.json. On a shared CPU the numbers move from run to run.

    .venv/bin/python bench/generation.py [--prompts 48] [--batch-size 16] [--max-new-tokens 48]

With --constrained: free batched decoding against the same decoding held to the tickets'
learned output space (models/constrain.py: a "Category/Priority/Action" template, two closed
fields and a free one) and to a label set (Banking77's 77 intents when ../shared/data is here,
else the tickets' categories), same prompts, same run; prints the cost of each constraint as
a ratio (issue 19 allows at most 15%). The constraint's one-time costs (the vocabulary trie,
the first visit of each state) are paid in a warm-up, as a server or a long evaluation pays
them once; they are reported apart. A label set is not decoded but answered by scoring every
label (models/label_scoring.py): for it the ratio is its time over free decoding's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tunesmith.hardware import cpu_flags  # noqa: E402 - after the environment is set

RESULTS = Path(__file__).resolve().parent / "results" / "generation.json"


def test_prompts(n: int) -> list:
    """The sealed test split of freshly prepared support tickets: held-out prompts as `tunesmith eval` sees them."""
    from tunesmith.data.dataset import load_dataset
    from tunesmith.data.prepare import PrepareOptions, prepare
    from tunesmith.examples.tickets import write_tickets

    folder = Path(tempfile.mkdtemp(prefix="bench-generation-"))
    write_tickets(folder / "tickets.jsonl", n=max(4 * n, 200), seed=5)
    prepare([folder / "tickets.jsonl"], folder / "prepared",
            PrepareOptions(dedupe=True, drop_conflicts=True, enforce_template=True, test=0.3, seed=0))
    return load_dataset([folder / "prepared"]).split("test")[:n]


def static(model, tokenizer, prompts: list[str], max_new_tokens: int, batch_size: int, stop_ids: list[int]) -> list[str]:
    """tunesmith's evaluation before continuous batching: prompts sorted by length, one
    transformers `generate` call per batch, every row decoding until the batch's longest ends."""
    import torch

    from tunesmith.models.chat import left_padded

    encoded = tokenizer(prompts, add_special_tokens=False)["input_ids"]
    order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))
    answers = [""] * len(prompts)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            input_ids, mask = left_padded([encoded[i] for i in rows], tokenizer.pad_token_id)
            out = model.generate(input_ids=input_ids, attention_mask=mask, max_new_tokens=max_new_tokens,
                                 do_sample=False, eos_token_id=stop_ids, pad_token_id=tokenizer.pad_token_id)
            for row, sequence in zip(rows, out[:, input_ids.shape[1]:].tolist()):
                end = next((k for k, t in enumerate(sequence) if t in stop_ids), len(sequence))
                answers[row] = tokenizer.decode(sequence[:end], skip_special_tokens=True).strip()
    return answers


def naive(model, tokenizer, prompts: list[str], max_new_tokens: int, stop_ids: list[int]) -> list[str]:
    """What a first evaluation script does: one prompt, one `generate` call, at a time."""
    import torch

    answers = []
    with torch.inference_mode():
        for prompt in prompts:
            inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
            out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=stop_ids,
                                 pad_token_id=tokenizer.pad_token_id)
            answers.append(tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True).strip())
    return answers



def constrained(args, model, tokenizer, prompts: list[str], outputs: list[str]) -> int:
    import torch

    from tunesmith.data.output_space import OutputSpace, learn_output_space
    from tunesmith.models.constrain import space_segments
    from tunesmith.models.generate import generate_greedy

    template = learn_output_space(outputs)
    banking = Path(__file__).resolve().parents[2] / "shared" / "data" / "banking77" / "categories.json"
    labels = json.loads(banking.read_text()) if banking.is_file() else sorted({o.split("\n")[0] for o in outputs})
    spaces = {"template": template, "labels": OutputSpace("labels", labels=tuple(labels))}
    results = {"model": "smollm2-135m-instruct (float32)", "prompts": len(prompts), "batch_size": args.batch_size,
               "max_new_tokens": args.max_new_tokens, "cpu_flags": " ".join(cpu_flags()),
               "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                           "platform": platform.platform(), "torch": torch.__version__}}

    # The constraint's own time: every mask and advance of a row's RowState, timed. On a shared CPU two
    # whole runs differ by more than the constraint costs, and a constrained answer is shorter or
    # longer than the free one, so the cost is also taken as the processor's share of its run.
    from tunesmith.models import constrain

    spent = {"s": 0.0}

    def timed(method):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                spent["s"] += time.perf_counter() - start
        return wrapper

    constrain.RowState.mask = timed(constrain.RowState.mask)
    constrain.RowState.advance = timed(constrain.RowState.advance)

    def run(segments):
        spent["s"] = 0.0
        start = time.perf_counter()
        out = generate_greedy(model, tokenizer, prompts, args.max_new_tokens, batch_size=args.batch_size,
                              constraints=None if segments is None else [segments] * len(prompts))
        return time.perf_counter() - start, out

    for name, space in spaces.items():
        segments = space_segments(space)
        warm_s, _ = run(segments)  # compiles the constraint and visits its states once
        free_s, free = run(None)  # the baseline, in the same run, right beside the constrained one
        held_s, held = run(segments)
        processor_s = spent["s"]
        tokens = sum(len(tokenizer(a, add_special_tokens=False)["input_ids"]) + 1 for a in held)
        free_tokens = sum(len(tokenizer(a, add_special_tokens=False)["input_ids"]) + 1 for a in free)
        results[name] = {
            "space": space.describe(),
            "free": {"seconds": round(free_s, 2), "tokens": free_tokens, "tokens_per_s": round(free_tokens / free_s, 2),
                     "valid": sum(space.contains(a) for a in free)},
            "constrained": {"seconds": round(held_s, 2), "tokens": tokens, "tokens_per_s": round(tokens / held_s, 2),
                            "valid": sum(space.contains(a) for a in held), "first_run_seconds": round(warm_s, 2)},
            # Per token: a constrained answer can be shorter or longer than the free one.
            "cost_per_token": round((held_s / tokens) / (free_s / free_tokens) - 1, 3),
            # What the constraint adds to the decoding it is part of: its processor's time over the rest.
            "processor_seconds": round(processor_s, 3),
            "constraint_cost": round(processor_s / (held_s - processor_s), 4),
        }
        r = results[name]
        if name == "labels":  # scored, not decoded: no per-token constraint to time
            r["scored_over_free"] = round(held_s / free_s, 3)
            print(f"labels ({r['space']}), answered by scoring every label: {held_s:.1f} s against {free_s:.1f} s for "
                  f"free decoding ({r['scored_over_free']:.2f}x); valid {r['free']['valid']}/{len(prompts)} free, "
                  f"{r['constrained']['valid']}/{len(prompts)} scored")
            continue
        print(f"{name} ({r['space']}): free {r['free']['tokens_per_s']} tokens/s, constrained "
              f"{r['constrained']['tokens_per_s']} tokens/s: cost per token {r['cost_per_token']:+.1%}; the constraint's "
              f"own time {r['processor_seconds']} s = {r['constraint_cost']:+.1%} of the rest of its run; valid "
              f"{r['free']['valid']}/{len(prompts)} free, {r['constrained']['valid']}/{len(prompts)} constrained")
    print(f"CPU flags: {results['cpu_flags']}")
    out = RESULTS.with_name("generation_constrained.json")
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


def main() -> int:
    import torch

    from tunesmith.models.chat import render_prompt, stop_token_ids
    from tunesmith.models.generate import generate_greedy
    from tunesmith.models.loading import load_model, load_tokenizer

    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--constrained", action="store_true", help="free against constrained decoding")
    args = parser.parse_args()

    tokenizer = load_tokenizer("smollm2-135m-instruct")
    model = load_model("smollm2-135m-instruct")
    examples = test_prompts(args.prompts)
    prompts = [render_prompt(ex, tokenizer) for ex in examples]
    if args.constrained:
        return constrained(args, model, tokenizer, prompts, [ex.output_text for ex in examples])
    stop_ids = stop_token_ids(tokenizer)
    naive(model, tokenizer, prompts[:1], 4, stop_ids)  # warm-up: first-call allocations out of the timings
    generate_greedy(model, tokenizer, prompts[:2], 4, batch_size=2)

    start = time.perf_counter()
    baseline = naive(model, tokenizer, prompts, args.max_new_tokens, stop_ids)
    naive_s = time.perf_counter() - start
    start = time.perf_counter()
    before = static(model, tokenizer, prompts, args.max_new_tokens, args.batch_size, stop_ids)
    static_s = time.perf_counter() - start
    start = time.perf_counter()
    batched = generate_greedy(model, tokenizer, prompts, args.max_new_tokens, batch_size=args.batch_size)
    batched_s = time.perf_counter() - start

    agreement = sum(a == b for a, b in zip(baseline, batched)) / len(prompts)
    agreement_static = sum(a == b for a, b in zip(before, batched)) / len(prompts)
    results = {
        "model": "smollm2-135m-instruct (float32)",
        "prompts": len(prompts),
        "max_new_tokens": args.max_new_tokens,
        "batch_size": args.batch_size,
        "naive": {"seconds": round(naive_s, 2), "examples_per_s": round(len(prompts) / naive_s, 3)},
        "static_batches": {"seconds": round(static_s, 2), "examples_per_s": round(len(prompts) / static_s, 3)},
        "tunesmith": {"seconds": round(batched_s, 2), "examples_per_s": round(len(prompts) / batched_s, 3)},
        "speedup": round(naive_s / batched_s, 2),
        "speedup_over_static_batches": round(static_s / batched_s, 2),
        "same_answers": round(agreement, 3),
        "same_answers_as_static_batches": round(agreement_static, 3),
        "cpu_flags": " ".join(cpu_flags()),
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "platform": platform.platform(),
                    "python": sys.version.split()[0], "torch": torch.__version__},
    }
    print(json.dumps(results, indent=2))
    print(f"tunesmith {results['tunesmith']['examples_per_s']} examples/s vs naive "
          f"{results['naive']['examples_per_s']} examples/s: {results['speedup']}x; "
          f"same answers on {agreement:.0%} of {len(prompts)} prompts")
    print(f"continuous batching {results['tunesmith']['examples_per_s']} examples/s vs static batches (the previous "
          f"evaluation) {results['static_batches']['examples_per_s']}: {results['speedup_over_static_batches']}x; "
          f"same answers on {agreement_static:.0%}; CPU flags: {' '.join(cpu_flags())}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
