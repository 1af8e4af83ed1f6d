"""What a server serves and how: one pydantic model, filled from CLI flags or by a caller."""

from __future__ import annotations

import ipaddress
import os
from typing import Literal

from pydantic import BaseModel, Field

from ..errors import BadInputError

API_KEY_ENV = "TUNESMITH_API_KEY"


class ServeConfig(BaseModel):
    models: list[str] = Field(default_factory=list)  # registry ids, aliases or base models; empty: see models.default_models
    host: str = "127.0.0.1"
    port: int = 8000  # 0: any free port (tests, serve_in_background)
    api_key: str | None = None  # None: $TUNESMITH_API_KEY, else no key (loopback only)
    log_requests: bool = True  # store the input and output text of every request (--no-log: counts and latency only)
    # Batching: the engine waits this long after the first queued request for others to join
    # its batch. 5 ms is short next to one decoding step of SmolLM2 on a CPU (about 15 ms).
    batch_wait_ms: float = 5.0
    max_batch_size: int = Field(16, ge=1)
    default_max_tokens: int = Field(256, ge=1)  # when a request names no max_tokens
    max_tokens_cap: int = Field(2048, ge=1)  # a request asking for more gets 400
    max_body_bytes: int = Field(1_000_000, ge=1)  # a larger request body gets 413
    max_adapters: int = Field(8, ge=1)  # LoRA adapters kept loaded; the least recently used goes first
    memory_budget_gb: float | None = None  # weights kept loaded (bases and adapters); None: no limit
    device: str = "auto"  # auto: cuda when there is one, else cpu
    dtype: str = "auto"  # auto: bfloat16 on a CPU with native bf16 or a GPU, else float32
    weights: str = "auto"  # auto, fp32, bf16 or int8 (CPU): models/loading.py; not auto: overrides dtype
    # CPU threads for generation; None: torch's default (one per core). On a CPU shared with
    # other busy processes, 1 can be many times faster: a decoding step is many small
    # operations, and each waits for every thread it is split over.
    threads: int | None = Field(None, ge=1)
    # Who generates: "local" (the built-in engine: transformers, continuous batching, CPU or
    # GPU), "llama.cpp" (a llama-server per model, on its GGUF file; `llama_server` is the
    # binary, default: the one on PATH) or "auto" (the faster on this machine:
    # models/llama_server.py choose_engine). `tunesmith serve --engine vllm` hands over to vLLM instead.
    engine: Literal["local", "llama.cpp", "auto"] = "local"
    llama_server: str | None = None
    # Rows of different LoRA adapters on one base decode in one batch (PEFT's mixed-adapter
    # batches): an A/B test's arms on one base share their steps. Shadow copies still wait their turn.
    mixed_adapters: bool = False
    # Rollout: how often deployments are read again from the store (a change reaches a running
    # server within this time), and how often a rollout started with --auto asks the gate.
    deployments_refresh_s: float = Field(2.0, gt=0)
    auto_gate_s: float = Field(10.0, gt=0)

    def resolved_api_key(self) -> str | None:
        return self.api_key or os.environ.get(API_KEY_ENV) or None

    def check_binding(self) -> None:
        """A server reachable from other machines must ask for a key."""
        if not is_loopback(self.host) and not self.resolved_api_key():
            raise BadInputError(
                f"refusing to serve on {self.host} without an API key: anyone who can reach it could use it",
                f"pass --api-key KEY or set {API_KEY_ENV}, or bind 127.0.0.1",
            )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve anywhere
