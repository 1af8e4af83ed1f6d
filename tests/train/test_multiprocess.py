"""Several processes through the real `accelerate launch` path: two CPU ranks (gloo) training
the tiny random Llama. A launched run costs 20-30 s on two cores, most of it two ranks
importing torch and transformers side by side; the configs and checks at the top are instant."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import signal
from pathlib import Path

import pytest

from tunesmith.errors import BadInputError
from tunesmith.store import queries
from tunesmith.train import accelerate as launch
from tunesmith.train import jobs
from tunesmith.train.backends.local import pid_alive
from tunesmith.train.spec import load_spec

from ._data import prepared_tickets, wait_for


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return prepared_tickets(tmp_path_factory.mktemp("multiprocess"), n=100, validation=0.3)


def spec_for(prepared, tiny_model_dir, **overrides):
    fields = {"data": prepared, "base_model": str(tiny_model_dir), "batch_size": 2, "max_steps": 8,
              "eval_interval": 4, "precision": "fp32", "processes": 2, "accelerate_config": "cpu", **overrides}
    return load_spec(**fields)



def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (the launcher's ranks), from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(") ", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def log_of(job) -> str:
    return (Path(job.run_dir) / jobs.LOG_FILE).read_text(errors="replace")


def metric_rows(job) -> list[dict]:
    return [json.loads(line) for line in (Path(job.run_dir) / "metrics.jsonl").read_text().splitlines()]


# --- the shipped configs, the spec fields and the pre-flight checks (no process started) ---

@pytest.mark.parametrize("name, kind", [("ddp", "MULTI_GPU"), ("cpu", "MULTI_GPU"), ("fsdp", "FSDP"),
                                        ("deepspeed-zero2", "DEEPSPEED")])
def test_each_shipped_config_loads_in_accelerate_and_documents_itself(name, kind):
    from accelerate.commands.config.config_args import load_config_from_file

    path = launch.config_path(name)
    config = load_config_from_file(str(path))  # what `accelerate launch --config_file` does first
    assert config.distributed_type.value == kind and config.num_machines == 1
    assert config.mixed_precision == "no"  # the spec's precision decides
    assert config.use_cpu is (name == "cpu")
    text = path.read_text()
    assert "tunesmith train spec.yaml" in text and f"--accelerate-config {name}" in text
    knobs = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert knobs and all("#" in line for line in knobs), [line for line in knobs if "#" not in line]
    if name == "fsdp":
        assert config.fsdp_config["fsdp_auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"
        assert config.fsdp_config["fsdp_state_dict_type"] == "FULL_STATE_DICT"  # the result is a plain HF folder
    if name == "deepspeed-zero2":
        assert config.deepspeed_config["zero_stage"] == 2 and "pip install deepspeed" in text


def test_the_spec_names_a_config_and_the_launch_command_uses_it(prepared, tmp_path):
    with pytest.raises(BadInputError, match="neither a shipped accelerate config"):
        load_spec(data=prepared, accelerate_config="nope")
    with pytest.raises(BadInputError, match="processes"):
        load_spec(data=prepared, processes=0)
    own = tmp_path / "mine.yaml"
    own.write_text(launch.config_path("ddp").read_text())
    spec = load_spec(data=prepared, processes=4, accelerate_config=str(own))
    assert spec.accelerate_config == str(own.resolve()) and spec.resolved()["processes"] == 4

    command = launch.launch_command("job-1", spec, resume=True)
    assert command[1:3] == ["-m", "accelerate.commands.launch"]
    assert command[command.index("--config_file") + 1] == str(own.resolve())
    assert command[command.index("--num_processes") + 1] == "4"
    assert "--cpu" not in command  # it would pick accelerate's one-process launcher
    assert command[-5:] == ["-m", "tunesmith.train.worker", "job-1", "--launched", "--resume"]
    assert launch.config_path("cpu").name == "cpu.yaml"

    assert not launch.launches(load_spec(data=prepared))
    assert launch.launches(load_spec(data=prepared, processes=2))
    assert launch.launches(load_spec(data=prepared, accelerate_config="ddp"))  # a config alone launches too
    assert not launch.launches({"method": "lora"})  # a job row written before these fields existed


def test_preflight_refuses_a_launch_this_machine_cannot_do(prepared, tiny_model_dir, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for name, what in (("fsdp", "FSDP"), ("deepspeed-zero2", "DeepSpeed")):
        with pytest.raises(BadInputError, match=f"{what} shards the model across GPUs") as refused:
            jobs.start_job(spec_for(prepared, tiny_model_dir, accelerate_config=name))
        assert "accelerate_config: cpu" in refused.value.hint
    assert queries.list_jobs() == []  # refused before a job existed

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(BadInputError, match="asks for 4 processes, and this machine has 2 GPU"):
        launch.check(load_spec(data=prepared, processes=4, accelerate_config="ddp"))
    launch.check(load_spec(data=prepared, processes=2, accelerate_config="fsdp"))
    launch.check(load_spec(data=prepared, processes=4, accelerate_config="cpu"))  # the cpu config ignores GPUs
    if importlib.util.find_spec("deepspeed") is None:
        with pytest.raises(BadInputError, match="needs the deepspeed package") as refused:
            launch.check(load_spec(data=prepared, processes=2, accelerate_config="deepspeed-zero2"))
        assert "pip install deepspeed" in refused.value.hint


# --- real two-process runs ---

def test_two_processes_train_in_step_record_once_and_register_one_model(prepared, tiny_model_dir):
    job = jobs.start_job(spec_for(prepared, tiny_model_dir, name="two-ranks"))
    assert (job.status, job.stop_reason) == ("succeeded", "completed"), log_of(job)
    assert job.pid is None

    # Every metric row once: rank 0 writes, rank 1 does not.
    rows = metric_rows(job)
    train_rows = [r for r in rows if "learning_rate" in r]
    assert [r["step"] for r in train_rows] == list(range(1, 9))
    assert [r["step"] for r in rows if "eval_loss" in r] == [4, 8]
    assert len(queries.job_metrics(job.id)) == len(rows)
    events = queries.job_events(job.id)
    assert [e.kind for e in events].count("data") == 1 and [e.kind for e in events].count("registered") == 1
    launched = next(e for e in events if e.kind == "launch")
    assert "accelerate.commands.launch" in launched.data["command"] and launched.data["command"][-2:] == [job.id, "--launched"]

    # Exactly one model, the adapter saved once as a plain folder.
    models = queries.list_models()
    assert len(models) == 1 and models[0].job_id == job.id and models[0].name == "two-ranks"
    adapter = Path(models[0].adapter_path)
    assert (adapter / "adapter_model.safetensors").is_file() and not (adapter / "training_args.bin").exists()

    # The global batch is 2 processes x batch_size 2 = 4 examples: an epoch takes half the steps it
    # would take one process with batch_size 2.
    from tunesmith.train.backends.local import last_checkpoint

    train_examples = next(e for e in events if e.kind == "data").data["train"]
    state = json.loads((last_checkpoint(Path(job.run_dir)) / "trainer_state.json").read_text())
    assert state["train_batch_size"] == 2  # per process
    assert state["global_step"] == 8
    assert state["epoch"] == pytest.approx(8 / math.ceil(train_examples / 4))
    assert train_rows[-1]["epoch"] == pytest.approx(8 / math.ceil(train_examples / 4), abs=1e-4)

    # The logged loss is the mean over both ranks' tokens, not scaled by the process count:
    # a random model's loss is about ln(vocabulary size).
    vocab = json.loads((tiny_model_dir / "config.json").read_text())["vocab_size"]
    assert abs(train_rows[0]["train_loss"] - math.log(vocab)) < 0.5
    assert "ChildFailedError" not in log_of(job)  # every rank exited 0


def test_a_stop_decided_in_the_recipe_ends_every_rank_cleanly(prepared, tiny_model_dir):
    # The loss guard stops a diverging run; both ranks see the same (all-reduced) loss and stop at
    # the same step. A rank that stopped alone would hang the other in its next collective.
    # One example a step: the noisiest updates, so the run diverges whatever order the examples come in.
    job = jobs.start_job(spec_for(prepared, tiny_model_dir, method="full", learning_rate=0.9, max_steps=30,
                                  batch_size=1, max_grad_norm=1e6, warmup_ratio=0))
    assert job.status == "failed" and job.stop_reason in ("nan_loss", "exploding_loss"), log_of(job)
    assert "loss" in job.error and queries.list_models() == []
    stopped_at = max(r["step"] for r in metric_rows(job))
    assert stopped_at < 30
    assert "ChildFailedError" not in log_of(job) and "forcefully" not in log_of(job)


def test_cancel_reaches_every_rank_and_resume_finishes_the_job(prepared, tiny_model_dir):
    job = jobs.start_job(spec_for(prepared, tiny_model_dir, max_steps=16, eval_interval=2), detach=True)
    assert job.status == "running"
    # The job's pid is the launcher's, and the launcher leads its own process group.
    assert b"accelerate.commands.launch" in Path(f"/proc/{job.pid}/cmdline").read_bytes()
    assert os.getpgid(job.pid) == job.pid
    checkpoints = Path(job.run_dir) / "checkpoints"
    assert wait_for(lambda: any(checkpoints.glob("checkpoint-*"))), log_of(job)
    ranks = children(job.pid)
    assert len(ranks) == 2
    assert jobs.get_job(job.id).status == "running"  # refresh() watches the launcher, which is alive

    cancelled = jobs.cancel_job(job.id)
    assert (cancelled.status, cancelled.stop_reason) == ("cancelled", "cancelled"), log_of(job)
    assert not pid_alive(job.pid) and not any(pid_alive(pid) for pid in ranks)
    stopped_at = max(int(p.name.split("-")[1]) for p in checkpoints.glob("checkpoint-*"))
    assert 0 < stopped_at < 16

    resumed = jobs.resume_job(job.id)
    assert (resumed.status, resumed.stop_reason) == ("succeeded", "completed"), log_of(job)
    steps = [r["step"] for r in metric_rows(job) if "learning_rate" in r]
    assert steps == sorted(set(steps)) and max(steps) == 16  # each step once: resumed after the checkpoint
    assert len(queries.list_models()) == 1


def test_kill_9_of_the_launcher_takes_its_ranks_and_the_job_is_marked_dead(prepared, tiny_model_dir):
    job = jobs.start_job(spec_for(prepared, tiny_model_dir, max_steps=400, eval_interval=50), detach=True)
    assert wait_for(lambda: (Path(job.run_dir) / "metrics.jsonl").exists() and len(metric_rows(job)) >= 2), log_of(job)
    ranks = children(job.pid)
    assert len(ranks) == 2
    os.kill(job.pid, signal.SIGKILL)
    # torch elastic starts each rank in a session of its own; the worker asks Linux to kill it with its parent.
    assert wait_for(lambda: not pid_alive(job.pid) and not any(pid_alive(p) for p in ranks), 30)
    died = jobs.get_job(job.id)
    assert (died.status, died.stop_reason) == ("failed", "process_died") and "resume" in died.error


@pytest.mark.slow
def test_the_overfitting_watch_stops_both_ranks_and_keeps_the_best_checkpoint(prepared, tiny_model_dir):
    # What is tested here is the stop reaching both ranks, not when validation loss turns (the
    # single-process test waits for that): a huge min_delta makes no evaluation after the first
    # count as better, so the watch stops the run a few evaluations in (real overfitting took
    # ~150 steps of DDP over gloo, 95-140 s on two cores).
    job = jobs.start_job(spec_for(prepared, tiny_model_dir, method="full", learning_rate=5e-3, epochs=60,
                                  max_steps=None, eval_interval=5,
                                  **{"early_stopping.patience": 3, "early_stopping.min_delta": 100.0}))
    assert (job.status, job.stop_reason) == ("succeeded", "stopped_early"), log_of(job)
    model = queries.list_models()[0]
    evidence = model.lineage["evidence"]
    # The best and at least `patience` after it (more where the train loss had not yet fallen below the best's).
    assert len(evidence["evaluations"]) >= 4 and model.best_metrics["step"] == evidence["best_step"]
    assert (Path(model.merged_path) / "model.safetensors").is_file()
    assert "ChildFailedError" not in log_of(job)
