"""8-bit weights for generating on a CPU: every linear layer of a float32 model (attention and
MLP projections and the output head) keeps its weights as int8 with one float scale per output
row (symmetric, 127 levels), and multiplies float activations with them through PyTorch's
weight-only int8 kernel (`torch._weight_int8pack_mm`). The weights take a quarter of the bytes.

Why weight-only: PyTorch's dynamic quantization (torch.ao `quantize_dynamic`, also deprecated
in favour of torchao) quantizes the activations too, one scale per tensor, and a small
language model's activations have outlier channels: on SmolLM2-135M it kept the float model's
next token at only 39% of the positions of demo-ticket answers, where int8 weights with float
activations keep 94% (bf16 weights: 96%). docs/serving.md has the measured quality and speed.

The quantized layer stays an `nn.Linear` to anyone who looks (`Int8Linear` subclasses it and
keeps an empty float `weight`), so PEFT still wraps it when a LoRA adapter is loaded afterwards:
the adapter's own small matrices stay float32 and run beside the int8 base, exactly as PEFT runs
them beside a float base."""

from __future__ import annotations

import functools
from typing import Any


def quantize_linear_int8(model: Any) -> int:
    """Swaps every `nn.Linear` of `model` (in place) for an int8 one; returns how many. Layers
    inside LoRA adapters (`lora_A`, `lora_B`) are left as they are."""
    import torch

    if next(model.parameters()).dtype != torch.float32:
        raise ValueError("int8 weights are made from a float32 model")
    int8_linear = int8_linear_class()
    targets = [(name, module) for name, module in model.named_modules()
               if type(module) is torch.nn.Linear and "lora_" not in name]
    for name, linear in targets:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, int8_linear(linear))
    return len(targets)


@functools.cache
def int8_linear_class() -> type:
    """The `Int8Linear` class (made on first use, so that importing this module imports no torch)."""
    import torch

    class Int8Linear(torch.nn.Linear):
        """y = (x @ q.T) * scale + bias, with q int8 and one scale per output row."""

        def __init__(self, linear: torch.nn.Linear):
            torch.nn.Module.__init__(self)
            self.in_features, self.out_features = linear.in_features, linear.out_features
            weight = linear.weight.detach().float()
            scales = (weight.abs().amax(dim=1) / 127).clamp(min=torch.finfo(torch.float32).tiny)
            self.register_buffer("qweight", torch.round(weight / scales[:, None]).to(torch.int8).contiguous())
            self.register_buffer("scales", scales.contiguous())
            # An empty stand-in: PEFT reads the base layer's weight for its device and dtype.
            self.weight = torch.nn.Parameter(torch.empty(0), requires_grad=False)
            self.bias = None if linear.bias is None else torch.nn.Parameter(linear.bias.detach().float(),
                                                                            requires_grad=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            rows = x.reshape(-1, self.in_features).float().contiguous()
            y = torch._weight_int8pack_mm(rows, self.qweight, self.scales)
            if self.bias is not None:
                y = y + self.bias
            return y.reshape(*x.shape[:-1], self.out_features)

        def extra_repr(self) -> str:
            return f"in_features={self.in_features}, out_features={self.out_features}, int8 weights"

    return Int8Linear
