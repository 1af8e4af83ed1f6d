from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tunesmith.errors import BadInputError, TunesmithError
from tunesmith.models import embedded
from tunesmith.models.catalog import DEFAULT_BASE_MODEL
from tunesmith.models.loading import base_models, load_model, load_tokenizer, resolve_model


def _chat_ids(tokenizer):
    text = tokenizer.apply_chat_template([{"role": "user", "content": "Where is my parcel?"}], tokenize=False, add_generation_prompt=True)
    return tokenizer(text, add_special_tokens=False, return_tensors="pt")


def test_tiny_model_loads_and_runs_a_forward_pass(tiny_model_dir):
    import torch

    model = load_model(str(tiny_model_dir))
    tokenizer = load_tokenizer(str(tiny_model_dir))
    batch = _chat_ids(tokenizer)
    with torch.no_grad():
        logits = model(**batch).logits
    assert logits.shape == (1, batch["input_ids"].shape[1], len(tokenizer))
    assert model.dtype == torch.float32
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()


def test_the_embedded_tokenizer_has_a_pad_token_and_a_chat_template(tiny_model_dir):
    tokenizer = load_tokenizer(DEFAULT_BASE_MODEL)
    assert tokenizer.pad_token == "<|im_end|>"  # SmolLM2 has no dedicated pad; its own config pads with eos
    assert tokenizer.pad_token_id == tokenizer.eos_token_id
    assert "<|im_start|>" in tokenizer.chat_template


def _tokenizer_copy(tiny_model_dir: Path, out: Path, chat_template: bool = True, pad_token: bool = True) -> Path:
    out.mkdir()
    config = json.loads((tiny_model_dir / "tokenizer_config.json").read_text())
    if not pad_token:
        del config["pad_token"]
    (out / "tokenizer_config.json").write_text(json.dumps(config))
    shutil.copy(tiny_model_dir / "tokenizer.json", out)
    if chat_template:
        shutil.copy(tiny_model_dir / "chat_template.jinja", out)
    return out


def test_a_tokenizer_without_a_pad_token_pads_with_its_end_of_sequence_token(tiny_model_dir, tmp_path):
    tokenizer = load_tokenizer(str(_tokenizer_copy(tiny_model_dir, tmp_path / "tok", pad_token=False)))
    assert tokenizer.pad_token == tokenizer.eos_token == "<|im_end|>"


def test_a_tokenizer_without_a_chat_template_is_refused(tiny_model_dir, tmp_path):
    with pytest.raises(TunesmithError, match="no chat template"):
        load_tokenizer(str(_tokenizer_copy(tiny_model_dir, tmp_path / "tok", chat_template=False)))


def test_the_converted_model_is_a_plain_tied_float32_checkpoint(smollm2_dir):
    files = {p.name for p in smollm2_dir.iterdir()}
    assert {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja"} <= files
    config = json.loads((smollm2_dir / "config.json").read_text())
    assert "quantization_config" not in config
    assert config["tie_word_embeddings"] is True
    assert config["dtype"] == embedded.SAVED_DTYPE

    model = load_model(DEFAULT_BASE_MODEL)
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(134.5e6, rel=0.01)


@pytest.mark.slow  # loading the GGUF file for reference takes about 20 s
def test_the_converted_model_gives_the_gguf_models_logits(smollm2_dir):
    import torch
    from transformers import AutoModelForCausalLM

    gguf = embedded.gguf_path(DEFAULT_BASE_MODEL)
    reference = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    converted = load_model(DEFAULT_BASE_MODEL)
    batch = _chat_ids(load_tokenizer(DEFAULT_BASE_MODEL))
    with torch.no_grad():
        expected = reference(**batch).logits
        actual = converted(**batch).logits
    torch.testing.assert_close(actual, expected, atol=1e-4, rtol=1e-4)


def test_a_cached_folder_is_built_once_and_a_lost_race_keeps_the_winners(tmp_path):
    target = tmp_path / "model"
    builds = []

    def build_and_lose_the_race(out: Path) -> None:
        builds.append(out)
        (out / "weights").write_text("mine")
        target.mkdir()  # another process renames its copy into place meanwhile
        (target / "weights").write_text("theirs")

    assert embedded._cached(target, build_and_lose_the_race) == target
    assert (target / "weights").read_text() == "theirs"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # the loser's temporary folder is gone
    assert embedded._cached(target, build_and_lose_the_race) == target
    assert len(builds) == 1


def test_a_failed_build_leaves_nothing_behind(tmp_path):
    def broken(out: Path) -> None:
        (out / "half").write_text("")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        embedded._cached(tmp_path / "model", broken)
    assert list(tmp_path.iterdir()) == []


def test_resolve_model(tmp_path, smollm2_dir):
    assert resolve_model(DEFAULT_BASE_MODEL) == smollm2_dir
    assert resolve_model(str(tmp_path)) == tmp_path
    assert resolve_model("HuggingFaceTB/SmolLM2-360M-Instruct") == "HuggingFaceTB/SmolLM2-360M-Instruct"
    with pytest.raises(BadInputError, match="no such model folder"):
        resolve_model(str(tmp_path / "missing"))
    (tmp_path / "model.gguf").write_text("")
    with pytest.raises(BadInputError, match="is a file"):
        resolve_model(str(tmp_path / "model.gguf"))


def test_a_hugging_face_id_not_in_the_local_cache_is_not_downloaded(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(TunesmithError, match="not in the local Hugging Face cache") as caught:
        load_tokenizer("tunesmith-tests/no-such-model")
    assert "hf download" in caught.value.hint


def test_unknown_base_model():
    with pytest.raises(TunesmithError, match="unknown base model"):
        embedded.model_dir("gpt-17")


def test_base_models_lists_the_default(monkeypatch, tmp_path):
    monkeypatch.setenv("TUNESMITH_CACHE", str(tmp_path))
    [default] = [m for m in base_models() if m["default"]]
    assert default["name"] == DEFAULT_BASE_MODEL
    assert default["licence"] == "Apache-2.0"
    assert default["installed"] is True
    assert default["cached"] is False  # an empty cache: nothing converted yet
    assert not os.listdir(tmp_path)  # listing converts nothing
