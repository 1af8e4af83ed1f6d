"""`tunesmith models …`: the registry of tuned models, and the base-model catalog."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ._options import row_dict
from .evaluate import ENGINE_HELP, LLAMA_SERVER_HELP, WEIGHTS_HELP

app = typer.Typer(help="Tuned models (the registry) and base models.", no_args_is_help=True)



@app.command("list")
def list_command(json_out: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """Registered models, newest first."""
    from ..store.queries import list_models

    models = list_models()
    if json_out:
        print(json.dumps([row_dict(m) for m in models], indent=2))
        return
    from rich.console import Console

    from ._display import id_table

    rows = []
    for m in models:
        best = (m.best_metrics or {}).get("eval_loss")
        rows.append([m.id, m.name or "", m.stage, m.base_model, m.method, f"{best:.4f}" if best else "", m.stop_reason or ""])
    Console().print(id_table(["model", "name", "stage", "base model", "method", "best val loss", "stopped"], rows))


@app.command("show")
def show_command(model_id: str, json_out: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """A model version, its lineage and its eval runs."""
    from ..evaluate.human import human_verdict
    from ..store.queries import get_model, list_eval_runs

    model = get_model(model_id)
    data = row_dict(model)
    runs = list_eval_runs(model.id)
    evals = [{"id": r.id, "created_at": r.created_at.isoformat(), "baseline": r.baseline_ref, "split": r.split,
              "examples": r.examples, "verdict": r.verdict, "verdict_text": r.verdict_text,
              "human_verdict_text": human_verdict(r.id), "report": r.report_path}
             for r in runs]
    if json_out:
        print(json.dumps({**data, "eval_runs": evals}, indent=2))
        return
    for key in ("id", "name", "stage", "base_model", "method", "adapter_path", "merged_path", "dataset_version",
                "job_id", "stop_reason", "best_metrics", "final_metrics", "created_at"):
        if data.get(key) is not None:
            print(f"{key:16} {data[key]}")
    print(f"{'eval runs':16} {len(evals) or 'none (tunesmith eval ' + model.id + ')'}")
    for e in evals:
        print(f"  {e['id']}  {e['created_at'][:19]}  vs {e['baseline'] or '-'} on {e['examples']} {e['split']} "
              f"examples: {e['verdict'] or 'no verdict'}\n    {e['verdict_text'] or ''}\n"
              + (f"    human: {e['human_verdict_text']}\n" if e["human_verdict_text"] else "") + f"    {e['report']}")


@app.command("stage")
def stage_command(model_id: str, stage: str = typer.Argument(..., help="candidate, staging, production or archived"),
                  family: str | None = typer.Option(None, help="set the model's family first (\"\" clears it: "
                                                                 "its base model's family)")) -> None:
    """Move a model to a stage; at most one model per family is in production (docs/ui.md)."""
    from ..store.queries import model_family, set_model_family, set_model_stage

    if family is not None:
        set_model_family(model_id, family)
    model = set_model_stage(model_id, stage)
    print(f"{model.id}: {model.stage} (family {model_family(model)})")


@app.command("compare")
def compare_command(
    models: list[str] = typer.Argument(..., help="two or more models (registry ids or names, base, any model reference)"),
    data: Path | None = typer.Option(None, help="a prepared folder or a file (default: the data the first registered model was trained on)"),
    split: str | None = typer.Option(None, help="the split to evaluate on (default: test)"),
    metrics: str = typer.Option("auto", help="auto (from the references), label, template or free-text"),
    limit: int | None = typer.Option(None, min=1, help="evaluate the first N examples only"),
    allow_overlap: bool = typer.Option(False, help="evaluate even on examples a model was trained on"),
    base_url: str | None = typer.Option(None, help="the endpoint of openai:MODEL or gemini:MODEL references"),
    api_key: str | None = typer.Option(None, help="the endpoint's key"),
    weights: str = typer.Option("auto", help=WEIGHTS_HELP),
    engine: str = typer.Option("local", help=ENGINE_HELP),
    llama_server: str | None = typer.Option(None, "--llama-server", help=LLAMA_SERVER_HELP),
    json_out: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Evaluate several models on the same examples and rank them (each against the best: difference, p)."""
    import sys

    from ..evaluate import compare
    from .evaluate import print_ranking

    summary = compare(models, data=data, split=split, metrics=metrics, limit=limit, allow_overlap=allow_overlap,
                      base_url=base_url, api_key=api_key, progress=lambda message: print(message, file=sys.stderr),
                      weights=weights, engine=engine, llama_server=llama_server)
    print_ranking(summary, json_out)


@app.command("export")
def export_command(model_id: str, out: Path = typer.Option(..., help="folder to write (new or empty)"),
                   format: str = typer.Option("hf", "--format", help="hf (safetensors + tokenizer) or gguf "
                                                                       "(llama.cpp, Ollama: docs/export.md)"),
                   quant: str = typer.Option("f16", help="GGUF weights: f32, f16 or q8_0"),
                   merged: bool | None = typer.Option(None, "--merged/--no-merged",
                                                      help="merge the adapter into the base (default: no for hf, "
                                                           "yes for gguf; --no-merged with gguf writes base.gguf "
                                                           "+ a GGUF LoRA adapter.gguf)"),
                   json_out: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """Write a model's adapter, the merged model (safetensors + tokenizer), or GGUF for llama.cpp and Ollama."""
    from ..registry.export import export_model

    path = export_model(model_id, out, merged=merged, format=format, quant=quant)
    files = sorted(p.name for p in path.iterdir())
    merged = merged if merged is not None else format == "gguf"  # the format's default, as export_model took it
    if json_out:
        print(json.dumps({"model": model_id, "path": str(path), "format": format, "merged": merged,
                          "quant": quant if format == "gguf" else None, "files": files}))
    elif format == "gguf":
        print(f"exported {model_id} as GGUF ({quant}) to {path}: {', '.join(files)}")
    else:
        print(f"exported {'merged model' if merged else 'weights'} of {model_id} to {path}")


@app.command("base")
def base_command(json_out: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """The base-model catalog (any Hugging Face id or local folder works too)."""
    from ..models.loading import base_models

    models = base_models()
    if json_out:
        print(json.dumps(models, indent=2))
        return
    for m in models:
        print(f"{m['name']:26} {m['description']}")
