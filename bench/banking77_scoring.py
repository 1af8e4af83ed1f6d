"""Banking77 experiment (issue 19): choose each answer by scoring every label, against the
greedy decoding held to the label set that `tunesmith eval` does.

Greedy constrained decoding picks the likeliest next token inside the label set, one token at
a time. Scoring reads every label's whole sequence (its tokens and the end-of-turn token)
after the prompt and picks the label with the highest log-probability (also printed: divided
by the label's length). The prompt is read once; its cache is copied to one row per label.

    python bench/banking77_scoring.py ADAPTER_DIR PREPARED_DIR TEST_JSONL [N]

ADAPTER_DIR is a tuned SmolLM2 LoRA adapter (a run's `adapter/` folder), PREPARED_DIR the
prepared training data (its train split gives the label set), TEST_JSONL the test messages
(bench/banking77.py sample writes test770.jsonl). An experiment, not a recipe:
docs/output-spaces.md has the result."""

from __future__ import annotations

import json
import sys
import time


def main(adapter: str, prepared: str, test_file: str, n: int | None) -> None:
    import torch
    from peft import PeftModel

    from tunesmith.data.dataset import load_dataset
    from tunesmith.data.example import Example, Turn
    from tunesmith.models.chat import render_prompt, stop_token_ids
    from tunesmith.models.loading import load_model, load_tokenizer

    tokenizer = load_tokenizer("smollm2-135m-instruct")
    model = PeftModel.from_pretrained(load_model("smollm2-135m-instruct", dtype=torch.float32), adapter)
    model = model.merge_and_unload().to(torch.bfloat16).eval()
    labels = sorted({ex.output_text for ex in load_dataset([prepared]).split("train")})
    end = stop_token_ids(tokenizer)[0]
    sequences = [tokenizer(label, add_special_tokens=False)["input_ids"] + [end] for label in labels]
    width = max(map(len, sequences))
    tokens = torch.full((len(labels), width), end)
    mask = torch.zeros((len(labels), width))
    for i, ids in enumerate(sequences):
        tokens[i, :len(ids)], mask[i, :len(ids)] = torch.tensor(ids), 1
    rows = [json.loads(line) for line in open(test_file, encoding="utf-8")][:n]
    right = right_per_token = 0
    start = time.perf_counter()
    with torch.no_grad():
        for k, row in enumerate(rows, 1):
            prompt = tokenizer(render_prompt(Example([Turn("user", row["input_text"])]), tokenizer),
                               add_special_tokens=False)["input_ids"]
            out = model(input_ids=torch.tensor([prompt]), use_cache=True)
            cache = out.past_key_values
            cache.batch_repeat_interleave(len(labels))
            first = torch.log_softmax(out.logits[0, -1].float(), -1)[tokens[:, 0]]
            rest = model(input_ids=tokens[:, :-1], past_key_values=cache,
                         attention_mask=torch.ones(len(labels), len(prompt) + width - 1, dtype=torch.long)).logits
            later = torch.log_softmax(rest.float(), -1).gather(-1, tokens[:, 1:, None])[..., 0]
            scores = first + (later * mask[:, 1:]).sum(-1)
            right += labels[int(scores.argmax())] == row["output_text"]
            right_per_token += labels[int((scores / mask.sum(-1)).argmax())] == row["output_text"]
            if k % 100 == 0:
                print(f"{k}: {right / k:.3f} (per token {right_per_token / k:.3f}), {time.perf_counter() - start:.0f} s",
                      flush=True)
    print(f"label scoring: {right / len(rows):.4f}; divided by length: {right_per_token / len(rows):.4f}; "
          f"{len(rows)} messages in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]) if len(sys.argv) == 5 else None)
