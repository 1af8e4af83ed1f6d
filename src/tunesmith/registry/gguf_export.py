"""Writing a model as GGUF, the single-file format llama.cpp and Ollama run.

    write_model_gguf   a whole (merged or fully tuned) Llama-architecture model: weights in f32,
                       f16 or Q8_0, the hyperparameters, the tokenizer (byte-level BPE: tokens,
                       token types, merges, special tokens) and the chat template
    write_lora_gguf    a PEFT LoRA adapter as a GGUF LoRA (general.type=adapter), which
                       llama.cpp applies to the base model's GGUF at load time (`--lora`)

Tensor names come from the `gguf` package's own name map (`TensorNameMap` for
`MODEL_ARCH.LLAMA`), so they are the names llama.cpp looks for. Two layout rules of llama.cpp's
Llama graph are applied here:

- the query and key projections are stored with their rows permuted per head: Hugging Face's
  Llama rotates the two halves of each head (`rotate_half`), llama.cpp rotates adjacent pairs;
  the permutation makes both compute the same attention (transformers undoes it on loading);
- a tied output projection is not stored: llama.cpp (and transformers) reuse the token
  embedding when `output.weight` is absent.

Every file is written to a temporary name beside its target and renamed into place."""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..lazy import numpy as np

from ..errors import BadInputError

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

QUANTS = ("f32", "f16", "q8_0")  # what --quant accepts
Q8_0_BLOCK = 32  # Q8_0 packs rows in blocks of 32 values (one f16 scale + 32 int8 each)

# The token types llama.cpp reads (gguf.TokenType): spelled out so this module imports without gguf.
NORMAL, CONTROL, USER_DEFINED, UNUSED = 1, 3, 4, 5


@dataclass(frozen=True)
class TokenizerMetadata:
    """What llama.cpp (and transformers' GGUF reader) need to rebuild the tokenizer."""

    tokens: list[str]
    token_types: list[int]
    merges: list[str]
    special_ids: dict[str, int]  # bos, eos, unk, pad -> id
    add_bos: bool
    add_eos: bool
    chat_template: str | None
    pre: str | None  # llama.cpp's pre-tokenizer name ("smollm", "llama-bpe", ...), None: its default


def check_exportable(config: Any) -> None:
    """Refuses, with a hint, a model this writer cannot express faithfully."""
    model_type = getattr(config, "model_type", None)
    if model_type != "llama":
        raise BadInputError(
            f"GGUF export supports Llama-architecture models (SmolLM2, Llama); this one is {model_type!r}",
            "export it as a folder (--format hf) and convert that with llama.cpp's convert_hf_to_gguf.py",
        )
    rope = _rope_parameters(config)
    if rope.get("rope_type", "default") not in ("default", None):
        raise BadInputError(f"GGUF export does not carry the rope scaling {rope.get('rope_type')!r} yet",
                            "export it as a folder (--format hf) and convert it with llama.cpp's tools")


def write_model_gguf(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, path: str | Path, quant: str,
                     pre_tokenizer: str | None, name: str) -> Path:
    """`model` (a Hugging Face Llama, merged if it was tuned with an adapter) as one GGUF file."""
    import gguf

    config = model.config
    check_exportable(config)
    qtype, file_type = _quant_types(quant)
    heads, kv_heads = config.num_attention_heads, config.num_key_value_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    metadata = tokenizer_metadata(tokenizer, config.vocab_size, pre_tokenizer)

    def fill(writer: Any) -> None:
        writer.add_type(gguf.GGUFType.MODEL)
        writer.add_name(name)
        writer.add_context_length(config.max_position_embeddings)
        writer.add_embedding_length(config.hidden_size)
        writer.add_block_count(config.num_hidden_layers)
        writer.add_feed_forward_length(config.intermediate_size)
        writer.add_head_count(heads)
        writer.add_head_count_kv(kv_heads)
        writer.add_rope_dimension_count(head_dim)
        writer.add_rope_freq_base(float(_rope_parameters(config).get("rope_theta", 10000.0)))
        writer.add_layer_norm_rms_eps(float(config.rms_norm_eps))
        writer.add_vocab_size(config.vocab_size)
        if head_dim != config.hidden_size // heads:
            writer.add_key_length(head_dim)
            writer.add_value_length(head_dim)
        writer.add_file_type(file_type)
        if qtype not in (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16):
            writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
        _add_tokenizer(writer, metadata)

        names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, config.num_hidden_layers)
        for hf_name, tensor in model.state_dict().items():
            if hf_name == "lm_head.weight" and config.tie_word_embeddings:
                continue  # the same tensor as the embedding: llama.cpp reuses token_embd
            if hf_name.endswith("rotary_emb.inv_freq"):
                continue  # recomputed from rope.freq_base
            gguf_name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
            if gguf_name is None:
                raise BadInputError(f"GGUF export: the tensor {hf_name} has no llama.cpp name",
                                    "export it as a folder (--format hf) instead")
            data = tensor.detach().to("cpu").float().numpy()
            if gguf_name.startswith("blk.") and ".attn_q." in gguf_name:
                data = permute_rows_for_rope(data, heads)
            elif gguf_name.startswith("blk.") and ".attn_k." in gguf_name:
                data = permute_rows_for_rope(data, kv_heads)
            _add_tensor(writer, gguf_name, data, qtype)

    return _write_atomically(path, fill)


def write_lora_gguf(adapter_dir: str | Path, base_config: Any, path: str | Path, quant: str, name: str) -> Path:
    """A PEFT LoRA adapter folder as a GGUF LoRA for the base whose config is `base_config`.

    llama.cpp scales each pair by alpha / rank (rank from the tensors), which is PEFT's plain
    LoRA scaling; rsLoRA's alpha / sqrt(rank) is written as the equivalent alpha. Adapters that
    change more than linear layers (DoRA, trained embeddings, modules_to_save) are refused:
    llama.cpp's LoRA has no place for them, and the merged export carries them instead."""
    import gguf
    from safetensors.numpy import load_file

    check_exportable(base_config)
    adapter_dir = Path(adapter_dir)
    settings = json.loads((adapter_dir / "adapter_config.json").read_text())
    weights_file = adapter_dir / "adapter_model.safetensors"
    if settings.get("peft_type", "LORA") != "LORA" or not weights_file.is_file():
        raise BadInputError(f"{adapter_dir} is not a LoRA adapter in safetensors",
                            "export the merged model instead (--merged)")
    if settings.get("use_dora") or settings.get("modules_to_save") or settings.get("alpha_pattern"):
        raise BadInputError("this adapter uses DoRA, per-module alpha or trained extra modules, "
                            "which a GGUF LoRA cannot carry", "export the merged model instead (--merged)")
    alpha = float(settings["lora_alpha"])
    if settings.get("use_rslora"):
        if settings.get("rank_pattern"):
            raise BadInputError("an rsLoRA adapter with per-module ranks cannot be written as one GGUF alpha",
                                "export the merged model instead (--merged)")
        alpha *= math.sqrt(settings["r"])  # alpha' / r == alpha / sqrt(r)
    qtype, file_type = _quant_types("f32" if quant == "f32" else "f16")  # low-rank pairs: never 8-bit
    heads, kv_heads = base_config.num_attention_heads, base_config.num_key_value_heads
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, base_config.num_hidden_layers)
    tensors = load_file(str(weights_file))

    def fill(writer: Any) -> None:
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)  # llama.cpp reads a float32, nothing else
        writer.add_name(name)
        writer.add_file_type(file_type)
        for key in sorted(tensors):
            module, part = _lora_module_and_part(key)
            gguf_name = names.get_name(module)
            if gguf_name is None:
                raise BadInputError(f"GGUF LoRA export: the adapted layer {module} has no llama.cpp name",
                                    "export the merged model instead (--merged)")
            data = tensors[key].astype(np.float32)
            if part == "b" and ".attn_q" in gguf_name:  # W = B A: permuting W's rows permutes B's
                data = permute_rows_for_rope(data, heads)
            elif part == "b" and ".attn_k" in gguf_name:
                data = permute_rows_for_rope(data, kv_heads)
            # PEFT's lora_A (rank x in) and lora_B (out x rank) have the shapes llama.cpp checks.
            _add_tensor(writer, f"{gguf_name}.weight.lora_{part}", data, qtype)

    return _write_atomically(path, fill)


def permute_rows_for_rope(weights: np.ndarray, heads: int) -> np.ndarray:
    """Reorders the rows of a query or key projection (or their bias) within each head from
    [first halves..., second halves...] to interleaved pairs (llama.cpp's rotary layout)."""
    half = weights.shape[0] // heads // 2
    grouped = weights.reshape(heads, 2, half, *weights.shape[1:])
    return grouped.swapaxes(1, 2).reshape(weights.shape)


def unpermute_rows_for_rope(weights: np.ndarray, heads: int) -> np.ndarray:
    """The inverse of `permute_rows_for_rope` (what transformers does on loading a GGUF)."""
    half = weights.shape[0] // heads // 2
    grouped = weights.reshape(heads, half, 2, *weights.shape[1:])
    return grouped.swapaxes(1, 2).reshape(weights.shape)


# ------------------------------------------------------------------------------ tokenizer


def tokenizer_metadata(tokenizer: PreTrainedTokenizerBase, vocab_size: int, pre: str | None) -> TokenizerMetadata:
    """The tokenizer as llama.cpp's "gpt2" (byte-level BPE) vocabulary: one entry per embedding
    row, added special tokens marked CONTROL (so they are matched whole and never printed),
    other added tokens USER_DEFINED, rows past the tokenizer's end UNUSED placeholders."""
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    bpe = spec["model"]
    if bpe.get("type") != "BPE" or bpe.get("byte_fallback") or (spec.get("decoder") or {}).get("type") != "ByteLevel":
        raise BadInputError("GGUF export supports byte-level BPE tokenizers (GPT-2 style, as SmolLM2 and Llama 3 use)",
                            "export it as a folder (--format hf) and convert it with llama.cpp's tools")
    by_id: dict[int, tuple[str, int]] = {index: (token, NORMAL) for token, index in bpe["vocab"].items()}
    for added in spec.get("added_tokens", []):
        by_id[added["id"]] = (added["content"], CONTROL if added.get("special") else USER_DEFINED)
    if max(by_id) >= vocab_size:
        raise BadInputError(f"the tokenizer has ids up to {max(by_id)} but the model only {vocab_size} embeddings")
    tokens, types = [], []
    for index in range(vocab_size):
        token, kind = by_id.get(index, (f"[PAD{index}]", UNUSED))
        tokens.append(token)
        types.append(kind)
    merges = [" ".join(pair) if isinstance(pair, list) else pair for pair in bpe.get("merges", [])]
    special_ids = {kind: getattr(tokenizer, f"{kind}_token_id") for kind in ("bos", "eos", "unk", "pad")}
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    marked = tokenizer("a")["input_ids"]
    added_in_front = marked[: len(marked) - len(plain)] if marked[-len(plain):] == plain else marked[:1]
    return TokenizerMetadata(
        tokens=tokens,
        token_types=types,
        merges=merges,
        special_ids={kind: token_id for kind, token_id in special_ids.items() if token_id is not None},
        add_bos=special_ids["bos"] is not None and added_in_front[:1] == [special_ids["bos"]],
        add_eos=special_ids["eos"] is not None and len(marked) > len(plain) and marked[-1] == special_ids["eos"],
        chat_template=tokenizer.chat_template if isinstance(tokenizer.chat_template, str) else None,
        pre=pre,
    )


def pre_tokenizer_name(tokenizer: PreTrainedTokenizerBase) -> str | None:
    """llama.cpp's name for how this tokenizer splits text before BPE, read from its
    tokenizer.json: plain GPT-2 byte-level splitting, SmolLM's (digits one by one, then GPT-2),
    or one of the split patterns transformers' own GGUF reader knows by name. None when it is
    none of these (llama.cpp then falls back to its default, and warns)."""
    from transformers.integrations.gguf.gguf_tokenizer_mapping import (
        GGUF_PRE_TOKENIZER_SPLITS,
    )

    pre = json.loads(tokenizer.backend_tokenizer.to_str()).get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers", [pre]) if pre.get("type") == "Sequence" else [pre]
    kinds = [step.get("type") for step in steps]
    if kinds == ["ByteLevel"] and steps[0].get("use_regex", True):
        return "gpt-2"
    if kinds == ["Digits", "ByteLevel"] and steps[0].get("individual_digits") and steps[1].get("use_regex", True):
        return "smollm"
    if kinds == ["Split", "ByteLevel"]:
        pattern = (steps[0].get("pattern") or {}).get("Regex")
        return next((name for name, split in GGUF_PRE_TOKENIZER_SPLITS.items() if split == pattern), None)
    return None


def _add_tokenizer(writer: Any, metadata: TokenizerMetadata) -> None:
    writer.add_tokenizer_model("gpt2")
    if metadata.pre is not None:
        writer.add_tokenizer_pre(metadata.pre)
    writer.add_token_list(metadata.tokens)
    writer.add_token_types(metadata.token_types)
    writer.add_token_merges(metadata.merges)
    for kind, token_id in metadata.special_ids.items():
        getattr(writer, f"add_{kind}_token_id")(token_id)
    writer.add_add_bos_token(metadata.add_bos)
    writer.add_add_eos_token(metadata.add_eos)
    writer.add_add_space_prefix(False)  # byte-level BPE marks spaces itself
    if metadata.chat_template:
        writer.add_chat_template(metadata.chat_template)


# -------------------------------------------------------------------------------- helpers


def _rope_parameters(config: Any) -> dict:
    """transformers 5 keeps rope_theta and the scaling in `rope_parameters`; older configs apart."""
    parameters = dict(getattr(config, "rope_parameters", None) or {})
    if "rope_theta" not in parameters and getattr(config, "rope_theta", None) is not None:
        parameters["rope_theta"] = config.rope_theta
    scaling = getattr(config, "rope_scaling", None)
    if scaling and "rope_type" not in parameters:
        parameters["rope_type"] = scaling.get("rope_type") or scaling.get("type")
    return parameters


def _quant_types(quant: str) -> tuple[Any, int]:
    import gguf

    table = {
        "f32": (gguf.GGMLQuantizationType.F32, gguf.LlamaFileType.ALL_F32),
        "f16": (gguf.GGMLQuantizationType.F16, gguf.LlamaFileType.MOSTLY_F16),
        "q8_0": (gguf.GGMLQuantizationType.Q8_0, gguf.LlamaFileType.MOSTLY_Q8_0),
    }
    if quant not in table:
        raise BadInputError(f"unknown GGUF quantisation {quant!r}", f"choose one of {', '.join(QUANTS)}")
    qtype, file_type = table[quant]
    return qtype, int(file_type)


def _add_tensor(writer: Any, name: str, data: np.ndarray, qtype: Any) -> None:
    """Norms and other vectors stay f32 (as llama.cpp's converter keeps them); matrices take the
    requested type, Q8_0 only where a row splits into whole blocks (else f16)."""
    import gguf

    if data.ndim == 1 or qtype == gguf.GGMLQuantizationType.F32:
        writer.add_tensor(name, np.ascontiguousarray(data, dtype=np.float32))
    elif qtype == gguf.GGMLQuantizationType.Q8_0 and data.shape[-1] % Q8_0_BLOCK == 0:
        writer.add_tensor(name, gguf.quants.quantize(data, qtype), raw_dtype=qtype)
    else:
        writer.add_tensor(name, np.ascontiguousarray(data, dtype=np.float16))


def _write_atomically(path: str | Path, fill: Any) -> Path:
    import gguf

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        writer = gguf.GGUFWriter(tmp, gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.LLAMA])
        fill(writer)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _lora_module_and_part(key: str) -> tuple[str, str]:
    """"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight" -> ("model.layers.0.self_attn.q_proj", "a")."""
    for marker, part in ((".lora_A.", "a"), (".lora_B.", "b")):
        if marker in key:
            module = key.split(marker)[0]
            return module.removeprefix("base_model.model."), part
    raise BadInputError(f"GGUF LoRA export: the adapter tensor {key} is not a LoRA A or B matrix",
                        "export the merged model instead (--merged)")
