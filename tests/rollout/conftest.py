"""Registered models with (empty) adapter folders: enough for the resolver, no weights loaded."""

from __future__ import annotations

import pytest


@pytest.fixture
def models(tmp_path):
    """Register a production and a candidate model in one family; return their ids."""
    from tunesmith.store.queries import register_model, set_model_stage

    ids = {}
    for name in ("prod-v1", "cand-v2", "other-v3"):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "adapter_config.json").write_text("{}")
        ids[name] = register_model(base_model="smollm2-135m", method="lora", spec={}, name=name,
                                   adapter_path=str(folder), family="support").id
    set_model_stage(ids["prod-v1"], "production")
    return ids


def log_requests(rows):
    from tunesmith.store.queries import add_served_requests

    base = dict(api="openai", model="bot", status_code=200, latency_s=0.1, completion_tokens=5)
    add_served_requests([{**base, **row} for row in rows])
