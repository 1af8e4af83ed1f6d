"""Starting a server: the key rule for non-loopback addresses, the background helper, and
the vLLM launcher's command line and its refusal without a GPU."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import openai
import pytest
from typer.testing import CliRunner

from tunesmith.cli import app as cli_app
from tunesmith.errors import BadInputError, TunesmithError
from tunesmith.serve import ServeConfig, ServedModel, serve_in_background
from tunesmith.serve.vllm import check_vllm_can_run, vllm_command


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "example.com"])
def test_refuses_to_bind_beyond_loopback_without_a_key(host, monkeypatch):
    monkeypatch.delenv("TUNESMITH_API_KEY", raising=False)
    with pytest.raises(BadInputError, match="without an API key"):
        ServeConfig(host=host).check_binding()
    with pytest.raises(BadInputError):
        with serve_in_background(["smollm2-135m-instruct"], host=host):
            pass
    ServeConfig(host=host, api_key="k").check_binding()
    monkeypatch.setenv("TUNESMITH_API_KEY", "from-env")
    ServeConfig(host=host).check_binding()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_needs_no_key(host, monkeypatch):
    monkeypatch.delenv("TUNESMITH_API_KEY", raising=False)
    ServeConfig(host=host).check_binding()


def test_cli_refuses_too(monkeypatch):
    monkeypatch.delenv("TUNESMITH_API_KEY", raising=False)
    done = subprocess.run([sys.executable, "-m", "tunesmith", "serve", "--host", "0.0.0.0"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    assert "without an API key" in done.stderr and "Traceback" not in done.stderr


def test_cli_refuses_an_unknown_model():
    result = CliRunner().invoke(cli_app, ["serve", "./no/such/folder"])
    assert isinstance(result.exception, BadInputError) and "no such model folder" in str(result.exception)


def test_serve_in_background_answers_and_stops(tiny_model_dir, monkeypatch):
    monkeypatch.setenv("TUNESMITH_API_KEY", "env-key")
    with serve_in_background([str(tiny_model_dir)], dtype="float32") as url:
        assert url.startswith("http://127.0.0.1:")
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="env-key", max_retries=0)
        reply = client.chat.completions.create(model=str(tiny_model_dir), max_tokens=3,
                                               messages=[{"role": "user", "content": "hi"}])
        assert reply.usage.completion_tokens <= 3
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/health")


def test_vllm_command_line(tiny_model_dir, adapter_dir, second_adapter_dir):
    base = str(tiny_model_dir)
    models = [ServedModel(base, (base,), base),
              ServedModel("tuned", ("tuned", "mv-1"), base, str(adapter_dir), model_id="mv-1", base_model=base),
              ServedModel("mv-2", ("mv-2",), base, str(second_adapter_dir), model_id="mv-2", base_model=base)]
    command = vllm_command(models, ServeConfig(port=9000, api_key="secret", max_adapters=8))
    assert command[:3] == ["vllm", "serve", base]
    assert command[command.index("--port") + 1] == "9000"
    assert command[command.index("--served-model-name") + 1] == base
    assert "--enable-lora" in command
    assert command[command.index("--max-lora-rank") + 1] == "8"  # ranks 4 and 8 -> 8
    assert command[command.index("--max-loras") + 1] == "2"
    modules = [json.loads(part) for part in command[command.index("--lora-modules") + 1:]]
    assert modules == [{"name": "tuned", "path": str(adapter_dir), "base_model_name": base},
                       {"name": "mv-2", "path": str(second_adapter_dir), "base_model_name": base}]
    assert "secret" not in command  # the key travels in VLLM_API_KEY


def test_vllm_needs_one_base(tiny_model_dir, tmp_path):
    models = [ServedModel("a", ("a",), str(tiny_model_dir)), ServedModel("b", ("b",), str(tmp_path))]
    with pytest.raises(BadInputError, match="one base model"):
        vllm_command(models, ServeConfig())


def test_vllm_refuses_without_a_gpu():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(TunesmithError, match="needs an NVIDIA GPU"):
        check_vllm_can_run()
    result = CliRunner().invoke(cli_app, ["serve", "--engine", "vllm", "smollm2-135m-instruct"])
    assert isinstance(result.exception, TunesmithError) and "needs an NVIDIA GPU" in str(result.exception)
