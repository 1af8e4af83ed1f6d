"""Lighter weights on a CPU (`--weights` of eval and serve): speed and quality cost of bf16 and
int8 against float32, in one run on the same prompts.

    speed    the median time of one decoding step (a KV cache of ~100 tokens) for 1 and 16 rows
    quality  the share of greedy answers identical to float32's (same batches, same padding):
             the base model on Banking77 test messages; with --adapter, a LoRA tuned on the demo
             tickets on a prepared test split (--data), with the task metric (template fields)

    PYTHONPATH=src python bench/int8.py [--prompts 32] [--adapter RUN/adapter --data PREPARED]

Writes bench/results/int8.json and prints the ratios and the CPU's flags."""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import time
from pathlib import Path

from tunesmith.hardware import cpu_flags

RESULTS = Path(__file__).parent / "results" / "int8.json"
BANKING77 = Path(__file__).resolve().parents[2] / "shared" / "data" / "banking77" / "test.csv"
WEIGHTS = ("fp32", "bf16", "int8")


def step_ms(model, rows: int, context: int = 100, steps: int = 8) -> float:
    import torch
    from transformers import DynamicCache

    ids = torch.randint(100, 20000, (rows, context))
    cache = DynamicCache(config=model.config)  # grown in place by each forward step, as in models/decoding.py
    with torch.inference_mode():
        token = model(ids, cache=cache, use_cache=True).logits[:, -1:].argmax(-1)
        times = []
        for _ in range(steps):
            start = time.perf_counter()
            token = model(token, cache=cache, use_cache=True).logits[:, -1:].argmax(-1)
            times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def banking77_prompts(tokenizer, n: int) -> list[str]:
    from tunesmith.data.example import Example, Turn
    from tunesmith.models.chat import render_prompt

    with open(BANKING77, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))[:n]
    return [render_prompt(Example(turns=[Turn("user", row["text"])]), tokenizer) for row in rows]


def tuned_set(data: Path, tokenizer, n: int) -> tuple[list[str], list[str]]:
    from tunesmith.data.dataset import load_dataset
    from tunesmith.models.chat import render_prompt

    examples = load_dataset([data]).split("test")[:n]
    return [render_prompt(e, tokenizer) for e in examples], [e.turns[-1].text for e in examples]


def main() -> int:
    import torch
    from peft import PeftModel

    from tunesmith.evaluate.metrics import choose_scorer, score_all
    from tunesmith.models.generate import generate_greedy
    from tunesmith.models.loading import load_for_inference, load_tokenizer

    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=24)
    parser.add_argument("--adapter", type=Path, help="a LoRA adapter tuned on --data (e.g. a demo run's adapter/)")
    parser.add_argument("--data", type=Path, help="the prepared folder the adapter was tuned on (its test split)")
    args = parser.parse_args()

    base = "smollm2-135m-instruct"
    tokenizer = load_tokenizer(base)
    prompts = banking77_prompts(tokenizer, args.prompts)
    tuned = tuned_set(args.data, tokenizer, args.prompts) if args.adapter and args.data else None
    results: dict = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
                     "cpu_flags": cpu_flags(), "threads": torch.get_num_threads(), "prompts": len(prompts),
                     "max_new_tokens": args.max_new_tokens, "weights": {}}
    answers, tuned_answers = {}, {}
    for weights in WEIGHTS:
        model = load_for_inference(base, "cpu", weights)
        row = {"step_ms_1_row": round(step_ms(model, 1), 1), "step_ms_16_rows": round(step_ms(model, 16), 1)}
        answers[weights] = generate_greedy(model, tokenizer, prompts, args.max_new_tokens)
        if tuned:
            adapted = PeftModel.from_pretrained(model, str(args.adapter)).eval()
            tuned_answers[weights] = generate_greedy(adapted, tokenizer, tuned[0], args.max_new_tokens)
        results["weights"][weights] = row
        print(weights, row, flush=True)
        del model
    for weights, row in results["weights"].items():
        fp32 = results["weights"]["fp32"]
        row["speedup_1_row"] = round(fp32["step_ms_1_row"] / row["step_ms_1_row"], 2)
        row["speedup_16_rows"] = round(fp32["step_ms_16_rows"] / row["step_ms_16_rows"], 2)
        row["base_identical_to_fp32"] = round(sum(a == b for a, b in zip(answers[weights], answers["fp32"]))
                                              / len(prompts), 3)
        if tuned:
            outputs, references = tuned_answers[weights], tuned[1]
            row["tuned_identical_to_fp32"] = round(sum(a == b for a, b in zip(outputs, tuned_answers["fp32"]))
                                                   / len(outputs), 3)
            scores = score_all(choose_scorer(references), outputs, references)
            numeric = {k for s in scores for k, v in s.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
            row["tuned_task_metrics"] = {k: round(statistics.mean(s[k] for s in scores if k in s), 3) for k in sorted(numeric)}
    print(json.dumps(results, indent=2))
    for weights, row in results["weights"].items():
        print(f"{weights}: decode step {row['step_ms_1_row']} ms (1 row, {row['speedup_1_row']}x fp32), "
              f"{row['step_ms_16_rows']} ms (16 rows, {row['speedup_16_rows']}x); base answers identical to fp32: "
              f"{row['base_identical_to_fp32']:.0%}"
              + (f"; tuned: {row['tuned_identical_to_fp32']:.0%}, task {row['tuned_task_metrics']}" if tuned else ""))
    print("CPU flags:", " ".join(results["cpu_flags"]))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
