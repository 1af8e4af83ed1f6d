"""Peak memory of a fine-tuning run, component by component, from the architecture alone.

    weights      the base model in its dtype (QLoRA: 4-bit NF4 projections), plus the adapter
    copies       bf16 copies of fp32 weights that autocast makes and keeps for the backward pass
    gradients    one per trained parameter, in its dtype
    optimizer    AdamW's two moments per trained parameter (8-bit AdamW: one byte each)
    activations  what the forward pass saves for the backward pass, per layer and token
    logits       the vocabulary projection and its loss, at the positions that are trained
    overhead     the runtime itself (the CUDA context; on a CPU the Python process and the allocator's slack)

The peak holds the weights and AdamW's moments throughout, and the larger of the gradients and
what the forward pass keeps (copies, activations, logits): gradients exist only from the
backward pass to the optimizer step, while the activations they replace are freed.

Two recipes differ in the weights' dtype:
- `weights: bf16`, the common recipe on GPUs and the guide's figures: the checkpoint's bf16
  weights trained in place, so AdamW keeps its moments in bf16 too (2 + 2 + 4 = 8 bytes per
  parameter for full fine-tuning);
- `weights: fp32`, tunesmith's own local recipe (train/backends/local.py) on a CPU or a GPU: fp32
  weights with bf16 autocast (4 + 4 + 8 = 16 bytes per parameter, ZeRO's mixed-precision figure),
  plus the bf16 copies of the weights autocast keeps for the backward pass. Under LoRA the frozen
  projections are stored in bf16 instead (they never change, so autocast's copies would only
  repeat them); embeddings and norms stay fp32, and the frozen head gets one bf16 copy.
QLoRA keeps the projections in 4-bit NF4 and, as PEFT's prepare_model_for_kbit_training does,
everything else in fp32. LoRA adapters are fp32 in every recipe (PEFT upcasts them). Attention
goes through PyTorch's SDPA (flash or memory-efficient kernels on GPUs and CPUs), so no
sequence x sequence matrix is kept. GiB (2^30 bytes) throughout: the unit GPU memory sizes are
quoted in and nvidia-smi reports."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .architectures import Architecture

GIB = 2**30
# NF4 stores 4 bits per weight plus blockwise constants; double quantization brings those to
# about 0.127 bits per weight (Dettmers et al. 2023, "QLoRA", section 3).
NF4_BITS_PER_PARAM = 4.127
# The CUDA context, cuBLAS workspaces and the caching allocator's slack: what nvidia-smi shows
# beyond torch.cuda.max_memory_allocated, typically 0.5-1.5 GiB for one training process.
GPU_RUNTIME_GIB = 1.0
# A CPU run's process before the model is touched: the Python interpreter with torch,
# transformers, peft, trl, datasets and the tokenizer loaded, plus torch's shared libraries
# mapped in. Measured as peak RSS of tunesmith's training process up to the first forward pass
# on Linux x86-64 (torch 2.13 CPU, transformers 5): 0.62-0.66 GiB.
CPU_RUNTIME_GIB = 0.62
# On a CPU, glibc's allocator keeps much of what the forward and backward passes free (temporaries
# of each layer, activations released in the backward pass) in its heap instead of returning it,
# so peak RSS exceeds the live tensors. Measured for SmolLM2 runs (tests/plan/test_memory_real.py,
# batches of 3 and 4): 0.17-0.45 GiB beyond the tensors autograd kept, 0.25-0.8x the activations
# and logits, varying from run to run; 0.4x sits in the middle.
CPU_ALLOCATOR_RETAINED_SHARE = 0.4


class Setup(BaseModel):
    """How a run trains: what decides its memory besides the architecture."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Literal["full", "lora", "qlora"] = "lora"
    device: Literal["gpu", "cpu"] = "gpu"  # decides the runtime overhead
    weights: Literal["bf16", "fp32"] = "bf16"  # the dtype the base weights are kept (and fully trained) in
    precision: Literal["bf16", "fp16", "fp32"] = "bf16"  # the matmuls' dtype (autocast over fp32 weights)
    seq_len: int = Field(1024, ge=1)
    batch_size: int = Field(8, ge=1)
    gradient_checkpointing: bool = True
    gradient_accumulation: int = Field(1, ge=1)  # above 1, gradients live through the next forward passes
    optimizer: Literal["adamw", "adamw-8bit"] = "adamw"
    lora_rank: int = Field(16, ge=1)
    lora_targets: str | list[str] = "all-linear"
    lora_dropout: bool = True  # a dropout above 0 keeps a mask for each adapted input
    # The local recipe's LoRA under bf16 autocast stores the frozen projections in bf16, in one
    # process outside accelerate (FSDP and DeepSpeed flatten a layer's weights into one dtype).
    frozen_projections_in_bf16: bool = True
    # tunesmith's loss projects to the vocabulary only where tokens are trained (the model turns):
    # that many positions per example. None: every position, as a plain causal-LM loss does.
    trained_tokens_per_example: float | None = Field(None, gt=0)


class MemoryEstimate(BaseModel):
    method: str
    device: str
    params: int
    trainable_params: int
    weights_gib: float
    weight_copies_gib: float
    gradients_gib: float
    optimizer_gib: float
    activations_gib: float  # with the setup's gradient checkpointing
    activations_without_checkpointing_gib: float
    activations_with_checkpointing_gib: float
    logits_gib: float
    overhead_gib: float
    total_gib: float
    gradient_checkpointing: bool

    def fits(self, memory_gib: float) -> bool:
        return self.total_gib <= memory_gib


def estimate_memory(arch: Architecture, setup: Setup) -> MemoryEstimate:
    adapter = setup.method != "full"
    trainable = arch.lora_params(setup.lora_rank, setup.lora_targets) if adapter else arch.params
    weight_bytes = 4 if setup.weights == "fp32" else 2
    head = arch.vocab_size * arch.hidden_size

    if setup.method == "qlora":  # NF4 projections; embeddings, head and norms in fp32
        weights = arch.linear_params * NF4_BITS_PER_PARAM / 8 + (arch.params - arch.linear_params) * 4
    elif _frozen_projections_in_bf16(setup):
        weights = arch.linear_params * 2 + (arch.params - arch.linear_params) * 4
    else:
        weights = arch.params * weight_bytes
    trained_bytes = 4 if adapter else weight_bytes  # adapters are fp32, a full model trains in its own dtype
    weights += trainable * trained_bytes if adapter else 0
    # Autocast casts each fp32 weight to bf16 as it is used and keeps the copy for the backward
    # pass (QLoRA dequantizes its 4-bit weights afresh instead, and LoRA's frozen projections are
    # bf16 already: only the head is cast).
    copies = 0.0
    if _autocast(setup):
        cast_projections = setup.method == "full" or (setup.method == "lora" and not _frozen_projections_in_bf16(setup))
        copies = 2 * (head + (arch.linear_params if cast_projections else 0))
    gradients = trainable * trained_bytes
    optimizer = trainable * (2 if setup.optimizer == "adamw-8bit" else 2 * trained_bytes)

    tokens = setup.seq_len * setup.batch_size
    per_layer = layer_activation_bytes(arch, setup) * tokens
    without = arch.num_layers * per_layer
    # Checkpointing keeps each layer's input and recomputes one layer at a time in the backward pass.
    with_checkpointing = arch.num_layers * tokens * arch.hidden_size * _residual_bytes(setup) + per_layer
    activations = with_checkpointing if setup.gradient_checkpointing else without

    lean_loss = not arch.logit_softcapping  # softcapped logits go through the model's own head and loss
    trained = setup.trained_tokens_per_example
    positions = setup.batch_size * min(setup.seq_len, trained) if lean_loss and trained else tokens
    # The projection's output, its fp32 upcast, the log-softmax the loss keeps, and the fp32 gradient.
    logits = positions * arch.vocab_size * (_compute_bytes(setup) + 4 + 4 + 4)

    parts = {"weights": weights, "copies": copies, "gradients": gradients, "optimizer": optimizer,
             "activations": activations, "logits": logits}
    gib = {k: v / GIB for k, v in parts.items()}
    forward = gib["copies"] + gib["activations"] + gib["logits"]
    overhead = GPU_RUNTIME_GIB
    if setup.device == "cpu":
        overhead = CPU_RUNTIME_GIB + CPU_ALLOCATOR_RETAINED_SHARE * (gib["activations"] + gib["logits"])
    # Gradients are freed after each optimizer step (the Trainer zeroes them to None) and fill in as the
    # backward pass frees the activations: the peak holds the larger of the two, unless gradients
    # accumulate over several forward passes.
    transient = gib["gradients"] + forward if setup.gradient_accumulation > 1 else max(gib["gradients"], forward)
    return MemoryEstimate(
        method=setup.method, device=setup.device, params=arch.params, trainable_params=trainable,
        weights_gib=gib["weights"], weight_copies_gib=gib["copies"], gradients_gib=gib["gradients"],
        optimizer_gib=gib["optimizer"], activations_gib=gib["activations"],
        activations_without_checkpointing_gib=without / GIB, activations_with_checkpointing_gib=with_checkpointing / GIB,
        logits_gib=gib["logits"], overhead_gib=overhead,
        total_gib=gib["weights"] + gib["optimizer"] + transient + overhead,
        gradient_checkpointing=setup.gradient_checkpointing,
    )


def _compute_bytes(setup: Setup) -> int:
    return 4 if setup.precision == "fp32" else 2


def _residual_bytes(setup: Setup) -> int:
    """The residual stream takes the dtype of the weights that write it (fp32 embeddings under QLoRA)."""
    return 4 if setup.weights == "fp32" or setup.method == "qlora" or setup.precision == "fp32" else 2


def _autocast(setup: Setup) -> bool:
    return _residual_bytes(setup) == 4 and setup.precision != "fp32"


def _frozen_projections_in_bf16(setup: Setup) -> bool:
    return (setup.frozen_projections_in_bf16 and setup.method == "lora" and setup.weights == "fp32"
            and setup.precision == "bf16")


def layer_activation_bytes(arch: Architecture, setup: Setup) -> float:
    """Bytes one decoder block saves for the backward pass, per token (Korthikanti et al.'s
    accounting, redone for a Llama-style block: RMSNorm, rotary attention through SDPA, gated MLP)."""
    e = _compute_bytes(setup)  # what the matmuls read and write
    r = _residual_bytes(setup)
    autocast = _autocast(setup)
    shapes = arch.linear_shapes()
    h, q, kv, i = arch.hidden_size, shapes["q_proj"][1], shapes["k_proj"][1], arch.intermediate_size

    full = setup.method == "full"
    # Each RMSNorm keeps its input upcast to fp32, and when its weight trains, the normalized output it scales.
    total = arch.norms_per_layer * (4 * h + (r * h if full else 0))
    # Attention: rotated queries and keys, values and the output (what SDPA's backward reads); on a
    # CPU in fp32 (train/cpu_kernels.py: the CPU's flash attention is faster in fp32 than in bf16).
    total += (4 if setup.device == "cpu" else e) * (q + 2 * kv + q)
    # Gated MLP: the gate and up projections' outputs and the activated gate; in fp32 when adapted
    # under autocast by tunesmith's recipe (train/mixed_precision.py adds the updates in fp32).
    adapter_updates_fp32 = not full and setup.weights == "fp32" and setup.precision != "fp32"
    total += (4 if adapter_updates_fp32 else e) * 3 * i

    # The inputs of the projections, kept for weight (or adapter) gradients. Fully trained projections
    # that read the same tensor share it, except under autocast, where each casts its own bf16 copy.
    # An adapter's A matrix keeps its own copy (PEFT casts the input to the adapter's fp32, dropout
    # applies, autocast casts to bf16), plus the dropout mask: one byte (CUDA's and tunesmith's CPU dropout).
    groups = {"attention_in": ["q_proj", "k_proj", "v_proj"], "o_proj": ["o_proj"],
              "mlp_in": ["gate_proj", "up_proj"], "down_proj": ["down_proj"]}
    adapted = set(shapes) if full else set(arch.target_names(setup.lora_targets))
    mask = 1 if setup.lora_dropout else 0
    for names in groups.values():
        trained = [n for n in names if n in adapted]
        if not trained:
            continue  # a frozen projection keeps its weight for the input gradient, not its input
        width = shapes[trained[0]][0]
        if full:
            total += e * width * (len(trained) if autocast else 1)
        else:
            total += (e + mask) * width * len(trained)
    return total

