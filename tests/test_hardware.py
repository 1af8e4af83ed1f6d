"""The CPU features a run plans and picks its precision by, and torch's switch that caps them."""

from __future__ import annotations

import pytest

from tunesmith import hardware

AVX512_BF16_CPU = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma avx512f avx512bw avx512_bf16\n"


@pytest.fixture
def cpuinfo(tmp_path, monkeypatch):
    path = tmp_path / "cpuinfo"
    path.write_text(AVX512_BF16_CPU)
    real = hardware.cpu_flags
    monkeypatch.setattr(hardware, "cpu_flags", lambda: real(str(path)))
    monkeypatch.delenv("ATEN_CPU_CAPABILITY", raising=False)
    return path


def test_the_notable_flags_are_read_from_cpuinfo(cpuinfo):
    assert hardware.cpu_flags() == ["avx2", "avx512f", "avx512_bf16"]
    assert hardware.cpu_has_bf16()


@pytest.mark.parametrize("capability, flags", [("avx2", ["avx2"]), ("AVX2", ["avx2"]), ("default", []),
                                               ("avx512", ["avx2", "avx512f", "avx512_bf16"])])
def test_torchs_capability_caps_the_flags(cpuinfo, monkeypatch, capability, flags):
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", capability)
    assert hardware.cpu_flags() == flags


def test_an_avx2_capped_cpu_trains_and_serves_in_fp32(cpuinfo, monkeypatch):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("precision on a GPU follows the GPU")
    assert hardware.resolve_precision("auto") == "bf16"
    assert hardware.inference_dtype("cpu") == "bfloat16"
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx2")
    assert not hardware.cpu_has_bf16()
    assert hardware.resolve_precision("auto") == "fp32"
    assert hardware.inference_dtype("cpu") == "float32"


def test_an_unreadable_cpuinfo_has_no_flags(tmp_path):
    assert hardware.cpu_flags(str(tmp_path / "missing")) == []
