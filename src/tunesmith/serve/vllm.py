"""`--engine vllm`: hand the models to vLLM's OpenAI-compatible server on a GPU.

vLLM serves one base model with many LoRA adapters: `vllm serve BASE --enable-lora
--lora-modules '{"name": ..., "path": ..., "base_model_name": ...}' ...`, the adapter picked
by the request's `model` field, as here. The JSON form of --lora-modules makes vLLM's
/v1/models show each adapter's base as its parent. `--max-lora-rank` must be at least the
largest adapter rank, and vLLM accepts only some values, so the rank is rounded up to one.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path

from ..errors import BadInputError, TunesmithError
from .config import ServeConfig
from .models import ServedModel

VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # vLLM's allowed --max-lora-rank values


def vllm_command(models: list[ServedModel], config: ServeConfig) -> list[str]:
    """The `vllm serve` command line for `models`: one base, any number of adapters on it."""
    remote = [m.name for m in models if m.remote]
    if remote:
        raise BadInputError(f"vLLM serves weights on this machine; {', '.join(remote)} is served by Vertex AI",
                            "serve models tuned on Vertex AI with the local engine (the default), or name only "
                            "local models")
    bases = sorted({m.base for m in models})
    if len(bases) != 1:
        raise BadInputError(f"vLLM serves one base model per server; these models need {len(bases)}: {', '.join(bases)}",
                            "start one `tunesmith serve --engine vllm` per base model")
    from ..models.loading import resolve_model

    base = bases[0]
    command = ["vllm", "serve", str(resolve_model(base)), "--host", config.host, "--port", str(config.port)]
    base_names = [n for m in models if m.adapter_path is None for n in m.names] or [base]
    command += ["--served-model-name", *base_names]
    adapters = [m for m in models if m.adapter_path is not None]
    if adapters:
        command += ["--enable-lora", "--max-loras", str(min(len(adapters), config.max_adapters)),
                    "--max-lora-rank", str(_vllm_rank(max(adapter_rank(m.adapter_path) for m in adapters))),
                    "--lora-modules"]
        command += [json.dumps({"name": m.name, "path": m.adapter_path, "base_model_name": base_names[0]})
                    for m in adapters]
    return command  # the API key goes in VLLM_API_KEY, not on a command line anyone can list


def adapter_rank(adapter_path: str) -> int:
    """The largest LoRA rank in a PEFT adapter (its `r`, or a larger per-module rank)."""
    try:
        adapter_config = json.loads((Path(adapter_path) / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BadInputError(f"{adapter_path}: cannot read adapter_config.json ({exc})") from None
    return max([int(adapter_config.get("r", 8)), *map(int, (adapter_config.get("rank_pattern") or {}).values())])


def _vllm_rank(rank: int) -> int:
    for allowed in VLLM_LORA_RANKS:
        if allowed >= rank:
            return allowed
    raise BadInputError(f"LoRA rank {rank} is over vLLM's largest ({VLLM_LORA_RANKS[-1]})")


def check_vllm_can_run() -> None:
    import torch

    if not torch.cuda.is_available():
        raise TunesmithError("--engine vllm needs an NVIDIA GPU with CUDA, and this machine has none",
                             "serve with the built-in engine (leave out --engine) on a CPU")
    if shutil.which("vllm") is None:
        raise TunesmithError("--engine vllm: the vllm command is not installed",
                             "pip install vllm on the GPU machine, or leave out --engine")


def run_vllm(models: list[ServedModel], config: ServeConfig) -> int:
    """Run vLLM in the foreground until it exits; its exit code."""
    config.check_binding()
    check_vllm_can_run()
    command = vllm_command(models, config)
    env = dict(os.environ)
    if config.resolved_api_key():
        env["VLLM_API_KEY"] = config.resolved_api_key()
    print("running:", shlex.join(command), flush=True)
    try:
        return subprocess.call(command, env=env)
    except KeyboardInterrupt:
        return 130
