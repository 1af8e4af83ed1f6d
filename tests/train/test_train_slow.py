"""Real runs on the embedded SmolLM2-135M-Instruct (slow: minutes on two CPU cores)."""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path

import pytest

from tunesmith.data.dataset import load_dataset
from tunesmith.store import queries
from tunesmith.train import jobs
from tunesmith.train.backends.local import pid_alive
from tunesmith.train.spec import load_spec

from ._data import prepared_tickets, wait_for

pytestmark = pytest.mark.slow
TEMPLATE = re.compile(r"^Category: [A-Za-z]+\nPriority: [A-Za-z]+\nAction: .+$")


def greedy_outputs(model, tokenizer, examples, max_new_tokens=40) -> list[str]:
    import torch

    tokenizer.padding_side = "left"
    prompts = [tokenizer.apply_chat_template([{"role": "user", "content": ex.input_text}], tokenize=False,
                                             add_generation_prompt=True) for ex in examples]
    outputs = []
    model.eval()
    with torch.no_grad():
        for i in range(0, len(prompts), 8):
            batch = tokenizer(prompts[i:i + 8], return_tensors="pt", padding=True, add_special_tokens=False)
            generated = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False,
                                       pad_token_id=tokenizer.pad_token_id)
            outputs += tokenizer.batch_decode(generated[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)
    return [o.strip() for o in outputs]


def test_lora_on_support_tickets_learns_the_template(tmp_path, smollm2_dir):
    from peft import PeftModel

    from tunesmith.models.loading import load_model, load_tokenizer

    prepared = prepared_tickets(tmp_path, n=290, validation=0.15)
    job = jobs.start_job(load_spec(data=prepared, epochs=1, batch_size=8, eval_interval=8))
    assert job.status == "succeeded", job.error
    evals = [m.eval_loss for m in queries.job_metrics(job.id) if m.eval_loss is not None]
    assert len(evals) >= 3 and evals[-1] < evals[0] * 0.8, evals

    test = load_dataset([prepared]).split("test")[:24]
    tokenizer = load_tokenizer("smollm2-135m-instruct")
    base_outputs = greedy_outputs(load_model("smollm2-135m-instruct"), tokenizer, test)
    model = queries.list_models()[0]
    tuned = PeftModel.from_pretrained(load_model("smollm2-135m-instruct"), model.adapter_path)
    tuned_outputs = greedy_outputs(tuned, tokenizer, test)
    base_rate = sum(bool(TEMPLATE.match(o)) for o in base_outputs) / len(test)
    tuned_rate = sum(bool(TEMPLATE.match(o)) for o in tuned_outputs) / len(test)
    print(f"template compliance: base {base_rate:.0%}, tuned {tuned_rate:.0%}; validation loss {evals}")
    assert tuned_rate >= 0.6 and tuned_rate >= base_rate + 0.5  # measured: base 0%, tuned 71% after one epoch


def test_a_spec_made_to_overfit_stops_early(tmp_path, smollm2_dir):
    # About 16 training and 16 validation tickets, a high learning rate and many epochs: memorised in minutes.
    prepared = prepared_tickets(tmp_path, n=100, validation=0.18, test=0.64)
    spec = load_spec(data=prepared, method="lora", learning_rate=5e-3, epochs=40, batch_size=8, eval_interval=2,
                     max_seq_length=256, accuracy_examples=0, **{"lora.rank": 32, "early_stopping.patience": 2})
    job = jobs.start_job(spec)
    assert (job.status, job.stop_reason) == ("succeeded", "stopped_early"), job.error
    model = queries.list_models()[0]
    assert model.best_metrics["step"] < model.final_metrics["step"]


def test_kill_and_resume_on_the_real_model(tmp_path, smollm2_dir):
    prepared = prepared_tickets(tmp_path, n=100, validation=0.1)
    spec = load_spec(data=prepared, max_steps=12, batch_size=4, eval_interval=4, max_seq_length=256,
                     accuracy_examples=0)
    job = jobs.start_job(spec, detach=True)
    checkpoints = Path(job.run_dir) / "checkpoints"
    assert wait_for(lambda: (checkpoints / "checkpoint-4" / "trainer_state.json").is_file(), 600)
    os.kill(job.pid, signal.SIGKILL)
    assert wait_for(lambda: not pid_alive(job.pid), 10)
    assert jobs.get_job(job.id).stop_reason == "process_died"
    resumed = jobs.resume_job(job.id)
    assert resumed.status == "succeeded", resumed.error
    rows = [json.loads(line) for line in (Path(job.run_dir) / "metrics.jsonl").read_text().splitlines()]
    assert max(r["step"] for r in rows) == 12
    assert any(e.kind == "resume" for e in queries.job_events(job.id))
