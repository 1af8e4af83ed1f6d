"""The embedded SmolLM2 behind the server gives a real answer (the one slow serving test)."""

from __future__ import annotations

import openai
import pytest

from tunesmith.models.catalog import DEFAULT_BASE_MODEL
from tunesmith.serve import serve_in_background


@pytest.mark.slow
def test_smollm2_answers_through_the_openai_client(smollm2_dir):
    with serve_in_background([DEFAULT_BASE_MODEL]) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        reply = client.chat.completions.create(
            model=DEFAULT_BASE_MODEL, temperature=0, max_tokens=24,
            messages=[{"role": "user", "content": "What is the capital of France? Answer in one word."}])
    assert "Paris" in reply.choices[0].message.content
    assert reply.choices[0].finish_reason == "stop"  # it ends its turn by itself
