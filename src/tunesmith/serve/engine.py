"""The generation engine: one thread that owns the models and decodes with continuous batching.

Requests wait in a queue. Each model (base and adapter) has at most one running batch over a
shared KV cache; with `mixed_adapters`, all models on one base share one batch, each row
with its own adapter (PEFT's `adapter_names`). Between decoding steps, newcomers are
prefilled together and join their model's batch (their cache rows stacked onto it),
finished rows leave at once, and every running batch takes one step in turn; nobody waits
for a batch to end. Each row keeps its own sampling: temperature (0 is greedy), top-p and a
seed for its own random generator, so a seeded request gives the same text alone or in a
batch. A row may be held to a constraint (a JSON schema, a choice list, or its tuned model's
output space: models/constrain.py) while its neighbours decode free. A row stops at the
end-of-turn token, at a stop sequence (cut from the text), or at its `max_tokens`. A greedy
request held to a label set is not decoded: it is answered at once with its likeliest label,
every label scored whole (models/label_scoring.py), as evaluation answers it.

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
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..data.example import Example, Turn
from ..errors import TunesmithError
from ..models.chat import pad_token_id, render_prompt, stop_token_ids
from ..models.constrain import RowState, compile_constraint, space_segments
from ..models.decoding import Batch
from ..models.label_scoring import LabelTrie, best_labels, label_trie, scored_labels
from .errors import ApiError
from .metrics import BATCH_SIZE_BUCKETS
from .models import ModelPool, ServedModel

if TYPE_CHECKING:
    import torch

    from .metrics import Metrics

_STOP = object()  # tells the engine thread to finish
BACKGROUND_QUEUE = 4  # background requests waiting, per row of a batch, before the oldest is skipped


class Skipped(Exception):
    """A background request was dropped unanswered: more were waiting than the engine keeps
    while callers hold it busy."""


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
    yielded_s: float = 0.0  # a background request's time spent waiting for callers (not its own work)


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
    background: bool = False  # yields to every other request (a shadow copy): see Engine
    yielded_s: float = 0.0


@dataclass
class _Row:
    """A request's decoding state inside a batch."""

    request: _Request
    prompt_tokens: int
    generator: torch.Generator
    constraint: RowState | None = None
    end_ids: frozenset[int] = frozenset()  # the model's end-of-turn tokens
    tokens: list[int] = field(default_factory=list)
    sent: int = 0  # characters of text already emitted
    text: str = ""
    finish_reason: str | None = None


class Engine:
    """The continuous-batching loop on its own thread: one running batch per model (per base,
    with mixed adapters), each stepped in turn.

    Background requests (a shadow candidate's copies) yield: they are prefilled and decoded
    only while no other request is waiting or running, and a background batch pauses, its
    cache kept, as soon as one is. A caller then waits at most for the one background step
    already under way. Under unbroken load background requests wait; past BACKGROUND_QUEUE
    per batch row the oldest is skipped (Skipped, counted in tunesmith_background_skipped_total)."""

    def __init__(self, pool: ModelPool, batch_wait_ms: float = 5.0, max_batch_size: int = 16,
                 metrics: Metrics | None = None, threads: int | None = None, mixed_adapters: bool = False):
        self.pool = pool
        # Rows of different adapters on one base decode in one batch (PEFT's adapter_names per row)
        # instead of one batch per adapter (an A/B test's two arms, say).
        self.mixed_adapters = mixed_adapters
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

    def submit(self, model: ServedModel, system: str | None, turns: list[Turn], sampling: Sampling,
               background: bool = False) -> Generation:
        """Queue a request; call from the event loop."""
        generation = Generation(asyncio.get_running_loop())
        self._queue.put(_Request(model, system, turns, sampling, generation, background))
        return generation

    # --- the engine thread ----------------------------------------------------------

    def _run(self) -> None:
        import torch

        if self.threads:
            torch.set_num_threads(self.threads)  # for the whole process: torch has one setting
        waiting: list[_Request] = []  # queued, not yet in a batch (the batch of their model was full)
        batches: dict[tuple[str, str | None, bool], Batch[_Row]] = {}  # one running batch per model (and priority)
        stopping = False
        with torch.inference_mode():
            while True:
                if not stopping:
                    stopping = self._collect(waiting, block=not batches and not waiting)
                started = time.monotonic()
                self._skip_excess_background(waiting)
                busy = any(not r.background for r in waiting) or any(not key[2] for key in batches)
                self._admit(waiting, batches, busy)
                # One decoding step of every running batch, in turn, so several models progress
                # together; background batches only while no caller's request is waiting or running.
                for key in list(batches):
                    if busy and key[2]:
                        continue
                    if not self._step(batches[key]):
                        del batches[key]
                if busy:
                    self._note_yield(waiting, batches, time.monotonic() - started)
                if stopping and not batches and not waiting:
                    return

    def _collect(self, waiting: list[_Request], block: bool) -> bool:
        """Move queued requests to `waiting`; True once the engine is told to stop (what is
        queued or running still finishes). Idle, it waits for a request, then `batch_wait_ms`
        for others to arrive with it, so a burst is prefilled in one forward pass."""
        deadline = None
        while True:
            try:
                if block and deadline is None:
                    item = self._queue.get()
                    deadline = time.monotonic() + self.batch_wait_s
                elif block:
                    item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                else:
                    item = self._queue.get_nowait()
            except queue.Empty:
                return False
            if item is _STOP:
                return True
            waiting.append(item)
            if len(waiting) >= self.max_batch_size:
                block = False  # enough to fill a batch: take the rest of the queue without waiting

    def _skip_excess_background(self, waiting: list[_Request]) -> None:
        background = [r for r in waiting if r.background]
        for request in background[: max(0, len(background) - BACKGROUND_QUEUE * self.max_batch_size)]:
            waiting.remove(request)
            request.generation.emit("error", Skipped("skipped: callers kept the engine busy"))
            if self.metrics is not None:
                self.metrics.inc("tunesmith_background_skipped_total",
                                 "Background requests (shadow copies) dropped unanswered under load.",
                                 model=request.model.name)

    @staticmethod
    def _note_yield(waiting: list[_Request], batches: dict[tuple[str, str | None, bool], Batch[_Row]],
                    seconds: float) -> None:
        """Charge the time spent on callers to every background request held back meanwhile."""
        for request in waiting:
            if request.background:
                request.yielded_s += seconds
        for key, batch in batches.items():
            if key[2]:
                for row in batch.rows:
                    row.request.yielded_s += seconds

    def _admit(self, waiting: list[_Request], batches: dict[tuple[str, str | None, bool], Batch[_Row]],
               busy: bool) -> None:
        """Prefill waiting requests, in arrival order, into their model's running batch while
        it has room: newcomers join between decoding steps instead of waiting for it to end.
        Background requests wait while the engine is `busy` with other requests."""
        newcomers: dict[tuple[str, str | None, bool], list[_Request]] = {}
        for request in list(waiting):
            if request.background and busy:
                continue
            key = (request.model.base, None if self.mixed_adapters else request.model.adapter_path,
                   request.background)
            batch = batches.get(key)
            running = 0 if batch is None else len(batch.rows) if batch.joinable else self.max_batch_size
            if running + len(newcomers.get(key, [])) < self.max_batch_size:
                newcomers.setdefault(key, []).append(request)
                waiting.remove(request)
        for key, requests in newcomers.items():
            batch = self._prefill(requests)
            if batch is None:
                continue
            if key in batches:
                batches[key].join(batch)
            else:
                batches[key] = batch

    def _prefill(self, requests: list[_Request]) -> Batch[_Row] | None:
        """Encode the requests and run their prompts through the model together: a batch of
        rows whose next-token logits are ready. Rows that cannot start hear why."""
        try:
            with self._loaded([r.model for r in requests]) as (model, tokenizer, adapter_names):
                rows, prompts, names, labelled = [], [], [], {}
                end_ids = stop_token_ids(tokenizer, model.generation_config)
                pad_id = pad_token_id(tokenizer, model.generation_config)
                for i, request in enumerate(requests):
                    try:
                        prompt = _encode(request, tokenizer, model.config)
                    except ApiError as exc:
                        request.generation.emit("error", exc)
                        continue
                    name = adapter_names[i] if adapter_names else None
                    trie = _label_trie(request, tokenizer, end_ids[0])
                    if trie is not None:
                        labelled.setdefault(trie.labels, (trie, []))[1].append((request, prompt, name))
                        continue
                    prompts.append(prompt)
                    rows.append(_Row(request, len(prompt), _generator(request.sampling.seed)))
                    names.append(name)
                for trie, waiting in labelled.values():
                    self._answer_labels(model, trie, waiting, pad_id, bool(adapter_names))
                if not rows:
                    return None
                per_row = {"adapter_names": names} if adapter_names else {}
                batch = Batch.prefill(model, prompts, rows, pad_id, **per_row)
                for row in rows:
                    row.end_ids = frozenset(end_ids)
                    row.constraint = _row_constraint(row.request, tokenizer, model, end_ids)
                return batch
        except Exception as exc:  # noqa: BLE001 - every waiting client must hear of it
            for request in requests:
                request.generation.emit("error", exc)
            return None

    def _answer_labels(self, model: Any, trie: LabelTrie, waiting: list[tuple[_Request, list[int], str | None]],
                       pad_id: int, mixed: bool) -> None:
        """Answer greedy requests held to one label set with their likeliest labels."""
        per_row = {"adapter_names": [name for _, _, name in waiting]} if mixed else {}
        best = best_labels(model, [prompt for _, prompt, _ in waiting], trie, pad_id, **per_row)
        for (request, prompt, _), label in zip(waiting, best):
            tokens = len(trie.paths[label])  # the label's tokens and the end of turn
            request.generation.emit("delta", trie.labels[label])
            request.generation.emit("done", Result(trie.labels[label], "stop", len(prompt), tokens, request.yielded_s))
            if self.metrics is not None:
                self.metrics.inc("tunesmith_generated_tokens_total", "Tokens generated.", tokens,
                                 model=request.model.name)

    @contextmanager
    def _loaded(self, models: list[ServedModel]) -> Iterator[tuple[Any, Any, list[str] | None]]:
        """The model and tokenizer for rows of these models (one base), and PEFT's adapter name
        for each row when they mix adapters (None when one adapter, or none, serves them all)."""
        if len({m.adapter_path for m in models}) > 1:
            with self.pool.use_mixed(models) as (model, tokenizer, names):
                yield model, tokenizer, [names[m.adapter_path] for m in models]
        else:
            with self.pool.use(models[0]) as (model, tokenizer):
                yield model, tokenizer, None

    def _step(self, batch: Batch[_Row]) -> bool:
        """Pick each row's next token, let finished rows leave, and run one forward step for
        the rest. False when no row is left."""
        import torch

        if self.metrics is not None:
            self.metrics.observe("tunesmith_batch_size", "Requests decoded together in one step.",
                                 len(batch.rows), BATCH_SIZE_BUCKETS)
        try:
            with self._loaded([row.request.model for row in batch.rows]) as (model, tokenizer, adapter_names):
                logits = batch.logits.float()
                for i, row in enumerate(batch.rows):
                    if row.constraint is not None:
                        logits[i] = row.constraint.mask(logits[i])
                next_ids = _sample(logits, batch.rows)
                for row, token in zip(batch.rows, next_ids.tolist()):
                    if row.constraint is not None:
                        row.constraint.advance(token)
                    self._advance(row, token, tokenizer)
                keep = [i for i, row in enumerate(batch.rows) if row.finish_reason is None]
                for row in batch.rows:
                    if row.finish_reason is not None:
                        self._finish(row)
                if not keep:
                    return False
                if len(keep) < len(batch.rows):
                    batch.select(keep)
                    next_ids = next_ids[torch.tensor(keep)]
                    adapter_names = adapter_names and [adapter_names[i] for i in keep]
                batch.step(model, next_ids, **({"adapter_names": adapter_names} if adapter_names else {}))
                return True
        except Exception as exc:  # noqa: BLE001 - every client in the batch must hear of it
            for row in batch.rows:
                if row.finish_reason is None:
                    row.request.generation.emit("error", exc)
            return False

    def _advance(self, row: _Row, token: int, tokenizer: Any) -> None:
        sampling = row.request.sampling
        if row.request.generation.cancelled:
            row.finish_reason = "cancelled"
            return
        row.tokens.append(token)
        if token in row.end_ids:
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
        generation.emit("done", Result(row.text, row.finish_reason or "stop", row.prompt_tokens, len(row.tokens),
                                       row.request.yielded_s))
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


def request_segments(model: ServedModel, sampling: Sampling) -> tuple | None:
    """What a request's answer is held to: its own constraint, else its model's learned output
    space unless it asked for free text; None: nothing."""
    if sampling.constraint is None and not sampling.free and model.output_space is not None:
        return space_segments(model.output_space)
    return sampling.constraint


def _label_trie(request: _Request, tokenizer: Any, end_id: int) -> LabelTrie | None:
    """The label trie a request is answered from: when it is greedy, held to a label set small
    enough to score, with no stop sequences, and room for the longest label; else None."""
    sampling = request.sampling
    labels = scored_labels(request_segments(request.model, sampling))
    if labels is None or sampling.temperature > 0 or sampling.stop:
        return None
    trie = label_trie(labels, tokenizer, end_id)
    if trie is None or max(map(len, trie.paths)) - 1 > sampling.max_tokens:
        return None
    return trie


def _row_constraint(request: _Request, tokenizer: Any, model: Any, end_ids: list[int]) -> RowState | None:
    segments = request_segments(request.model, request.sampling)
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
