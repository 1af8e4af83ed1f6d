"""The batching generation engine: one thread that owns the models and generates.

Requests wait in a queue. The engine takes the first, waits `batch_wait_ms` for others
to join it (and everything that queued while the last batch ran joins at once), groups
them by model (base and adapter), and runs one batched decoding loop per group over a
shared KV cache. Each row keeps its own sampling: temperature (0 is greedy), top-p and a
seed for its own random generator, so a seeded request gives the same text alone or in a
batch. A row stops at the end-of-turn token, at a stop sequence (cut from the text), or
at its `max_tokens`; finished rows leave the batch so the rest decode faster. A row may be
held to a constraint (a JSON schema, a choice list, or its tuned model's output space:
models/constrain.py) while its neighbours decode free.

Each request gets a `Generation`: the event loop awaits its events, text deltas as they
are decoded (text that may be the start of a stop sequence is held back), then the result.

The prompt is rendered, padded and stopped by the one chat renderer (models/chat.py), as
training renders it and evaluation generates, so a tuned model sees what it learned and
stops where evaluation stops.
"""

from __future__ import annotations

import asyncio
import queue
import random
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..data.example import Example, Turn
from ..errors import TunesmithError
from ..models.chat import left_padded, pad_token_id, render_prompt, stop_token_ids
from ..models.constrain import RowState, compile_constraint, space_segments
from .errors import ApiError
from .metrics import BATCH_SIZE_BUCKETS
from .models import ModelPool, ServedModel

if TYPE_CHECKING:
    import torch

    from .metrics import Metrics

_STOP = object()  # tells the engine thread to finish


@dataclass(frozen=True)
class Sampling:
    max_tokens: int
    temperature: float = 1.0  # 0: greedy
    top_p: float = 1.0
    seed: int | None = None  # None: a fresh random seed
    stop: tuple[str, ...] = ()
    # Structured output (models/constrain.py segments): the request's response_format or choice
    # list; None: the served model's learned output space, unless `free` (the request asked for text).
    constraint: tuple | None = None
    free: bool = False


@dataclass(frozen=True)
class Result:
    text: str
    finish_reason: str  # "stop" (end of turn or a stop sequence) or "length" (max_tokens)
    prompt_tokens: int
    completion_tokens: int


class Generation:
    """One request's stream of events, fed from the engine thread, read on the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self._loop = loop
        self.cancelled = False  # set when the client has gone: the engine stops its row
        self._events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    def emit(self, kind: str, value: Any) -> None:  # engine thread
        self._loop.call_soon_threadsafe(self._events.put_nowait, (kind, value))

    async def next_event(self) -> tuple[str, Any]:
        """("delta", text), ("done", Result) or ("error", exception)."""
        return await self._events.get()

    async def deltas(self) -> AsyncIterator[str | Result]:
        """Text deltas, then the Result; raises what the engine raised."""
        while True:
            kind, value = await self.next_event()
            if kind == "error":
                raise value
            yield value
            if kind == "done":
                return

    async def result(self) -> Result:
        async for item in self.deltas():
            if isinstance(item, Result):
                return item
        raise RuntimeError("the generation ended without a result")


@dataclass
class _Request:
    model: ServedModel
    system: str | None
    turns: list[Turn]
    sampling: Sampling
    generation: Generation


@dataclass
class _Row:
    """A request's decoding state inside a batch."""

    request: _Request
    prompt_tokens: int
    generator: torch.Generator
    constraint: RowState | None = None
    tokens: list[int] = field(default_factory=list)
    sent: int = 0  # characters of text already emitted
    text: str = ""
    finish_reason: str | None = None


class Engine:
    def __init__(self, pool: ModelPool, batch_wait_ms: float = 5.0, max_batch_size: int = 16,
                 metrics: Metrics | None = None, threads: int | None = None):
        self.pool = pool
        self.threads = threads
        self.batch_wait_s = batch_wait_ms / 1000
        self.max_batch_size = max_batch_size
        self.metrics = metrics
        self._queue: queue.Queue[Any] = queue.Queue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="tunesmith-engine", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = None

    def submit(self, model: ServedModel, system: str | None, turns: list[Turn], sampling: Sampling) -> Generation:
        """Queue a request; call from the event loop."""
        generation = Generation(asyncio.get_running_loop())
        self._queue.put(_Request(model, system, turns, sampling, generation))
        return generation

    # --- the engine thread ----------------------------------------------------------

    def _run(self) -> None:
        import torch

        if self.threads:
            torch.set_num_threads(self.threads)  # for the whole process: torch has one setting
        with torch.inference_mode():
            while (batch := self._next_batch()) is not None:
                groups: dict[tuple[str, str | None], list[_Request]] = {}
                for request in batch:
                    groups.setdefault((request.model.base, request.model.adapter_path), []).append(request)
                for requests in groups.values():
                    self._generate_group(requests)

    def _next_batch(self) -> list[_Request] | None:
        first = self._queue.get()
        if first is _STOP:
            return None
        batch = [first]
        deadline = time.monotonic() + self.batch_wait_s
        while len(batch) < self.max_batch_size:
            try:
                item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if item is _STOP:
                self._queue.put(_STOP)  # finish this batch first
                break
            batch.append(item)
        return batch

    def _generate_group(self, requests: list[_Request]) -> None:
        try:
            with self.pool.use(requests[0].model) as (model, tokenizer):
                prompts = []
                for request in list(requests):
                    try:
                        prompts.append(_encode(request, tokenizer, model.config))
                    except ApiError as exc:
                        request.generation.emit("error", exc)
                        requests.remove(request)
                if requests:
                    self._decode(model, tokenizer, requests, prompts)
        except Exception as exc:  # noqa: BLE001 - every waiting client must hear of it
            for request in requests:
                request.generation.emit("error", exc)

    def _decode(self, model: Any, tokenizer: Any, requests: list[_Request], prompts: list[list[int]]) -> None:
        import torch
        from transformers import DynamicCache

        if self.metrics is not None:
            self.metrics.observe("tunesmith_batch_size", "Requests generated together in one batch.",
                                 len(requests), BATCH_SIZE_BUCKETS)
        device = model.device
        # Left padding: every row's last prompt token sits in the last column, so one
        # forward step extends every row. Positions count real tokens only.
        input_ids, mask = left_padded(prompts, pad_token_id(tokenizer, model.generation_config))
        input_ids, mask = input_ids.to(device), mask.to(device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        rows = [_Row(r, len(p), _generator(r.sampling.seed)) for r, p in zip(requests, prompts)]
        end_ids = set(stop_token_ids(tokenizer, model.generation_config))
        for row in rows:
            row.constraint = _row_constraint(row.request, tokenizer, model, sorted(end_ids))
        cache = DynamicCache(config=model.config)
        logits = model(input_ids=input_ids, attention_mask=mask, position_ids=positions, cache=cache,
                       use_cache=True, logits_to_keep=1).logits[:, -1, :]
        while rows:
            logits = logits.float()
            for i, row in enumerate(rows):
                if row.constraint is not None:
                    logits[i] = row.constraint.mask(logits[i])
            next_ids = _sample(logits, rows)
            for row, token in zip(rows, next_ids.tolist()):
                if row.constraint is not None:
                    row.constraint.advance(token)
                self._advance(row, token, end_ids, tokenizer)
            keep = [i for i, row in enumerate(rows) if row.finish_reason is None]
            if len(keep) < len(rows):
                for row in rows:
                    if row.finish_reason is not None:
                        self._finish(row)
                if not keep:
                    return
                index = torch.tensor(keep, device=device)
                cache.batch_select_indices(index)
                rows, mask, positions, next_ids = [rows[i] for i in keep], mask[index], positions[index], next_ids[index]
            mask = torch.cat([mask, mask.new_ones((len(rows), 1))], dim=1)
            positions = positions[:, -1:] + 1
            logits = model(input_ids=next_ids[:, None].to(device), attention_mask=mask, position_ids=positions,
                           cache=cache, use_cache=True, logits_to_keep=1).logits[:, -1, :]

    def _advance(self, row: _Row, token: int, end_ids: set[int], tokenizer: Any) -> None:
        sampling = row.request.sampling
        if row.request.generation.cancelled:
            row.finish_reason = "cancelled"
            return
        row.tokens.append(token)
        if token in end_ids:
            row.finish_reason = "stop"
            return
        text = tokenizer.decode(row.tokens, skip_special_tokens=True)
        cut = min((i for i in (text.find(s) for s in sampling.stop) if i >= 0), default=-1)
        if cut >= 0:
            row.text, row.finish_reason = text[:cut], "stop"
            return
        row.text = text
        if len(row.tokens) >= sampling.max_tokens:
            row.finish_reason = "length"
            return
        # Hold back a half-decoded character and anything that may begin a stop sequence.
        safe = len(text) - _held_back(text, sampling.stop)
        if safe > row.sent:
            row.request.generation.emit("delta", text[row.sent:safe])
            row.sent = safe

    def _finish(self, row: _Row) -> None:
        generation = row.request.generation
        if len(row.text) > row.sent:
            generation.emit("delta", row.text[row.sent:])
        generation.emit("done", Result(row.text, row.finish_reason or "stop", row.prompt_tokens, len(row.tokens)))
        if self.metrics is not None:
            self.metrics.inc("tunesmith_generated_tokens_total", "Tokens generated.", len(row.tokens),
                             model=row.request.model.name)


def _encode(request: _Request, tokenizer: Any, model_config: Any) -> list[int]:
    try:
        text = render_prompt(Example(turns=request.turns, system=request.system), tokenizer)
    except TunesmithError as exc:
        raise ApiError(400, exc.message) from None
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    context = getattr(model_config, "max_position_embeddings", None)
    if context and len(ids) + request.sampling.max_tokens > context:
        raise ApiError(400, f"the prompt ({len(ids)} tokens) and max_tokens ({request.sampling.max_tokens}) "
                            f"exceed the model's context of {context} tokens", param="max_tokens")
    return ids


def _row_constraint(request: _Request, tokenizer: Any, model: Any, end_ids: list[int]) -> RowState | None:
    """The request's own constraint, else its model's learned output space unless it asked for free text."""
    segments = request.sampling.constraint
    if segments is None and not request.sampling.free and request.model.output_space is not None:
        segments = space_segments(request.model.output_space)
    if segments is None:
        return None
    vocab_size = model.get_output_embeddings().weight.shape[0]
    return RowState(compile_constraint(segments, tokenizer, vocab_size, end_ids))


def _generator(seed: int | None) -> torch.Generator:
    import torch

    return torch.Generator().manual_seed(seed if seed is not None else random.SystemRandom().randrange(2**63))


def _sample(logits: torch.Tensor, rows: list[_Row]) -> torch.Tensor:
    """One next token per row, each with its own sampling settings and generator."""
    import torch

    chosen = logits.argmax(dim=-1).cpu()
    for i, row in enumerate(rows):
        sampling = row.request.sampling
        if sampling.temperature <= 0:
            continue
        probs = torch.softmax(logits[i].cpu() / sampling.temperature, dim=-1)
        if sampling.top_p < 1.0:
            sorted_probs, order = probs.sort(descending=True)
            # Keep the smallest set of most likely tokens whose mass reaches top_p.
            outside = sorted_probs.cumsum(0) - sorted_probs >= sampling.top_p
            sorted_probs[outside] = 0.0
            probs = torch.zeros_like(probs).scatter_(0, order, sorted_probs)
        chosen[i] = torch.multinomial(probs, 1, generator=row.generator)[0]
    return chosen


def _held_back(text: str, stops: tuple[str, ...]) -> int:
    """Characters at the end of `text` not to stream yet: a replacement character from a
    split UTF-8 sequence, or the longest tail that is a prefix of a stop sequence."""
    if text.endswith("\ufffd"):
        return 1
    longest = 0
    for stop in stops:
        for n in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:n]):
                longest = n
                break
    return longest
