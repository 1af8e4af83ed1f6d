"""Faster kernels for training on a CPU, measured on SmolLM2 LoRA (bench/train_throughput.py).
Each keeps the mathematics of what it replaces (tests/train/test_cpu_kernels.py).

- Dropout. PEFT drops out the input of every LoRA layer, and torch's CPU dropout draws a
  random float per element through `bernoulli_`: a fifth of each step. FastDropout draws 16
  random bits per element from numpy's SFC64 generator, seeded at each call from torch's
  generator (so runs and resumes stay reproducible), and compares them with a threshold: the
  same distribution, the probability rounded to 1/65,536. For a batch of 8 x 149 tokens at
  width 576: 0.5 ms for the bits where torch's `random_` takes 1.7 ms (its mt19937 runs one
  number at a time). The mask is a uint8 multiplier: 0.2 ms to apply where `torch.where`
  on a bool mask takes 0.7 (torch's CPU kernels vectorize uint8 operands, not bool ones). It
  keeps that one-byte mask for the backward pass where torch keeps a float one.
- LoRA over a frozen bf16 base (the bf16 recipe of mixed_precision): one autograd function per
  layer instead of PEFT's eight operations under autocast. The input is cast to bf16 once for
  the frozen product and the adapter, dropout is applied in bf16 with its rescaling folded into
  the adapter's scale, and the update is added in fp32 by one fused product (`addmm_`), as
  mixed_precision.add_lora_updates_in_fp32 does.
- Attention. torch's CPU flash attention is 2-3x slower in bf16 than in fp32 for the short
  sequences of fine-tuning data (64-150 tokens: 19 ms against 7 ms forward and backward at 90),
  so under autocast it runs in fp32: the same kernel, more precise, and faster."""

from __future__ import annotations

import math
from types import MethodType

from ..lazy import numpy as np
import torch
import torch.nn.functional as F
# This module is imported only when a model is built for training, so transformers is loaded by then.
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

FP32_ATTENTION = "tunesmith_fp32_sdpa"
_LEVELS = 1 << 16


def dropout_keep(shape: tuple[int, ...], p: float) -> torch.Tensor:
    """Which elements dropout at probability `p` keeps, as a uint8 tensor of `shape` (1 kept, 0
    dropped): 16 random bits per element, read as a signed number uniform on [-32768, 32767],
    kept when at or above a threshold (dropped with probability round(p * 65536) / 65536)."""
    n = math.prod(shape)
    # One draw from torch's generator seeds each call: the seed that torch.manual_seed and the
    # Trainer's checkpoints control, so the masks follow torch's random state.
    seed = int(torch.randint(0, 2**62, (1,)).item())
    words = np.random.SFC64(seed).random_raw((n + 3) // 4)  # four 16-bit lanes per 64-bit word
    lanes = torch.from_numpy(words.view(np.int16)[:n]).view(shape)
    # uint8, not bool: torch's CPU kernels vectorize uint8 and not bool (the comparison 5x
    # faster, the conversion to a float multiplier 6x).
    keep = torch.empty(shape, dtype=torch.uint8)
    return torch.ge(lanes, -(_LEVELS // 2) + round(p * _LEVELS), out=keep)


class _Masked(torch.autograd.Function):
    """x * keep * scale, saving the one-byte mask for the backward pass."""

    @staticmethod
    def forward(ctx, x, keep, scale):
        ctx.save_for_backward(keep)
        ctx.scale = scale
        return x * keep.to(x.dtype).mul_(scale)

    @staticmethod
    def backward(ctx, grad):
        keep, = ctx.saved_tensors
        return grad * keep.to(grad.dtype).mul_(ctx.scale), None, None


class FastDropout(torch.nn.Module):
    """torch.nn.Dropout with dropout_keep's masks (LoRA's dropout on a CPU in fp32; under bf16 the
    fused layer below draws its own)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability {p} is not in [0, 1)")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        return _Masked.apply(x, dropout_keep(x.shape, self.p).to(x.device), 1.0 / (1.0 - self.p))

    def extra_repr(self) -> str:
        return f"p={self.p}"


def use_fast_lora_dropout(model: torch.nn.Module) -> int:
    """Replace the dropout of every LoRA layer in `model` with FastDropout; the number replaced.
    Dropout holds no weights, so saved adapters and checkpoints are unchanged."""
    replaced = 0
    for module in model.modules():
        dropouts = getattr(module, "lora_dropout", None)
        if not isinstance(dropouts, torch.nn.ModuleDict):
            continue
        for name, dropout in dropouts.items():
            if isinstance(dropout, torch.nn.Dropout) and dropout.p > 0:
                dropouts[name] = FastDropout(dropout.p)
                replaced += 1
    return replaced


class _LoraOverBf16(torch.autograd.Function):
    """One LoRA layer over a frozen bf16 base, under bf16 autocast:
    x @ W.T + bias + scaling * dropout(x) @ A.T @ B.T, the sum in fp32."""

    @staticmethod
    def forward(ctx, x, weight, bias, lora_a, lora_b, scaling, p):
        with torch.autocast("cpu", enabled=False):  # every dtype below is chosen, none left to autocast
            rows = x.reshape(-1, x.shape[-1]).to(torch.bfloat16)
            out = F.linear(rows, weight).float()
            if bias is not None:
                out += bias
            keep = dropout_keep(rows.shape, p) if p > 0 else None
            dropped = rows if keep is None else rows * keep.to(torch.bfloat16)
            scaling = scaling / (1.0 - p)  # dropout's rescaling, folded into the adapter's scale
            a = lora_a.to(torch.bfloat16)
            h = F.linear(dropped, a)
            out.addmm_(h.float(), lora_b.t(), alpha=scaling)  # the update added in fp32, so it survives
        ctx.save_for_backward(weight, a, lora_b, dropped, h, keep)
        ctx.scaling, ctx.shape = scaling, x.shape
        return out.view(*x.shape[:-1], -1)

    @staticmethod
    def backward(ctx, grad):
        weight, a, lora_b, dropped, h, keep = ctx.saved_tensors
        g = grad.reshape(-1, grad.shape[-1]).to(torch.bfloat16)
        grad_h = torch.mm(g, lora_b.to(torch.bfloat16)).mul_(ctx.scaling)
        grad_x = grad_a = grad_b = None
        if ctx.needs_input_grad[3]:
            grad_a = torch.mm(grad_h.t(), dropped).float()
        if ctx.needs_input_grad[4]:
            grad_b = torch.mm(g.t(), h).float().mul_(ctx.scaling)
        if ctx.needs_input_grad[0]:
            through_adapter = torch.mm(grad_h, a)
            if keep is not None:
                through_adapter.mul_(keep.to(torch.bfloat16))
            grad_x = torch.mm(g, weight).float().add_(through_adapter).view(ctx.shape)
        return grad_x, None, None, grad_a, grad_b, None, None


def _fusable_adapter(layer, x: torch.Tensor) -> str | None:
    """The adapter _LoraOverBf16 can compute for this PEFT LoRA Linear and input: the one active,
    plain adapter (no DoRA, no bias in B) over a bf16 base, an fp32 input under bf16 autocast.
    None where PEFT's own forward must run (merged, disabled, several adapters, ...)."""
    if layer.merged or layer.disable_adapters or len(layer.active_adapters) != 1:
        return None
    name = layer.active_adapters[0]
    if name not in layer.lora_A or name in getattr(layer, "lora_variant", {}) or layer.lora_B[name].bias is not None:
        return None
    if x.dtype != torch.float32 or layer.base_layer.weight.dtype != torch.bfloat16:
        return None
    autocast_bf16 = torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
    return name if autocast_bf16 else None


def _lora_over_bf16_forward(self, x, *args, **kwargs):
    """A PEFT LoRA Linear's forward: through _LoraOverBf16 where it applies, else PEFT's own."""
    name = None if args or kwargs else _fusable_adapter(self, x)
    if name is None:
        return type(self).forward(self, x, *args, **kwargs)
    p = getattr(self.lora_dropout[name], "p", 0.0) if self.training else 0.0
    return _LoraOverBf16.apply(x, self.base_layer.weight, self.base_layer.bias, self.lora_A[name].weight,
                               self.lora_B[name].weight, self.scaling[name], p)


def fuse_lora_layers(model: torch.nn.Module) -> int:
    """Route every PEFT LoRA Linear of `model` through _LoraOverBf16 where it applies; the number
    of layers. For a model whose frozen projections mixed_precision stored in bf16, trained on a
    CPU under bf16 autocast. Nothing about the weights changes: adapters save as before."""
    from peft.tuners.lora.layer import Linear as LoraLinear

    fused = 0
    for module in model.modules():
        if isinstance(module, LoraLinear) and isinstance(module.base_layer, torch.nn.Linear):
            module.forward = MethodType(_lora_over_bf16_forward, module)
            fused += 1
    return fused


def _fp32_sdpa(module, query, key, value, attention_mask, **kwargs):
    dtype = value.dtype
    with torch.autocast("cpu", enabled=False):
        output, weights = sdpa_attention_forward(module, query.float(), key.float(), value.float(),
                                                 attention_mask, **kwargs)
    return output.to(dtype), weights


def use_fp32_attention(model) -> bool:
    """Switch a transformers model from sdpa to the same attention computed in fp32; False
    (unchanged) if it does not use sdpa. The name lives in the running process only: a saved
    config does not carry the attention implementation."""
    if model.config._attn_implementation != "sdpa":
        return False
    AttentionInterface.register(FP32_ATTENTION, _fp32_sdpa)
    ALL_MASK_ATTENTION_FUNCTIONS.register(FP32_ATTENTION, sdpa_mask)
    model.set_attn_implementation(FP32_ATTENTION)
    return True
