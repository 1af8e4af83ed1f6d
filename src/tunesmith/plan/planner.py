"""`plan`: memory, time and cost of each tuning path for one model and dataset, and a recommendation.

    from tunesmith.plan.planner import plan
    result = plan(model="llama-3.1-8b-instruct", data="prepared", gpu="all")
    result.methods[0].memory.total_gib, result.recommendation.reason

`preflight(spec)` is the same estimate for one training spec, on the machine about to run it."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from ..errors import BadInputError
from ..hardware import resolve_precision
from . import architectures
from . import workload as workloads
from .cost import (
    BreakEven,
    break_even,
    managed_cost_usd,
    managed_targets,
    rented_cost_usd,
)
from .hardware import THIS_MACHINE, Hardware, gpus, resolve_hardware
from .memory import MemoryEstimate, Setup, estimate_memory
from .recommend import (
    DecisionRow,
    Recommendation,
    check_requirements,
    decision_table,
    recommend,
)
from .speed import training_flops, training_time_s

METHODS = ("full", "lora", "qlora")


class HardwareOption(BaseModel):
    gpu: str
    label: str
    memory_gib: float
    needed_gib: float
    fits: bool
    time_s: float
    usd: float  # at the cheapest listed price (this machine: 0, electricity not counted)
    usd_per_hour: float | None = None
    provider: str | None = None
    price_as_of: str | None = None
    price_source: str | None = None


class MethodPlan(BaseModel):
    method: str
    memory: MemoryEstimate  # on a GPU, bf16 weights (the common recipe)
    training_flops: float
    options: list[HardwareOption]
    cheapest: HardwareOption | None  # the cheapest option that fits (a free one on this machine counts)


class ManagedOption(BaseModel):
    target: str
    training_tokens: float
    usd: float
    price_as_of: str | None
    price_source: str | None


class SelfHostedBest(BaseModel):
    method: str
    gpu: str
    provider: str
    usd: float
    time_s: float


class Plan(BaseModel):
    model: str
    params: int
    architecture: dict
    workload: dict
    epochs: float
    seq_len: int
    batch_size: int
    gradient_checkpointing: bool
    optimizer: str
    methods: list[MethodPlan]
    managed: list[ManagedOption]
    break_even: list[BreakEven]
    decision: list[DecisionRow]
    recommendation: Recommendation


def plan(model: str | None = None, params: str | int | None = None, method: str = "all", seq_len: int = 1024,
         batch_size: int = 8, data: str | Path | None = None, gpu: str = "all", epochs: float = 3,
         gradient_checkpointing: bool = True, optimizer: str = "adamw", lora_rank: int = 16,
         runs_per_month: float | None = None, require: list[str] | None = None) -> Plan:
    require = list(require or [])
    check_requirements(require)
    arch = _architecture(model, params)
    chosen = list(METHODS) if method == "all" else [method]
    if any(m not in METHODS for m in chosen):
        raise BadInputError(f"unknown method {method!r}", "choose full, lora, qlora or all")
    hardware = resolve_hardware(gpu)
    if data is not None:
        work = workloads.count(Path(data), arch.name if params is None else None, seq_len)
        managed_work = workloads.count(Path(data), None, seq_len)  # as Gemini counts, about 4 characters a token
    else:
        work = managed_work = workloads.assumed(seq_len)
    seq = min(seq_len, work.longest_tokens)
    base = dict(seq_len=seq, batch_size=batch_size, gradient_checkpointing=gradient_checkpointing,
                optimizer=optimizer, lora_rank=lora_rank,
                trained_tokens_per_example=work.trained_tokens_per_example if data is not None else None)

    # Time counts the padding of random batches: the model computes it as it computes tokens.
    padded = work.padded_tokens_per_epoch(batch_size)
    method_plans = [_method_plan(arch, m, base, hardware, padded * epochs) for m in chosen]
    managed = sorted((ManagedOption(target=t.name, training_tokens=managed_work.tokens_per_epoch * epochs,
                                    usd=managed_cost_usd(t, managed_work.tokens_per_epoch, epochs),
                                    price_as_of=t.price_as_of, price_source=t.price_source)
                      for t in managed_targets()), key=lambda m: m.usd)
    feasible = [mp for mp in method_plans if mp.cheapest]
    self_best = None
    if feasible:  # the cheapest run over all methods; on a tie the quicker one
        best = min(feasible, key=lambda mp: (mp.cheapest.usd, mp.cheapest.time_s))
        self_best = SelfHostedBest(method=best.method, gpu=best.cheapest.gpu, provider=best.cheapest.provider or "",
                                   usd=best.cheapest.usd, time_s=best.cheapest.time_s)
    managed_best = managed[0] if managed else None
    return Plan(
        model=arch.name, params=arch.params,
        architecture=arch.model_dump(exclude={"name", "scaled_to_params"}),
        workload={"examples": work.examples, "tokens_per_epoch": work.tokens_per_epoch,
                  "trained_tokens_per_epoch": work.trained_tokens_per_epoch, "longest_tokens": work.longest_tokens,
                  "padded_tokens_per_epoch": padded,
                  "counted_by": work.counted_by, "managed_tokens_per_epoch": managed_work.tokens_per_epoch},
        epochs=epochs, seq_len=seq, batch_size=batch_size, gradient_checkpointing=gradient_checkpointing,
        optimizer=optimizer, methods=method_plans, managed=managed,
        break_even=_break_even(method_plans, managed_best, runs_per_month),
        decision=decision_table(managed_best, self_best, arch.name),
        recommendation=recommend(managed_best, self_best, require),
    )


def _architecture(model: str | None, params: str | int | None) -> architectures.Architecture:
    if model and params:
        raise BadInputError("give --model or --params, not both")
    if params:
        return architectures.of_size(params if isinstance(params, int) else architectures.parse_params(params))
    return architectures.resolve(model or "smollm2-135m-instruct")


def _method_plan(arch, method: str, base: dict, hardware: list[Hardware], tokens: float) -> MethodPlan:
    gpu_memory = estimate_memory(arch, Setup(method=method, device="gpu", **base))
    options = []
    for hw in hardware:
        if hw.kind == "cpu":
            if method == "qlora":
                continue  # 4-bit weights need CUDA (bitsandbytes)
            # tunesmith's CPU recipe: fp32 weights, bf16 autocast where the CPU has it, no checkpointing.
            memory = estimate_memory(arch, Setup(method=method, device="cpu", weights="fp32",
                                                 precision="bf16" if hw.precision == "bfloat16" else "fp32",
                                                 **{**base, "gradient_checkpointing": False}))
        else:
            memory = gpu_memory
        checkpointing = memory.gradient_checkpointing
        time_s = training_time_s(training_flops(arch.params, method, tokens, checkpointing), hw)
        price = hw.cheapest  # every GPU file has prices; this machine is already paid for
        options.append(HardwareOption(
            gpu=hw.name, label=hw.label, memory_gib=hw.memory_gib, needed_gib=memory.total_gib,
            fits=memory.fits(hw.memory_gib), time_s=time_s,
            usd=rented_cost_usd(time_s / 3600, price.usd_per_hour) if price else 0.0,
            usd_per_hour=price.usd_per_hour if price else None,
            provider=price.provider if price else "electricity not counted",
            price_as_of=price.as_of if price else None, price_source=price.source if price else None,
        ))
    fitting = [o for o in options if o.fits]
    return MethodPlan(method=method, memory=gpu_memory,
                      training_flops=training_flops(arch.params, method, tokens, gpu_memory.gradient_checkpointing),
                      options=options, cheapest=min(fitting, key=lambda o: (o.usd, o.time_s)) if fitting else None)


def _break_even(method_plans: list[MethodPlan], managed_best, runs_per_month: float | None) -> list[BreakEven]:
    """For each method: buying the cheapest-to-buy GPU that fits, against the cheapest managed target."""

    if not runs_per_month or not managed_best:
        return []
    rows = []
    for mp in method_plans:
        buyable = [(gpus()[o.gpu], o) for o in mp.options if o.fits and o.gpu in gpus() and gpus()[o.gpu].purchase_usd]
        if not buyable:
            continue
        hw, option = min(buyable, key=lambda b: b[0].purchase_usd)
        rows.append(break_even(f"{mp.method} on {hw.name}", hw.purchase_usd, runs_per_month, managed_best.usd,
                               option.usd))
    return rows


def preflight(spec) -> tuple[MemoryEstimate, Hardware, list[str]]:
    """The memory estimate for a training spec on this machine, and lines to print before it runs
    (whether gradient checkpointing will be on, a warning when it will not fit). Counts the spec's
    own data exactly, as training will."""
    work = workloads.count(spec.data, spec.base_model, spec.max_seq_length, exact=True)
    run = plan_local_run(spec, work.longest_tokens, work.trained_tokens_per_example)
    estimate, machine = run.estimate, run.machine
    where = "memory" if machine.kind == "cpu" else "GPU memory"
    lines = [f"plan: {spec.method} on {run.arch_name} needs about {estimate.total_gib:.1f} GiB at its peak "
             f"(weights {estimate.weights_gib + estimate.weight_copies_gib:.2f}, gradients and optimizer "
             f"{estimate.gradients_gib + estimate.optimizer_gib:.2f}, activations {estimate.activations_gib:.2f}, "
             f"logits {estimate.logits_gib:.2f}); this machine has {machine.memory_gib:.1f} GiB of {where}"]
    if run.gradient_checkpointing:
        lines.append(f"plan: gradient checkpointing on: {run.why}")
    if not estimate.fits(machine.memory_gib):
        lines.append(f"warning: this run will probably not fit in {machine.memory_gib:.1f} GiB; lower --batch-size "
                     "or --max-seq-length, use --method lora, or see `tunesmith plan`")
    return estimate, machine, lines


class LocalRunPlan(BaseModel):
    arch_name: str
    machine: Hardware
    gradient_checkpointing: bool
    why: str  # why gradient checkpointing is on or off
    estimate: MemoryEstimate  # with gradient checkpointing as chosen


def plan_local_run(spec, longest_tokens: int, trained_tokens_per_example: float | None) -> LocalRunPlan:
    """How the local recipe (train/backends/local.py) will run `spec` on this machine: fp32
    weights with autocast, and gradient checkpointing as the spec says or, for `auto`, only where
    the run would not fit without it (recomputing the forward pass costs about a third more)."""
    machine = resolve_hardware(THIS_MACHINE)[0]
    arch = architectures.resolve(spec.base_model)

    def estimate(checkpointing: bool) -> MemoryEstimate:
        return estimate_memory(arch, Setup(
            method=spec.method, device="cpu" if machine.kind == "cpu" else "gpu", weights="fp32",
            precision=resolve_precision(spec.precision), seq_len=min(spec.max_seq_length, longest_tokens),
            batch_size=spec.batch_size, gradient_accumulation=spec.gradient_accumulation,
            gradient_checkpointing=checkpointing, lora_rank=spec.lora.rank, lora_targets=spec.lora.target_modules,
            lora_dropout=spec.lora.dropout > 0, frozen_projections_in_bf16=not spec.launches,
            trained_tokens_per_example=trained_tokens_per_example))

    def planned(checkpointing: bool, why: str, memory: MemoryEstimate | None = None) -> LocalRunPlan:
        return LocalRunPlan(arch_name=arch.name, machine=machine, gradient_checkpointing=checkpointing, why=why,
                            estimate=memory or estimate(checkpointing))

    if spec.gradient_checkpointing != "auto":
        return planned(spec.gradient_checkpointing, "as the spec says")
    without = estimate(False)
    if without.fits(machine.memory_gib):
        return planned(False, f"the run fits without it ({without.total_gib:.1f} of {machine.memory_gib:.1f} GiB)",
                       without)
    return planned(True, f"without it the run needs about {without.total_gib:.1f} GiB, more than the "
                         f"{machine.memory_gib:.1f} GiB here")
