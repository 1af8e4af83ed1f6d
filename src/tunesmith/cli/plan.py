"""`tunesmith plan`: memory, time and cost of each tuning path, and which one fits."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def plan_command(
    model: Optional[str] = typer.Option(None, help="a catalog model, a model folder or a cached Hugging Face id "
                                                   "(default: smollm2-135m-instruct); --list-models shows the catalog"),
    params: Optional[str] = typer.Option(None, help="plan a model of this size instead, e.g. 7B, 1.5B, 135M"),
    method: str = typer.Option("all", help="full | lora | qlora | all"),
    seq_len: int = typer.Option(1024, min=1, help="tokens per example (the longest, with --data)"),
    batch_size: int = typer.Option(8, min=1, help="examples per step on one GPU"),
    data: Optional[Path] = typer.Option(None, help="a prepared dataset folder: count its tokens "
                                                   "(default: 1,000 examples of --seq-len tokens)"),
    gpu: str = typer.Option("all", help="a GPU (a100-40gb, a100-80gb, h100-80gb, l4, t4, rtx-4090, rtx-a6000), "
                                        "this-machine, or all (this machine included)"),
    epochs: float = typer.Option(3, min=0.01, help="passes over the data"),
    gradient_checkpointing: bool = typer.Option(True, help="recompute activations in the backward pass on GPUs"),
    optimizer: str = typer.Option("adamw", help="adamw | adamw-8bit"),
    lora_rank: int = typer.Option(16, min=1, help="LoRA rank"),
    runs_per_month: Optional[float] = typer.Option(None, min=0, help="tuning runs a month: when buying a GPU "
                                                                     "pays off against the managed path"),
    require: list[str] = typer.Option([], help="data-sovereignty | model-flexibility | no-infrastructure; repeatable"),
    list_models: bool = typer.Option(False, "--list-models", help="list the offline architecture catalog and exit"),
    json_out: bool = typer.Option(False, "--json", help="print the plan as JSON"),
) -> None:
    """How much memory full fine-tuning, LoRA and QLoRA need, how long and how much each path takes, and which fits."""
    from ..errors import BadInputError
    from ..plan.planner import plan

    if list_models:
        return _list_models(json_out)
    if optimizer not in ("adamw", "adamw-8bit"):
        raise BadInputError(f"unknown optimizer {optimizer!r}", "choose adamw or adamw-8bit")
    result = plan(model=model, params=params, method=method, seq_len=seq_len, batch_size=batch_size, data=data,
                  gpu=gpu, epochs=epochs, gradient_checkpointing=gradient_checkpointing, optimizer=optimizer,
                  lora_rank=lora_rank, runs_per_month=runs_per_month, require=require)
    if json_out:
        print(result.model_dump_json(indent=2))
        return
    render(result)


def _list_models(json_out: bool) -> None:
    import json

    from ..plan.architectures import catalog

    rows = {name: {"params": a.params, "hf_id": a.hf_id} for name, a in catalog().items()}
    if json_out:
        print(json.dumps(rows, indent=2))
        return
    for name, row in rows.items():
        print(f"{name:28} {row['params'] / 1e9:7.2f}B  {row['hf_id']}")


def render(result) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    work = result.workload
    console.print(f"[bold]{escape(result.model)}[/bold]: {result.params / 1e9:.2f}B parameters; "
                  f"{work['tokens_per_epoch']:,} tokens an epoch x {result.epochs:g} epochs "
                  f"({escape(work['counted_by'])}; {work['padded_tokens_per_epoch']:,} computed with the padding "
                  f"of random batches); sequence {result.seq_len}, batch {result.batch_size}, "
                  f"gradient checkpointing {'on' if result.gradient_checkpointing else 'off'}, {result.optimizer}")

    memory = Table("GiB on a GPU (bf16)", *[m.method for m in result.methods], title="Memory at the peak")
    fields = [("weights", "weights_gib"), ("autocast copies", "weight_copies_gib"), ("gradients", "gradients_gib"), ("optimizer", "optimizer_gib"),
              ("activations", "activations_gib"), ("  without checkpointing", "activations_without_checkpointing_gib"),
              ("  with checkpointing", "activations_with_checkpointing_gib"), ("logits", "logits_gib"),
              ("overhead", "overhead_gib"), ("total", "total_gib")]
    for label, field in fields:
        memory.add_row(label, *[f"{getattr(m.memory, field):.2f}" for m in result.methods])
    memory.add_row("trained parameters", *[f"{m.memory.trainable_params:,}" for m in result.methods])
    console.print(memory)

    options = Table("method", "hardware", "memory", "needs", "fits", "time", "cost", "price",
                    title="Self-hosted: each method on each GPU, at the cheapest price listed (--json: provider, source)")
    for m in result.methods:
        for o in m.options:
            price = f"${o.usd_per_hour:.2f}/h ({o.price_as_of})" if o.usd_per_hour is not None else "-"
            options.add_row(m.method, o.gpu, f"{o.memory_gib:.0f} GiB", f"{o.needed_gib:.1f} GiB",
                            "yes" if o.fits else "no", _duration(o.time_s),
                            f"${o.usd:,.2f}", price)
    console.print(options)
    for m in result.methods:
        best = m.cheapest
        console.print(f"cheapest that fits, {m.method}: " + (f"{best.gpu}, {_duration(best.time_s)}, ${best.usd:,.2f} "
                      f"({escape(best.provider or '')})" if best else "nothing in the list fits"))

    managed = Table("target", "training tokens", "cost", "price as of", title="Managed: Gemini tuning on Vertex AI")
    for t in result.managed:
        managed.add_row(t.target, f"{t.training_tokens:,.0f}", f"${t.usd:,.2f}", t.price_as_of or "")
    console.print(managed)

    for b in result.break_even:
        if b.months_to_repay_vs_managed is None:
            console.print(f"buying for {escape(b.gpu)}: the managed path costs nothing to compare with")
            continue
        console.print(f"buying for {escape(b.gpu)} (${b.purchase_usd:,.0f}) at {b.runs_per_month:g} runs a month: "
                      f"managed costs ${b.managed_usd_per_month:,.2f} a month, renting ${b.rented_usd_per_month:,.2f}; "
                      f"the purchase repays itself against managed in {b.months_to_repay_vs_managed:.1f} months, and "
                      f"buying wins over three years from {b.runs_per_month_to_beat_managed:,.1f} runs a month")

    decision = Table("criterion", "managed (Vertex AI)", "self-hosted (open weights)", title="Decision", show_lines=True)
    for row in result.decision:
        decision.add_row(row.criterion, escape(row.managed), escape(row.self_hosted))
    console.print(decision)
    rec = result.recommendation
    console.print(f"[bold]recommendation:[/bold] {escape(rec.path or 'none')}: {escape(rec.reason)}")


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def print_preflight(spec) -> None:
    """Before `tunesmith train` starts: the plan's memory estimate for this run on this machine,
    with a warning when it will not fit. A managed (vertex) spec has no local memory to plan;
    an estimate that cannot be made (an unknown architecture) is said and training goes on."""
    import sys

    from ..errors import TunesmithError
    from ..plan.planner import preflight

    if spec.backend != "local":
        return
    try:
        _, _, lines = preflight(spec)
    except TunesmithError as exc:
        lines = [f"plan: no memory estimate for this run ({exc.message})"]
    for line in lines:
        print(line, file=sys.stderr)
