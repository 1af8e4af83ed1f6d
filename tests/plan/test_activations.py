"""The activation count against what autograd really keeps: every tensor a forward pass saves
for the backward pass, caught with torch.autograd.graph.saved_tensors_hooks (fast: tiny model).
This checks the per-layer formula directly, apart from the allocator and the runtime."""

from __future__ import annotations

import pytest

from tunesmith.plan.architectures import resolve
from tunesmith.plan.memory import Setup, layer_activation_bytes

from ..train._data import prepared_tickets

BATCH, SEQ = 3, 64


def saved_bytes_per_token_and_layer(model_dir, method: str, prepared) -> float:
    """What tunesmith's CPU recipe under bf16 autocast (train.backends.local) saves per token and layer."""
    import torch

    from tunesmith.train.backends.local import _build_model
    from tunesmith.train.spec import LocalSpec

    spec = LocalSpec(data=prepared, base_model=str(model_dir), method=method, lora={"rank": 16, "alpha": 32, "dropout": 0.05})
    model = _build_model(spec, "bf16")
    model.train()
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    parameters = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved: dict[int, int] = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        # Leave out the parameters and autocast's bf16 weight copies (2-D, not token-shaped):
        # the estimate counts those as weights and weight copies, not activations.
        is_weight_copy = tensor.dim() == 2 and tensor.shape[0] != BATCH * SEQ and tensor.dtype == torch.bfloat16
        if storage.data_ptr() not in parameters and not is_weight_copy:
            saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    ids = torch.randint(0, base.config.vocab_size, (BATCH, SEQ))
    with torch.autocast("cpu", dtype=torch.bfloat16), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        base.get_decoder()(input_ids=ids, use_cache=False)
    return sum(saved.values()) / (BATCH * SEQ * base.config.num_hidden_layers)


@pytest.mark.parametrize("method", ["lora", "full"])
def test_layer_activations_match_what_autograd_saves(tiny_model_dir, method, tmp_path):
    arch = resolve(str(tiny_model_dir))
    estimated = layer_activation_bytes(arch, Setup(method=method, device="cpu", weights="fp32", seq_len=SEQ,
                                                   batch_size=BATCH))
    measured = saved_bytes_per_token_and_layer(tiny_model_dir, method, prepared_tickets(tmp_path, n=100))
    print(f"{method}: {estimated:.0f} bytes per token and layer estimated, {measured:.0f} saved")
    assert estimated == pytest.approx(measured, rel=0.10)
