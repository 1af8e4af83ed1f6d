"""int8 weights for CPU generation: each output is within the rounding bound of its float one,
a whole model answers close to its float self, PEFT adapters still load on top, and evaluation
and serving both load through the one place that applies it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tunesmith.errors import BadInputError
from tunesmith.models.int8 import int8_linear_class, quantize_linear_int8
from tunesmith.models.loading import check_inference_weights, load_for_inference


@settings(max_examples=30, deadline=None)
@given(rows=st.integers(1, 5), inputs=st.integers(1, 40), outputs=st.integers(1, 40), bias=st.booleans(),
       seed=st.integers(0, 2**31 - 1))
def test_each_output_is_within_the_rounding_bound(rows, inputs, outputs, bias, seed):
    import torch

    torch.manual_seed(seed)
    linear = torch.nn.Linear(inputs, outputs, bias=bias)
    linear.weight.data[0] *= 100  # one large row: scales are per row, so the others keep their precision
    quantized = int8_linear_class()(linear)
    x = torch.randn(rows, 3, inputs)
    with torch.no_grad():
        exact, got = linear(x), quantized(x)
    # Each weight moves by at most half a step (scale / 2) of its row, so each output by at most
    # scale / 2 * sum |x| (plus float rounding).
    bound = quantized.scales / 2 * x.abs().sum(-1, keepdim=True) + 1e-4 * (1 + exact.abs())
    assert got.shape == exact.shape and ((got - exact).abs() <= bound).all()
    assert quantized.qweight.dtype == torch.int8 and isinstance(quantized, torch.nn.Linear)


def test_a_model_in_int8_answers_close_to_its_float_self_and_takes_an_adapter(tiny_model_dir, tmp_path):
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model

    model = load_for_inference(str(tiny_model_dir), "cpu", "fp32")
    int8 = load_for_inference(str(tiny_model_dir), "cpu", "int8")
    layers = model.config.num_hidden_layers
    assert sum(isinstance(m, int8_linear_class()) for m in int8.modules()) == 7 * layers + 1  # + the output head
    ids = torch.tensor([[1, 42, 7, 300, 9, 2]])
    with torch.no_grad():
        reference, got = model(ids).logits, int8(ids).logits
    assert (got - reference).abs().max() < 0.05 * reference.abs().max()

    # An adapter trained on the float base loads onto the int8 one: its A and B stay float.
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    for name, parameter in peft_model.named_parameters():
        if "lora_" in name:
            parameter.data.normal_(0, 0.05)
    peft_model.save_pretrained(str(tmp_path / "adapter"))
    adapted = PeftModel.from_pretrained(int8, str(tmp_path / "adapter")).eval()
    with torch.no_grad():
        float_adapted, int8_adapted = peft_model(ids).logits, adapted(ids).logits
        with adapted.disable_adapter():
            int8_base = adapted(ids).logits
    assert (int8_adapted - float_adapted).abs().max() < 0.05 * float_adapted.abs().max()
    assert (int8_base - got).abs().max() < 1e-5 and (int8_adapted - int8_base).abs().max() > 1e-3


def test_bad_weights_are_refused_before_anything_loads():
    with pytest.raises(BadInputError, match="unknown weights 'int4'"):
        check_inference_weights("int4", "cpu")
    with pytest.raises(BadInputError, match="for generating on a CPU"):
        check_inference_weights("int8", "cuda")
    from tunesmith.evaluate.providers import Resolver

    with pytest.raises(BadInputError, match="unknown weights"):
        Resolver(weights="int4")


def test_serving_and_evaluation_load_int8_through_the_same_place(tiny_model_dir):
    from tunesmith.evaluate.providers import Resolver
    from tunesmith.serve.models import ModelPool, ServedModel

    pool = ModelPool(device="cpu", weights="int8")
    with pool.use(ServedModel(name="tiny", names=("tiny",), base=str(tiny_model_dir))) as (served, _):
        assert isinstance(served.lm_head, int8_linear_class())
    provider = Resolver(weights="int8").provider(str(tiny_model_dir))
    with provider.weights.using(None) as evaluated:
        assert isinstance(evaluated.lm_head, int8_linear_class())
    assert ModelPool(device="cpu", dtype="float32").weights == "fp32"  # the older spelling still works
    with pytest.raises(ValueError, match="float32 model"):
        quantize_linear_int8(load_for_inference(str(tiny_model_dir), "cpu", "bf16"))
