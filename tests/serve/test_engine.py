"""The engine's continuous batching: newcomers join a running batch between decoding steps,
finished rows leave at once, and a row's greedy answer is the same however it was batched."""

from __future__ import annotations

import asyncio

import pytest

from tunesmith.data.example import Turn
from tunesmith.serve.engine import Engine, Result, Sampling
from tunesmith.serve.models import ModelPool, ServedModel

PROMPTS = ["hello there", "where is my parcel? it has been two weeks", "refund", "the app crashes when I log in"]


@pytest.fixture(scope="module")
def models(tiny_model_dir, adapter_dir):
    return (ServedModel("base", ("base",), str(tiny_model_dir)),
            ServedModel("tuned", ("tuned",), str(tiny_model_dir), str(adapter_dir)))


@pytest.fixture(scope="module")
def engine(models):
    engine = Engine(ModelPool(device="cpu", dtype="float32"), batch_wait_ms=0)
    engine.start()
    yield engine
    engine.stop()


def _greedy(max_tokens: int) -> Sampling:
    return Sampling(max_tokens=max_tokens, temperature=0)


async def _alone(engine: Engine, model: ServedModel, prompt: str, max_tokens: int) -> Result:
    return await engine.submit(model, None, [Turn("user", prompt)], _greedy(max_tokens)).result()


def test_newcomers_join_a_running_batch_and_answer_as_they_would_alone(engine, models):
    base, _ = models

    async def scenario():
        alone = [await _alone(engine, base, p, 6) for p in PROMPTS[1:]]
        long_alone = await _alone(engine, base, PROMPTS[0], 60)
        finished: list[str] = []

        async def run(name: str, generation) -> Result:
            result = await generation.result()
            finished.append(name)
            return result

        long = engine.submit(base, None, [Turn("user", PROMPTS[0])], _greedy(60))
        first = await long.next_event()  # the long request is decoding now
        assert first[0] == "delta"
        shorts = [engine.submit(base, None, [Turn("user", p)], _greedy(6)) for p in PROMPTS[1:]]
        results = await asyncio.gather(*(run(f"short{i}", g) for i, g in enumerate(shorts)), run("long", long))
        return alone, long_alone, first[1], finished, results

    alone, long_alone, first_delta, finished, results = asyncio.run(scenario())
    assert long_alone.completion_tokens == 60  # the random tiny model never ends a turn by itself
    # The short requests joined the running batch and left before the long one ended.
    assert finished[-1] == "long"
    assert [r.text for r in results[:-1]] == [r.text for r in alone]
    assert results[-1].text == long_alone.text and long_alone.text.startswith(first_delta)


def test_two_models_decode_side_by_side(engine, models):
    base, tuned = models

    async def scenario():
        alone = [await _alone(engine, m, p, 12) for m in models for p in PROMPTS]
        together = [engine.submit(m, None, [Turn("user", p)], _greedy(12)) for m in models for p in PROMPTS]
        return alone, await asyncio.gather(*(g.result() for g in together))

    alone, together = asyncio.run(scenario())
    assert [r.text for r in together] == [r.text for r in alone]
    assert [r.text for r in alone[:len(PROMPTS)]] != [r.text for r in alone[len(PROMPTS):]]  # the adapter matters


def test_a_background_request_yields_to_callers_and_answers_as_it_would_alone(engine, models):
    base, tuned = models

    async def scenario():
        shadow_alone = await _alone(engine, tuned, PROMPTS[0], 60)
        callers_alone = [await _alone(engine, base, p, 6) for p in PROMPTS[1:]]
        finished: list[str] = []

        async def run(name: str, generation) -> Result:
            result = await generation.result()
            finished.append(name)
            return result

        shadow = engine.submit(tuned, None, [Turn("user", PROMPTS[0])], _greedy(60), background=True)
        assert (await shadow.next_event())[0] == "delta"  # the shadow is decoding: nobody else is here
        callers = [engine.submit(base, None, [Turn("user", p)], _greedy(6)) for p in PROMPTS[1:]]
        results = await asyncio.gather(run("shadow", shadow), *(run(f"caller{i}", g) for i, g in enumerate(callers)))
        return shadow_alone, callers_alone, finished, results

    shadow_alone, callers_alone, finished, (shadow, *callers) = asyncio.run(scenario())
    assert finished[-1] == "shadow"  # paused while the callers were served, then finished
    assert [r.text for r in callers] == [r.text for r in callers_alone]
    assert shadow.text == shadow_alone.text  # a paused batch keeps its cache: the same answer
    assert shadow.yielded_s > 0 and shadow_alone.yielded_s == 0


def test_background_requests_past_the_queue_are_skipped_and_counted(models, monkeypatch):
    from tunesmith.serve import engine as engine_module
    from tunesmith.serve.engine import Skipped
    from tunesmith.serve.metrics import Metrics

    base, tuned = models
    monkeypatch.setattr(engine_module, "BACKGROUND_QUEUE", 1)  # one waiting per batch row
    metrics = Metrics()
    engine = Engine(ModelPool(device="cpu", dtype="float32"), batch_wait_ms=0, max_batch_size=2, metrics=metrics)
    engine.start()

    async def scenario():
        caller = engine.submit(base, None, [Turn("user", PROMPTS[0])], _greedy(40))
        await caller.next_event()  # a caller holds the engine busy
        shadows = [engine.submit(tuned, None, [Turn("user", p)], _greedy(4), background=True) for p in PROMPTS]
        outcomes = await asyncio.gather(*(g.result() for g in shadows), return_exceptions=True)
        await caller.result()
        return outcomes

    try:
        outcomes = asyncio.run(scenario())
    finally:
        engine.stop()
    skipped = [o for o in outcomes if isinstance(o, Skipped)]
    assert len(skipped) == 2 and all(isinstance(o, Result) for o in outcomes[2:])  # the oldest two went
    assert 'tunesmith_background_skipped_total{model="tuned"} 2' in metrics.render()


def test_mixed_adapter_batches_answer_as_each_model_would_alone(models):
    """With mixed adapters, rows of the base and of an adapter on it decode in one batch (PEFT's
    adapter_names per row)."""
    from tunesmith.serve.metrics import Metrics

    base, tuned = models
    metrics = Metrics()
    engine = Engine(ModelPool(device="cpu", dtype="float32"), batch_wait_ms=20, metrics=metrics, mixed_adapters=True)
    engine.start()

    async def scenario():
        alone = [await _alone(engine, m, p, 8) for p in PROMPTS for m in models]
        together = [engine.submit(m, None, [Turn("user", p)], _greedy(8)) for p in PROMPTS for m in models]
        return alone, await asyncio.gather(*(g.result() for g in together))

    try:
        alone, together = asyncio.run(scenario())
    finally:
        engine.stop()
    assert [r.text for r in together] == [r.text for r in alone]
    assert [r.text for r in alone[0::2]] != [r.text for r in alone[1::2]]  # the adapter matters
    rendered = metrics.render()  # the eight rows decoded together: steps of more than one row were seen
    ones = float(rendered.split('tunesmith_batch_size_bucket{le="1"} ')[1].split()[0])
    assert float(rendered.split("tunesmith_batch_size_count ")[1].split()[0]) - ones >= 7
