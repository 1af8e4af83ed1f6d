"""Real training steps on a tiny random Llama (the SmolLM2 runs are in test_train_slow.py)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from tunesmith.store import queries
from tunesmith.train import jobs
from tunesmith.train.backends.local import pid_alive
from tunesmith.train.recorder import Recorder
from tunesmith.train.spec import load_spec

from ._data import prepared_tickets, wait_for


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return prepared_tickets(tmp_path_factory.mktemp("train"), n=100, validation=0.3)


def spec_for(prepared, tiny_model_dir, **overrides):
    # The answer metric (validation prompts answered at each evaluation) is off unless a test asks for it:
    # a 400-step run evaluating every 5 steps would answer 2,400 prompts.
    fields = {"data": prepared, "base_model": str(tiny_model_dir), "batch_size": 4, "max_steps": 8,
              "eval_interval": 4, "precision": "fp32", "accuracy_examples": 0, **overrides}
    return load_spec(**fields)


def test_lora_run_records_metrics_and_registers_the_model(prepared, tiny_model_dir, tmp_path):
    job = jobs.start_job(spec_for(prepared, tiny_model_dir, name="tickets-v1"))
    assert (job.status, job.stop_reason) == ("succeeded", "completed")
    run_dir = Path(job.run_dir)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if "learning_rate" in r]
    eval_rows = [r for r in rows if "eval_loss" in r]
    assert [r["step"] for r in train_rows] == list(range(1, 9))
    assert {"train_loss", "token_accuracy", "learning_rate", "tokens_per_s", "epoch"} <= set(train_rows[0])
    assert [r["step"] for r in eval_rows] == [4, 8] and "eval_token_accuracy" in eval_rows[0]
    assert len(queries.job_metrics(job.id)) == len(rows)

    model = queries.get_model("tickets-v1")
    manifest = json.loads((prepared / "manifest.json").read_text())
    assert model.stage == "candidate" and model.job_id == job.id and model.method == "lora"
    assert model.dataset_version == manifest["dataset_version"]
    assert model.spec["learning_rate"] == 2e-4 and model.stop_reason == "completed"
    assert model.best_metrics["eval_loss"] == min(r["eval_loss"] for r in eval_rows)
    assert (Path(model.adapter_path) / "adapter_config.json").is_file()
    assert (run_dir / "spec.yaml").is_file() and "registered model" in (run_dir / "train.log").read_text()

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tunesmith.registry.export import export_model

    merged = export_model(model.id, tmp_path / "merged", merged=True)
    plain = AutoModelForCausalLM.from_pretrained(str(merged))  # no PEFT, no tunesmith needed
    tokenizer = AutoTokenizer.from_pretrained(str(merged))
    out = plain.generate(**tokenizer("Hello", return_tensors="pt"), max_new_tokens=3, do_sample=False)
    assert out.shape[1] > 1
    adapter = export_model(model.id, tmp_path / "adapter")
    assert (adapter / "adapter_model.safetensors").is_file()


def test_bf16_training_runs_the_lean_loss_under_autocast(prepared, tiny_model_dir, tmp_path):
    # The lean loss calls the decoder directly, outside model.forward where accelerate puts its
    # autocast: unless it enters autocast itself, a "bf16" run trains in fp32 without a sign.
    import torch

    from tunesmith.train.backends import local

    spec = spec_for(prepared, tiny_model_dir, precision="bf16", max_steps=1)
    job = jobs.create_job(spec)
    recipe = local.LocalRecipe(spec, Path(job.run_dir), Recorder(job.id, job.run_dir, display=lambda row: None),
                               local._CancelFlag()).setup()
    trainer = recipe.trainer
    seen = []
    decoder = trainer.model.get_base_model().get_decoder()
    decoder.register_forward_pre_hook(lambda module, args: seen.append(torch.is_autocast_enabled("cpu")))
    trainer.train()
    assert recipe.precision == "bf16" and seen and all(seen)  # the step and the evaluation after it


def test_gradient_checkpointing_recomputes_each_layer_and_trains_to_the_same_weights(prepared, tiny_model_dir):
    # bf16: LoRA through cpu_kernels' fused layer, whose dropout masks the recomputation must draw again.
    import torch

    from tunesmith.train.backends import local

    runs = {}
    for checkpointing in (False, True):
        spec = spec_for(prepared, tiny_model_dir, precision="bf16", max_steps=3, eval_interval=100,
                        gradient_checkpointing=checkpointing)
        job = jobs.create_job(spec)
        recipe = local.LocalRecipe(spec, Path(job.run_dir), Recorder(job.id, job.run_dir), local._CancelFlag()).setup()
        trainer = recipe.trainer
        calls = []
        # A module inside the layer (transformers checkpoints the layer's forward, so the layer's own hooks
        # run once), as it starts (the recomputation stops once it has what the backward pass needs).
        trainer.model.get_base_model().get_decoder().layers[0].mlp.register_forward_pre_hook(
            lambda *args: calls.append(1))
        trainer.train()
        weights = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
        events = [e.message for e in queries.job_events(job.id) if e.kind == "memory"]
        runs[checkpointing] = (recipe.gradient_checkpointing, len(calls), weights, events)
    (off, calls_off, expected, _), (on, calls_on, actual, events_on) = runs[False], runs[True]
    assert (off, on) == (False, True) and events_on == ["gradient checkpointing on: as the spec says"]
    assert calls_on == calls_off + 3  # each of the 3 steps ran the layer again in its backward pass
    for name in expected:
        torch.testing.assert_close(actual[name], expected[name], rtol=1e-3, atol=1e-5)
    assert all(actual[n].abs().sum() > 0 for n in actual if "lora_B" in n)  # trained away from B's zeros


def test_auto_gradient_checkpointing_is_off_where_the_run_fits(prepared, tiny_model_dir):
    job = jobs.start_job(spec_for(prepared, tiny_model_dir, max_steps=1))
    events = [e.message for e in queries.job_events(job.id) if e.kind == "memory"]
    assert len(events) == 1 and events[0].startswith("gradient checkpointing off: the run fits without it (")


def test_full_fine_tuning_registers_a_plain_model(prepared, tiny_model_dir):
    job = jobs.start_job(spec_for(prepared, tiny_model_dir, method="full", max_steps=4))
    assert job.status == "succeeded"
    model = queries.list_models()[0]
    assert model.method == "full" and model.adapter_path is None
    assert (Path(model.merged_path) / "model.safetensors").is_file()


def test_overfitting_stops_early_and_keeps_the_best_checkpoint(prepared, tiny_model_dir):
    spec = spec_for(prepared, tiny_model_dir, method="full", learning_rate=5e-3, epochs=60, max_steps=None,
                    eval_interval=5, **{"early_stopping.patience": 3})
    job = jobs.start_job(spec)
    assert (job.status, job.stop_reason) == ("succeeded", "stopped_early")
    model = queries.list_models()[0]
    evidence = model.lineage["evidence"]
    evaluations = evidence["evaluations"]
    # The best and at least `patience` after it (more where the train loss had not yet fallen below the best's).
    assert len(evaluations) >= 4 and evaluations[0]["step"] == evidence["best_step"]
    assert all(e["eval_loss"] >= evaluations[0]["eval_loss"] for e in evaluations[1:])
    assert evaluations[-1]["train_loss"] < evaluations[0]["train_loss"]
    assert model.best_metrics["step"] == evidence["best_step"] < model.final_metrics["step"]
    assert any(e.kind == "stopped_early" for e in queries.job_events(job.id))


def test_overfitting_found_at_the_last_evaluation_completes_the_run_and_keeps_the_best(prepared, tiny_model_dir):
    # A huge min_delta: no evaluation after the first counts as better, so the watch (patience 1)
    # gives its verdict at the second and last one, step 8, where the run ends anyway.
    spec = spec_for(prepared, tiny_model_dir, method="full", learning_rate=5e-3,
                    **{"early_stopping.patience": 1, "early_stopping.min_delta": 100.0})
    job = jobs.start_job(spec)
    assert (job.status, job.stop_reason) == ("succeeded", "completed")
    kinds = [e.kind for e in queries.job_events(job.id)]
    assert "overfitting" in kinds and "stopped_early" not in kinds
    model = queries.list_models()[0]
    assert model.best_metrics["step"] == model.lineage["evidence"]["best_step"] == 4
    assert model.final_metrics["step"] == 8


def test_exploding_loss_stops_the_run_with_a_clear_message(prepared, tiny_model_dir):
    job = jobs.start_job(spec_for(prepared, tiny_model_dir, method="full", learning_rate=0.9, max_steps=30,
                                  max_grad_norm=1e6, warmup_ratio=0))
    assert job.status == "failed" and job.stop_reason in ("nan_loss", "exploding_loss")
    assert "loss" in job.error


def test_cancel_then_resume(prepared, tiny_model_dir):
    # 150 steps with an evaluation and a checkpoint every 5: the cancel lands long before the end.
    spec = spec_for(prepared, tiny_model_dir, max_steps=150, eval_interval=5)
    job = jobs.start_job(spec, detach=True)
    checkpoints = Path(job.run_dir) / "checkpoints"
    assert wait_for(lambda: any(checkpoints.glob("checkpoint-*"))), (Path(job.run_dir) / "train.log").read_text()
    cancelled = jobs.cancel_job(job.id)
    assert (cancelled.status, cancelled.stop_reason) == ("cancelled", "cancelled")
    assert not pid_alive(job.pid)
    stopped_at = max(int(p.name.split("-")[1]) for p in checkpoints.glob("checkpoint-*"))
    assert 0 < stopped_at < 150
    resumed = jobs.resume_job(job.id)
    assert resumed.status == "succeeded"
    steps = [json.loads(line)["step"] for line in (Path(job.run_dir) / "metrics.jsonl").read_text().splitlines()]
    assert max(steps) == 150


def test_kill_9_then_resume_ends_where_an_uninterrupted_run_does(prepared, tiny_model_dir):
    import torch
    from safetensors.torch import load_file

    spec = spec_for(prepared, tiny_model_dir, max_steps=40, eval_interval=5)
    reference = jobs.start_job(spec)
    job = jobs.start_job(spec, detach=True)
    checkpoints = Path(job.run_dir) / "checkpoints"
    assert wait_for(lambda: (checkpoints / "checkpoint-10" / "trainer_state.json").is_file())
    os.kill(job.pid, signal.SIGKILL)
    assert wait_for(lambda: not pid_alive(job.pid), 10)
    died = jobs.get_job(job.id)
    assert (died.status, died.stop_reason) == ("failed", "process_died") and "resume" in died.error
    resumed = jobs.resume_job(job.id)
    assert resumed.status == "succeeded"
    expected = load_file(str(Path(reference.run_dir) / "adapter" / "adapter_model.safetensors"))
    actual = load_file(str(Path(job.run_dir) / "adapter" / "adapter_model.safetensors"))
    assert expected.keys() == actual.keys()
    for name in expected:
        torch.testing.assert_close(actual[name], expected[name], rtol=1e-4, atol=1e-6)


def test_jobs_that_do_not_exist_or_cannot_be_resumed(prepared, tiny_model_dir):
    from tunesmith.errors import BadInputError

    with pytest.raises(BadInputError, match="no job"):
        jobs.get_job("job-nope")
    job = jobs.start_job(spec_for(prepared, tiny_model_dir, max_steps=2, eval_interval=2))
    with pytest.raises(BadInputError, match="only a failed or cancelled job"):
        jobs.resume_job(job.id)
    with pytest.raises(BadInputError, match="already ended"):
        jobs.cancel_job(job.id)


def test_qlora_trains_an_adapter_over_a_4bit_base_on_a_gpu(prepared, tiny_model_dir):
    """Runs where there is a CUDA GPU and bitsandbytes (elsewhere QLoRA is refused: test_spec.py)."""
    import importlib.util

    import torch

    if not torch.cuda.is_available() or importlib.util.find_spec("bitsandbytes") is None:
        pytest.skip("QLoRA needs a CUDA GPU and bitsandbytes")
    job = jobs.start_job(spec_for(prepared, tiny_model_dir, method="qlora", precision="auto"))
    assert (job.status, job.stop_reason) == ("succeeded", "completed")
    model = queries.list_models(limit=1)[0]
    assert model.method == "qlora" and (Path(model.adapter_path) / "adapter_model.safetensors").is_file()
    events = [e for e in queries.job_events(job.id) if e.kind == "model"]
    assert events[0].data["trainable_parameters"] < events[0].data["parameters"] / 10


def test_without_a_memory_estimate_auto_trains_without_gradient_checkpointing(prepared, tiny_model_dir, monkeypatch):
    from tunesmith.errors import BadInputError
    from tunesmith.plan import planner
    from tunesmith.train.backends import local

    def no_estimate(*args):
        raise BadInputError("unknown model 'x'", "a hint that stays out of the event")

    monkeypatch.setattr(planner, "plan_local_run", no_estimate)
    said = []
    reporter = type("Events", (), {"event": lambda self, kind, message, data=None: said.append((kind, message, data))})()
    examples = [type("Encoded", (), {"input_ids": [1, 2, 3], "trained_tokens": 2})()]
    assert not local._gradient_checkpointing(spec_for(prepared, tiny_model_dir), examples, reporter)
    assert said == [("memory", "gradient checkpointing off: no memory estimate (unknown model 'x')",
                     {"gradient_checkpointing": False})]
    assert local._gradient_checkpointing(spec_for(prepared, tiny_model_dir, gradient_checkpointing=True), examples,
                                         reporter)
    assert said[-1][1] == "gradient checkpointing on: as the spec says"


def test_accuracy_is_measured_at_each_evaluation_and_can_pick_the_best_checkpoint(prepared, tiny_model_dir):
    job = jobs.start_job(spec_for(prepared, tiny_model_dir, name="tickets-acc", select_by="accuracy",
                                  accuracy_examples=12))
    assert job.status == "succeeded"
    rows = [json.loads(line) for line in (Path(job.run_dir) / "metrics.jsonl").read_text().splitlines()]
    eval_rows = [r for r in rows if "eval_loss" in r]
    assert [r["step"] for r in eval_rows] == [4, 8]
    assert all(0.0 <= r["eval_accuracy"] <= 1.0 for r in eval_rows)
    model = queries.get_model("tickets-acc")
    best = max(eval_rows, key=lambda r: (r["eval_accuracy"], -r["step"]))
    assert model.best_metrics["eval_accuracy"] == best["eval_accuracy"]
    # The training data's output space, kept with the model: the registry row and a file beside the weights.
    assert model.output_space["kind"] == "keys"
    assert [f["name"] for f in model.output_space["fields"]] == ["Category", "Priority", "Action"]
    saved = json.loads((Path(model.adapter_path) / "output_space.json").read_text())
    assert saved == model.output_space


def test_select_by_accuracy_needs_an_output_space(tmp_path, tiny_model_dir):
    from tunesmith.data.prepare import PrepareOptions, prepare

    raw = tmp_path / "free.jsonl"
    raw.write_text("".join(json.dumps({"input_text": f"question {i} about item {i * 7}",
                                       "output_text": f"a free answer number {i} with words {i * 3}"}) + "\n"
                           for i in range(120)))
    prepare([raw], tmp_path / "prepared", PrepareOptions(validation=0.2, test=0.1))
    job = jobs.start_job(spec_for(tmp_path / "prepared", tiny_model_dir, select_by="accuracy", max_steps=1))
    assert job.status == "failed" and "select_by: accuracy" in (job.error or "")


def test_answer_accuracy_runs_in_a_bf16_run(prepared, tiny_model_dir):
    # The answers are generated under the run's autocast: bf16 base weights beside fp32 adapters
    # and norms fail outside it ("expected m1 and m2 to have the same dtype"), found on Banking77.
    job = jobs.start_job(spec_for(prepared, tiny_model_dir, precision="bf16", max_steps=2, eval_interval=2,
                                  accuracy_examples=4))
    assert job.status == "succeeded", job.error
    rows = [json.loads(line) for line in (Path(job.run_dir) / "metrics.jsonl").read_text().splitlines()]
    assert any("eval_accuracy" in r for r in rows)


def test_batches_are_random_unless_grouping_by_length_is_asked_for(prepared, tiny_model_dir):
    from tunesmith.train.backends.local import LocalRecipe, _CancelFlag

    for group, strategy in ((False, "random"), (True, "group_by_length")):
        spec = spec_for(prepared, tiny_model_dir, group_by_length=group)
        job = jobs.create_job(spec)
        trainer = LocalRecipe(spec, Path(job.run_dir), Recorder(job.id, job.run_dir), _CancelFlag()).setup().trainer
        assert trainer.args.train_sampling_strategy == strategy
