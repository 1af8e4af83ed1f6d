"""Answers from a label set by scoring every label whole: the three-pass search finds exactly
the label a full scoring of every label finds (property-based over random label sets that share
prefixes, on a model with random weights), evaluation answers label rows this way beside free
and template rows, and only a label set is scored."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tunesmith.data.example import Example, Turn
from tunesmith.models.chat import pad_token_id, render_prompt, stop_token_ids
from tunesmith.models.constrain import Free, Text, label_segments
from tunesmith.models.generate import generate_greedy
from tunesmith.models.label_scoring import LabelTrie, best_labels, scored_labels

TEXTS = ["where is my card?", "refund please", "my top-up failed twice today", "hi", "the app crashes"]
# Words that share beginnings, so that labels share trie prefixes (card_arrival, card_linking, ...).
_label = st.lists(st.sampled_from(["card", "card_", "top", "top_up", "transfer", "x", "é", "ing", "_fee", "2"]),
                  min_size=1, max_size=4).map("".join)


def _full_scores(model, prompt, labels, tokenizer, end_id):
    """Every label's log-probability, each read in a forward pass of its own."""
    import torch

    scores = []
    for label in labels:
        sequence = tokenizer(label, add_special_tokens=False)["input_ids"] + [end_id]
        with torch.inference_mode():
            logits = model(input_ids=torch.tensor([prompt + sequence])).logits[0].float()
        log_probs = torch.log_softmax(logits, dim=-1)
        scores.append(sum(log_probs[len(prompt) - 1 + i, token].item() for i, token in enumerate(sequence)))
    return scores


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(labels=st.lists(_label, min_size=1, max_size=10, unique=True))
def test_the_best_label_is_the_one_full_scoring_finds(random_model, labels):
    import torch

    model, tokenizer = random_model
    end_id = stop_token_ids(tokenizer, model.generation_config)[0]
    prompts = [tokenizer(render_prompt(Example([Turn("user", t)]), tokenizer), add_special_tokens=False)["input_ids"]
               for t in TEXTS]
    trie = LabelTrie.build(labels, tokenizer, end_id)
    with torch.inference_mode():
        best = best_labels(model, prompts, trie, pad_token_id(tokenizer, model.generation_config))
    for prompt, chosen in zip(prompts, best):
        scores = _full_scores(model, prompt, labels, tokenizer, end_id)
        assert scores[chosen] == pytest.approx(max(scores), abs=1e-4)


def test_the_trie_reads_a_shared_prefix_once(random_model):
    _, tokenizer = random_model
    labels = ["card_arrival", "card_linking", "card_arrival_late"]
    trie = LabelTrie.build(labels, tokenizer, end_id=0)
    sequences = [tokenizer(label, add_special_tokens=False)["input_ids"] + [0] for label in labels]
    assert len(trie) < sum(map(len, sequences))
    assert [[trie.tokens[node] for node in path] for path in trie.paths] == sequences
    for node, parent in enumerate(trie.parents):
        assert parent < node and trie.depths[node] == (1 if parent < 0 else trie.depths[parent] + 1)
        assert set(trie.subtree(node)) == {n for n in range(len(trie)) if trie.ancestry[n, node]}


def test_evaluation_scores_label_rows_beside_free_and_template_rows(random_model):
    import torch

    model, tokenizer = random_model
    labels = ("card_arrival", "card_linking", "top_up_failed", "refund")
    prompts = [render_prompt(Example([Turn("user", t)]), tokenizer) for t in TEXTS]
    template = (Text(b"Category:"), Free(frozenset(range(97, 123))), Text(b"\n"))
    constraints = [label_segments(labels), None, template, label_segments(labels), None]
    answers = generate_greedy(model, tokenizer, prompts, max_new_tokens=12, batch_size=2, constraints=constraints)
    trie = LabelTrie.build(labels, tokenizer, stop_token_ids(tokenizer, model.generation_config)[0])
    encoded = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    with torch.inference_mode():
        best = best_labels(model, [encoded[0], encoded[3]], trie, pad_token_id(tokenizer, model.generation_config))
    assert [answers[0], answers[3]] == [trie.labels[i] for i in best]
    assert answers[2].startswith("Category:")
    free = generate_greedy(model, tokenizer, [prompts[1], prompts[4]], max_new_tokens=12, batch_size=2)
    assert [answers[1], answers[4]] == free  # the scored rows change nothing for their neighbours


def test_only_a_label_set_is_scored():
    assert scored_labels(label_segments(["b", "a"])) == ("a", "b")
    assert scored_labels(None) is None
    assert scored_labels((Text(b"Category:"),) + label_segments(["a"])) is None
