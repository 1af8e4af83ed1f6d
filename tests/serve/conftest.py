"""A tiny model and a tiny LoRA adapter on it, registered, and a real server on a free
loopback port (one per module: starting one and loading the model takes a second or two)."""

from __future__ import annotations

from pathlib import Path

import pytest

API_KEY = "test-key-1"


def _random_adapter(base: Path, out: Path, seed: int, rank: int, modules: list[str]) -> Path:
    """A LoRA adapter with random (not zero) weights, so it changes what the model says."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(str(base))
    config = LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=modules, init_lora_weights=False)
    get_peft_model(model, config).save_pretrained(str(out))
    return out


@pytest.fixture(scope="session")
def adapter_dir(tiny_model_dir, tmp_path_factory) -> Path:
    return _random_adapter(tiny_model_dir, tmp_path_factory.mktemp("adapter"), 1, 4, ["q_proj", "v_proj"])


@pytest.fixture(scope="session")
def second_adapter_dir(tiny_model_dir, tmp_path_factory) -> Path:
    return _random_adapter(tiny_model_dir, tmp_path_factory.mktemp("adapter2"), 2, 8, ["q_proj", "k_proj"])


def register_adapter(base: Path, adapter: Path, name: str):
    from tunesmith.store.queries import register_model

    return register_model(base_model=str(base), method="lora", spec={}, name=name, adapter_path=str(adapter))


@pytest.fixture(scope="module")
def served(tiny_model_dir, adapter_dir, tmp_path_factory):
    """The tiny base (by folder) and an adapter on it (alias "tiny-tuned"), resolved in a registry of their own."""
    from tunesmith.serve import resolve_models

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TUNESMITH_HOME", str(tmp_path_factory.mktemp("registry")))
        version = register_adapter(tiny_model_dir, adapter_dir, "tiny-tuned")
        models, _ = resolve_models([str(tiny_model_dir), "tiny-tuned"])
    return models, version


def start(models, **options):
    """A running server (a context manager yielding (base URL, app state))."""
    from contextlib import contextmanager

    from tunesmith.serve import ServeConfig
    from tunesmith.serve.app import create_app
    from tunesmith.serve.server import run_in_thread

    @contextmanager
    def running():
        config = ServeConfig(dtype="float32", device="cpu", **options)
        app = create_app(config, models)
        with run_in_thread(app) as url:
            yield url, app.state.tunesmith

    return running()


@pytest.fixture(scope="module")
def server(served):
    """(base URL, server state, base model name) of a keyed server; batches wait 40 ms so
    that concurrent test clients land in one batch."""
    models, _ = served
    with start(models, api_key=API_KEY, batch_wait_ms=40, max_tokens_cap=64, max_body_bytes=20_000) as (url, state):
        yield url, state, models[0].name
