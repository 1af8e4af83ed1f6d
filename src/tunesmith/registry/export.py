"""Exporting a model, in one of two formats:

    hf     its PEFT adapter as is, or merged into its base as a plain transformers model
           (safetensors + tokenizer) that needs neither PEFT nor tunesmith
    gguf   for llama.cpp and Ollama: the merged model as `model.gguf` (f32, f16 or Q8_0), or,
           with merged=False, the base as `base.gguf` and the adapter as a GGUF LoRA
           `adapter.gguf`; with an Ollama `Modelfile` beside them

Any model with weights on this machine can be exported as GGUF (a base model too, to run its
answers beside the tuned one's in llama.cpp); the hf format exports registered models."""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..errors import BadInputError
from ..fileio import atomic_write_text, sha256_text
from ..models.catalog import CATALOG
from ..models.embedded import gguf_path, gguf_string
from ..models.loading import load_model, load_tokenizer
from ..paths import cache_dir
from .gguf_export import (
    QUANTS,
    check_exportable,
    pre_tokenizer_name,
    write_lora_gguf,
    write_model_gguf,
)
from .resolver import LocalWeights, resolve

FORMATS = ("hf", "gguf")


def export_model(model_id: str, out: str | Path, merged: bool | None = None, format: str = "hf",
                 quant: str = "f16") -> Path:
    """Writes `model_id` into the folder `out` (new or empty) and returns it. `merged` None means
    the format's default: the adapter as is for hf, the merged model for gguf. `quant` is the
    GGUF weights' type: f32, f16 or q8_0."""
    if format not in FORMATS:
        raise BadInputError(f"unknown export format {format!r}", f"choose one of {', '.join(FORMATS)}")
    if quant not in QUANTS:
        raise BadInputError(f"unknown GGUF quantisation {quant!r}", f"choose one of {', '.join(QUANTS)}")
    model = resolve(model_id)
    weights = model.local
    if weights is None or (format == "hf" and model.version is None):
        what = "a registered model" if format == "hf" else "a model"
        raise BadInputError(f"{model_id} is not {what} with weights on this machine",
                            "`tunesmith models list` shows registered models")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BadInputError(f"{out} is not an empty folder", "choose a new folder")
    if format == "gguf":
        return _export_gguf(model_id, model.base_model, weights, out, merged is not False, quant)
    source = Path(weights.adapter_path or weights.base)
    if weights.adapter_path is None or not merged:  # a full fine-tune is already a plain model
        shutil.copytree(source, out, dirs_exist_ok=True)
        return out
    _merged(weights).save_pretrained(str(out), safe_serialization=True)
    _tokenizer(weights).save_pretrained(str(out))
    return out


def _tokenizer(weights: LocalWeights) -> Any:
    """The tokenizer saved with the adapter (training saves one there), else the base's."""
    adapter = weights.adapter_path
    if adapter and any((Path(adapter) / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json")):
        return load_tokenizer(adapter)
    return load_tokenizer(weights.base)


def _merged(weights: LocalWeights) -> Any:
    """The model with its adapter (if any) merged into the base weights."""
    model = load_model(weights.base)
    if weights.adapter_path is None:
        return model
    from peft import PeftModel

    return PeftModel.from_pretrained(model, weights.adapter_path).merge_and_unload()


def _export_gguf(name: str, base_model: str, weights: LocalWeights, out: Path, merged: bool, quant: str) -> Path:
    tokenizer = _tokenizer(weights)
    # A catalog model's tokenizer was converted from its GGUF file, which names llama.cpp's
    # pre-tokenizer; the converted tokenizer.json no longer tells it apart from plain GPT-2.
    pre = gguf_string(base_model, "tokenizer.ggml.pre") if base_model in CATALOG else pre_tokenizer_name(tokenizer)
    if merged or weights.adapter_path is None:
        write_model_gguf(_merged(weights), tokenizer, out / "model.gguf", quant, pre, name)
        files = ["model.gguf"]
    else:
        base = load_model(weights.base)
        check_exportable(base.config)  # before writing anything
        write_model_gguf(base, tokenizer, out / "base.gguf", quant, pre, f"{name} base")
        write_lora_gguf(weights.adapter_path, base.config, out / "adapter.gguf", quant, name)
        files = ["base.gguf", "adapter.gguf"]
    atomic_write_text(out / "Modelfile", ollama_modelfile(files, tokenizer))
    return out


def ollama_modelfile(files: list[str], tokenizer: Any) -> str:
    """An Ollama Modelfile for the exported files: FROM the model (and ADAPTER the LoRA), greedy
    answers, and, for a ChatML template (SmolLM2's), the same template in Ollama's own syntax
    with the default system prompt the Hugging Face template inserts."""
    lines = [f"FROM ./{files[0]}"] + [f"ADAPTER ./{f}" for f in files[1:]]
    template = tokenizer.chat_template if isinstance(tokenizer.chat_template, str) else ""
    if "<|im_start|>" in template:
        lines.append('TEMPLATE """{{- if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}'
                     "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}"
                     '<|im_start|>assistant\n"""')
        system = _default_system_prompt(tokenizer)
        if system:
            lines.append(f'SYSTEM """{system}"""')
        lines.append('PARAMETER stop "<|im_end|>"')
    lines.append("PARAMETER temperature 0")
    return "\n".join(lines) + "\n"


def _default_system_prompt(tokenizer: Any) -> str | None:
    """The system prompt a ChatML template writes when the conversation brings none."""
    text = tokenizer.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False)
    head = "<|im_start|>system\n"
    if not text.startswith(head) or "<|im_end|>" not in text:
        return None
    return text[len(head) : text.index("<|im_end|>")]


def gguf_for_llama_cpp(source: str, weights: LocalWeights, embedded_q4: bool = True) -> Path:
    """The GGUF file llama.cpp runs for a model (`source`: its registry id, or a base model):
    the embedded base model's own 4-bit file where `embedded_q4`, else the model exported once
    (merged, f16: the same greedy answers as its weights) and cached. Evaluation asks for f16
    everywhere, so that a tuned model and its base are compared at the same precision."""
    if embedded_q4 and weights.adapter_path is None and weights.base in CATALOG:
        return gguf_path(weights.base)
    folder = cache_dir() / "gguf" / sha256_text(f"{source}|{weights.adapter_path}")[:16]
    if not (folder / "model.gguf").is_file():
        print(f"tunesmith: exporting {source} to GGUF for llama.cpp, once", file=sys.stderr)
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix="export-", dir=folder.parent))
        try:
            export_model(source, staging / "out", format="gguf", quant="f16")
            (staging / "out").rename(folder)  # whole or not at all
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return folder / "model.gguf"
