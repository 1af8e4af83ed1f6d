"""The openai and gemini providers through the official SDKs, against a loopback FastAPI app."""

from __future__ import annotations

import json

import pytest

from tunesmith.errors import TunesmithError
from tunesmith.evaluate import evaluate
from tunesmith.store import queries

from .conftest import fake_endpoints


@pytest.fixture
def oracle(tickets):
    """Reference answer by prompt, for the test split."""
    from tunesmith.data.dataset import load_dataset

    test = load_dataset([tickets]).split("test")
    return {ex.input_text: ex.output_text for ex in test}


@pytest.fixture
def endpoints(oracle, monkeypatch):
    yield from fake_endpoints(monkeypatch, lambda prompt: oracle[prompt])


def test_openai_against_gemini_through_their_sdks(endpoints, tickets):
    fake, url = endpoints
    result = evaluate("openai:tuned-model", baseline="gemini:gemini-2.5-flash", data=tickets,
                      base_url=f"{url}/v1", api_key="test-key", max_new_tokens=64)
    s = result.summary
    n = s["examples"]
    assert n >= 20 and s["kind"] == "template"
    valid = next(row for row in s["metrics"] if row["metric"] == "valid_format")
    assert (valid["model"], valid["baseline"]) == (1.0, 0.0) and valid["p_value"] == pytest.approx(2 * 0.5**n)
    assert s["verdict"] == "better" and "ready for limited production testing" in s["verdict_text"]

    chats = [body for path, body in fake.requests if path.endswith("chat/completions")]
    gemini = [(path, body) for path, body in fake.requests if path.endswith(":generateContent")]
    assert len(chats) == n and len(gemini) == n
    assert chats[0]["temperature"] == 0 and chats[0]["max_tokens"] == 64 and chats[0]["model"] == "tuned-model"
    assert gemini[0][0].endswith("models/gemini-2.5-flash:generateContent")
    assert gemini[0][1]["generationConfig"]["temperature"] == 0
    assert gemini[0][1]["contents"][0]["role"] == "user"
    assert queries.get_eval_run(result.id).baseline_ref == "gemini:gemini-2.5-flash"


def test_a_registered_vertex_model_goes_to_its_endpoint(endpoints, tickets, monkeypatch):
    fake, url = endpoints
    manifest = json.loads((tickets / "manifest.json").read_text())
    queries.record_dataset_version(manifest["dataset_version"], tickets, manifest)
    endpoint = "projects/p1/locations/us-central1/endpoints/123"
    queries.register_model(base_model="gemini-2.5-flash", method="vertex-sft", name="gem-tuned",
                           spec={"project": "p1", "location": "us-central1"}, remote_model="projects/p1/models/9",
                           remote_endpoint=endpoint, dataset_version=manifest["dataset_version"])
    monkeypatch.setenv("GOOGLE_VERTEX_BASE_URL", url)
    from google.oauth2.credentials import Credentials

    # Application default credentials as google-genai looks them up: a token that needs no refresh.
    monkeypatch.setattr("google.auth.default", lambda *a, **k: (Credentials(token="test-token"), "p1"))
    result = evaluate("gem-tuned", limit=3, max_new_tokens=16)
    paths = [path for path, _ in fake.requests]
    assert sum(endpoint in p for p in paths) == 3  # the tuned endpoint, by its resource name
    assert sum("publishers/google/models/gemini-2.5-flash" in p for p in paths) == 3  # the base on the same project
    assert result.summary["baseline"] == "base (gemini-2.5-flash)"


def test_a_failing_endpoint_is_one_sentence(endpoints, tickets):
    with pytest.raises(TunesmithError, match="openai:nope: the request failed: APIConnectionError"):
        evaluate("openai:nope", baseline=None, data=tickets, limit=1, base_url="http://127.0.0.1:1/v1", api_key="k",
                 max_new_tokens=4)  # nothing listens on port 1
