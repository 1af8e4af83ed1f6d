"""The local backend: supervised fine-tuning with transformers + PEFT + TRL on this machine.

`LocalRecipe` is the one recipe, with a fixed lifecycle read top to bottom and its state on
the object (torchtune's recipe shape): `setup` (data, tokenizer, model, trainer, in dependency
order), `train`, `save`. Loss is on model turns only: examples are tokenized by the one chat
renderer (models/chat.py) with exact masks and handed to TRL's SFTTrainer already tokenized,
so TRL neither re-templates nor re-masks.

`LocalBackend` runs the recipe for the job runner (train/jobs.py): in this process, in a
detached worker process (`python -m tunesmith.train.worker`), or under `accelerate launch`
(several processes, see train/accelerate/). Under accelerate every rank runs this same recipe
on its share of each batch; only rank 0 records. Stop decisions are the same on every rank:
the overfitting watch and the loss guard read losses the Trainer has already averaged over
all ranks, and the cancel flag is combined across ranks at every step, so no rank stops while
another waits for it in a collective.

transformers, peft, trl and torch are imported inside the functions that use them."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ...data.dataset import load_dataset
from ...data.output_space import dataset_output_space
from ...data.seal import verify_seal
from ...errors import BadInputError, TunesmithError
from ...fileio import atomic_write_text
from ...hardware import resolve_precision
from ...models.chat import encode_dataset
from ...models.loading import load_model, load_tokenizer
from ...plan import planner
from ...store import queries
from .. import accelerate as launch
from ..answer_metric import AnswerMetric
from ..recorder import LOG_FILE, METRICS_FILE, Recorder
from ..spec import LocalSpec
from ..watch import Evaluation, LossGuard, OverfittingWatch, StopVerdict
from .base import TrainedModel, Update

EVALUATIONS_PER_EPOCH = 4  # the default eval_interval: often enough to catch overfitting, cheap enough on a CPU
MAX_EVAL_EXAMPLES = 512  # validation loss on more than this costs more time than it tells
CANCEL_WAIT_S = 60  # how long a cancel waits for the run to save a checkpoint and record


class LocalBackend:
    """The job runner's view of local training (the Protocol in train/backends/base.py).
    `launched`: this process is a rank started by `accelerate launch`."""

    runs_remotely = False  # its process is followed through the run's log and metrics

    def __init__(self, launched: bool = False):
        self.launched = launched

    @property
    def records(self) -> bool:
        """Whether this process records (ranks other than 0 of a launched job do not)."""
        return not self.launched or launch.rank() == 0

    def check(self, spec: LocalSpec, display=None, confirm=None) -> bool:
        check_hardware(spec)  # before a job exists: a run this machine cannot do is bad usage, not a failed job
        if spec.launches:
            launch.check(spec)  # the accelerate config exists, deepspeed is installed, enough GPUs
        return True

    def start(self, job, spec: LocalSpec, recorder: Recorder, *, resume: bool, detach: bool) -> Iterator[Update]:
        if spec.launches and not self.launched:  # several processes: `accelerate launch` in a new session
            process = launch.start(job.id, spec, Path(job.run_dir) / LOG_FILE, resume=resume)
            yield Update("running", fields={"pid": process.pid})
            recorder.event("launch", f"accelerate launch: {spec.processes} process(es), config "
                           f"{launch.config_path(spec.accelerate_config).name}",
                           {"command": launch.launch_command(job.id, spec, resume), "pid": process.pid}, show=False)
            self._launcher = process  # follow() watches it: the runner calls start, then follow, on one backend
        elif detach:  # a worker process in a new session, so it survives the terminal that started it
            yield Update(job.status, fields={"pid": _spawn_worker(job, resume)})
        elif self.launched:  # rank 0 under the launcher: the launcher's pid stays the job's
            yield Update("running")
        else:
            yield Update("running", fields={"pid": os.getpid()})

    def follow(self, job, spec: LocalSpec, recorder: Recorder, *, resume: bool) -> Iterator[Update]:
        if spec.launches and not self.launched:
            yield from _watch_launcher(job, self._launcher, recorder)
            return
        recorder.main = self.records
        with _CancelFlag() as cancel:
            recipe = LocalRecipe(spec, Path(job.run_dir), recorder, cancel).setup()
            recipe.train(resume)
            yield recipe.save()

    def train_silently(self, job, spec: LocalSpec, resume: bool) -> None:
        """A rank other than 0: the same recipe in step with rank 0, recording nothing; errors propagate."""
        with _CancelFlag() as cancel:
            recipe = LocalRecipe(spec, Path(job.run_dir), Recorder(job.id, job.run_dir, main=False), cancel).setup()
            recipe.train(resume)
            recipe.save()

    def refresh(self, job, recorder: Recorder, *, remote: bool = True) -> Update | None:
        if job.status == "running" and not pid_alive(job.pid):
            return Update("failed", "process_died",
                          "the training process ended without finishing (crash or kill); "
                          f"`tunesmith jobs resume {job.id}` continues from the last checkpoint")
        return None

    def cancel(self, job, recorder: Recorder, wait_s: float = CANCEL_WAIT_S) -> Update | None:
        """SIGTERM: the run saves a checkpoint at its next step and records `cancelled` itself."""
        if job.status == "queued" or not pid_alive(job.pid):
            return Update("cancelled", "cancelled")
        recorder.event("cancel", "cancel requested")
        if launch.launches(job.spec):  # the launcher leads its own process group and passes SIGTERM to every rank
            os.killpg(job.pid, signal.SIGTERM)
        else:
            os.kill(job.pid, signal.SIGTERM)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and pid_alive(job.pid):
            time.sleep(0.3)
        return None


class LocalRecipe:
    """One local training run: `setup`, `train`, `save`, each reading the state the one before left."""

    def __init__(self, spec: LocalSpec, run_dir: Path, recorder: Recorder, cancel: "_CancelFlag"):
        self.spec, self.run_dir, self.recorder, self.cancel = spec, run_dir, recorder, cancel

    def setup(self) -> "LocalRecipe":
        import torch
        from datasets import Dataset
        from transformers import PrinterCallback
        from trl import SFTConfig

        spec, recorder = self.spec, self.recorder
        check_hardware(spec)
        _quiet_libraries()
        # Data: the prepared folder's train and validation splits, refused if its seal is broken.
        dataset = load_dataset([spec.data])
        broken = verify_seal(dataset.prepared_dir, dataset.manifest or {}, dataset.examples)
        if broken:
            raise TunesmithError(broken[0].message, broken[0].hint)
        tokenizer = load_tokenizer(spec.base_model)
        train = _encode(dataset.split("train"), tokenizer, spec, "train", recorder)
        validation = _encode(dataset.split("validation"), tokenizer, spec, "validation", recorder)[:MAX_EVAL_EXAMPLES]
        if not train:
            raise BadInputError(f"{spec.data} has no trainable examples in its train split")
        trained_tokens = sum(e.trained_tokens for e in train)
        recorder.event("data", f"{len(train)} train and {len(validation)} validation examples, "
                       f"{trained_tokens:,} trained tokens per epoch",
                       {"train": len(train), "validation": len(validation), "trained_tokens_per_epoch": trained_tokens})

        precision = resolve_precision(spec.precision)
        torch.manual_seed(spec.seed)
        model = _build_model(spec, precision)
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        total = sum(p.numel() for p in model.parameters())
        recorder.event("model", f"{spec.base_model}, {spec.method}, {precision}: {trainable:,} of {total:,} parameters trained",
                       {"trainable_parameters": trainable, "parameters": total, "precision": precision})
        checkpointing = _gradient_checkpointing(spec, train, recorder)
        answer_metric = self._answer_metric(dataset, tokenizer)

        # Schedule: evaluations about four times an epoch, a checkpoint at each (the best is kept).
        # A step takes batch_size x gradient_accumulation examples on each of the world_size processes.
        steps_per_epoch = max(1, math.ceil(len(train) / (spec.batch_size * spec.gradient_accumulation * launch.world_size())))
        eval_interval = spec.eval_interval or max(1, steps_per_epoch // EVALUATIONS_PER_EPOCH)
        checkpoint_interval = spec.checkpoint_interval or eval_interval
        config = SFTConfig(
            output_dir=str(self.run_dir / "checkpoints"),
            num_train_epochs=spec.epochs,
            max_steps=spec.max_steps or -1,
            per_device_train_batch_size=spec.batch_size,
            per_device_eval_batch_size=spec.batch_size,
            gradient_accumulation_steps=spec.gradient_accumulation,
            learning_rate=spec.resolved_learning_rate,
            lr_scheduler_type="linear",
            warmup_steps=spec.warmup_ratio,  # transformers 5: a float below 1 is a share of the steps
            weight_decay=spec.weight_decay,
            max_grad_norm=spec.max_grad_norm,
            seed=spec.seed,
            data_seed=spec.seed,
            bf16=precision == "bf16",
            fp16=precision == "fp16",
            use_cpu=not torch.cuda.is_available(),
            gradient_checkpointing=checkpointing,
            # Non-reentrant: the adapter gets gradients without input gradients forced on, and the
            # recomputed forward pass draws the same dropout masks (the random state is restored).
            gradient_checkpointing_kwargs={"use_reentrant": False} if checkpointing else None,
            # Random batches by default, as TRL's: batches of like length ended 0.7% higher in validation
            # loss over three seeds (docs/training.md).
            train_sampling_strategy="group_by_length" if spec.group_by_length else "random",
            max_length=spec.max_seq_length,
            packing=False,
            logging_steps=1,
            eval_strategy="steps" if validation else "no",
            eval_steps=eval_interval,
            save_strategy="steps",
            save_steps=checkpoint_interval,
            save_total_limit=2,  # with load_best_model_at_end: the best and the latest survive
            load_best_model_at_end=bool(validation),
            metric_for_best_model="eval_accuracy" if answer_metric and spec.select_by == "accuracy" else "eval_loss",
            greater_is_better=bool(answer_metric) and spec.select_by == "accuracy",
            report_to=[],
            disable_tqdm=True,
            dataloader_num_workers=0,
            ddp_find_unused_parameters=False,  # several processes: every trained weight is used in each step
            prediction_loss_only=True,
        )
        columns = lambda rows: Dataset.from_dict({"input_ids": [r.input_ids for r in rows],
                                                  "labels": [r.labels for r in rows]})
        self.watch_state = WatchState(OverfittingWatch(spec.early_stopping.patience, spec.early_stopping.min_delta,
                                                       spec.select_by if answer_metric else "loss"), LossGuard())
        callback = _callback(self.recorder, self.watch_state, self.cancel, trained_tokens_per_step(train, spec))
        self.trainer = _trainer_class()(model=model, args=config, train_dataset=columns(train),
                                        eval_dataset=columns(validation) if validation else None,
                                        processing_class=tokenizer, callbacks=[callback])
        self.trainer.remove_callback(PrinterCallback)  # the recorder shows the metrics; the default prints raw dicts
        self.trainer.answer_metric = answer_metric
        self.tokenizer, self.precision, self.gradient_checkpointing = tokenizer, precision, checkpointing
        return self

    def _answer_metric(self, dataset, tokenizer) -> AnswerMetric | None:
        """The task's real metric at each evaluation, where the data has an output space (labels,
        a template): the model answers up to `accuracy_examples` validation prompts."""
        spec = self.spec
        space = dataset_output_space(spec.data)
        examples = dataset.split("validation")[: spec.accuracy_examples]
        if space is None or not examples or spec.accuracy_examples == 0 or launch.world_size() > 1:
            if spec.select_by == "accuracy":
                raise BadInputError("select_by: accuracy needs a validation split whose outputs have an output space "
                                    "(labels or a template) and accuracy_examples above 0, on one process",
                                    "use select_by: loss for free-text outputs")
            return None
        self.recorder.event("answer_metric", f"accuracy on {len(examples)} validation answers at each evaluation "
                            f"({space.describe()}), next to the loss; best checkpoint by {spec.select_by}")
        return AnswerMetric(space, examples, tokenizer)

    def train(self, resume: bool) -> None:
        checkpoint = last_checkpoint(self.run_dir) if resume else None
        if resume and checkpoint is None:
            self.recorder.event("warning", "no checkpoint to resume from: starting from the beginning")
        elif checkpoint:
            self.recorder.event("resume", f"resuming from {checkpoint.name}", {"checkpoint": str(checkpoint)})
        self.trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)

    def save(self) -> Update:
        """Save the result (the best checkpoint's weights, loaded by the trainer at the end) and
        say why training stopped."""
        verdict, last = self.watch_state.verdict, dict(self.watch_state.last)
        if verdict and verdict.reason in ("nan_loss", "exploding_loss", "cancelled"):
            self.recorder.event("stopped", verdict.message, verdict.evidence)
            status = "cancelled" if verdict.reason == "cancelled" else "failed"
            return Update(status, verdict.reason, None if status == "cancelled" else verdict.message)
        weights_dir = self.run_dir / ("adapter" if self.spec.method in ("lora", "qlora") else "model")
        # save_model: on every rank (FSDP and DeepSpeed gather the sharded weights), files written by the main one.
        self.trainer.save_model(str(weights_dir))
        if not self.recorder.main:
            return Update("succeeded")
        (weights_dir / "training_args.bin").unlink(missing_ok=True)  # a pickle of the Trainer's arguments; spec.yaml says it
        self.tokenizer.save_pretrained(str(weights_dir))
        best = self.watch_state.watch.best
        best_metrics = {"step": best.step, "eval_loss": best.eval_loss, "train_loss": best.train_loss} if best else {}
        if best is not None and best.accuracy is not None:
            best_metrics["eval_accuracy"] = best.accuracy
        steps = self.trainer.state.global_step
        if verdict and steps < self.trainer.state.max_steps:  # the overfitting watch stopped the run
            self.recorder.event("stopped_early", verdict.message, verdict.evidence)
            stop_reason, message, evidence = "stopped_early", verdict.message, verdict.evidence
        elif verdict:  # its verdict came at the last evaluation: nothing was cut short, but an earlier checkpoint is kept
            self.recorder.event("overfitting", verdict.message, verdict.evidence)
            stop_reason, message, evidence = "completed", f"trained for all {steps} steps; {verdict.message}", verdict.evidence
        else:
            stop_reason, message, evidence = "completed", f"trained for {steps} steps", {}
        self.recorder.log.info("%s: %s", stop_reason, message)
        atomic_write_text(self.run_dir / "result.json", json.dumps({
            "stop_reason": stop_reason, "message": message, "weights_dir": str(weights_dir),
            "final_metrics": last, "best_metrics": best_metrics, "evidence": evidence,
        }, indent=2) + "\n")
        full = self.spec.method == "full"
        return Update("succeeded", stop_reason, model=TrainedModel(
            adapter_path=None if full else str(weights_dir), merged_path=str(weights_dir) if full else None,
            final_metrics=last, best_metrics=best_metrics, lineage={"evidence": evidence or None}))


# --- background and multi-process runs -----------------------------------------------------


def _spawn_worker(job, resume: bool) -> int:
    """`python -m tunesmith.train.worker JOB_ID` in a new process session; its pid."""
    log = open(Path(job.run_dir) / LOG_FILE, "ab")
    command = [sys.executable, "-m", "tunesmith.train.worker", job.id] + (["--resume"] if resume else [])
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    log.close()
    return process.pid


def _watch_launcher(job, process, recorder: Recorder) -> Iterator[Update]:
    """A multi-process job in the foreground: show what rank 0 records until the launcher ends.
    Ctrl-C cancels it the way `tunesmith jobs cancel` does."""
    follow = _follower(job.id, Path(job.run_dir), recorder.display)
    try:
        while process.poll() is None:
            follow()
            time.sleep(0.5)
    except KeyboardInterrupt:
        os.killpg(process.pid, signal.SIGTERM)  # every rank stops at the same step, checkpoints, rank 0 records
        process.wait()
    follow()
    if queries.get_job(job.id).status in ("queued", "running"):  # the ranks ended without rank 0 recording how
        yield Update("failed", "error", f"the training processes exited (code {process.returncode}) without "
                                        f"recording a result; see {Path(job.run_dir) / LOG_FILE}")


def _follower(job_id: str, run_dir: Path, display) -> Callable[[], None]:
    """A function that passes the metric rows and events recorded since its last call (or its
    creation) to `display`."""
    metrics = run_dir / METRICS_FILE
    position = metrics.stat().st_size if metrics.exists() else 0
    last_event = max((e.id for e in queries.job_events(job_id)), default=0)

    def follow() -> None:
        nonlocal position, last_event
        if display is None:
            return
        for event in queries.job_events(job_id, after_id=last_event):
            last_event = event.id
            display({"event": event.kind, "message": event.message})
        if metrics.exists():
            with open(metrics, "rb") as f:
                f.seek(position)
                chunk = f.read()
            complete = chunk[:chunk.rfind(b"\n") + 1]  # a row being written is read next time
            position += len(complete)
            for line in complete.decode("utf-8").splitlines():
                display(json.loads(line))

    return follow


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped by its parent) is not alive
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return True


# --- the recipe's parts ----------------------------------------------------------------------


def check_hardware(spec: LocalSpec) -> None:
    """Refuse, before any model loads, what this machine cannot run."""
    import torch

    if spec.method == "qlora":
        import importlib.util

        if not torch.cuda.is_available():
            raise BadInputError("QLoRA needs a CUDA GPU (4-bit weights through bitsandbytes), and this machine has none",
                                "use method: lora, which tunes the same adapter on full-precision weights")
        if importlib.util.find_spec("bitsandbytes") is None:
            raise BadInputError("QLoRA needs the bitsandbytes package", "pip install bitsandbytes, or use method: lora")
    if spec.precision == "fp16" and not torch.cuda.is_available():
        raise BadInputError("fp16 training needs a GPU", "use precision: auto (bf16 or fp32 on a CPU)")


class _CancelFlag:
    """SIGTERM (from `tunesmith jobs cancel`) asks the run to stop at the next step."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def __enter__(self) -> "_CancelFlag":
        try:
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        except ValueError:  # not the main thread: cancellation goes through the flag only
            self._previous = None
        return self

    def _handle(self, signum, frame) -> None:
        self.requested = True

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)


def last_checkpoint(run_dir: Path) -> Path | None:
    checkpoints = sorted((run_dir / "checkpoints").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    return checkpoints[-1] if checkpoints else None


def _encode(examples, tokenizer, spec: LocalSpec, split: str, recorder: Recorder):
    encoded = encode_dataset(examples, tokenizer, spec.max_seq_length)
    kept = [e for e in encoded if not e.nothing_to_train]
    truncated = sum(1 for e in encoded if e.truncated)
    if truncated:
        recorder.event("warning", f"{truncated} {split} example(s) were longer than max_seq_length "
                       f"{spec.max_seq_length} and were truncated", {"split": split, "truncated": truncated})
    if len(kept) < len(encoded):
        recorder.event("warning", f"{len(encoded) - len(kept)} {split} example(s) have no trained tokens left after "
                       "truncation and are skipped", {"split": split, "skipped": len(encoded) - len(kept)})
    return kept


def _quiet_libraries() -> None:
    """Progress bars and deprecation notes from the libraries would drown our own display."""
    import warnings

    import datasets
    from transformers.utils import logging as hf_logging

    datasets.disable_progress_bars()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")


def _gradient_checkpointing(spec: LocalSpec, train, recorder: Recorder) -> bool:
    """The spec's choice, or for `auto` the plan's (plan.planner.plan_local_run): on only where
    the run would not fit in this machine's memory without it. Said as an event either way."""
    try:
        run = planner.plan_local_run(spec, max(len(e.input_ids) for e in train),
                             sum(e.trained_tokens for e in train) / len(train))
        chosen, why = run.gradient_checkpointing, run.why
    except (TunesmithError, ValueError) as exc:  # no estimate (an architecture the plan does not know)
        chosen = spec.gradient_checkpointing is True
        reason = exc.message if isinstance(exc, TunesmithError) else str(exc)
        why = f"no memory estimate ({reason})" if spec.gradient_checkpointing == "auto" else "as the spec says"
    recorder.event("memory", f"gradient checkpointing {'on' if chosen else 'off'}: {why}",
                   {"gradient_checkpointing": chosen})
    return chosen


def _build_model(spec: LocalSpec, precision: str):
    """The base in the chosen precision, with a LoRA adapter unless tuning fully, and the
    measures of cpu_kernels (speed on a CPU) and mixed_precision (LoRA under autocast)."""
    import torch

    # These two modules import torch and transformers at their top: loaded here, when a model is built.
    from ..cpu_kernels import fuse_lora_layers, use_fast_lora_dropout, use_fp32_attention
    from ..mixed_precision import add_lora_updates_in_fp32, store_frozen_linears_in_bf16

    model = _load_base(spec, precision)
    on_cpu = not torch.cuda.is_available()
    if on_cpu and precision == "bf16":
        use_fp32_attention(model)
    if spec.method == "full":
        return model
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(model, LoraConfig(
        r=spec.lora.rank, lora_alpha=spec.lora.alpha, lora_dropout=spec.lora.dropout,
        target_modules=spec.lora.target_modules, task_type="CAUSAL_LM",
    ))
    if on_cpu:
        use_fast_lora_dropout(model)
    if precision in ("bf16", "fp16"):
        add_lora_updates_in_fp32(model)
    if spec.method == "lora" and precision == "bf16" and not spec.launches:
        # Not under accelerate: FSDP and DeepSpeed flatten a layer's weights, one dtype per unit.
        store_frozen_linears_in_bf16(model)
        if on_cpu:
            fuse_lora_layers(model)
    return model


def _load_base(spec: LocalSpec, precision: str):
    """The base model to train. LoRA and full: float32 weights, with bf16 (or fp16) autocast over
    them (the Trainer's mixed precision); _build_model then stores LoRA's frozen projections in
    bf16. QLoRA: the frozen base in 4-bit NF4 on this process's GPU, prepared for k-bit training
    (PEFT: norms and the head in fp32, input gradients on, so the adapter gets gradients through
    the frozen 4-bit layers)."""
    import torch

    if spec.method != "qlora":
        return load_model(spec.base_model, dtype=torch.float32)
    from peft import prepare_model_for_kbit_training

    device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"  # several processes: one GPU each
    model = load_model(spec.base_model, device=device, quantization_config=qlora_quantization(precision))
    return prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)


def qlora_quantization(precision: str):
    """The QLoRA paper's recipe: NF4 weights, double quantization (the quantization constants
    quantized too, about 0.4 bits a parameter saved), matmuls computed in the training precision."""
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def _trainer_class():
    """SFTTrainer with a leaner loss: the vocabulary projection and cross-entropy run only at
    the trained positions (labels other than -100), through plain PyTorch. On a CPU that is
    faster than both the full logits and TRL's tiled kernel (bench/train_throughput.py)."""
    import torch
    import torch.nn.functional as F
    from trl import SFTTrainer

    class LeanLossSFTTrainer(SFTTrainer):
        answer_metric = None  # train/answer_metric.AnswerMetric: the task's real metric at each evaluation

        def evaluation_loop(self, *args, **kwargs):
            output = super().evaluation_loop(*args, **kwargs)
            prefix = kwargs.get("metric_key_prefix", args[4] if len(args) > 4 else "eval")
            if self.answer_metric is not None and self.is_world_process_zero():
                # Under the run's autocast, as its forward passes run: bf16 weights beside fp32 norms and adapters.
                with self.accelerator.autocast():
                    scores = self.answer_metric(self.model)
                output.metrics[f"{prefix}_accuracy"] = scores["accuracy"]
                output.metrics[f"{prefix}_valid_rate"] = scores["valid_rate"]
            return output

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if self.accelerator.num_processes > 1:
                # Several processes: the forward pass must go through the DDP / FSDP / DeepSpeed wrapper (it
                # syncs gradients and gathers sharded weights), and TRL's loss scales for the global token count.
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            base = model.get_base_model() if hasattr(model, "get_base_model") else model
            config = base.config.get_text_config()
            if getattr(config, "final_logit_softcapping", None) or getattr(config, "logit_scale", None):
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)  # logits need their scaling
            targets = inputs["labels"][:, 1:]
            trained = targets != -100
            # The accelerator's autocast (bf16 / fp16) wraps model.forward only, so this
            # direct route through the decoder and the head must enter it itself.
            with self.accelerator.autocast():
                hidden = base.get_decoder()(input_ids=inputs["input_ids"], attention_mask=inputs.get("attention_mask"),
                                            use_cache=False).last_hidden_state
                logits = self._head(base)(hidden[:, :-1][trained]).float()
            targets = targets[trained]
            count = num_items_in_batch if num_items_in_batch is not None else trained.sum()
            loss = F.cross_entropy(logits, targets, reduction="sum") / torch.as_tensor(count).clamp(min=1)
            with torch.no_grad():
                accuracy = (logits.argmax(-1) == targets).float().mean().item() if len(targets) else 0.0
            self._metrics["train" if model.training else "eval"]["mean_token_accuracy"].append(accuracy)
            return (loss, {"loss": loss}) if return_outputs else loss

        def _head(self, base):
            """The vocabulary projection. Frozen (LoRA) under bf16 autocast: a bf16 copy made once,
            where autocast would cast the whole vocabulary matrix again at every forward pass."""
            head = base.get_output_embeddings()
            device = head.weight.device.type
            if head.weight.requires_grad or head.bias is not None or not torch.is_autocast_enabled(device) \
                    or torch.get_autocast_dtype(device) != torch.bfloat16:
                return head
            if getattr(self, "_bf16_head", None) is None:
                self._bf16_head = head.weight.detach().to(torch.bfloat16)
            return lambda hidden: F.linear(hidden.to(torch.bfloat16), self._bf16_head)

    return LeanLossSFTTrainer


def trained_tokens_per_step(train, spec: LocalSpec) -> float:
    """Mean trained (non-padding) tokens per optimizer step over all processes, for the tokens/s figure."""
    per_example = sum(len(e.input_ids) for e in train) / len(train)
    return per_example * spec.batch_size * spec.gradient_accumulation * launch.world_size()


@dataclass
class WatchState:
    watch: OverfittingWatch
    guard: LossGuard
    verdict: StopVerdict | None = None
    last_train_loss: float | None = None
    last: dict = field(default_factory=dict)  # the latest value of every metric


def _callback(recorder: Recorder, state: "WatchState", cancel: "_CancelFlag", tokens_per_step: float):
    """The run's TrainerCallback: _RunCallback with transformers' base class, imported here."""
    from transformers import TrainerCallback

    return type("RunCallback", (_RunCallback, TrainerCallback), {})(recorder, state, cancel, tokens_per_step)


class _RunCallback:  # a transformers TrainerCallback (its base class is added in _callback)
    """Feeds the reporter, the overfitting watch, the loss guard and the cancel flag."""

    def __init__(self, recorder: Recorder, state: WatchState, cancel: _CancelFlag, tokens_per_step: float):
        self.recorder = recorder
        self.state = state
        self.cancel = cancel
        self.tokens_per_step = tokens_per_step
        self.step_started = time.perf_counter()
        self.step_seconds: list[float] = []

    def on_step_begin(self, args, state, control, **kwargs):
        self.step_started = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.step_seconds.append(time.perf_counter() - self.step_started)
        if _on_any_rank(self.cancel.requested, args.device):
            self.state.verdict = StopVerdict("cancelled", "cancelled by the user")
            control.should_training_stop = True
            control.should_save = True  # leave a checkpoint to resume from

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        row = {"step": state.global_step, "epoch": round(state.epoch or 0.0, 4), "time": time.time(),
               "max_steps": state.max_steps}
        if "loss" in logs:
            loss = float(logs["loss"])
            self.state.last_train_loss = loss
            recent = self.step_seconds[-10:]
            row.update(train_loss=loss, learning_rate=logs.get("learning_rate"),
                       token_accuracy=logs.get("mean_token_accuracy"),
                       tokens_per_s=self.tokens_per_step / (sum(recent) / len(recent)) if recent else None)
            verdict = self.state.guard.check(state.global_step, loss)
            if verdict and self.state.verdict is None:
                self.state.verdict = verdict
                control.should_training_stop = True
        elif "eval_loss" in logs:
            row.update(eval_loss=float(logs["eval_loss"]), eval_token_accuracy=logs.get("eval_mean_token_accuracy"),
                       eval_accuracy=logs.get("eval_accuracy"), train_loss=self.state.last_train_loss)
        else:
            return
        row = {k: v for k, v in row.items() if v is not None}
        self.state.last.update(row)
        self.recorder.metrics(row)

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if not metrics or "eval_loss" not in metrics:
            return
        verdict = self.state.watch.observe(Evaluation(state.global_step, self.state.last_train_loss,
                                                      float(metrics["eval_loss"]), metrics.get("eval_accuracy")))
        if verdict and self.state.verdict is None:
            self.state.verdict = verdict
            control.should_training_stop = True


def _on_any_rank(flag: bool, device) -> bool:
    """Whether `flag` is set on any process. SIGTERM reaches the ranks at slightly different moments;
    a rank that stopped alone would leave the others waiting in their next collective."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return flag
    flags = torch.tensor([int(flag)], device=device)
    dist.all_reduce(flags, op=dist.ReduceOp.MAX)
    return bool(flags.item())
