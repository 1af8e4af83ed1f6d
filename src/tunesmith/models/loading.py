"""Loading a base model and its tokenizer by catalog name, local folder or Hugging Face id.

A catalog name ("smollm2-135m-instruct") means the embedded model, converted from its GGUF
file on first use; a folder is used as it is; anything else is a Hugging Face id, read from
the local Hugging Face cache only, unless the caller allows downloads."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import BadInputError, TunesmithError
from ..hardware import inference_dtype
from .catalog import CATALOG, DEFAULT_BASE_MODEL
from .embedded import is_installed, model_dir, model_dir_if_cached, tokenizer_dir
from .int8 import quantize_linear_int8

# How weights are held for generating (--weights of eval and serve): auto is bfloat16 where it is
# native (a GPU, a CPU with AVX-512 BF16 or AMX), else float32; int8 is CPU only (models/int8.py).
INFERENCE_WEIGHTS = {"auto": None, "fp32": "float32", "bf16": "bfloat16", "int8": "float32"}

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


def resolve_model(name_or_path: str) -> Path | str:
    """The folder to load a catalog model or a local model from, or a Hugging Face id as given."""
    if name_or_path in CATALOG:
        return model_dir(name_or_path)
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise BadInputError(f"{name_or_path} is a file; a model is a folder (config, weights, tokenizer)")
    if _looks_like_a_path(name_or_path):
        raise BadInputError(
            f"{name_or_path}: no such model folder",
            f"name a folder, a Hugging Face id (org/name) or a base model: {', '.join(CATALOG)}",
        )
    return name_or_path


def _looks_like_a_path(name: str) -> bool:
    # Hugging Face ids are "name" or "org/name"; anything else is a folder that is not there.
    return name.startswith((".", "/", "~")) or "\\" in name or name.count("/") > 1


def load_model(
    name_or_path: str,
    dtype: str | torch.dtype | None = None,
    device: str = "cpu",
    allow_download: bool = False,
    **kwargs: Any,
) -> PreTrainedModel:
    """A causal language model on `device`. `dtype` None means float32 on a CPU (where
    half-precision arithmetic is slow and training in it loses small updates) and the
    checkpoint's own dtype on an accelerator. Other keyword arguments (a
    `quantization_config`, say) go to `from_pretrained`."""
    from transformers import AutoModelForCausalLM

    source = resolve_model(name_or_path)
    if dtype is None:
        dtype = "float32" if device == "cpu" else "auto"
    return _from_pretrained(
        AutoModelForCausalLM, name_or_path, source, allow_download, dtype=dtype, device_map=device, **kwargs
    )


def load_for_inference(name_or_path: str, device: str, weights: str = "auto") -> PreTrainedModel:
    """A model to generate with on `device`, its weights held as `weights` says (see
    INFERENCE_WEIGHTS): the one place where evaluation and serving load a model, so an
    evaluated model answers as the served one does."""
    check_inference_weights(weights, device)
    dtype = INFERENCE_WEIGHTS[weights] or inference_dtype(device)
    model = load_model(name_or_path, dtype=dtype, device=device).eval()
    if weights == "int8":
        quantize_linear_int8(model)
    return model


def check_inference_weights(weights: str, device: str) -> None:
    if weights not in INFERENCE_WEIGHTS:
        raise BadInputError(f"unknown weights {weights!r}", f"choose one of {', '.join(INFERENCE_WEIGHTS)}")
    if weights == "int8" and not device.startswith("cpu"):
        raise BadInputError("int8 weights are for generating on a CPU", "use --weights auto on a GPU")


def load_tokenizer(name_or_path: str, allow_download: bool = False) -> PreTrainedTokenizerBase:
    """The model's tokenizer, with a pad token and a chat template."""
    from transformers import AutoTokenizer

    # A catalog model's tokenizer is converted on its own, without converting the weights.
    source = tokenizer_dir(name_or_path) if name_or_path in CATALOG else resolve_model(name_or_path)
    tokenizer = _from_pretrained(AutoTokenizer, name_or_path, source, allow_download)
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise TunesmithError(f"the tokenizer of {name_or_path} has neither a pad nor an end-of-sequence token")
        # Padding is masked by position (attention mask, -100 labels), never by token id, so
        # padding with the end-of-sequence token does not hide the real ones from the loss.
        tokenizer.pad_token = tokenizer.eos_token
    if not tokenizer.chat_template:
        raise TunesmithError(
            f"the tokenizer of {name_or_path} has no chat template, "
            "so conversations cannot be rendered the way the model reads them",
            "use the instruction-tuned (chat) variant of the model",
        )
    return tokenizer


def _from_pretrained(auto_class: Any, name: str, source: Path | str, allow_download: bool, **kwargs: Any) -> Any:
    try:
        return auto_class.from_pretrained(str(source), local_files_only=not allow_download, **kwargs)
    except OSError as exc:
        if isinstance(source, Path):
            raise TunesmithError(f"cannot load {name} from {source}: {exc}") from None
        raise TunesmithError(
            f"{name} is not in the local Hugging Face cache, and downloads are not allowed",
            f"download it first (hf download {name}) or allow downloads",
        ) from None


def base_models() -> list[dict]:
    """The catalog, for `tunesmith models base`: whether each model's package is installed
    and whether it has been converted already (the first use converts it)."""
    return [
        {
            "name": model.name,
            "description": model.description,
            "licence": model.licence,
            "default": model.name == DEFAULT_BASE_MODEL,
            "installed": is_installed(model.name),
            "cached": model_dir_if_cached(model.name) is not None,
        }
        for model in CATALOG.values()
    ]
