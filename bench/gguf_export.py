"""GGUF export of a tuned model, checked end to end: a LoRA adapter tuned on SmolLM2 (e.g. the
demo's, `make demo`) is exported merged (f16, q8_0) and as base + GGUF LoRA; each file's greedy
answers on the tuned model's test prompts are compared token by token with the source (the
base in float32 with the PEFT adapter, as tunesmith evaluates it): read back by transformers,
and run by llama.cpp's llama-server when --llama-server names one. Also the task metric
(template fields) of every variant's answers, the files' sizes and the export times.

    PYTHONPATH=src python bench/gguf_export.py --adapter RUN/adapter --data PREPARED \\
        [--llama-server PATH] [--prompts 24]

Writes bench/results/gguf_export.json."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "gguf_export.json"


def task_metrics(outputs: list[str], references: list[str]) -> dict:
    from tunesmith.evaluate.metrics import choose_scorer, score_all

    scores = score_all(choose_scorer(references), outputs, references)
    keys = {k for s in scores for k, v in s.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return {k: round(statistics.mean(s[k] for s in scores if k in s), 3) for k in sorted(keys)}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--adapter", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True, help="the prepared folder (its test split)")
    parser.add_argument("--llama-server", help="llama.cpp's llama-server binary")
    parser.add_argument("--prompts", type=int, default=24)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["TUNESMITH_HOME"] = str(Path(tmp) / "home")
        from peft import PeftModel

        from tunesmith.data.dataset import load_dataset
        from tunesmith.models.chat import render_prompt
        from tunesmith.models.loading import load_model, load_tokenizer
        from tunesmith.registry.export import export_model
        from tunesmith.models.llama_server import LlamaServer
        from tunesmith.registry.gguf_check import (
            greedy_agreement,
            greedy_tokens,
            llama_server_answers_alike,
        )
        from tunesmith.store.queries import register_model

        tokenizer = load_tokenizer(str(args.adapter))
        examples = load_dataset([args.data]).split("test")[: args.prompts]
        prompts = [render_prompt(e, tokenizer) for e in examples]
        references = [e.turns[-1].text for e in examples]
        source = PeftModel.from_pretrained(load_model("smollm2-135m-instruct"), str(args.adapter)).eval()
        register_model(base_model="smollm2-135m-instruct", method="lora", spec={}, adapter_path=str(args.adapter),
                       name="tuned")

        results: dict = {"prompts": len(prompts), "max_new_tokens": args.max_new_tokens, "exports": {}}
        files = {}
        for label, kwargs in (("merged-f16", {"quant": "f16"}), ("merged-q8_0", {"quant": "q8_0"}),
                              ("lora-f16", {"quant": "f16", "merged": False})):
            start = time.perf_counter()
            out = export_model("tuned", Path(tmp) / label, format="gguf", **kwargs)
            files[label] = out
            results["exports"][label] = {
                "seconds": round(time.perf_counter() - start, 1),
                "mb": {p.name: round(p.stat().st_size / 1e6, 1) for p in out.glob("*.gguf")}}

        def decoded(token_lists):
            return [tokenizer.decode(t, skip_special_tokens=True).strip() for t in token_lists]

        batched = greedy_tokens(source, tokenizer, prompts, args.max_new_tokens)
        results["source_task_metrics"] = task_metrics(decoded(batched), references)
        for label in ("merged-f16", "merged-q8_0"):
            agreement = greedy_agreement(source, tokenizer, files[label] / "model.gguf", prompts, args.max_new_tokens)
            results["exports"][label]["transformers_identical"] = round(agreement.share, 3)
            results["exports"][label]["same_prompt_tokens"] = agreement.same_prompt_tokens
            print(label, "read back by transformers: identical answers", agreement.share, flush=True)

        if args.llama_server:
            single = greedy_tokens(source, tokenizer, prompts, args.max_new_tokens, batch_size=1)
            prompt_ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
            for label, model, lora in (("merged-f16", "model.gguf", None), ("merged-q8_0", "model.gguf", None),
                                       ("lora-f16", "base.gguf", "adapter.gguf")):
                folder = files[label]
                with LlamaServer(args.llama_server, folder / model, lora=folder / lora if lora else None) as server:
                    same_tokens = sum(server.tokenize(p) == ids for p, ids in zip(prompts, prompt_ids))
                    start = time.perf_counter()
                    same = llama_server_answers_alike(server, tokenizer, single, prompt_ids, args.max_new_tokens)
                    answers = [server.greedy(ids, args.max_new_tokens) for ids in prompt_ids]
                    seconds = time.perf_counter() - start
                row = results["exports"][label]
                row["llama_cpp_identical"] = round(same / len(prompts), 3)
                row["llama_cpp_same_prompt_tokens"] = same_tokens
                row["llama_cpp_task_metrics"] = task_metrics(decoded(answers), references)
                row["llama_cpp_seconds_two_passes"] = round(seconds, 1)
                print(label, "in llama.cpp: identical answers", row["llama_cpp_identical"], flush=True)

    print(json.dumps(results, indent=2))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
