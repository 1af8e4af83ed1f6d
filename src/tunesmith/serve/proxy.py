"""Models tuned on Vertex AI, served by forwarding each request to their endpoint.

A proxied model has no weights here. Its request goes, through google-genai's async client,
to `generateContent` (or `streamGenerateContent` when the caller streams) on the tuned
endpoint's resource name, with the request's sampling as `GenerateContentConfig` and its
system messages as `system_instruction`. The answer comes back as a `Generation`, as the
engine's do, so the routes answer, stream, log and count it the same way. A failure at
Vertex AI becomes a 502 with the service's message (google-genai puts the service's answer
in its errors, never the token).

Clients are made on first use, one per (project, location), and kept: a garbage-collected
google-genai Client closes its connection.
"""

from __future__ import annotations

import asyncio
from contextlib import aclosing
from typing import Any

from ..data.example import Example, Turn
from ..models.gemini import cloud_error, genai_client, genai_contents
from .engine import Generation, Result, Sampling
from .errors import ApiError
from .models import RemoteEndpoint


class Proxy:
    def __init__(self) -> None:
        self._clients: dict[tuple[str | None, str | None], Any] = {}
        self._tasks: set[asyncio.Task] = set()  # forwards in flight: the loop keeps only weak references

    def submit(self, remote: RemoteEndpoint, system: str | None, turns: list[Turn], sampling: Sampling,
               stream: bool) -> Generation:
        """Forward a request; call from the event loop."""
        loop = asyncio.get_running_loop()
        generation = Generation(loop)
        task = loop.create_task(self._forward(remote, system, turns, sampling, stream, generation))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return generation

    def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    def _client(self, remote: RemoteEndpoint) -> Any:
        key = (remote.project, remote.location)
        if key not in self._clients:
            self._clients[key] = genai_client(remote.project, remote.location)
        return self._clients[key]

    async def _forward(self, remote: RemoteEndpoint, system: str | None, turns: list[Turn], sampling: Sampling,
                       stream: bool, generation: Generation) -> None:
        if sampling.constraint is not None:  # refused, not silently ignored (docs/serving.md)
            generation.emit("error", ApiError(400, "structured outputs (response_format, guided_choice, responseSchema) "
                                                   "are not supported yet for a model served by its Vertex AI endpoint"))
            return
        try:
            models = self._client(remote).aio.models
            request = dict(model=remote.endpoint, contents=genai_contents(Example(turns=turns, system=system)),
                           config=generation_config(system, sampling))
            if not stream:
                response = await models.generate_content(**request)
                generation.emit("done", _result(_text(response), response, response.usage_metadata))
                return
            text, last, usage = "", None, None
            async with aclosing(await models.generate_content_stream(**request)) as chunks:
                async for chunk in chunks:
                    if generation.cancelled:  # the client has gone: closing the stream ends the remote call
                        return
                    delta = _text(chunk)
                    if delta:
                        text += delta
                        generation.emit("delta", delta)
                    last, usage = chunk, chunk.usage_metadata or usage
            generation.emit("done", _result(text, last, usage))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 (the engine's contract: every failure is an event)
            generation.emit("error", remote_error(exc, remote.endpoint))


def generation_config(system: str | None, sampling: Sampling) -> Any:
    from google.genai import types

    return types.GenerateContentConfig(
        temperature=sampling.temperature, top_p=sampling.top_p, max_output_tokens=sampling.max_tokens,
        stop_sequences=list(sampling.stop) or None, seed=sampling.seed, system_instruction=system or None,
    )


def remote_error(exc: Exception, endpoint: str) -> Exception:
    """A 502 for a failure of Vertex AI or of the way to it; anything else as it is (a bug: 500)."""
    error = cloud_error(exc, f"the tuned endpoint {endpoint}")
    return exc if error is None else ApiError(502, error.message)


def _text(response: Any) -> str:
    candidates = response.candidates or []
    content = candidates[0].content if candidates else None
    return "".join(part.text for part in (content.parts or []) if part.text) if content else ""


def _result(text: str, last: Any, usage: Any) -> Result:
    """The Result of a whole answer: the finish reason comes with its last chunk, usage with any."""
    from google.genai import types

    candidates = (last.candidates or []) if last is not None else []
    finish = candidates[0].finish_reason if candidates else None
    return Result(text=text, finish_reason="length" if finish == types.FinishReason.MAX_TOKENS else "stop",
                  prompt_tokens=(usage.prompt_token_count or 0) if usage else 0,
                  completion_tokens=(usage.candidates_token_count or 0) if usage else 0)
