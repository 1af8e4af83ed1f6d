"""The one model resolver: one precedence for every caller, clear refusals, and evaluation and
serving answering alike for the same model and prompt."""

from __future__ import annotations

import pytest

from tunesmith.data.example import Example, Turn
from tunesmith.errors import BadInputError
from tunesmith.registry.resolver import LocalWeights, RemoteEndpoint, resolve
from tunesmith.store import queries

SPEC = {"project": "p", "location": "europe-west4"}


def register(**fields):
    return queries.register_model(base_model="smollm2-135m-instruct", method="lora", spec=SPEC, **fields)


def test_one_precedence_merged_then_adapter_then_endpoint(tmp_path):
    merged, adapter = tmp_path / "merged", tmp_path / "adapter"
    merged.mkdir(), adapter.mkdir()
    (merged / "config.json").write_text("{}"), (adapter / "adapter_config.json").write_text("{}")
    both = register(merged_path=str(merged), adapter_path=str(adapter), remote_endpoint="projects/p/endpoints/1")
    assert resolve(both.id).target == LocalWeights(str(merged))
    with_adapter = register(adapter_path=str(adapter), remote_endpoint="projects/p/endpoints/1", name="tickets")
    assert resolve("tickets").target == LocalWeights("smollm2-135m-instruct", str(adapter))
    remote = register(remote_endpoint="projects/p/endpoints/1")
    assert resolve(remote.id).target == RemoteEndpoint("projects/p/endpoints/1", "p", "europe-west4")
    assert resolve("smollm2-135m-instruct").target == LocalWeights("smollm2-135m-instruct")
    assert resolve(with_adapter.id).version.id == with_adapter.id


def test_models_without_usable_weights_and_unknown_names_are_refused(tmp_path):
    gone = register(adapter_path=str(tmp_path / "gone"))
    with pytest.raises(BadInputError, match="not on this machine"):
        resolve(gone.id)
    nothing = register(remote_model="projects/p/models/1")
    with pytest.raises(BadInputError, match="no endpoint recorded"):
        resolve(nothing.id)
    with pytest.raises(BadInputError, match="unknown model 'no-such-model'"):
        resolve("no-such-model")


@pytest.mark.slow
def test_evaluation_and_serving_give_the_same_greedy_tokens_and_stop_alike(smollm2_dir):
    import openai

    from tunesmith.evaluate.providers import Resolver
    from tunesmith.serve import serve_in_background

    questions = ["My card was charged twice for one order.", "How do I reset my password?",
                 "Where is my parcel? It is a week late.", "Cancel my subscription, please."]
    examples = [Example(turns=[Turn("user", q)]) for q in questions]
    evaluated = Resolver(batch_size=1).provider("smollm2-135m-instruct").generate(examples, max_new_tokens=48)
    served = []
    with serve_in_background(["smollm2-135m-instruct"]) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused-on-loopback")
        for question in questions:
            reply = client.chat.completions.create(model="smollm2-135m-instruct", temperature=0, max_tokens=48,
                                                   messages=[{"role": "user", "content": question}])
            served.append((reply.choices[0].message.content.strip(), reply.choices[0].finish_reason))
    assert [text for text, _ in served] == evaluated
    assert any(reason == "stop" for _, reason in served)  # answers that ended at the end-of-turn token, in both


@pytest.mark.slow
def test_evaluation_and_serving_pick_the_same_label_from_a_label_set(smollm2_dir):
    import dataclasses

    import openai

    from tunesmith.data.output_space import OutputSpace
    from tunesmith.evaluate.providers import Resolver
    from tunesmith.serve import serve_in_background

    labels = ("billing", "account_access", "delivery", "cancellation", "card_lost", "card_charged_twice")
    questions = ["My card was charged twice for one order.", "How do I reset my password?",
                 "Where is my parcel? It is a week late.", "Cancel my subscription, please."]
    provider = Resolver(batch_size=2).provider("smollm2-135m-instruct")
    provider = dataclasses.replace(provider, space=OutputSpace("labels", labels=labels))
    evaluated = provider.generate([Example(turns=[Turn("user", q)]) for q in questions], max_new_tokens=16)
    with serve_in_background(["smollm2-135m-instruct"]) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused-on-loopback")
        served = [client.chat.completions.create(model="smollm2-135m-instruct", temperature=0, max_tokens=16,
                                                 messages=[{"role": "user", "content": q}],
                                                 extra_body={"guided_choice": list(labels)}).choices[0].message.content
                  for q in questions]
    assert served == evaluated and set(served) <= set(labels)
