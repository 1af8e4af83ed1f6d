"""The training kernels of train/cpu_kernels.py and train/mixed_precision.py keep the
mathematics of what they replace (mixed_precision: of fp32 training)."""

from __future__ import annotations

import json
import math

import pytest
import torch

from tunesmith.train.cpu_kernels import (FP32_ATTENTION, FastDropout, dropout_keep, fuse_lora_layers, use_fast_lora_dropout,
                                         use_fp32_attention)
from tunesmith.train.mixed_precision import add_lora_updates_in_fp32, store_frozen_linears_in_bf16


def test_fast_dropout_drops_at_the_rate_and_rescales_the_rest():
    torch.manual_seed(0)
    x = torch.ones(1000, 1000)
    y = FastDropout(0.1).train()(x)
    dropped = (y == 0).float().mean().item()
    sigma = math.sqrt(0.1 * 0.9 / x.numel())
    assert abs(dropped - 0.1) < 5 * sigma
    assert torch.allclose(y[y != 0], torch.full_like(y[y != 0], 1 / 0.9))
    assert abs(y.mean().item() - 1.0) < 0.01  # unbiased, as dropout must be


def test_fast_dropout_is_seeded_masks_the_gradient_and_is_off_in_evaluation():
    dropout = FastDropout(0.3).train()
    torch.manual_seed(7)
    x = torch.randn(37, 11, requires_grad=True)  # an element count that is not a multiple of four
    y = dropout(x)
    torch.manual_seed(7)
    torch.randn(37, 11)
    assert torch.equal(dropout(x), y)  # the same generator state, the same mask
    y.sum().backward()
    assert torch.allclose(x.grad, torch.where(y != 0, 1 / 0.7, 0.0))
    assert dropout.eval()(x) is x
    with pytest.raises(ValueError):
        FastDropout(1.0)


def test_fast_dropout_lanes_are_independent_of_their_position():
    # Four elements come from each 64-bit draw: each lane must drop at the same rate.
    torch.manual_seed(1)
    y = FastDropout(0.25).train()(torch.ones(400_000, 4))
    rates = (y == 0).float().mean(dim=0)
    assert torch.all((rates - 0.25).abs() < 5 * math.sqrt(0.25 * 0.75 / 400_000)), rates


def _lora(model_dir, dropout=0.1):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    return get_peft_model(model, LoraConfig(r=4, lora_alpha=8, lora_dropout=dropout, target_modules="all-linear",
                                            task_type="CAUSAL_LM"))


def test_peft_dropouts_are_replaced_and_the_saved_adapter_is_unchanged(tiny_model_dir, tmp_path):
    model = _lora(tiny_model_dir)
    model.save_pretrained(str(tmp_path / "before"))
    lora_layers = sum(1 for m in model.modules() if isinstance(getattr(m, "lora_dropout", None), torch.nn.ModuleDict))
    assert use_fast_lora_dropout(model) == lora_layers == 2 * 7
    assert not any(isinstance(m, torch.nn.Dropout) for m in model.modules())
    model.save_pretrained(str(tmp_path / "after"))
    from safetensors.torch import load_file

    before = load_file(str(tmp_path / "before" / "adapter_model.safetensors"))
    after = load_file(str(tmp_path / "after" / "adapter_model.safetensors"))
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


def test_frozen_projections_in_bf16_give_the_same_products_under_autocast(tiny_model_dir):
    reference, model = _lora(tiny_model_dir, dropout=0.0), _lora(tiny_model_dir, dropout=0.0)
    cast = store_frozen_linears_in_bf16(model)
    assert cast == 2 * 7  # the seven projections of each layer; not the tied head
    head = model.get_base_model().get_output_embeddings()
    assert head.weight.dtype == torch.float32 and head.weight is model.get_base_model().get_input_embeddings().weight
    assert all(p.dtype == torch.float32 for n, p in model.named_parameters() if p.requires_grad)
    ids = torch.randint(0, 1000, (2, 9))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        expected = reference(input_ids=ids).logits
        actual = model(input_ids=ids).logits
    assert torch.equal(actual, expected)


def test_fp32_attention_matches_sdpa_and_is_not_saved(tiny_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32)
    ids = torch.randint(0, 1000, (2, 12))
    mask = torch.ones_like(ids)
    mask[1, :4] = 0  # left padding: the mask must reach the attention
    expected = model(input_ids=ids, attention_mask=mask).logits
    assert use_fp32_attention(model) and model.config._attn_implementation == FP32_ATTENTION
    assert torch.equal(model(input_ids=ids, attention_mask=mask).logits, expected)  # fp32 in, the same kernel
    with torch.autocast("cpu", dtype=torch.bfloat16):
        close = model(input_ids=ids, attention_mask=mask).logits
    assert close.dtype == torch.bfloat16 and torch.allclose(close.float(), expected, atol=0.05)
    model.save_pretrained(str(tmp_path / "saved"))
    assert FP32_ATTENTION not in json.dumps(json.loads((tmp_path / "saved" / "config.json").read_text()))
    assert AutoModelForCausalLM.from_pretrained(str(tmp_path / "saved")).config._attn_implementation == "sdpa"
    assert not use_fp32_attention(model)  # already switched: nothing to do


def test_the_lora_update_survives_autocast_when_added_in_fp32(tiny_model_dir):
    model = _lora(tiny_model_dir, dropout=0.0)
    layer = model.get_base_model().model.layers[0].mlp.down_proj
    torch.nn.init.constant_(layer.lora_B["default"].weight, 1e-4)  # an early, small update
    x = torch.randn(4, layer.in_features)
    with torch.no_grad():
        update = layer.lora_B["default"](layer.lora_A["default"](x)) * layer.scaling["default"]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            base = layer.base_layer(x)
            rounded = layer(x)
            assert add_lora_updates_in_fp32(model) == 2 * 7
            kept = layer(x)
    # In bf16 most of the update is rounded away; in fp32 it is all there (to bf16's product error).
    lost = ((rounded.float() - base.float()) - update).abs().mean() / update.abs().mean()
    assert kept.dtype == torch.float32 and lost > 0.3
    assert torch.allclose(kept - base.float(), update, rtol=0.02, atol=1e-6)


def _bf16_recipe(model_dir, dropout, fused):
    """LoRA as train.backends.local builds it for bf16 on a CPU; the adapter's B not zero (as after
    some training), so that every gradient is exercised."""
    model = _lora(model_dir, dropout=dropout)
    for name, parameter in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(parameter, std=0.05)
    use_fast_lora_dropout(model)
    add_lora_updates_in_fp32(model)
    store_frozen_linears_in_bf16(model)
    if fused:
        assert fuse_lora_layers(model) == 2 * 7
    return model


def test_fused_lora_layers_compute_what_peft_computes_with_the_update_in_fp32(tiny_model_dir):
    reference, fused = _bf16_recipe(tiny_model_dir, 0.0, False), _bf16_recipe(tiny_model_dir, 0.0, True)
    assert fused.state_dict().keys() == reference.state_dict().keys()  # adapters save as before
    ids = torch.randint(0, 1000, (2, 9))
    results = []
    for model in (reference, fused):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(input_ids=ids).logits.float()
        (logits * torch.linspace(-1, 1, logits.shape[-1])).sum().backward()
        grads = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
        results.append((logits, grads))
    (expected, expected_grads), (actual, actual_grads) = results
    assert torch.allclose(actual, expected, atol=0.03)  # bf16 products, summed in another order
    assert expected_grads.keys() == actual_grads.keys() and len(actual_grads) == 2 * 7 * 2
    for name, grad in actual_grads.items():
        error = (grad - expected_grads[name]).norm() / expected_grads[name].norm()
        assert grad.dtype == torch.float32 and error < 0.02, (name, error)
    layer = fused.get_base_model().model.layers[1].self_attn.q_proj
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert layer(torch.randn(3, 64, requires_grad=True)).grad_fn.name() == "_LoraOverBf16Backward"
    plain = layer(torch.randn(3, 64).bfloat16())  # outside autocast: PEFT's own forward
    assert plain.grad_fn.name() != "_LoraOverBf16Backward"


def test_fused_lora_dropout_is_seeded_rescaled_and_masks_the_gradients(tiny_model_dir):
    model = _bf16_recipe(tiny_model_dir, 0.3, True).train()
    layer = model.get_base_model().model.layers[0].mlp.down_proj
    a, b = layer.lora_A["default"].weight, layer.lora_B["default"].weight
    x = torch.randn(5, 7, layer.in_features, requires_grad=True)
    torch.manual_seed(11)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = layer(x)
    (y * 0.5).sum().backward()
    torch.manual_seed(11)
    keep = dropout_keep((5 * 7, layer.in_features), 0.3).view(x.shape)  # the mask the layer drew
    assert 0.6 < keep.float().mean() < 0.8
    # The fp32 reference: frozen product, plus the adapter on the dropped-out, rescaled input.
    x32, a32, b32 = x.detach().clone().requires_grad_(), a.detach().clone().requires_grad_(), \
        b.detach().clone().requires_grad_()
    base = x32 @ layer.base_layer.weight.float().t()
    expected = base + (x32 * keep / 0.7) @ a32.t() @ b32.t() * layer.scaling["default"]
    (expected * 0.5).sum().backward()
    assert torch.allclose(y, expected, atol=0.05, rtol=0.02)
    for actual, reference in ((x.grad, x32.grad), (a.grad, a32.grad), (b.grad, b32.grad)):
        assert (actual - reference).norm() / reference.norm() < 0.02
    torch.manual_seed(11)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(layer(x), y)  # the same generator state, the same mask
        evaluated = layer.eval()(x)
    without_dropout = base + x32 @ a32.t() @ b32.t() * layer.scaling["default"]
    assert torch.allclose(evaluated, without_dropout, atol=0.05, rtol=0.02)
