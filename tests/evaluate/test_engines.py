"""Evaluation through llama.cpp (`engine="llama.cpp"`, and what "auto" picks). The runs need
llama.cpp's llama-server (on PATH, or named by $TUNESMITH_LLAMA_SERVER) and skip without it;
the choices and refusals are checked everywhere, with a stand-in binary."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tunesmith.errors import BadInputError
from tunesmith.evaluate import evaluate
from tunesmith.models import llama_server

LLAMA_SERVER = os.environ.get("TUNESMITH_LLAMA_SERVER") or shutil.which("llama-server")
needs_llama_server = pytest.mark.skipif(LLAMA_SERVER is None, reason="llama.cpp's llama-server is not installed here "
                                                                     "(put it on PATH or set TUNESMITH_LLAMA_SERVER)")
FAST = {"limit": 6, "max_new_tokens": 6}


@pytest.fixture
def stand_in(tmp_path) -> str:
    """An executable that is not llama-server: enough for every check made before one starts."""
    path = tmp_path / "llama-server"
    path.write_text("#!/bin/sh\nexit 1\n")
    path.chmod(0o755)
    return str(path)


@pytest.mark.parametrize(("gpu", "installed", "chosen"), [
    (False, True, "llama.cpp"),  # a CPU: llama.cpp was the faster in all but one measured case
    (False, False, "local"),  # nothing to run llama.cpp with
    (True, True, "local"),  # a GPU
])
def test_auto_picks_the_faster_engine_for_this_machine(monkeypatch, stand_in, gpu, installed, chosen):
    monkeypatch.setattr(llama_server, "inference_device", lambda: "cuda" if gpu else "cpu")
    binary = stand_in if installed else stand_in + "-missing"
    assert llama_server.choose_engine("auto", binary) == chosen
    assert llama_server.choose_engine("local", binary) == "local"


def test_unknown_or_missing_engines_are_bad_input(stand_in, monkeypatch):
    with pytest.raises(BadInputError, match="unknown engine"):
        llama_server.choose_engine("fast")
    with pytest.raises(BadInputError, match="llama-server"):
        llama_server.choose_engine("llama.cpp", stand_in + "-missing")
    with pytest.raises(BadInputError, match="--weights int8 is for the built-in engine"):
        evaluate("tiny-v1", engine="llama.cpp", llama_server=stand_in, weights="int8")
    monkeypatch.setattr(llama_server, "inference_device", lambda: "cpu")
    assert llama_server.choose_engine("auto", stand_in, weights="int8") == "local"  # asked-for weights: built-in


@needs_llama_server
def test_llama_cpp_answers_the_evaluation(registered, tmp_path, monkeypatch):
    monkeypatch.setenv("TUNESMITH_CACHE", str(tmp_path / "cache"))
    local = evaluate("tiny-v1", free=True, weights="fp32", **FAST).summary
    cpp = evaluate("tiny-v1", free=True, engine="llama.cpp", llama_server=LLAMA_SERVER, **FAST).summary
    assert (local["engine"], cpp["engine"]) == ("local", "llama.cpp")
    assert cpp["examples"] == local["examples"] == 6 and cpp["verdict"]
    # both the tuned model and its base were exported once (f16, the same precision) and cached
    assert len(list((tmp_path / "cache" / "gguf").glob("*/model.gguf"))) == 2

    def outputs(summary):
        return [json.loads(line)["outputs"] for line in Path(summary["results_path"]).read_text().splitlines()]

    same = sum(a == b for a, b in zip(outputs(local), outputs(cpp)))
    print(f"llama.cpp (f16) and the built-in engine (fp32): the same answers on {same} of 6 examples (both models)")
    assert same >= 4


@needs_llama_server
def test_llama_cpp_holds_answers_to_the_output_space_as_the_built_in_engine_does(registered, tmp_path, monkeypatch):
    monkeypatch.setenv("TUNESMITH_CACHE", str(tmp_path / "cache"))
    options = {"baseline": None, "limit": 4, "max_new_tokens": 60}
    local = evaluate("tiny-v1", weights="fp32", **options).summary
    cpp = evaluate("tiny-v1", engine="llama.cpp", llama_server=LLAMA_SERVER, **options).summary
    assert cpp["decoding"]["mode"] == "constrained" and cpp["engine"] == "llama.cpp"
    answers = [[json.loads(line)["outputs"]["model"] for line in Path(s["results_path"]).read_text().splitlines()]
               for s in (local, cpp)]
    assert all(a.startswith("Category: ") for a in answers[1])  # held to the template (a GBNF grammar)
    # The closed fields agree everywhere; the free Action line of a random model drifts apart once
    # f16 and fp32 rounding tip a near-tie (after about 40 tokens here).
    assert [a.split("\nAction:")[0] for a in answers[0]] == [a.split("\nAction:")[0] for a in answers[1]]
