"""LoRA under bf16 (or fp16) autocast over fp32 weights: as accurate as fp32, and without
casting the same frozen weights again at every step.

- The update in fp32. Autocast computes the frozen projection in bf16, and PEFT adds the
  adapter's small update to that bf16 output, where it is rounded to bf16's 8 bits: early in
  training the update is mostly rounded away. Upcasting the frozen output first keeps it. On
  SmolLM2 (tests/train/test_train_slow.py, one epoch of 290 tickets) the tuned model followed
  the output template in 42% of the test tickets with the bf16 sum and 71% with the fp32 sum,
  as in fp32 training (validation loss 1.807, 1.755 and 1.753).
- Frozen projections stored in bf16. Autocast casts each fp32 weight to bf16 at every use; a
  frozen weight never changes, and stored in bf16 once it gives bit for bit the same products
  without the casts. The tied vocabulary head stays fp32 with the input embeddings (the
  trainer's loss keeps one bf16 copy of it)."""

from __future__ import annotations

import torch


def _upcast(module, args, output):
    return output.float() if output.dtype in (torch.bfloat16, torch.float16) else output


def add_lora_updates_in_fp32(model: torch.nn.Module) -> int:
    """Make every LoRA layer's frozen base layer return fp32, so that the adapter's update is
    added in fp32; the number of layers. A forward hook: nothing is saved with the adapter."""
    hooked = 0
    for module in model.modules():
        base = getattr(module, "base_layer", None)
        if isinstance(getattr(module, "lora_A", None), torch.nn.ModuleDict) and isinstance(base, torch.nn.Linear):
            base.register_forward_hook(_upcast)
            hooked += 1
    return hooked


def store_frozen_linears_in_bf16(model: torch.nn.Module) -> int:
    """Cast the weights of every frozen fp32 linear layer (LoRA's base layers) to bf16, except
    the output head, tied to the input embeddings; the number cast. For use under bf16 autocast
    only: a plain fp32 forward pass would then mix dtypes."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    cast = 0
    for module in model.modules():
        if isinstance(module, torch.nn.Linear) and module is not head and module.weight.dtype == torch.float32 \
                and not any(p.requires_grad for p in module.parameters(recurse=False)):
            module.to(torch.bfloat16)
            cast += 1
    # transformers maps a checkpoint stored in the loading dtype into memory rather than copy it.
    # Copying out the tensors still read from that map releases it, and with it the file pages of
    # the fp32 projections just cast (else resident as long as any tensor of the file lives).
    for tensor in (*model.parameters(), *model.buffers()):
        if tensor.device.type == "cpu" and tensor.dtype == torch.float32:
            tensor.data = tensor.data.clone()
    return cast
