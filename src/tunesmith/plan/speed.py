"""How long training takes: FLOPs over the hardware's sustained rate.

A token costs about 2·N FLOPs forward and 4·N backward (gradients for the activations and
for the weights), N the parameter count (Kaplan et al. 2020; "Transformer Math 101"). LoRA and
QLoRA skip the frozen weights' gradients: about 4·N. Gradient checkpointing runs each forward
pass twice: +2·N. Attention's sequence-squared FLOPs are left out: below a few thousand tokens
they are a small share for models of this size."""

from __future__ import annotations

from .hardware import Hardware

FLOPS_PER_PARAM_TOKEN = {"full": 6, "lora": 4, "qlora": 4}
RECOMPUTE_FLOPS_PER_PARAM_TOKEN = 2


def training_flops(params: int, method: str, tokens: float, gradient_checkpointing: bool) -> float:
    per_token = FLOPS_PER_PARAM_TOKEN[method] + (RECOMPUTE_FLOPS_PER_PARAM_TOKEN if gradient_checkpointing else 0)
    return per_token * params * tokens


def training_time_s(flops: float, hardware: Hardware) -> float:
    return flops / (hardware.peak_tflops * 1e12 * hardware.utilization)
