"""Exporting a registered model: its PEFT adapter as is, or merged into its base as a plain
transformers model (safetensors + tokenizer) that needs neither PEFT nor tunesmith."""

from __future__ import annotations

import shutil
from pathlib import Path

from ..errors import BadInputError
from ..models.loading import load_model, load_tokenizer
from .resolver import resolve


def export_model(model_id: str, out: str | Path, merged: bool = False) -> Path:
    model = resolve(model_id)
    if model.version is None or model.local is None:
        raise BadInputError(f"{model_id} is not a registered model with weights on this machine",
                            "`tunesmith models list` shows registered models")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise BadInputError(f"{out} is not empty", "choose a new folder")
    weights = model.local
    source = Path(weights.adapter_path or weights.base)
    if weights.adapter_path is None or not merged:  # a full fine-tune is already a plain model
        shutil.copytree(source, out, dirs_exist_ok=True)
        return out
    from peft import PeftModel

    base = load_model(weights.base)
    merged_model = PeftModel.from_pretrained(base, str(source)).merge_and_unload()
    merged_model.save_pretrained(str(out), safe_serialization=True)
    load_tokenizer(str(source)).save_pretrained(str(out))
    return out
