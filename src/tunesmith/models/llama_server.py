"""llama.cpp's `llama-server`, run as a child process: the one launcher for serving
(`serve --engine llama.cpp`), evaluation (`eval --engine llama.cpp`), the GGUF export check and
the benchmarks.

tunesmith never builds llama.cpp: it uses an installed binary (on PATH, or a path given). The
server listens on a free loopback port; its log goes to a temporary file (it logs every
request, and a pipe that nobody reads would fill and stall it), whose tail becomes the error
when it fails to start.

    with LlamaServer(find_llama_server(), "model.gguf", parallel=16) as server:
        server.complete(prompt_text, max_new_tokens=32)       # greedy text
        server.greedy(token_ids, max_new_tokens=32)           # greedy token ids
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from ..errors import BadInputError, TunesmithError
from ..hardware import inference_device

START_TIMEOUT_S = 120.0  # loading a GGUF file takes a second or two; a first start may map it from a slow disk
CONTEXT_PER_SLOT = 2048  # tokens of context each parallel slot gets


ENGINES = ("local", "llama.cpp", "auto")


def choose_engine(engine: str, llama_server: str | None = None, weights: str = "auto") -> str:
    """The engine that generates for serving and evaluation: "local" (transformers with
    continuous batching) or "llama.cpp"; "auto" picks by what the benchmarks measured.

    On a CPU llama.cpp was the faster wherever it was measured but one case: evaluating
    Banking77 (770 short answers) it generated 1.69x as fast as the built-in engine in bf16 (1.80x
    held to the labels), it answered one lone client 4.5x sooner, and on an AVX2-only CPU it
    produced 1.3-2.8x the built-in engine's tokens/s; only 16 clients streaming 32-token answers
    on a CPU with native bf16 got 1.33-1.60x more tokens/s from the built-in engine
    (bench/serve.py; docs/serving.md has the table).
    So auto is llama.cpp on a CPU where llama-server is installed, and the built-in engine on
    a GPU, without llama-server, or where `weights` (the built-in engine's fp32, bf16 or int8)
    are asked for: llama.cpp runs the model's f16 GGUF file."""
    if engine not in ENGINES:
        raise BadInputError(f"unknown engine {engine!r}", f"choose one of {', '.join(ENGINES)}")
    if engine == "llama.cpp":
        find_llama_server(llama_server)  # a clear error now, before any model is loaded
        if weights != "auto":
            raise BadInputError(f"--weights {weights} is for the built-in engine; llama.cpp runs the model's "
                                "GGUF file (f16)", "leave --weights out, or use --engine local")
    if engine != "auto":
        return engine
    if weights == "auto" and inference_device() == "cpu" and shutil.which(llama_server or "llama-server"):
        return "llama.cpp"
    return "local"


def find_llama_server(path: str | None = None) -> str:
    """The llama-server binary: `path`, else the one on PATH; a clear error without one."""
    found = shutil.which(path or "llama-server")
    if found is None:
        raise BadInputError(
            f"--engine llama.cpp needs llama.cpp's llama-server, and {path or 'llama-server'} was not found",
            "install llama.cpp (its llama-server binary on PATH, or pass --llama-server PATH), "
            "or use the built-in engine (--engine local)")
    return found


class LlamaServer:
    """One llama-server process serving one GGUF file (and optionally a GGUF LoRA on it), with
    `parallel` slots that llama.cpp batches continuously. `start()` returns once it answers
    /health; `stop()` ends it. Requests go to `url` (its own HTTP API, `/completion`)."""

    def __init__(self, binary: str, model: str | Path, *, lora: str | Path | None = None, parallel: int = 1,
                 threads: int | None = None, context_per_slot: int = CONTEXT_PER_SLOT, name: str | None = None):
        self.binary = binary
        self.model = Path(model)
        self.lora = lora
        self.parallel = parallel
        self.threads = threads
        self.context_per_slot = context_per_slot
        self.name = name or self.model.name
        self.url = ""
        self._process: subprocess.Popen | None = None
        self._log: Any = None

    def start(self) -> LlamaServer:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        command = [self.binary, "--model", str(self.model), "--host", "127.0.0.1", "--port", str(port),
                   "--parallel", str(self.parallel), "--ctx-size", str(self.parallel * self.context_per_slot),
                   "--no-webui"]
        if self.threads:
            command += ["--threads", str(self.threads)]
        if self.lora:
            command += ["--lora", str(self.lora)]
        self._log = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")
        self._process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{port}"
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self._process.poll() is not None:
                raise TunesmithError(f"llama-server for {self.name} exited while starting: {self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as reply:
                    if reply.status == 200:
                        return
            except OSError:
                pass  # not listening yet, or 503 while the model loads
            if time.monotonic() > deadline:
                raise TunesmithError(f"llama-server for {self.name} was not ready after {START_TIMEOUT_S:.0f} s",
                                     self.log_tail())
            time.sleep(0.2)

    def log_tail(self, chars: int = 1500) -> str:
        if self._log is None or self._log.closed:
            return ""
        self._log.seek(0)
        return self._log.read()[-chars:].strip()

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:  # a server that ignores SIGTERM is killed
                self._process.kill()
                self._process.wait()
            self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> LlamaServer:
        return self.start() if self._process is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # Blocking calls, one request each (callers run several at once from threads).

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        import httpx

        try:
            reply = httpx.post(f"{self.url}{path}", json=body, timeout=None)
        except httpx.HTTPError as exc:
            raise TunesmithError(f"llama-server for {self.name} could not be reached: {exc}") from None
        if reply.status_code != 200:
            raise TunesmithError(f"llama-server for {self.name} answered {reply.status_code}: {reply.text[:500]}")
        return reply.json()

    def tokenize(self, text: str) -> list[int]:
        return self._post("/tokenize", {"content": text, "add_special": False, "parse_special": True})["tokens"]

    def greedy(self, ids: list[int], max_new_tokens: int) -> list[int]:
        """The greedy continuation of a tokenized prompt, as token ids (without the token it stopped at)."""
        return self._post("/completion", {"prompt": ids, "n_predict": max_new_tokens, "temperature": 0,
                                          "top_k": 1, "cache_prompt": False, "return_tokens": True})["tokens"]

    def complete(self, prompt: str, max_new_tokens: int, grammar: str | None = None) -> str:
        """The greedy continuation of a rendered prompt (raw text: no template is applied here),
        held to a GBNF `grammar` when given (models/constrain.py gbnf)."""
        body = {"prompt": prompt, "n_predict": max_new_tokens, "temperature": 0, "top_k": 1, "cache_prompt": True}
        if grammar is not None:
            body["grammar"] = grammar
        return self._post("/completion", body)["content"]
