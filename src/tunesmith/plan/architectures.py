"""Model architectures: the widths that decide memory and compute, without loading weights.

A model is found by catalog name (plan/architectures.yaml, offline), by its Hugging Face id
(the catalog's `hf_id`, or a config.json already in the local Hugging Face cache), or by a
local folder with a config.json. `--params 7B` gives a model of that size with the shape of
the catalog model nearest to it (see `of_size`)."""

from __future__ import annotations

import json
import math
import re
from functools import cache
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from ..errors import BadInputError
from ..lazy import yaml

# The projections PEFT's "all-linear" adapts in a decoder block (every nn.Linear but the output head).
ALL_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
_PARAMS = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmbt]?)\s*$", re.IGNORECASE)
_SUFFIX = {"": 1, "k": 1e3, "m": 1e6, "b": 1e9, "t": 1e12}


class Architecture(BaseModel):
    """A decoder-only transformer with gated MLPs (Llama, Mistral, Qwen, Gemma, SmolLM2)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    hf_id: str | None = None
    family: str = "llama"
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int | None = None  # None: hidden_size / num_heads
    intermediate_size: int
    vocab_size: int
    tied_embeddings: bool = False
    norms_per_layer: int = 2
    qkv_bias: bool = False
    qk_norm: bool = False
    logit_softcapping: bool = False
    context_length: int | None = None
    scaled_to_params: int | None = None  # set by `of_size`: the size asked for, the shape borrowed

    @property
    def head_width(self) -> int:
        return self.head_dim or self.hidden_size // self.num_heads

    def linear_shapes(self) -> dict[str, tuple[int, int]]:
        """(in_features, out_features) of each projection in one block."""
        h, q, kv, i = self.hidden_size, self.num_heads * self.head_width, self.num_kv_heads * self.head_width, self.intermediate_size
        return {"q_proj": (h, q), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (q, h),
                "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}

    @property
    def params(self) -> int:
        """All parameters (a tied output head counted once)."""
        if self.scaled_to_params:
            return self.scaled_to_params
        block = sum(n_in * n_out for n_in, n_out in self.linear_shapes().values())
        block += self.norms_per_layer * self.hidden_size
        if self.qkv_bias:
            block += (self.num_heads + 2 * self.num_kv_heads) * self.head_width
        if self.qk_norm:
            block += 2 * self.head_width
        embeddings = self.vocab_size * self.hidden_size * (1 if self.tied_embeddings else 2)
        return self.num_layers * block + embeddings + self.hidden_size  # + the final norm

    @property
    def linear_params(self) -> int:
        """Parameters in the blocks' projections: the matrices a forward pass multiplies by."""
        return self.num_layers * sum(a * b for a, b in self.linear_shapes().values())

    def target_names(self, target_modules: str | list[str] = "all-linear") -> list[str]:
        """The projections a LoRA `target_modules` setting adapts in each block."""
        names = list(ALL_LINEAR) if target_modules == "all-linear" else target_modules
        names = [names] if isinstance(names, str) else list(names)
        unknown = [n for n in names if n not in ALL_LINEAR]
        if unknown:
            raise BadInputError(f"unknown LoRA target module(s) {', '.join(unknown)}",
                                f"use all-linear or some of {', '.join(ALL_LINEAR)}")
        return names

    def target_shapes(self, target_modules: str | list[str] = "all-linear") -> list[tuple[int, int]]:
        """The (in, out) widths of every adapted projection in the model."""
        shapes = self.linear_shapes()
        return [shapes[n] for n in self.target_names(target_modules)] * self.num_layers

    def lora_params(self, rank: int, target_modules: str | list[str] = "all-linear") -> int:
        """A LoRA adapter's parameters: A (r x in) and B (out x r) on each adapted projection."""
        return sum(rank * (n_in + n_out) for n_in, n_out in self.target_shapes(target_modules))


@cache
def catalog() -> dict[str, Architecture]:
    raw = yaml.safe_load((resources.files("tunesmith.plan") / "architectures.yaml").read_text(encoding="utf-8"))
    return {name: Architecture(name=name, **fields) for name, fields in raw.items()}


def from_config(config: dict, name: str) -> Architecture:
    """An architecture from a Hugging Face config.json (the text model's, for multimodal ones)."""
    config = config.get("text_config") or config
    try:
        heads = config["num_attention_heads"]
        return Architecture(
            name=name, family=config.get("model_type", "llama"), hidden_size=config["hidden_size"],
            num_layers=config["num_hidden_layers"], num_heads=heads,
            num_kv_heads=config.get("num_key_value_heads") or heads, head_dim=config.get("head_dim"),
            intermediate_size=config["intermediate_size"], vocab_size=config["vocab_size"],
            tied_embeddings=bool(config.get("tie_word_embeddings", False)),
            norms_per_layer=4 if str(config.get("model_type", "")).startswith("gemma") else 2,
            qkv_bias=bool(config.get("attention_bias")) or config.get("model_type") == "qwen2",
            qk_norm=config.get("model_type") in ("qwen3", "gemma3", "gemma3_text"),
            logit_softcapping=bool(config.get("final_logit_softcapping")),
            context_length=config.get("max_position_embeddings"),
        )
    except KeyError as exc:
        raise BadInputError(f"{name}: config.json has no {exc.args[0]!r}; only decoder-only transformers can be planned",
                            "name a catalog model (`tunesmith plan --list-models`) or use --params") from None


def resolve(name: str) -> Architecture:
    """A catalog name or Hugging Face id, a local model folder, or a Hugging Face id in the local cache."""
    models = catalog()
    if name in models:
        return models[name]
    by_id = {a.hf_id.lower(): a for a in models.values() if a.hf_id}
    if name.lower() in by_id:
        return by_id[name.lower()]
    config_file = _local_config(name)
    if config_file is None:
        raise BadInputError(f"unknown model {name!r}: not in the offline catalog, not a folder with a config.json, "
                            "and not in the local Hugging Face cache",
                            f"use --params (e.g. --params 7B) or one of: {', '.join(models)}")
    return from_config(json.loads(config_file.read_text(encoding="utf-8")), name)


def _local_config(name: str) -> Path | None:
    path = Path(name).expanduser()
    if path.is_dir():
        return path / "config.json" if (path / "config.json").is_file() else None
    if name.count("/") != 1:
        return None
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(name, "config.json")
    return Path(cached) if isinstance(cached, str) else None


def parse_params(text: str) -> int:
    """ "7B", "7b", "135M", "0.5B", "6738415616" -> a parameter count."""
    match = _PARAMS.match(str(text))
    if not match or float(match.group(1)) <= 0:
        raise BadInputError(f"--params {text!r} is not a parameter count", "write it like 7B, 1.5B, 135M or 6738415616")
    return int(float(match.group(1)) * _SUFFIX[match.group(2).lower()])


def of_size(params: int) -> Architecture:
    """A model of `params` parameters shaped like the catalog model nearest in size: same
    layer count, vocabulary and head layout, the widths scaled so that the blocks hold what
    the embeddings leave. Weights, gradients and optimizer states follow `params` exactly;
    LoRA sizes and activations follow the borrowed shape, so they are approximations."""
    reference = min(catalog().values(), key=lambda a: abs(math.log(a.params / params)))
    embeddings = reference.params - reference.num_layers * _block(reference)
    # The blocks hold what the embeddings leave, and at least half (for sizes below a big vocabulary's embeddings).
    scale = math.sqrt(max(params - embeddings, params * 0.5) / (reference.params - embeddings))
    widths = {k: max(1, round(getattr(reference, k) * scale)) for k in ("hidden_size", "intermediate_size")}
    head_dim = max(1, round(reference.head_width * scale))
    return reference.model_copy(update={"name": f"{_format_params(params)} parameters (shaped like {reference.name})",
                                        "hf_id": None, "head_dim": head_dim, "scaled_to_params": params, **widths})


def _block(arch: Architecture) -> int:
    return sum(a * b for a, b in arch.linear_shapes().values())


def _format_params(params: int) -> str:
    for suffix, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if params >= size:
            return f"{params / size:.3g}{suffix}"
    return str(params)
