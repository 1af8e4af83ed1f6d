"""The local backend: supervised fine-tuning with transformers + PEFT + TRL on this machine.

One recipe with a fixed lifecycle, read top to bottom: `setup` (data, tokenizer, model,
trainer, in dependency order), `train`, `finish` (save the best weights, register them).
Loss is on model turns only: examples are tokenized by `train.tokenize` with exact masks
and handed to TRL's SFTTrainer already tokenized, so TRL neither re-templates nor re-masks.

Under `accelerate launch` (several processes, see train/accelerate/) every rank runs this
same recipe on its share of each batch; only rank 0 (the main process) writes metrics.jsonl,
store rows, events and result.json. Stop decisions are the same on every rank: the overfitting
watch and the loss guard read losses the Trainer has already averaged over all ranks, and the
cancel flag is combined across ranks at every step, so no rank stops while another waits for
it in a collective.

This module imports transformers at the top: the job runner imports it only to train."""

from __future__ import annotations

import json
import math
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from transformers import PrinterCallback, TrainerCallback

from ...errors import BadInputError, TunesmithError
from ...fileio import atomic_write_text
from .. import accelerate as launch
from ..spec import TrainSpec
from ..watch import Evaluation, LossGuard, OverfittingWatch, StopVerdict

EVALUATIONS_PER_EPOCH = 4  # the default eval_interval: often enough to catch overfitting, cheap enough on a CPU
MAX_EVAL_EXAMPLES = 512  # validation loss on more than this costs more time than it tells


@dataclass
class RunOutcome:
    stop_reason: str  # "completed" | "stopped_early" | "cancelled" | "nan_loss" | "exploding_loss"
    message: str
    weights_dir: Path | None = None  # the adapter (lora/qlora) or the full model (full)
    final_metrics: dict = field(default_factory=dict)
    best_metrics: dict = field(default_factory=dict)
    evidence: dict = field(default_factory=dict)


class Reporter:
    """Where a run says what it does: the job's store rows, its metrics.jsonl, and the display."""

    def __init__(self, job_id: str, run_dir: Path, display: Callable[[dict], None] | None = None,
                 main: bool = True):
        self.job_id = job_id
        self.metrics_path = run_dir / "metrics.jsonl"
        self.display = display
        self.main = main  # several processes: only the main one records

    def event(self, kind: str, message: str, data: dict | None = None) -> None:
        from ...store.queries import add_event

        if not self.main:
            return
        add_event(self.job_id, kind, message, data)
        if self.display:
            self.display({"event": kind, "message": message})

    def metrics(self, row: dict) -> None:
        from ...store.queries import add_metrics

        if not self.main:
            return
        with open(self.metrics_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        values = {k: v for k, v in row.items() if k not in ("step", "epoch", "time")}
        add_metrics(self.job_id, row["step"], row["epoch"], **values)
        if self.display:
            self.display(row)


def check_hardware(spec: TrainSpec) -> None:
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


def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AVX-512 BF16 or AMX): there bf16 matrix
    products run 3-8x faster than fp32 ones (the plan's probe on a two-core AMX machine);
    elsewhere bf16 is emulated and slower."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return False
    return any(flag in flags.split() for flag in ("avx512_bf16", "amx_bf16"))


def resolve_precision(spec: TrainSpec) -> str:
    """auto: bf16 on a GPU that supports it, else fp16 on a GPU; on a CPU bf16 autocast
    (fp32 master weights) where the CPU has native bf16, else fp32."""
    import torch

    if spec.precision != "auto":
        return spec.precision
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if cpu_has_bf16() else "fp32"


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


def run(job_id: str, spec: TrainSpec, run_dir: Path, resume: bool = False,
        display: Callable[[dict], None] | None = None) -> RunOutcome:
    reporter = Reporter(job_id, run_dir, display, main=launch.rank() == 0)
    check_hardware(spec)
    with _CancelFlag() as cancel:
        trainer, watch_state, extras = setup(spec, run_dir, reporter, cancel)
        checkpoint = last_checkpoint(run_dir) if resume else None
        if resume and checkpoint is None:
            reporter.event("warning", "no checkpoint to resume from: starting from the beginning")
        elif checkpoint:
            reporter.event("resume", f"resuming from {checkpoint.name}", {"checkpoint": str(checkpoint)})
        trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
        return finish(spec, run_dir, trainer, watch_state, cancel, reporter, extras)


def last_checkpoint(run_dir: Path) -> Path | None:
    checkpoints = sorted((run_dir / "checkpoints").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    return checkpoints[-1] if checkpoints else None


def _encode(examples, tokenizer, spec: TrainSpec, split: str, reporter: Reporter):
    from ..tokenize import encode_dataset

    encoded = encode_dataset(examples, tokenizer, spec.max_seq_length)
    kept = [e for e in encoded if not e.nothing_to_train]
    truncated = sum(1 for e in encoded if e.truncated)
    if truncated:
        reporter.event("warning", f"{truncated} {split} example(s) were longer than max_seq_length "
                       f"{spec.max_seq_length} and were truncated", {"split": split, "truncated": truncated})
    if len(kept) < len(encoded):
        reporter.event("warning", f"{len(encoded) - len(kept)} {split} example(s) have no trained tokens left after "
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


def setup(spec: TrainSpec, run_dir: Path, reporter: Reporter, cancel: _CancelFlag):
    import torch
    from datasets import Dataset
    from trl import SFTConfig

    from ...data.dataset import load_dataset
    from ...data.seal import verify_seal
    from ...models.loading import load_tokenizer

    _quiet_libraries()
    # Data: the prepared folder's train and validation splits, refused if its seal is broken.
    dataset = load_dataset([spec.data])
    broken = verify_seal(dataset.prepared_dir, dataset.manifest or {}, dataset.examples)
    if broken:
        raise TunesmithError(broken[0].message, broken[0].hint)
    tokenizer = load_tokenizer(spec.base_model)
    train = _encode(dataset.split("train"), tokenizer, spec, "train", reporter)
    validation = _encode(dataset.split("validation"), tokenizer, spec, "validation", reporter)[:MAX_EVAL_EXAMPLES]
    if not train:
        raise BadInputError(f"{spec.data} has no trainable examples in its train split")
    trained_tokens = sum(e.trained_tokens for e in train)
    reporter.event("data", f"{len(train)} train and {len(validation)} validation examples, "
                   f"{trained_tokens:,} trained tokens per epoch",
                   {"train": len(train), "validation": len(validation), "trained_tokens_per_epoch": trained_tokens})

    precision = resolve_precision(spec)
    torch.manual_seed(spec.seed)
    model = _build_model(spec, precision)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    reporter.event("model", f"{spec.base_model}, {spec.method}, {precision}: {trainable:,} of {total:,} parameters trained",
                   {"trainable_parameters": trainable, "parameters": total, "precision": precision})
    checkpointing = _gradient_checkpointing(spec, train, reporter)

    # Schedule: evaluations about four times an epoch, a checkpoint at each (the best is kept).
    # A step takes batch_size x gradient_accumulation examples on each of the world_size processes.
    steps_per_epoch = max(1, math.ceil(len(train) / (spec.batch_size * spec.gradient_accumulation * launch.world_size())))
    eval_interval = spec.eval_interval or max(1, steps_per_epoch // EVALUATIONS_PER_EPOCH)
    checkpoint_interval = spec.checkpoint_interval or eval_interval
    config = SFTConfig(
        output_dir=str(run_dir / "checkpoints"),
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
        train_sampling_strategy="group_by_length",  # batches of similar length: little padding
        max_length=spec.max_seq_length,
        packing=False,
        logging_steps=1,
        eval_strategy="steps" if validation else "no",
        eval_steps=eval_interval,
        save_strategy="steps",
        save_steps=checkpoint_interval,
        save_total_limit=2,  # with load_best_model_at_end: the best and the latest survive
        load_best_model_at_end=bool(validation),
        metric_for_best_model="eval_loss",
        greater_is_better=False,
        report_to=[],
        disable_tqdm=True,
        dataloader_num_workers=0,
        ddp_find_unused_parameters=False,  # several processes: every trained weight is used in each step
        prediction_loss_only=True,
    )
    columns = lambda rows: Dataset.from_dict({"input_ids": [r.input_ids for r in rows], "labels": [r.labels for r in rows]})
    watch_state = WatchState(OverfittingWatch(spec.early_stopping.patience, spec.early_stopping.min_delta), LossGuard())
    callback = _RunCallback(reporter, watch_state, cancel, trained_tokens_per_step(train, spec))
    trainer = _trainer_class()(model=model, args=config, train_dataset=columns(train),
                         eval_dataset=columns(validation) if validation else None,
                         processing_class=tokenizer, callbacks=[callback])
    trainer.remove_callback(PrinterCallback)  # our reporter shows the metrics; the default prints raw dicts
    return trainer, watch_state, {"tokenizer": tokenizer, "precision": precision, "eval_interval": eval_interval,
                                  "gradient_checkpointing": checkpointing}


def _gradient_checkpointing(spec: TrainSpec, train, reporter: Reporter) -> bool:
    """The spec's choice, or for `auto` the plan's (plan.planner.plan_local_run): on only where
    the run would not fit in this machine's memory without it. Said as an event either way."""
    from ...plan.planner import plan_local_run

    try:
        run = plan_local_run(spec, max(len(e.input_ids) for e in train),
                             sum(e.trained_tokens for e in train) / len(train))
        chosen, why = run.gradient_checkpointing, run.why
    except (TunesmithError, ValueError) as exc:  # no estimate (an architecture the plan does not know)
        chosen = spec.gradient_checkpointing is True
        reason = exc.message if isinstance(exc, TunesmithError) else str(exc)
        why = f"no memory estimate ({reason})" if spec.gradient_checkpointing == "auto" else "as the spec says"
    reporter.event("memory", f"gradient checkpointing {'on' if chosen else 'off'}: {why}",
                   {"gradient_checkpointing": chosen})
    return chosen


def _build_model(spec: TrainSpec, precision: str):
    """The base in the chosen precision, with a LoRA adapter unless tuning fully, and the
    measures of cpu_kernels (speed on a CPU) and mixed_precision (LoRA under autocast)."""
    import torch

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
    if spec.method == "lora" and precision == "bf16" and not launch.launches(spec):
        # Not under accelerate: FSDP and DeepSpeed flatten a layer's weights, one dtype per unit.
        store_frozen_linears_in_bf16(model)
        if on_cpu:
            fuse_lora_layers(model)
    return model


def _load_base(spec: TrainSpec, precision: str):
    """The base model to train. LoRA and full: float32 weights, with bf16 (or fp16) autocast over
    them (the Trainer's mixed precision); _build_model then stores LoRA's frozen projections in
    bf16. QLoRA: the frozen base in 4-bit NF4 on this process's GPU, prepared for k-bit training
    (PEFT: norms and the head in fp32, input gradients on, so the adapter gets gradients through
    the frozen 4-bit layers)."""
    import torch

    from ...models.loading import load_model

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


def trained_tokens_per_step(train, spec: TrainSpec) -> float:
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


class _RunCallback(TrainerCallback):
    """Feeds the reporter, the overfitting watch, the loss guard and the cancel flag."""

    def __init__(self, reporter: Reporter, state: WatchState, cancel: _CancelFlag, tokens_per_step: float):
        self.reporter = reporter
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
                       train_loss=self.state.last_train_loss)
        else:
            return
        row = {k: v for k, v in row.items() if v is not None}
        self.state.last.update(row)
        self.reporter.metrics(row)

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if not metrics or "eval_loss" not in metrics:
            return
        verdict = self.state.watch.observe(Evaluation(state.global_step, self.state.last_train_loss,
                                                      float(metrics["eval_loss"])))
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


def finish(spec: TrainSpec, run_dir: Path, trainer, watch_state: WatchState, cancel: _CancelFlag,
           reporter: Reporter, extras: dict) -> RunOutcome:
    """Save the result (the best checkpoint's weights, loaded by the trainer at the end) and
    say why training stopped."""
    verdict = watch_state.verdict
    if verdict and verdict.reason in ("nan_loss", "exploding_loss", "cancelled"):
        reporter.event("stopped", verdict.message, verdict.evidence)
        return RunOutcome(verdict.reason, verdict.message, evidence=verdict.evidence,
                          final_metrics=dict(watch_state.last))
    weights_dir = run_dir / ("adapter" if spec.method in ("lora", "qlora") else "model")
    # save_model: on every rank (FSDP and DeepSpeed gather the sharded weights), files written by the main one.
    trainer.save_model(str(weights_dir))
    if not reporter.main:
        return RunOutcome("stopped_early" if verdict else "completed", "", weights_dir)
    (weights_dir / "training_args.bin").unlink(missing_ok=True)  # a pickle of the Trainer's arguments; spec.yaml says it
    extras["tokenizer"].save_pretrained(str(weights_dir))
    best = watch_state.watch.best
    best_metrics = {"step": best.step, "eval_loss": best.eval_loss, "train_loss": best.train_loss} if best else {}
    if verdict:  # the overfitting watch
        reporter.event("stopped_early", verdict.message, verdict.evidence)
        outcome = RunOutcome("stopped_early", verdict.message, weights_dir, evidence=verdict.evidence)
    else:
        outcome = RunOutcome("completed", f"trained for {trainer.state.global_step} steps", weights_dir)
    outcome.final_metrics = dict(watch_state.last)
    outcome.best_metrics = best_metrics
    atomic_write_text(run_dir / "result.json", json.dumps({
        "stop_reason": outcome.stop_reason, "message": outcome.message, "weights_dir": str(weights_dir),
        "final_metrics": outcome.final_metrics, "best_metrics": best_metrics, "evidence": outcome.evidence,
    }, indent=2) + "\n")
    return outcome
