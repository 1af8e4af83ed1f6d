"""`tunesmith train`: tune a model from a spec (every field is also a flag)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..errors import BadInputError


def train_command(
    spec_file: Optional[Path] = typer.Argument(None, help="a YAML spec; flags override its fields"),
    data: Optional[Path] = typer.Option(None, help="a prepared dataset folder (`tunesmith data prepare`)"),
    base_model: Optional[str] = typer.Option(None, help="catalog name, local folder or Hugging Face id [smollm2-135m-instruct]"),
    method: Optional[str] = typer.Option(None, help="lora | qlora | full [lora]"),
    epochs: Optional[float] = typer.Option(None, help="passes over the data [3; the guide: 2-5]"),
    learning_rate: Optional[float] = typer.Option(None, help="[2e-4 for lora/qlora, 2e-5 for full]"),
    batch_size: Optional[int] = typer.Option(None, help="examples per step [8]"),
    gradient_accumulation: Optional[int] = typer.Option(None, help="steps per optimizer update [1]"),
    max_seq_length: Optional[int] = typer.Option(None, help="tokens per example; longer ones are truncated [1024]"),
    max_steps: Optional[int] = typer.Option(None, help="stop after this many optimizer steps"),
    seed: Optional[int] = typer.Option(None, help="[0]"),
    precision: Optional[str] = typer.Option(None, help="auto | bf16 | fp16 | fp32 [auto]"),
    gradient_checkpointing: Optional[str] = typer.Option(None, help="auto | true | false: recompute activations in "
                                                                    "the backward pass, less memory for about a "
                                                                    "third more compute [auto: only where the run "
                                                                    "would not fit without it]"),
    warmup_ratio: Optional[float] = typer.Option(None, help="share of the steps the learning rate warms up over [0.03]"),
    weight_decay: Optional[float] = typer.Option(None, help="AdamW weight decay [0]"),
    max_grad_norm: Optional[float] = typer.Option(None, help="gradient clipping norm [1.0]"),
    lora_rank: Optional[int] = typer.Option(None, help="LoRA rank [16]"),
    lora_alpha: Optional[float] = typer.Option(None, help="LoRA alpha [32]"),
    lora_dropout: Optional[float] = typer.Option(None, help="LoRA dropout [0.05]"),
    lora_target_modules: Optional[str] = typer.Option(None, help="all-linear, or module names separated by commas, "
                                                                 "e.g. q_proj,v_proj [all-linear]"),
    eval_interval: Optional[int] = typer.Option(None, help="steps between evaluations [about 4 per epoch]"),
    checkpoint_interval: Optional[int] = typer.Option(None, help="steps between checkpoints [each evaluation]"),
    patience: Optional[int] = typer.Option(None, help="evaluations without improvement before stopping; 0 = off [3]"),
    min_delta: Optional[float] = typer.Option(None, help="smallest validation-loss drop that counts [0]"),
    name: Optional[str] = typer.Option(None, help="an alias for the registered model"),
    processes: Optional[int] = typer.Option(None, help="training processes, one per GPU; more than 1 runs under "
                                                       "`accelerate launch` [1]"),
    accelerate_config: Optional[str] = typer.Option(None, help="ddp | fsdp | deepspeed-zero2 | cpu, or an accelerate "
                                                               "YAML path (default: ddp with GPUs, cpu without); see docs/multi-gpu.md"),
    backend: Optional[str] = typer.Option(None, help="local | vertex (default: local); vertex is the managed path, "
                                                     "docs/managed.md"),
    project: Optional[str] = typer.Option(None, help="vertex: Google Cloud project (default: GOOGLE_CLOUD_PROJECT)"),
    location: Optional[str] = typer.Option(None, help="vertex: region (default: GOOGLE_CLOUD_LOCATION, else us-central1)"),
    bucket: Optional[str] = typer.Option(None, help="vertex: gs://bucket/prefix for the training files"),
    learning_rate_multiplier: Optional[float] = typer.Option(None, help="vertex: (default: the service's, 1.0)"),
    adapter_size: Optional[int] = typer.Option(None, help="vertex: 1 | 2 | 4 | 8 | 16 (default: the service's)"),
    tuned_model_display_name: Optional[str] = typer.Option(None, help="vertex: (default: tunesmith JOB-ID)"),
    label: Optional[list[str]] = typer.Option(None, help="vertex: KEY=VALUE label on the tuning job; repeatable"),
    poll_interval_s: Optional[float] = typer.Option(None, help="vertex: first wait between polls, doubling while "
                                                              "nothing changes (default: 15)"),
    poll_max_interval_s: Optional[float] = typer.Option(None, help="vertex: longest wait between polls (default: 300)"),
    yes: bool = typer.Option(False, "--yes", "-y", help="vertex: start without asking to confirm the estimated cost"),
    detach: bool = typer.Option(False, help="run in the background; follow with `tunesmith jobs logs ID --follow` "
                                            "(vertex: return once the remote job exists)"),
) -> None:
    """Tune a model on a prepared dataset and register the result."""
    from ..train.jobs import start_job
    from ..train.spec import load_spec
    from ._display import TrainingDisplay

    spec = load_spec(
        spec_file, data=data, base_model=base_model, method=method, epochs=epochs, learning_rate=learning_rate,
        batch_size=batch_size, gradient_accumulation=gradient_accumulation, max_seq_length=max_seq_length,
        max_steps=max_steps, seed=seed, precision=precision, gradient_checkpointing=gradient_checkpointing,
        warmup_ratio=warmup_ratio, weight_decay=weight_decay, max_grad_norm=max_grad_norm, eval_interval=eval_interval,
        checkpoint_interval=checkpoint_interval, name=name, processes=processes, accelerate_config=accelerate_config,
        backend=backend, project=project, location=location, bucket=bucket,
        learning_rate_multiplier=learning_rate_multiplier, adapter_size=adapter_size,
        tuned_model_display_name=tuned_model_display_name, labels=_labels(label), poll_interval_s=poll_interval_s,
        poll_max_interval_s=poll_max_interval_s,
        **{"lora.rank": lora_rank, "lora.alpha": lora_alpha, "lora.dropout": lora_dropout,
           "lora.target_modules": _target_modules(lora_target_modules),
           "early_stopping.patience": patience, "early_stopping.min_delta": min_delta},
    )
    if spec.backend == "vertex":
        _train_at_vertex(spec, detach, yes)
        return
    from .plan import print_preflight

    print_preflight(spec)  # the plan's memory estimate for this run, and a warning when it will not fit
    if detach:
        job = start_job(spec, detach=True)
        print(f"started job {job.id} in the background (pid {job.pid})")
        print(f"follow it: tunesmith jobs logs {job.id} --follow")
        return
    with TrainingDisplay() as display:
        job = start_job(spec, display=display)
    report_end(job)


def _target_modules(flag: str | None) -> str | list[str] | None:
    """--lora-target-modules: all-linear, or names separated by commas."""
    if flag is None:
        return None
    names = [name.strip() for name in flag.split(",") if name.strip()]
    return "all-linear" if names == ["all-linear"] else names


def _train_at_vertex(spec, detach: bool, yes: bool) -> None:
    """The managed path: each step prints as it happens; the cost estimate asks before uploading."""
    from ..train.jobs import start_job
    from ._display import RemoteDisplay

    def confirm(estimate) -> bool:
        return yes or typer.confirm(f"upload the data and start tuning (about ${estimate.cost_usd:,.2f})?")

    job = start_job(spec, detach=detach, display=RemoteDisplay(), confirm=confirm)
    if job is None:
        print("not started; nothing was uploaded")
        raise typer.Exit(1)
    if job.status in ("queued", "running"):
        print(f"job {job.id} runs at Vertex AI as {job.remote_name}")
        print(f"check on it: tunesmith jobs show {job.id}   cancel it: tunesmith jobs cancel {job.id}")
        return
    report_end(job)


def _labels(pairs: list[str] | None) -> dict[str, str] | None:
    if not pairs:
        return None
    bad = next((p for p in pairs if "=" not in p), None)
    if bad is not None:
        raise BadInputError(f"--label {bad!r} is not KEY=VALUE", "for example --label team=support")
    return dict(p.split("=", 1) for p in pairs)


def report_end(job) -> None:
    """What a finished job left: the model id and where its metrics are, or why it failed."""
    from ..store.queries import job_events

    print(f"job {job.id}: {job.status} ({job.stop_reason})")
    if job.status == "succeeded":
        registered = [e for e in job_events(job.id) if e.kind == "registered"]
        if registered:
            print(f"model {registered[-1].data['model_id']} registered (stage candidate)")
            if job.backend == "vertex":
                print(f"endpoint: {registered[-1].data['remote_endpoint']}")
        if job.backend == "local":
            print(f"metrics: {Path(job.run_dir) / 'metrics.jsonl'}")
        return
    if job.error:
        print(f"error: {job.error}")
    raise typer.Exit(1)
