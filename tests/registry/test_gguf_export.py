"""GGUF export: the file transformers reads back computes what the source model computes, its
tokenizer encodes as the source's does, a GGUF LoRA adds what PEFT's merge adds, and the CLI
writes the files llama.cpp and Ollama take. SmolLM2 itself (and llama.cpp, where
llama-cpp-python is installed) in the slow tests at the end."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tunesmith.cli import app
from tunesmith.errors import BadInputError
from tunesmith.models.llama_server import LlamaServer
from tunesmith.registry.gguf_check import greedy_agreement, llama_server_answers_alike, load_gguf
from tunesmith.registry.gguf_export import (
    permute_rows_for_rope,
    unpermute_rows_for_rope,
    write_lora_gguf,
    write_model_gguf,
)
from tunesmith.store import queries

from ..test_cli import run

PROMPT_TEXTS = ["How do I reset my password?", "My card 4111 was charged twice: 12.50 EUR!",
                "Café déjà vu — ça marche?", "  spaces   and\ttabs\nnew lines", "<|im_start|> inside text"]


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(str(tiny_model_dir)).eval(), AutoTokenizer.from_pretrained(str(tiny_model_dir))


def rendered(tokenizer, texts=PROMPT_TEXTS):
    return [tokenizer.apply_chat_template([{"role": "user", "content": t}], add_generation_prompt=True, tokenize=False)
            for t in texts]


def fields(path):
    from gguf import GGUFReader

    reader = GGUFReader(str(path))
    return reader, {name: field.contents() for name, field in reader.fields.items() if not name.startswith("GGUF.")}


def logits(model, tokenizer, prompt):
    import torch

    ids = torch.tensor([tokenizer(prompt, add_special_tokens=False)["input_ids"]])
    with torch.inference_mode():
        return model(ids).logits


def test_an_f32_file_computes_exactly_what_the_source_computes(tiny, tmp_path):
    model, tokenizer = tiny
    path = write_model_gguf(model, tokenizer, tmp_path / "model.gguf", "f32", "smollm", "tiny")
    back, back_tokenizer = load_gguf(path)
    for prompt in rendered(tokenizer):
        assert back_tokenizer(prompt, add_special_tokens=False)["input_ids"] == \
            tokenizer(prompt, add_special_tokens=False)["input_ids"]
        assert (logits(back, back_tokenizer, prompt) == logits(model, tokenizer, prompt)).all()
    assert back_tokenizer.chat_template == tokenizer.chat_template
    assert (back_tokenizer.eos_token, back_tokenizer.bos_token) == (tokenizer.eos_token, tokenizer.bos_token)

    reader, meta = fields(path)
    assert meta["general.architecture"] == "llama" and meta["general.type"] == "model"
    assert (meta["tokenizer.ggml.model"], meta["tokenizer.ggml.pre"]) == ("gpt2", "smollm")
    assert meta["llama.attention.head_count_kv"] == 2 and meta["llama.rope.dimension_count"] == 16
    tokens, types = meta["tokenizer.ggml.tokens"], meta["tokenizer.ggml.token_type"]
    assert len(tokens) == len(types) == model.config.vocab_size
    assert types[tokens.index("<|im_end|>")] == 3 and types[tokens.index("Ġt")] == 1  # control, normal
    assert meta["tokenizer.ggml.eos_token_id"] == tokenizer.eos_token_id and meta["tokenizer.ggml.add_bos_token"] is False
    names = {t.name for t in reader.tensors}
    assert {"token_embd.weight", "output_norm.weight", "blk.1.attn_q.weight", "blk.1.ffn_down.weight"} <= names
    assert "output.weight" not in names  # tied: llama.cpp reuses the embedding
    assert len(names) == 2 + 9 * model.config.num_hidden_layers


def test_f16_and_q8_0_files_are_smaller_and_close(tiny, tmp_path):
    from gguf import GGMLQuantizationType

    model, tokenizer = tiny
    prompt = rendered(tokenizer)[1]
    reference = logits(model, tokenizer, prompt)
    sizes = {}
    for quant, tolerance in (("f32", 0.0), ("f16", 2e-3), ("q8_0", 3e-2)):
        path = write_model_gguf(model, tokenizer, tmp_path / f"{quant}.gguf", quant, None, "tiny")
        sizes[quant] = path.stat().st_size
        from transformers import (
            AutoModelForCausalLM,  # the weights only: the tokenizer is checked above
        )

        back = AutoModelForCausalLM.from_pretrained(str(tmp_path), gguf_file=path.name, dtype="float32")
        assert (logits(back, tokenizer, prompt) - reference).abs().max().item() <= tolerance
    assert sizes["q8_0"] < 0.7 * sizes["f16"] < 0.4 * sizes["f32"]
    reader, meta = fields(tmp_path / "q8_0.gguf")
    kinds = {t.name: t.tensor_type for t in reader.tensors}
    assert kinds["blk.0.attn_v.weight"] == GGMLQuantizationType.Q8_0 and kinds["token_embd.weight"] == GGMLQuantizationType.Q8_0
    assert kinds["blk.0.attn_norm.weight"] == GGMLQuantizationType.F32  # vectors stay f32
    assert meta["general.file_type"] == 7 and meta["general.quantization_version"] == 2
    assert "tokenizer.ggml.pre" not in meta  # none given: llama.cpp's default


@settings(max_examples=40, deadline=None)
@given(heads=st.integers(1, 6), half=st.integers(1, 5), columns=st.integers(0, 3), seed=st.integers(0, 2**32 - 1))
def test_the_rope_permutation_is_undone_by_its_inverse_and_by_transformers(heads, half, columns, seed):
    from transformers.modeling_gguf_pytorch_utils import LlamaTensorProcessor

    shape = (heads * 2 * half,) + ((columns,) if columns else ())
    weights = np.random.default_rng(seed).normal(size=shape)
    permuted = permute_rows_for_rope(weights, heads)
    assert (unpermute_rows_for_rope(permuted, heads) == weights).all()
    undone = LlamaTensorProcessor()._reverse_permute_weights(permuted, heads, heads)
    assert (undone == weights).all()
    if half > 1:  # within each head, the first half's rows and the second half's now alternate
        assert (permuted[1] == weights[half]).all()


def make_adapter(model, folder, seed=0, **lora):
    """A LoRA adapter on the tiny model with random (non-zero) A and B, saved with PEFT."""
    import copy

    import torch
    from peft import LoraConfig, get_peft_model

    settings_ = {"r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "k_proj", "v_proj", "down_proj"], **lora}
    peft_model = get_peft_model(copy.deepcopy(model), LoraConfig(**settings_))
    torch.manual_seed(seed)
    for name, parameter in peft_model.named_parameters():
        if "lora_" in name:
            parameter.data.normal_(0, 0.05)
    peft_model.save_pretrained(str(folder))
    return peft_model


@pytest.mark.parametrize("rslora", [False, True])
def test_a_gguf_lora_adds_what_peft_merges(tiny, tmp_path, rslora):
    model, _ = tiny
    peft_model = make_adapter(model, tmp_path / "adapter", use_rslora=rslora)
    merged = {k: v.detach().numpy() for k, v in peft_model.merge_and_unload().state_dict().items()}
    base = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    path = write_lora_gguf(tmp_path / "adapter", model.config, tmp_path / "adapter.gguf", "f32", "tiny lora")

    reader, meta = fields(path)
    assert (meta["general.type"], meta["adapter.type"], meta["general.architecture"]) == ("adapter", "lora", "llama")
    alpha = meta["adapter.lora.alpha"]
    assert math.isclose(alpha, 8 * 2 if rslora else 8, rel_tol=1e-6)  # rsLoRA: alpha/sqrt(4) == alpha'/4
    tensors = {t.name: np.array(t.data).reshape(tuple(reversed(t.shape.tolist()))) for t in reader.tensors}
    assert len(tensors) == 2 * 4 * model.config.num_hidden_layers
    heads = {"attn_q": 4, "attn_k": 2}
    hf = {"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj", "ffn_down": "mlp.down_proj"}
    for layer in range(model.config.num_hidden_layers):
        for short, module in hf.items():
            a, b = tensors[f"blk.{layer}.{short}.weight.lora_a"], tensors[f"blk.{layer}.{short}.weight.lora_b"]
            if short in heads:
                b = unpermute_rows_for_rope(b, heads[short])
            key = f"model.layers.{layer}.{module}.weight"
            rank = a.shape[0]
            np.testing.assert_allclose(base[key] + alpha / rank * (b @ a), merged[key], atol=1e-6)


def test_adapters_a_gguf_lora_cannot_carry_are_refused(tiny, tmp_path):
    model, _ = tiny
    make_adapter(model, tmp_path / "dora", use_dora=True)
    with pytest.raises(BadInputError, match="DoRA"):
        write_lora_gguf(tmp_path / "dora", model.config, tmp_path / "x.gguf", "f16", "x")
    from transformers import Qwen2Config

    with pytest.raises(BadInputError, match="Llama-architecture"):
        write_lora_gguf(tmp_path / "dora", Qwen2Config(), tmp_path / "x.gguf", "f16", "x")
    assert not list(tmp_path.glob("*.gguf")) and not list(tmp_path.glob(".*tmp"))


def test_the_cli_exports_merged_and_lora_files_with_a_modelfile(tiny, tiny_model_dir, tmp_path, monkeypatch):
    model, tokenizer = tiny
    make_adapter(model, tmp_path / "adapter")
    home = tmp_path / "home"
    monkeypatch.setenv("TUNESMITH_HOME", str(home))  # register where the CLI below looks
    registered = queries.register_model(base_model=str(tiny_model_dir), method="lora", spec={}, adapter_path=str(tmp_path / "adapter"),
                                        name="tickets-lora")
    done = run("models", "export", "tickets-lora", "--format", "gguf", "--quant", "q8_0", "--out", "merged", "--json",
               cwd=tmp_path, home=home)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["files"] == ["Modelfile", "model.gguf"]
    modelfile = (tmp_path / "merged" / "Modelfile").read_text()
    assert modelfile.startswith("FROM ./model.gguf\n") and 'PARAMETER stop "<|im_end|>"' in modelfile
    assert 'SYSTEM """You are a helpful AI assistant named SmolLM' in modelfile

    runner = CliRunner()  # in-process from here on: a second interpreter would only load torch again
    lora = runner.invoke(app, ["models", "export", registered.id, "--format", "gguf", "--no-merged",
                               "--out", str(tmp_path / "lora")])
    assert lora.exit_code == 0, lora.output
    assert sorted(p.name for p in (tmp_path / "lora").iterdir()) == ["Modelfile", "adapter.gguf", "base.gguf"]
    assert "FROM ./base.gguf\nADAPTER ./adapter.gguf\n" in (tmp_path / "lora" / "Modelfile").read_text()

    # merged f16 answers as PEFT's merge does, read back through transformers
    from tunesmith.registry.export import export_model

    export_model("tickets-lora", tmp_path / "f16", format="gguf")
    agreement = greedy_agreement(make_adapter(model, tmp_path / "again").merge_and_unload(), tokenizer,
                                 tmp_path / "f16" / "model.gguf", rendered(tokenizer), max_new_tokens=8)
    assert agreement.same_prompt_tokens == agreement.prompts and agreement.same_chat_template
    assert agreement.share >= 0.8, agreement  # a random tiny model's logits are near ties: f16 may flip one

    for args, message in ((["--quant", "q4"], "unknown GGUF quantisation"), (["--format", "onnx"], "unknown export format"),
                          (["--out", str(tmp_path / "merged")], "not an empty folder")):
        refused = runner.invoke(app, ["models", "export", "tickets-lora", "--format", "gguf", "--out",
                                      str(tmp_path / "bad"), *args])
        # main() prints a BadInputError as a sentence and exits 2 (tests/test_cli.py covers that path)
        assert isinstance(refused.exception, BadInputError) and message in refused.exception.message
    assert not (tmp_path / "bad").exists()


# ----------------------------------------------------------------------------- slow


def ticket_prompts(tokenizer, n):
    from tunesmith.data.example import Example, Turn
    from tunesmith.examples.tickets import generate_tickets
    from tunesmith.models.chat import render_prompt

    records = generate_tickets(max(n, 200), seed=3).records[:n]
    return [render_prompt(Example(turns=[Turn("user", r["input_text"])]), tokenizer) for r in records]


@pytest.fixture(scope="module")
def smollm2(smollm2_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(str(smollm2_dir)).eval(), AutoTokenizer.from_pretrained(str(smollm2_dir))


@pytest.mark.slow
def test_smollm2_exports_answer_as_the_source_does(smollm2, tmp_path):
    from tunesmith.registry.export import export_model

    model, tokenizer = smollm2
    prompts = ticket_prompts(tokenizer, 24)
    shares = {}
    for quant in ("f16", "q8_0"):
        out = export_model("smollm2-135m-instruct", tmp_path / quant, format="gguf", quant=quant)
        _, meta = fields(out / "model.gguf")
        assert meta["tokenizer.ggml.pre"] == "smollm"  # from the embedded file: llama.cpp's name for it
        agreement = greedy_agreement(model, tokenizer, out / "model.gguf", prompts, max_new_tokens=24)
        assert agreement.same_prompt_tokens == len(prompts) and agreement.same_chat_template
        shares[quant] = agreement.share
    print(f"identical greedy answers, {len(prompts)} ticket prompts: {shares}")
    assert shares["f16"] >= 0.99
    assert shares["q8_0"] >= 0.5  # reported, not a target: 8-bit blocks flip near-ties (8 of 12 kept on a tuned model)


def llama_server_path():
    """llama.cpp's server: $TUNESMITH_LLAMA_SERVER, else llama-server on the PATH."""
    import os
    import shutil

    path = os.environ.get("TUNESMITH_LLAMA_SERVER") or shutil.which("llama-server")
    if not path:
        pytest.skip("llama.cpp's llama-server is not installed (set TUNESMITH_LLAMA_SERVER to its path); "
                    "the export is checked through transformers above")
    return path


@pytest.mark.slow
def test_llama_cpp_loads_the_exports_and_answers_as_transformers_does(smollm2, tmp_path):
    binary = llama_server_path()
    from tunesmith.registry.export import export_model
    from tunesmith.registry.gguf_check import greedy_tokens

    model, tokenizer = smollm2
    prompts = ticket_prompts(tokenizer, 16)
    prompt_ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    expected = greedy_tokens(model, tokenizer, prompts, max_new_tokens=24, batch_size=1)
    out = export_model("smollm2-135m-instruct", tmp_path / "f16", format="gguf", quant="f16")
    server = LlamaServer(binary, out / "model.gguf").start()
    try:
        assert [server.tokenize(p) for p in prompts] == prompt_ids  # llama.cpp's tokenizer agrees
        same = llama_server_answers_alike(server, tokenizer, expected, prompt_ids, 24)
    finally:
        server.stop()
    print(f"llama.cpp (f16 export): identical greedy answers on {same} of {len(prompts)} prompts")
    assert same >= 0.9 * len(prompts)

    # A LoRA adapter: llama.cpp applies the GGUF LoRA to base.gguf as PEFT applies it in transformers.
    adapted = make_adapter(model, tmp_path / "adapter", r=8, lora_alpha=16, target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "up_proj"])
    for name, parameter in adapted.named_parameters():
        if "lora_" in name:
            parameter.data.mul_(0.3)  # a change that moves answers without wrecking them
    adapted.save_pretrained(str(tmp_path / "adapter"))
    queries.register_model(base_model="smollm2-135m-instruct", method="lora", spec={}, adapter_path=str(tmp_path / "adapter"),
                           name="random-lora")
    lora_out = export_model("random-lora", tmp_path / "lora", format="gguf", quant="f16", merged=False)
    expected_lora = greedy_tokens(adapted, tokenizer, prompts, max_new_tokens=24, batch_size=1)
    assert expected_lora != expected  # the adapter changes answers
    server = LlamaServer(binary, lora_out / "base.gguf", lora=lora_out / "adapter.gguf").start()
    try:
        same_lora = llama_server_answers_alike(server, tokenizer, expected_lora, prompt_ids, 24)
    finally:
        server.stop()
    print(f"llama.cpp (base f16 + GGUF LoRA): identical greedy answers on {same_lora} of {len(prompts)} prompts")
    assert same_lora >= 0.9 * len(prompts)
