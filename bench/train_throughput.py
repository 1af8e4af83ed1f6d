"""Benchmark: tunesmith's LoRA training against TRL's SFTTrainer with a default SFTConfig,
same model (SmolLM2-135M-Instruct), data, LoRA and optimiser hyperparameters, in one run.

Prints trained (non-padding) tokens per second of each, the ratio, the validation loss of
each (computed the same way afterwards: mean loss on the model-turn tokens of the same
validation examples), and the fraction of this CPU's measured matmul peak reached
(about 4·N FLOPs per trained token for LoRA, N = parameters). Since square products run faster
than a small model's skinny ones, it also times one step's own products alone (the ceiling for
these shapes) and prints the fraction of that. Results also go to
bench/results/train_throughput.json.

    .venv/bin/python bench/train_throughput.py [--train 256] [--validation 64] [--seeds 1] [--fp32]

--fp32 trains both in fp32 (tunesmith's precision fp32, TRL's bf16=False): what a CPU without
native bf16 runs. --seeds N repeats both runs with seeds 0..N-1 and prints the validation loss
of each seed, their means and the paired difference: one seed cannot tell a gap from noise.

`ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2` in front of it stands
in for an AVX2-only CPU (docs/serving.md, "llama.cpp", says how and what it leaves out).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

RESULTS = Path(__file__).resolve().parent / "results" / "train_throughput.json"
LORA = {"r": 16, "lora_alpha": 32, "lora_dropout": 0.05, "target_modules": "all-linear"}
HYPER = {"learning_rate": 2e-4, "batch_size": 8, "epochs": 1, "warmup_ratio": 0.03, "max_length": 1024}


def prepare_data(folder: Path, n_train: int, n_validation: int):
    from tunesmith.data.prepare import PrepareOptions, prepare
    from tunesmith.examples.tickets import write_tickets

    raw = folder / "tickets.jsonl"
    write_tickets(raw, n=int((n_train + n_validation) * 1.25) + 50, seed=3)
    share = n_validation / (n_train + n_validation)
    result = prepare([raw], folder / "prepared", PrepareOptions(dedupe=True, drop_conflicts=True, enforce_template=True,
                                                                validation=share, test=0.0, seed=0))
    return result.out_dir


def masked_validation_loss(model, encoded) -> float:
    """Mean cross-entropy over the trained (model-turn) tokens of the validation examples."""
    import torch

    from tunesmith.models.chat import pad_batch

    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(encoded), 8):
            batch = pad_batch(encoded[i:i + 8], pad_id=0)
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
            labels = batch["labels"][:, 1:]
            losses = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), labels, ignore_index=-100,
                                                       reduction="sum")
            total += losses.item()
            count += int((labels != -100).sum())
    return total / count


def step_matmul_gflops(config, tokens: int, trained: int, dtype) -> float:
    """The rate of one LoRA step's own matrix products, run alone: each projection forward and
    its input gradient at `tokens` rows, the vocabulary head at `trained` rows. The ceiling for
    this model's shapes, below the square-matrix peak (skinny products run slower)."""
    import torch

    h, i, kv = config.hidden_size, config.intermediate_size, config.num_key_value_heads * config.head_dim
    layer = [(h, h), (h, kv), (h, kv), (h, h), (h, i), (h, i), (i, h)]  # q k v o gate up down
    shapes = [(tokens, k, n) for k, n in layer] + [(tokens, n, k) for k, n in layer]  # forward, input gradient
    head = [(trained, h, config.vocab_size), (trained, config.vocab_size, h)]
    pairs = [(torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)) for m, k, n in shapes + head]
    flops = 2 * (config.num_hidden_layers * sum(m * k * n for m, k, n in shapes) + sum(m * k * n for m, k, n in head))
    best = float("inf")
    for _ in range(3):  # the best of three: the first also warms the kernels up
        start = time.perf_counter()
        for _ in range(config.num_hidden_layers):
            for a, b in pairs[:len(shapes)]:
                a @ b
        for a, b in pairs[len(shapes):]:
            a @ b
        best = min(best, time.perf_counter() - start)
    return flops / best / 1e9


def run_tunesmith(prepared: Path, home: Path, seed: int, precision: str):
    """tunesmith's own recipe (train.backends.local), timed around trainer.train()."""
    os.environ["TUNESMITH_HOME"] = str(home)
    from tunesmith.train.backends import local
    from tunesmith.train.jobs import create_job
    from tunesmith.train.spec import LocalSpec

    spec = LocalSpec(data=prepared, epochs=HYPER["epochs"], learning_rate=HYPER["learning_rate"],
                     batch_size=HYPER["batch_size"], max_seq_length=HYPER["max_length"], seed=seed, precision=precision,
                     warmup_ratio=HYPER["warmup_ratio"], eval_interval=100_000, checkpoint_interval=100_000,
                     lora={"rank": LORA["r"], "alpha": LORA["lora_alpha"], "dropout": LORA["lora_dropout"]})
    job = create_job(spec)
    from tunesmith.train.recorder import Recorder

    recipe = local.LocalRecipe(spec, Path(job.run_dir), Recorder(job.id, job.run_dir), local._CancelFlag()).setup()
    start = time.perf_counter()
    recipe.trainer.train()
    return recipe.trainer.model, time.perf_counter() - start, recipe.precision


def run_trl_default(prepared: Path, out: Path, seed: int, fp32: bool):
    """TRL's SFTTrainer with a default SFTConfig: conversational prompt-completion data
    (so the loss is on the completion, as in tunesmith), the same hyperparameters; with `fp32`,
    bf16=False (TRL's default is bf16 autocast, emulated and slow on a CPU without native bf16)."""
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    from tunesmith.data.dataset import load_dataset
    from tunesmith.models.loading import load_model, load_tokenizer

    examples = load_dataset([prepared]).split("train")
    rows = {"prompt": [[{"role": "user", "content": ex.input_text}] for ex in examples],
            "completion": [[{"role": "assistant", "content": ex.output_text}] for ex in examples]}
    config = SFTConfig(output_dir=str(out), num_train_epochs=HYPER["epochs"], learning_rate=HYPER["learning_rate"],
                       per_device_train_batch_size=HYPER["batch_size"], warmup_steps=HYPER["warmup_ratio"],
                       seed=seed, max_length=HYPER["max_length"], report_to=[], save_strategy="no",
                       disable_tqdm=True, use_cpu=True, **({"bf16": False} if fp32 else {}))
    trainer = SFTTrainer(model=load_model("smollm2-135m-instruct"), args=config, train_dataset=Dataset.from_dict(rows),
                         processing_class=load_tokenizer("smollm2-135m-instruct"),
                         peft_config=LoraConfig(task_type="CAUSAL_LM", **LORA))
    start = time.perf_counter()
    trainer.train()
    return trainer.model, time.perf_counter() - start


def main() -> int:
    import torch

    parser = argparse.ArgumentParser()
    parser.add_argument("--train", type=int, default=256)
    parser.add_argument("--validation", type=int, default=64)
    parser.add_argument("--seeds", type=int, default=1, help="repeat both runs with seeds 0..N-1")
    parser.add_argument("--fp32", action="store_true", help="both in fp32, as on a CPU without native bf16")
    args = parser.parse_args()

    from tunesmith.data.dataset import load_dataset
    from tunesmith.hardware import cpu_flags, cpu_has_bf16, matmul_peak_tflops
    from tunesmith.models.chat import encode_dataset
    from tunesmith.models.loading import load_tokenizer

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        prepared = prepare_data(folder, args.train, args.validation)
        dataset = load_dataset([prepared])
        tokenizer = load_tokenizer("smollm2-135m-instruct")
        encoded = encode_dataset(dataset.split("train"), tokenizer, 1024)
        train_tokens = sum(len(e.input_ids) for e in encoded)
        trained_tokens = sum(e.trained_tokens for e in encoded)
        validation = encode_dataset(dataset.split("validation"), tokenizer, 1024)
        # The probe keeps its fastest trial: this CPU's matmul rate varies from run to run (by 2x for
        # bf16 here). Only the precisions this CPU runs natively: without AVX-512 BF16 or AMX, bf16
        # products are emulated (about 1.3 GFLOP/s on a two-core AVX2 machine), and probing them would
        # take minutes to measure a precision no run here would choose.
        native = [("fp32", torch.float32)] + ([("bf16", torch.bfloat16)] if cpu_has_bf16() else [])
        peaks = {name: 1000 * matmul_peak_tflops(dtype) for name, dtype in native}

        runs = []
        for seed in range(args.seeds):
            ours, ours_s, precision = run_tunesmith(prepared, folder / f"home{seed}", seed, "fp32" if args.fp32 else "auto")
            # Both models are scored the same way, in fp32 (tunesmith keeps its frozen projections in bf16).
            ours_loss = masked_validation_loss(ours.float(), validation)
            config = ours.get_base_model().config
            del ours
            trl, trl_s, = run_trl_default(prepared, folder / f"trl{seed}", seed, args.fp32)
            trl_loss = masked_validation_loss(trl, validation)
            del trl
            runs.append({"seed": seed, "tunesmith_s": round(ours_s, 1), "trl_s": round(trl_s, 1),
                         "tunesmith_loss": round(ours_loss, 4), "trl_loss": round(trl_loss, 4)})
            print(f"seed {seed}: tunesmith {ours_s:.1f} s, validation loss {ours_loss:.4f}; "
                  f"TRL {trl_s:.1f} s, {trl_loss:.4f}", flush=True)
        mean = lambda key: sum(r[key] for r in runs) / len(runs)
        ours_s, trl_s, ours_loss, trl_loss = mean("tunesmith_s"), mean("trl_s"), mean("tunesmith_loss"), mean("trl_loss")

    parameters = 134_515_008  # SmolLM2-135M (tied embeddings counted once)
    results = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
        "train_examples": len(dataset.split("train")), "trained_tokens_per_epoch": train_tokens,
        "tunesmith": {"seconds": round(ours_s, 1), "tokens_per_s": round(train_tokens / ours_s, 1),
                      "validation_loss": round(ours_loss, 4), "precision": precision},
        "trl_default": {"seconds": round(trl_s, 1), "tokens_per_s": round(train_tokens / trl_s, 1),
                        "validation_loss": round(trl_loss, 4), "bf16": not args.fp32},
        "seeds": runs,
        "matmul_peak_gflops": {k: round(v, 1) for k, v in peaks.items()},
        "cpu_native_bf16": cpu_has_bf16(),  # AVX-512 BF16 or AMX; without it bf16 is not probed
        "cpu_flags": " ".join(cpu_flags()),
    }
    results["speedup"] = round(trl_s / ours_s, 2)
    achieved = 4 * parameters * train_tokens / ours_s / 1e9
    results["tunesmith_gflops"] = round(achieved, 1)
    results["roofline_fraction"] = {k: round(achieved / v, 2) for k, v in peaks.items()}
    # The step's own products alone, at the mean batch (batch_size examples of mean length).
    steps = math.ceil(len(dataset.split("train")) / HYPER["batch_size"])
    step_tokens, step_trained = train_tokens // steps, trained_tokens // steps
    compute, dtype = ("bf16", torch.bfloat16) if precision == "bf16" else ("fp32", torch.float32)
    ceiling = step_matmul_gflops(config, step_tokens, step_trained, dtype)
    results["step_matmuls_alone_gflops"] = round(ceiling, 1)
    results["fraction_of_step_matmuls_alone"] = round(achieved / ceiling, 2)
    if len(runs) > 1:
        gaps = [r["tunesmith_loss"] / r["trl_loss"] - 1 for r in runs]
        spread = statistics.stdev(gaps)
        results["validation_loss_gap"] = {"mean": round(statistics.mean(gaps), 4), "sd": round(spread, 4),
                                          "per_seed": [round(g, 4) for g in gaps]}
    print(json.dumps(results, indent=2))
    bf16_share = (f"{results['roofline_fraction']['bf16']:.0%} of the bf16 peak" if "bf16" in peaks
                  else "bf16 not probed (not native on this CPU)")
    print(f"tunesmith {results['tunesmith']['tokens_per_s']} tok/s vs TRL defaults {results['trl_default']['tokens_per_s']} "
          f"tok/s: {results['speedup']}x (target >= 2x); validation loss {ours_loss:.4f} vs {trl_loss:.4f}; "
          f"{achieved:.0f} GFLOP/s = {results['roofline_fraction']['fp32']:.0%} of the fp32 matmul peak, "
          f"{bf16_share}; the step's own {compute} products "
          f"alone run at {ceiling:.0f} GFLOP/s ({ceiling / peaks[compute]:.0%} of that peak), and training "
          f"reaches {achieved / ceiling:.0%} of them; CPU flags: {results['cpu_flags']}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
