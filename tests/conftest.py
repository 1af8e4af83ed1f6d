from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["tests.fixtures_models"]

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """../shared/data beside the checkout; tests that need it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is not present (the public datasets live beside the checkout)")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Keep TUNESMITH_HOME per test; share the model cache across the session (conversion is slow)."""
    monkeypatch.setenv("TUNESMITH_HOME", str(tmp_path_factory.mktemp("home")))
