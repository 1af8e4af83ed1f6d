"""`--engine llama.cpp`: generation by llama.cpp's `llama-server`, behind tunesmith's own server.

tunesmith's server stays in front, so the APIs, keys, request log, metrics and routing are the
same as with the built-in engine. Each served model gets one `llama-server` process on a free
loopback port, started with the server, on the model's GGUF file (the embedded model's own
file, or an export of the model), with `--parallel` slots: llama.cpp batches them continuously.

The prompt is rendered here by the one chat renderer and sent as raw text to llama-server's
`/completion`, so a tuned model sees exactly what it was trained on, whatever template
llama.cpp would have guessed. A structured-output request, or a model's learned output space,
goes along as a GBNF grammar (models/constrain.py gbnf: the same segments the built-in engine
compiles), which llama.cpp applies token by token. The answer streams back and becomes a
`Generation`, as the built-in engine's and the proxy's do.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..data.example import Example, Turn
from ..errors import TunesmithError
from ..models.chat import render_prompt
from ..models.constrain import gbnf
from ..models.llama_server import LlamaServer
from ..models.loading import load_tokenizer
from ..registry.export import gguf_for_llama_cpp
from ..registry.resolver import LocalWeights
from .engine import Generation, Result, Sampling, request_segments
from .errors import ApiError
from .models import ServedModel


def gguf_file(model: ServedModel) -> Path:
    """The GGUF file llama.cpp serves for `model` (registry/export.py: exported once and cached)."""
    return gguf_for_llama_cpp(model.model_id or model.base, LocalWeights(model.base, model.adapter_path))


@dataclass
class _Worker:
    server: LlamaServer
    tokenizer: Any  # renders the prompt (the chat template of the model's own tokenizer)


class LlamaCppEngine:
    """One llama-server per served model; `submit` as the built-in engine's."""

    def __init__(self, models: list[ServedModel], gguf_for: Callable[[ServedModel], Path], binary: str,
                 parallel: int = 16, threads: int | None = None):
        self.models = [m for m in models if m.remote is None]
        self.gguf_for = gguf_for
        self.binary = binary
        self.parallel = parallel
        self.threads = threads
        self._workers: dict[str, _Worker] = {}
        self._tasks: set[asyncio.Task] = set()  # requests in flight: the loop keeps only weak references
        self._client: Any = None

    def start(self) -> None:
        import httpx

        try:
            for model in self.models:
                self._workers[model.name] = self._launch(model)
        except BaseException:
            self.stop()
            raise
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(None, connect=10.0))

    def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for worker in self._workers.values():
            worker.server.stop()
        self._workers.clear()

    def submit(self, model: ServedModel, system: str | None, turns: list[Turn], sampling: Sampling,
               background: bool = False) -> Generation:
        """Queue a request; call from the event loop. llama-server schedules its own slots, so a
        `background` request (a shadow copy) is not held back for callers here."""
        loop = asyncio.get_running_loop()
        generation = Generation(loop)
        task = loop.create_task(self._complete(self._workers[model.name], model, system, turns, sampling, generation))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return generation

    def _launch(self, model: ServedModel) -> _Worker:
        server = LlamaServer(self.binary, self.gguf_for(model), parallel=self.parallel, threads=self.threads,
                             name=model.name)
        return _Worker(server.start(), load_tokenizer(model.base))

    async def _complete(self, worker: _Worker, model: ServedModel, system: str | None, turns: list[Turn],
                        sampling: Sampling, generation: Generation) -> None:
        try:
            try:
                prompt = render_prompt(Example(turns=turns, system=system), worker.tokenizer)
            except TunesmithError as exc:
                raise ApiError(400, exc.message) from None
            body = {"prompt": prompt, "n_predict": sampling.max_tokens, "temperature": sampling.temperature,
                    "top_p": sampling.top_p, "stop": list(sampling.stop), "stream": True, "cache_prompt": True}
            if sampling.seed is not None:
                body["seed"] = sampling.seed
            segments = request_segments(model, sampling)
            if segments is not None:  # structured output, or the model's output space: as a grammar
                body["grammar"] = gbnf(segments)
            text = ""
            async with aclosing(self._events(worker.server.url, body)) as events:
                async for event in events:
                    if generation.cancelled:  # the client has gone: closing the stream frees the slot
                        return
                    if event.get("content"):
                        text += event["content"]
                        generation.emit("delta", event["content"])
                    if event.get("stop"):
                        generation.emit("done", _result(text, event))
                        return
            raise ApiError(502, "llama-server ended the answer without its last event")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 (the engine's contract: every failure is an event)
            generation.emit("error", exc)

    async def _events(self, url: str, body: dict[str, Any]):
        """The JSON events of llama-server's server-sent stream."""
        import httpx

        try:
            async with self._client.stream("POST", f"{url}/completion", json=body) as response:
                if response.status_code != 200:
                    detail = (await response.aread()).decode("utf-8", "replace")[:500]
                    raise ApiError(502 if response.status_code >= 500 else 400, f"llama-server: {detail}")
                async for line in response.aiter_lines():
                    if line.startswith("data: "):
                        yield json.loads(line[len("data: "):])
        except httpx.HTTPError as exc:
            raise ApiError(502, f"llama-server could not be reached: {exc}") from None


def _result(text: str, last: dict[str, Any]) -> Result:
    # The last event carries the counts and why it stopped: stop_type "eos" (end of turn),
    # "word" (a stop sequence, not part of the text) or "limit" (n_predict reached).
    return Result(text=text, finish_reason="length" if last.get("stop_type") == "limit" else "stop",
                  prompt_tokens=int(last.get("tokens_evaluated", 0)),
                  completion_tokens=int(last.get("tokens_predicted", 0)))
