from __future__ import annotations

import pytest

from tunesmith.errors import BadInputError
from tunesmith.train.backends.local import check_hardware
from tunesmith.train.spec import load_spec

from ._data import prepared_tickets


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return prepared_tickets(tmp_path_factory.mktemp("spec"))


def test_defaults_and_resolved_learning_rate(prepared):
    spec = load_spec(data=prepared)
    assert (spec.method, spec.epochs, spec.resolved_learning_rate) == ("lora", 3, 2e-4)
    assert load_spec(data=prepared, method="full").resolved_learning_rate == 2e-5
    assert spec.resolved()["learning_rate"] == 2e-4


def test_class_labels_get_the_learning_rate_measured_for_them(tmp_path):
    import json

    from tunesmith.data.prepare import PrepareOptions, prepare

    raw = tmp_path / "intents.jsonl"
    intents = ["card_arrival", "lost_card", "refund_request", "top_up_failed"]
    raw.write_text("".join(json.dumps({"input_text": f"message {i} about my account, number {i * 13}",
                                       "output_text": intents[i % 4]}) + "\n" for i in range(120)))
    prepare([raw], tmp_path / "prepared", PrepareOptions(validation=0.2, test=0.1))
    assert load_spec(data=tmp_path / "prepared").resolved_learning_rate == 5e-4  # a labels output space
    assert load_spec(data=tmp_path / "prepared", learning_rate=1e-4).resolved_learning_rate == 1e-4
    assert load_spec(data=tmp_path / "prepared", method="full").resolved_learning_rate == 1e-4
    assert load_spec(data=tmp_path / "prepared", method="full", learning_rate=3e-5).resolved_learning_rate == 3e-5


def test_yaml_with_flag_overrides(prepared, tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(f"data: {prepared}\nepochs: 2\nlora:\n  rank: 8\n")
    spec = load_spec(path, epochs=4, **{"lora.alpha": 16})
    assert (spec.epochs, spec.lora.rank, spec.lora.alpha) == (4, 8, 16)


@pytest.mark.parametrize("overrides, field", [
    ({"method": "qlora4"}, "method"),
    ({"epochs": 0}, "epochs"),
    ({"batch_size": 0}, "batch_size"),
    ({"lora.rank": 0}, "lora.rank"),
    ({"eval_interval": 4, "checkpoint_interval": 6}, "checkpoint_interval"),
])
def test_bad_fields_are_named_before_any_model_loads(prepared, overrides, field):
    with pytest.raises(BadInputError) as err:
        load_spec(data=prepared, **overrides)
    assert field.split(".")[0] in err.value.message and err.value.exit_code == 2


def test_data_must_be_a_prepared_folder(tmp_path):
    with pytest.raises(BadInputError, match="data: .*not a prepared dataset"):
        load_spec(data=tmp_path)
    (tmp_path / "spec.yaml").write_text("data: x\nunknown_knob: 1\n")
    with pytest.raises(BadInputError, match="unknown_knob"):
        load_spec(tmp_path / "spec.yaml")


def test_qlora_without_a_gpu_is_refused_with_advice(prepared):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(BadInputError) as err:
        check_hardware(load_spec(data=prepared, method="qlora"))
    assert "CUDA" in err.value.message and "lora" in err.value.hint


def test_qlora_quantizes_the_base_to_nf4_with_double_quantization():
    import torch

    from tunesmith.train.backends.local import qlora_quantization

    config = qlora_quantization("bf16")
    assert config.load_in_4bit and config.bnb_4bit_quant_type == "nf4" and config.bnb_4bit_use_double_quant
    assert config.bnb_4bit_compute_dtype == torch.bfloat16
    assert qlora_quantization("fp16").bnb_4bit_compute_dtype == torch.float16
