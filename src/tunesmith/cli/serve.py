"""`tunesmith serve`: an OpenAI- and Gemini-compatible API for base and tuned models."""

from __future__ import annotations

from typing import Optional

import typer


def serve_command(
    models: Optional[list[str]] = typer.Argument(None, help="registry ids, aliases or base models (default: the embedded base model and every registered model with weights here or an endpoint on Vertex AI)"),
    host: str = typer.Option("127.0.0.1", help="address to bind; anything but loopback needs an API key"),
    port: int = typer.Option(8000, help="port"),
    api_key: Optional[str] = typer.Option(None, "--api-key", help="the key clients must send (default: $TUNESMITH_API_KEY)"),
    no_log: bool = typer.Option(False, "--no-log", help="log model, status, latency and token counts only, never the text"),
    engine: str = typer.Option("local", help="local (transformers with continuous batching, CPU or GPU), llama.cpp (llama-server on each model's GGUF file), auto (llama.cpp where it is the faster on this machine: docs/serving.md) or vllm (GPU only)"),
    llama_server: Optional[str] = typer.Option(None, "--llama-server", help="the llama-server binary for --engine llama.cpp (default: the one on PATH)"),
    max_adapters: int = typer.Option(8, min=1, help="LoRA adapters kept loaded; the least recently used goes first"),
    memory_budget_gb: Optional[float] = typer.Option(None, help="evict adapters, then bases, past this much loaded weight"),
    max_batch_size: int = typer.Option(16, min=1, help="requests generated together at most"),
    max_tokens_cap: int = typer.Option(2048, min=1, help="largest max_tokens a request may ask for"),
    device: str = typer.Option("auto", help="auto, cpu or cuda"),
    weights: str = typer.Option("auto", help="auto (bf16 where native, else fp32), fp32, bf16 or int8 (CPU: 8-bit "
                                             "weights; docs/serving.md has the quality cost)"),
    threads: Optional[int] = typer.Option(None, min=1, help="CPU threads for generation (default: one per core; 1 can be faster on a busy machine)"),
    mixed_adapters: bool = typer.Option(False, "--mixed-adapters", help="decode rows of different LoRA adapters on one base in one batch (an A/B test's arms on one base share their steps)"),
) -> None:
    """Serve models over HTTP: OpenAI's /v1/chat/completions, Gemini's generateContent, /health and /metrics."""
    from ..errors import BadInputError
    from ..serve import ServeConfig, resolve_models, serve

    if engine not in ("local", "llama.cpp", "auto", "vllm"):
        raise BadInputError(f"unknown engine {engine!r}", "use local, llama.cpp, auto or vllm")
    config = ServeConfig(models=models or [], host=host, port=port, api_key=api_key, log_requests=not no_log,
                         max_adapters=max_adapters, memory_budget_gb=memory_budget_gb, max_batch_size=max_batch_size,
                         max_tokens_cap=max_tokens_cap, device=device, threads=threads,
                         engine="local" if engine == "vllm" else engine, llama_server=llama_server,
                         mixed_adapters=mixed_adapters, weights=weights)
    config.check_binding()
    if engine == "vllm":
        from ..serve.vllm import check_vllm_can_run

        check_vllm_can_run()  # before anything is resolved or converted
    if engine == "llama.cpp":
        from ..models.llama_server import find_llama_server

        find_llama_server(llama_server)  # before anything is resolved or converted
    served, skipped = resolve_models(config.models)
    for reason in skipped:
        print(f"not served: {reason}")
    if engine == "vllm":
        from ..serve.vllm import run_vllm

        raise typer.Exit(run_vllm(served, config))
    names = ", ".join(m.name for m in served)
    if engine == "auto":
        from ..serve.app import engine_for

        print(f"engine: {engine_for(config)} (auto)")
    print(f"serving {names} on http://{host}:{port} (OpenAI: /v1, Gemini: /v1beta){'' if config.resolved_api_key() else '; no API key'}")
    serve(config, served)
