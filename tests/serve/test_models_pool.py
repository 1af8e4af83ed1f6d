"""The model pool: one base shared by its adapters, least recently used adapters evicted."""

from __future__ import annotations

import pytest

from tunesmith.serve.models import ModelPool, ServedModel


def _logits(pool: ModelPool, model: ServedModel):
    import torch

    with pool.use(model) as (m, tokenizer), torch.inference_mode():
        ids = tokenizer("hello there", return_tensors="pt")["input_ids"]
        return m(input_ids=ids).logits[0, -1].clone()


@pytest.fixture
def models(tiny_model_dir, adapter_dir, second_adapter_dir):
    base = str(tiny_model_dir)
    return (ServedModel("base", ("base",), base), ServedModel("a", ("a",), base, str(adapter_dir)),
            ServedModel("b", ("b",), base, str(second_adapter_dir)))


def test_adapters_share_the_base_and_the_oldest_is_evicted(models):
    base, a, b = models
    pool = ModelPool(max_adapters=1, device="cpu", dtype="float32")
    plain = _logits(pool, base)
    with_a = _logits(pool, a)
    assert pool.loaded() == {base.base: [a.adapter_path]}
    with_b = _logits(pool, b)
    assert pool.loaded() == {base.base: [b.adapter_path]}  # a was evicted; the base was loaded once
    assert pool.loads == 3
    assert not with_a.equal(plain) and not with_b.equal(with_a)
    assert _logits(pool, base).allclose(plain)
    assert _logits(pool, a).allclose(with_a)  # loaded again, the same adapter gives the same model
    assert pool.loads == 4


@pytest.fixture
def other_base(tiny_model_dir, tmp_path) -> str:
    import shutil

    return str(shutil.copytree(tiny_model_dir, tmp_path / "other-base"))


def test_evicting_a_bases_last_adapter_takes_its_lora_layers_out(models, other_base, adapter_dir):
    base, a, _ = models
    pool = ModelPool(max_adapters=1, device="cpu", dtype="float32")
    plain = _logits(pool, base)
    _logits(pool, a)
    _logits(pool, ServedModel("c", ("c",), other_base, str(adapter_dir)))
    assert pool.loaded() == {base.base: [], other_base: [str(adapter_dir)]}
    assert _logits(pool, base).allclose(plain)


def test_memory_budget_evicts_the_least_recently_used_base(models, other_base):
    base, _, _ = models
    pool = ModelPool(memory_budget_gb=1e-9, device="cpu", dtype="float32")
    _logits(pool, base)
    assert list(pool.loaded()) == [base.base]  # over budget, but what a request needs is served
    _logits(pool, ServedModel("other", ("other",), other_base))
    assert list(pool.loaded()) == [other_base]
