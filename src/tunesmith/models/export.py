"""Exporting a registered model: its PEFT adapter as is, or merged into its base as a plain
transformers model (safetensors + tokenizer) that needs neither PEFT nor tunesmith."""

from __future__ import annotations

import shutil
from pathlib import Path

from ..errors import BadInputError, TunesmithError


def export_model(model_id: str, out: str | Path, merged: bool = False) -> Path:
    from ..store.queries import get_model

    model = get_model(model_id)
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise BadInputError(f"{out} is not empty", "choose a new folder")
    source = Path(model.adapter_path or model.merged_path or "")
    if not source.is_dir():
        raise TunesmithError(f"model {model.id} has no weights on this machine ({source})")
    if model.merged_path or not merged:  # a full fine-tune is already a plain model
        shutil.copytree(source, out, dirs_exist_ok=True)
        return out
    from peft import PeftModel

    from .loading import load_model, load_tokenizer

    base = load_model(model.base_model)
    merged_model = PeftModel.from_pretrained(base, str(source)).merge_and_unload()
    merged_model.save_pretrained(str(out), safe_serialization=True)
    load_tokenizer(str(source)).save_pretrained(str(out))
    return out
