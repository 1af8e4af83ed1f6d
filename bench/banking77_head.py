"""Issue 19's "head vs generation" experiment: the embedded SmolLM2-135M-Instruct with a
classification head (a linear layer on the last token's hidden state, 77 outputs) and LoRA,
trained on the same Banking77 10-shot split as the generative recipe, with the same budget
(epochs, batch size, learning rate, LoRA rank), and scored on the same 770 held-out messages.

    python bench/banking77.py sample b77                  # once: the 10-shot split
    tunesmith data prepare b77/train770.jsonl --out b77/prepared --validation 0.1 --test 0
    python bench/banking77_head.py b77 [--epochs 4] [--learning-rate 5e-4] [--rank 16]

Prints validation accuracy after each epoch (the best epoch's weights are kept, as
`--select-by accuracy` does for generation), then test accuracy with a 95% Wilson interval,
the training time and the CPU flags. Results go to bench/results/banking77_head.json. An
experiment, not a recipe: tunesmith trains and serves generation only (docs/output-spaces.md)."""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
RESULTS = Path(__file__).resolve().parent / "results" / "banking77_head.json"


def read_prepared(path: Path) -> list[tuple[str, str]]:
    """(message, intent) of each canonical record of a prepared split."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [(r["turns"][0]["text"], r["turns"][1]["text"]) for r in rows]


def read_pairs(path: Path) -> list[tuple[str, str]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [(r["input_text"], r["output_text"]) for r in rows]


def wilson(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="the folder of bench/banking77.py sample (with prepared/)")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--learning-rate", type=float, default=5e-4)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, help="the first N of each split only (a check that it runs)")
    args = parser.parse_args()

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, get_linear_schedule_with_warmup

    from tunesmith.hardware import cpu_flags, cpu_has_bf16
    from tunesmith.models.catalog import DEFAULT_BASE_MODEL
    from tunesmith.models.embedded import model_dir

    train = read_prepared(args.folder / "prepared" / "train.jsonl")
    validation = read_prepared(args.folder / "prepared" / "validation.jsonl")
    test = read_pairs(args.folder / "test770.jsonl")
    if args.limit:
        train, validation, test = train[: args.limit], validation[: args.limit], test[: args.limit]
    labels = sorted({label for _, label in train + validation})
    index = {label: i for i, label in enumerate(labels)}
    unseen = sum(label not in index for _, label in test)

    random.seed(args.seed)
    torch.manual_seed(args.seed)
    folder = str(model_dir(DEFAULT_BASE_MODEL))
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.padding_side = "right"  # the head reads the last non-pad token (config.pad_token_id)
    model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=len(labels), dtype=torch.float32)
    model.config.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    tokenizer.pad_token_id = model.config.pad_token_id
    model = get_peft_model(model, LoraConfig(task_type="SEQ_CLS", r=args.rank, lora_alpha=2 * args.rank,
                                             lora_dropout=0.05, target_modules="all-linear"))
    bf16 = cpu_has_bf16()

    def batches(rows, shuffle):
        order = list(range(len(rows)))
        if shuffle:
            random.shuffle(order)
        for start in range(0, len(order), args.batch_size):
            chunk = [rows[i] for i in order[start:start + args.batch_size]]
            encoded = tokenizer([text for text, _ in chunk], padding=True, truncation=True, max_length=128,
                                return_tensors="pt")
            yield encoded, [label for _, label in chunk]

    def accuracy(rows) -> tuple[int, int]:
        model.eval()
        right = 0
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            for encoded, gold in batches(rows, shuffle=False):
                predicted = model(**encoded).logits.argmax(-1).tolist()
                right += sum(labels[p] == g for p, g in zip(predicted, gold))
        model.train()
        return right, len(rows)

    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.learning_rate)
    steps = args.epochs * math.ceil(len(train) / args.batch_size)
    schedule = get_linear_schedule_with_warmup(optimizer, math.ceil(0.03 * steps), steps)
    best, best_state, history = -1, None, []
    started = time.perf_counter()
    model.train()
    for epoch in range(1, args.epochs + 1):
        for encoded, gold in batches(train, shuffle=True):
            target = torch.tensor([index[g] for g in gold])
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                logits = model(**encoded).logits
            loss = torch.nn.functional.cross_entropy(logits.float(), target)
            loss.backward()
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
        right, n = accuracy(validation)
        history.append({"epoch": epoch, "validation_accuracy": right / n, "seconds": time.perf_counter() - started})
        print(f"epoch {epoch}: validation accuracy {right}/{n} = {right / n:.1%} "
              f"({time.perf_counter() - started:.0f} s)", flush=True)
        if right > best:
            best = right
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items() if "lora_" in k or "score" in k}
    train_seconds = time.perf_counter() - started
    model.load_state_dict(best_state, strict=False)
    right, n = accuracy(test)
    low, high = wilson(right, n)
    print(f"test: {right}/{n} = {right / n:.1%} (95% CI {low:.1%}-{high:.1%}); {unseen} test intents unseen in "
          f"training; trained in {train_seconds:.0f} s; CPU flags: {' '.join(cpu_flags())}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({
        "task": "banking77 10-shot", "recipe": "classification head + LoRA", "train": len(train),
        "validation": len(validation), "test": n, "labels": len(labels), "epochs": args.epochs,
        "learning_rate": args.learning_rate, "rank": args.rank, "batch_size": args.batch_size, "bf16": bf16,
        "history": history, "test_accuracy": right / n, "test_interval": [low, high],
        "train_seconds": round(train_seconds, 1), "torch_threads": torch.get_num_threads(),
        "cpu_flags": cpu_flags(), "machine": platform.machine()}, indent=2) + "\n")


if __name__ == "__main__":
    main()
