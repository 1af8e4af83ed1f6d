"""Planning: the architecture catalog, memory, time, cost and the recommendation (fast)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from tunesmith.errors import BadInputError
from tunesmith.hardware import cpu_dtype
from tunesmith.plan import architectures
from tunesmith.plan.cost import AMORTIZATION_MONTHS, break_even, managed_cost_usd
from tunesmith.plan.hardware import PROBE_CACHE
from tunesmith.plan.memory import GIB, Setup, estimate_memory
from tunesmith.plan.planner import plan
from tunesmith.plan.speed import training_flops, training_time_s
from tunesmith.targets import load_target

# Parameter counts published with each model (the Hugging Face model pages' safetensors totals;
# Gemma 3 4B and 12B are the language model alone, as Keras Hub lists them).
PUBLISHED_PARAMS = {
    "smollm2-135m-instruct": 134_515_008,
    "llama-2-7b": 6_738_415_616,
    "llama-3.2-1b-instruct": 1_235_814_400,
    "llama-3.2-3b-instruct": 3_212_749_824,
    "llama-3.1-8b-instruct": 8_030_261_248,
    "llama-3.3-70b-instruct": 70_553_706_496,
    "mistral-7b-instruct-v0.3": 7_248_023_552,
    "qwen2.5-0.5b-instruct": 494_032_768,
    "qwen2.5-7b-instruct": 7_615_616_512,
    "qwen3-8b": 8_190_735_360,
    "gemma-2-2b-it": 2_614_341_888,
    "gemma-2-9b-it": 9_241_705_984,
    "gemma-3-1b-it": 999_885_952,
    "gemma-3-4b-it": 3_880_099_328,
    "gemma-3-12b-it": 11_765_788_416,
}


@pytest.fixture(autouse=True)
def measured_machine(tmp_path, monkeypatch):
    """A cached probe result, so `--gpu all` neither imports torch nor takes two seconds."""
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / PROBE_CACHE).write_text(json.dumps({
        "name": "this-machine", "label": "this machine: CPU, 2 cores", "memory_gib": 16.0, "peak_tflops": 0.15,
        "precision": cpu_dtype(), "utilization": 0.3, "kind": "cpu",
        "measured_at": time.time()}))
    monkeypatch.setenv("TUNESMITH_CACHE", str(cache))


def test_a_cpu_probe_is_taken_again_when_the_precision_runs_get_changes(monkeypatch):
    from tunesmith.plan import hardware

    probes = []
    monkeypatch.setattr(hardware, "_probe", lambda: probes.append(1) or hardware.gpus()["t4"])
    hardware.this_machine()
    assert probes == []  # the cached probe stands
    monkeypatch.setattr(hardware, "cpu_dtype", lambda: {"bfloat16": "float32", "float32": "bfloat16"}[cpu_dtype()])
    hardware.this_machine()
    assert probes == [1]


@pytest.mark.parametrize("name", sorted(PUBLISHED_PARAMS))
def test_catalog_parameter_counts_match_the_published_ones(name):
    assert architectures.catalog()[name].params == PUBLISHED_PARAMS[name]


def test_smollm2_matches_its_converted_config(smollm2_dir):
    config = json.loads((smollm2_dir / "config.json").read_text())
    from_file = architectures.from_config(config, "converted")
    catalogued = architectures.catalog()["smollm2-135m-instruct"]
    ignore = {"name", "hf_id", "head_dim"}
    assert from_file.model_dump(exclude=ignore) == catalogued.model_dump(exclude=ignore)
    assert from_file.head_width == catalogued.head_width == 64 and from_file.params == catalogued.params


def test_lora_parameters_equal_peft_on_the_tiny_model(tiny_model_dir):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    arch = architectures.resolve(str(tiny_model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    assert arch.params == sum(p.numel() for p in model.parameters())
    for rank, targets in ((16, "all-linear"), (8, ["q_proj", "v_proj"])):
        peft_model = get_peft_model(AutoModelForCausalLM.from_pretrained(str(tiny_model_dir)),
                                    LoraConfig(r=rank, target_modules=targets, task_type="CAUSAL_LM"))
        trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
        assert arch.lora_params(rank, targets) == trainable


def test_lora_parameters_equal_peft_for_smollm2_built_on_the_meta_device():
    from accelerate import init_empty_weights
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    arch = architectures.catalog()["smollm2-135m-instruct"]
    config = LlamaConfig(hidden_size=576, num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3,
                         intermediate_size=1536, vocab_size=49152, tie_word_embeddings=True)
    with init_empty_weights():
        model = get_peft_model(LlamaForCausalLM(config), LoraConfig(r=16, target_modules="all-linear",
                                                                     task_type="CAUSAL_LM"))
    assert arch.lora_params(16) == sum(p.numel() for p in model.parameters() if p.requires_grad) == 4_884_480


def test_llama2_7b_lora_matches_the_published_adapter_size():
    # r=16 on every projection: 40.0M parameters, 0.59% of the model (REFERENCE.md section e).
    arch = architectures.catalog()["llama-2-7b"]
    assert arch.lora_params(16) == 39_976_960
    assert round(arch.lora_params(16) / arch.params * 100, 2) == 0.59


@pytest.mark.parametrize("model", ["llama-2-7b", "mistral-7b-instruct-v0.3", "7B"])
def test_7b_figures_land_in_the_guides_ranges(model):
    """Full fine-tuning needs an 80 GB-class GPU, LoRA fits 24-32 GB, QLoRA 16-24 GB (defaults:
    sequence 1024, batch 8, gradient checkpointing, bf16 weights)."""
    arch = architectures.of_size(architectures.parse_params(model)) if model == "7B" else architectures.resolve(model)
    total = {m: estimate_memory(arch, Setup(method=m)).total_gib for m in ("full", "lora", "qlora")}
    assert 48 < total["full"] <= 80, total
    assert 16 < total["lora"] <= 32, total
    assert 8 < total["qlora"] <= 24, total
    assert total["qlora"] < total["lora"] < total["full"]


def test_memory_components_follow_the_bytes_per_parameter():
    arch = architectures.catalog()["llama-2-7b"]
    full = estimate_memory(arch, Setup(method="full"))
    assert full.weights_gib == pytest.approx(arch.params * 2 / GIB)  # bf16: 12.55 GiB
    assert full.gradients_gib == pytest.approx(arch.params * 2 / GIB)
    assert full.optimizer_gib == pytest.approx(arch.params * 4 / GIB)
    eight_bit = estimate_memory(arch, Setup(method="full", optimizer="adamw-8bit"))
    assert eight_bit.optimizer_gib == pytest.approx(full.optimizer_gib / 2)
    fp32 = estimate_memory(arch, Setup(method="full", weights="fp32"))  # ZeRO's 16 bytes a parameter
    assert fp32.weights_gib + fp32.gradients_gib + fp32.optimizer_gib == pytest.approx(arch.params * 16 / GIB)
    qlora = estimate_memory(arch, Setup(method="qlora"))
    assert 3.0 < qlora.weights_gib < 4.5  # 4-bit projections (about 3.2 GiB) plus fp32 embeddings
    # Gradient checkpointing trades most of the activations for recomputation.
    assert full.activations_with_checkpointing_gib < full.activations_without_checkpointing_gib / 5
    longer = estimate_memory(arch, Setup(method="full", gradient_checkpointing=False, seq_len=2048))
    assert longer.activations_gib == pytest.approx(2 * full.activations_without_checkpointing_gib)
    # Logits at the trained positions only (tunesmith's loss) cost a fraction of the full sequence's.
    lean = estimate_memory(arch, Setup(method="lora", trained_tokens_per_example=64))
    assert lean.logits_gib == pytest.approx(estimate_memory(arch, Setup(method="lora")).logits_gib * 64 / 1024)


def test_bad_parameter_counts_and_unknown_models_are_refused():
    assert architectures.parse_params("7B") == 7_000_000_000
    assert architectures.parse_params("135m") == 135_000_000
    assert architectures.parse_params("1.5B") == 1_500_000_000
    for bad in ("7X", "", "B", "-1B", "0"):
        with pytest.raises(BadInputError):
            architectures.parse_params(bad)
    with pytest.raises(BadInputError, match="unknown model"):
        architectures.resolve("no-such-model")
    with pytest.raises(BadInputError, match="LoRA target"):
        architectures.catalog()["llama-2-7b"].lora_params(16, ["nope_proj"])


def test_a_model_of_a_given_size_borrows_the_nearest_shape():
    arch = architectures.of_size(7_000_000_000)
    assert arch.params == 7_000_000_000
    assert arch.num_layers == 32 and 3500 < arch.hidden_size < 4500


def test_time_is_flops_over_the_sustained_rate():
    from tunesmith.plan.hardware import gpus

    h100 = gpus()["h100-80gb"]
    assert training_flops(1e9, "full", 1e6, False) == 6e15
    assert training_flops(1e9, "lora", 1e6, False) == 4e15
    assert training_flops(1e9, "lora", 1e6, True) == 6e15  # one more forward pass
    assert training_time_s(6e15, h100) == pytest.approx(6e15 / (989e12 * h100.utilization))


def test_every_gpu_file_has_dated_sourced_prices():
    from tunesmith.plan.hardware import gpus

    assert {"a100-40gb", "a100-80gb", "h100-80gb", "l4", "t4", "rtx-4090", "rtx-a6000"} <= set(gpus())
    for gpu in gpus().values():
        assert gpu.prices and gpu.peak_tflops > 0 and 0 < gpu.utilization <= 1
        for price in gpu.prices:
            assert price.usd_per_hour > 0 and price.as_of[:2] == "20" and price.source


def test_managed_cost_and_break_even():
    flash = load_target("vertex/gemini-2.5-flash")
    assert managed_cost_usd(flash, 2_000_000, 3) == pytest.approx(6 * flash.price_per_million_training_tokens_usd)
    # $30 a managed run, $2 a rented run, 10 runs a month, a $2,000 GPU.
    even = break_even("lora on rtx-4090", 2000, 10, managed_usd_per_run=30, rented_usd_per_run=2)
    assert even.managed_usd_per_month == 300 and even.rented_usd_per_month == 20
    assert even.months_to_repay_vs_managed == pytest.approx(2000 / 300)
    assert even.months_to_repay_vs_renting == pytest.approx(100)
    assert even.runs_per_month_to_beat_managed == pytest.approx(2000 / AMORTIZATION_MONTHS / 30)


def test_plan_counts_the_tokens_of_a_prepared_folder(tmp_path):
    from tunesmith.data.dataset import load_dataset
    from tunesmith.data.tokens import count_tokens, estimate_counter
    from tunesmith.plan.hardware import gpus

    from ..train._data import prepared_tickets

    prepared = prepared_tickets(tmp_path, n=150)
    result = plan(data=prepared, gpu="l4", epochs=2, method="lora")
    train = load_dataset([prepared]).split("train")
    assert result.workload["examples"] == len(train)
    assert 30 * len(train) < result.workload["tokens_per_epoch"] < 400 * len(train)
    assert result.workload["trained_tokens_per_epoch"] < result.workload["tokens_per_epoch"]
    # Random batches of 8 pad to their longest example; the time is computed on those tokens.
    padded = result.workload["padded_tokens_per_epoch"]
    assert result.workload["tokens_per_epoch"] < padded < result.workload["longest_tokens"] * len(train)
    lora = result.methods[0].options[0]
    flops = training_flops(result.params, "lora", padded * 2, result.methods[0].memory.gradient_checkpointing)
    assert lora.time_s == pytest.approx(training_time_s(flops, gpus()["l4"]), rel=0.01)
    assert "tokenizer" in result.workload["counted_by"]
    managed_tokens = sum(count_tokens(train, estimate_counter()).total)
    assert result.workload["managed_tokens_per_epoch"] == managed_tokens
    assert result.managed[0].training_tokens == 2 * managed_tokens
    assert result.seq_len == result.workload["longest_tokens"] < 1024  # the longest example, not the cap


def test_requirements_rule_paths_out():
    cheap_gpu = plan(params="7B", gpu="rtx-4090", method="qlora")
    assert cheap_gpu.recommendation.path == "self-hosted"
    sovereign = plan(params="70B", gpu="rtx-4090", method="full", require=["data-sovereignty"])
    assert sovereign.recommendation.path is None and "managed" in sovereign.recommendation.ruled_out
    hands_off = plan(params="7B", gpu="rtx-4090", method="qlora", require=["no-infrastructure"])
    assert hands_off.recommendation.path == "managed"
    assert hands_off.recommendation.option == "vertex/gemini-2.5-flash-lite"
    with pytest.raises(BadInputError, match="requirement"):
        plan(require=["cheap"])
    assert [row.criterion for row in cheap_gpu.decision] == [
        "time to first tune", "infrastructure management", "data sovereignty", "cost predictability",
        "model flexibility", "skills"]


def test_70b_full_fits_no_single_gpu():
    result = plan(model="llama-3.3-70b-instruct", method="full", gpu="all")
    assert not any(o.fits for o in result.methods[0].options)
    assert result.methods[0].cheapest is None


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tunesmith", "plan", *args], capture_output=True, text=True,
                          timeout=120)


def test_cli_json_schema():
    done = run_cli("--params", "7B", "--gpu", "all", "--runs-per-month", "20", "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert {"model", "params", "architecture", "workload", "methods", "managed", "break_even", "decision",
            "recommendation"} <= set(data)
    assert [m["method"] for m in data["methods"]] == ["full", "lora", "qlora"]
    memory = data["methods"][0]["memory"]
    assert {"weights_gib", "gradients_gib", "optimizer_gib", "activations_gib", "logits_gib", "overhead_gib",
            "total_gib", "activations_without_checkpointing_gib", "activations_with_checkpointing_gib"} <= set(memory)
    option = data["methods"][1]["options"][0]
    assert {"gpu", "memory_gib", "needed_gib", "fits", "time_s", "usd", "provider", "price_as_of",
            "price_source"} <= set(option)
    assert "this-machine" in [o["gpu"] for o in data["methods"][1]["options"]]
    assert data["break_even"] and data["recommendation"]["path"] in ("managed", "self-hosted")


def test_cli_prints_tables():
    done = run_cli("--model", "llama-3.1-8b-instruct", "--gpu", "a100-80gb", "--method", "lora")
    assert done.returncode == 0, done.stderr
    assert "Memory at the peak" in done.stdout and "recommendation:" in done.stdout


@pytest.mark.parametrize("args, message", [
    (["--model", "no-such-model"], "unknown model"),
    (["--params", "7X"], "not a parameter count"),
    (["--gpu", "a200"], "unknown GPU"),
    (["--method", "dora"], "unknown method"),
    (["--require", "cheap"], "unknown requirement"),
    (["--data", "/nonexistent"], "not a prepared dataset"),
])
def test_cli_bad_input_exits_2_with_a_sentence(args, message):
    done = run_cli(*args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr


def test_plan_does_not_import_torch():
    code = ("import sys; from tunesmith.plan.planner import plan; plan(params='7B'); "
            "print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "False", done.stderr
