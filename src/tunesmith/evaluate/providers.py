"""Where an evaluated model's answers come from: one interface, three kinds.

- local: a base model, a base with a registered PEFT adapter, or a merged/full model,
  answered by batched greedy generation (models/generate.py). Adapters on the same base
  share one loaded copy of it: the base's own answers come from the same weights with the
  adapters switched off.
- openai: any OpenAI-compatible chat-completions endpoint (base URL + key), temperature 0.
- gemini: Gemini through google-genai, a base model ("gemini:gemini-2.5-flash") or a model
  tuned on Vertex AI (its endpoint resource name, project and location from the registry).

A model reference resolves as follows (`resolve_provider`):

    "base"                     the base model of the model being evaluated
    gemini:MODEL               a Gemini model; credentials, project and location as google-genai
                               reads them from the environment (GOOGLE_API_KEY, or
                               GOOGLE_GENAI_USE_VERTEXAI + GOOGLE_CLOUD_PROJECT/LOCATION)
    openai:MODEL               chat completions at --base-url / $OPENAI_BASE_URL, key --api-key / $OPENAI_API_KEY
    a registry id or name      its remote endpoint (Gemini on Vertex AI), else base + adapter, else merged weights
    a catalog name, folder, HF id   a local model
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..data.example import Example
from ..errors import BadInputError, TunesmithError
from ..models.generate import DEFAULT_BATCH_SIZE

REMOTE_CONCURRENCY = 4  # requests in flight to a remote endpoint
CHARS_PER_TOKEN = 3  # a cautious estimate where no tokenizer is at hand


class Provider(Protocol):
    name: str  # the reference as the user wrote it

    def generate(self, examples: list[Example], max_new_tokens: int) -> list[str]: ...

    def count_tokens(self, text: str) -> int: ...


# ------------------------------------------------------------------------------ local


class LocalWeights:
    """One loaded base model (and its tokenizer) with any number of PEFT adapters on it."""

    def __init__(self, source: str):
        self.source = source
        self._model: Any = None
        self._tokenizer: Any = None
        self._adapters: dict[str, str] = {}  # adapter name -> folder

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            from ..models.loading import load_tokenizer

            self._tokenizer = load_tokenizer(self.source)
        return self._tokenizer

    def add_adapter(self, name: str, folder: str) -> None:
        if not (Path(folder) / "adapter_config.json").is_file():
            raise TunesmithError(f"the adapter of {name} is not on this machine ({folder})")
        if name not in self._adapters:
            self._adapters[name] = folder
            if self._model is not None:
                self._attach(name, folder)

    def _load(self):
        if self._model is None:
            from ..models.loading import load_model

            self._model = load_model(self.source)
            for name, folder in self._adapters.items():
                self._attach(name, folder)
        return self._model

    def _attach(self, name: str, folder: str) -> None:
        from peft import PeftModel

        if isinstance(self._model, PeftModel):
            self._model.load_adapter(folder, adapter_name=name)
        else:
            self._model = PeftModel.from_pretrained(self._model, folder, adapter_name=name)

    @contextlib.contextmanager
    def using(self, adapter: str | None) -> Iterator[Any]:
        """The model with `adapter` active, or with every adapter off (the base itself)."""
        model = self._load()
        if not self._adapters:
            yield model
        elif adapter is None:
            with model.disable_adapter():
                yield model
        else:
            model.set_adapter(adapter)
            yield model


@dataclass
class LocalProvider:
    name: str
    weights: LocalWeights
    adapter: str | None = None
    batch_size: int = DEFAULT_BATCH_SIZE

    def generate(self, examples: list[Example], max_new_tokens: int) -> list[str]:
        from ..models.generate import generate_greedy, render_prompt

        tokenizer = self.weights.tokenizer
        prompts = [render_prompt(ex, tokenizer) for ex in examples]
        with self.weights.using(self.adapter) as model:
            return generate_greedy(model, tokenizer, prompts, max_new_tokens, self.batch_size)

    def count_tokens(self, text: str) -> int:
        return len(self.weights.tokenizer(text, add_special_tokens=False)["input_ids"])


# ----------------------------------------------------------------------------- remote


def _remote_map(name: str, call, examples: list[Example]) -> list[str]:
    try:
        with ThreadPoolExecutor(max_workers=REMOTE_CONCURRENCY) as pool:
            return list(pool.map(call, examples))
    except TunesmithError:
        raise
    except Exception as exc:  # the SDKs raise their own error classes: one sentence for the user
        raise TunesmithError(f"{name}: the request failed: {type(exc).__name__}: {exc}",
                             "check the endpoint, the model name and the credentials") from None


@dataclass
class OpenAIProvider:
    name: str
    model: str
    base_url: str | None = None
    api_key: str | None = None

    def generate(self, examples: list[Example], max_new_tokens: int) -> list[str]:
        from openai import OpenAI

        from ..models.generate import prompt_messages

        base_url = self.base_url or os.environ.get("OPENAI_BASE_URL")
        api_key = self.api_key or os.environ.get("OPENAI_API_KEY")
        if not api_key:
            raise BadInputError(f"{self.name}: no API key", "pass --api-key or set OPENAI_API_KEY")
        client = OpenAI(base_url=base_url, api_key=api_key)

        def answer(example: Example) -> str:
            response = client.chat.completions.create(model=self.model, messages=prompt_messages(example),
                                                      temperature=0, max_tokens=max_new_tokens)
            return (response.choices[0].message.content or "").strip()

        return _remote_map(self.name, answer, examples)

    def count_tokens(self, text: str) -> int:
        return math.ceil(len(text) / CHARS_PER_TOKEN)


@dataclass
class GeminiProvider:
    name: str
    model: str  # a model name, or a tuned model's endpoint resource name
    vertexai: bool = False
    project: str | None = None
    location: str | None = None
    base_url: str | None = None
    api_key: str | None = None

    def _client(self):
        from google import genai
        from google.genai import types

        options = types.HttpOptions(base_url=self.base_url) if self.base_url else None
        if self.vertexai:
            return genai.Client(vertexai=True, project=self.project, location=self.location, http_options=options)
        api_key = self.api_key or os.environ.get("GOOGLE_API_KEY") or os.environ.get("GEMINI_API_KEY")
        return genai.Client(api_key=api_key, http_options=options) if api_key else genai.Client(http_options=options)

    def generate(self, examples: list[Example], max_new_tokens: int) -> list[str]:
        from google.genai import types

        from ..train.backends.vertex import genai_contents

        try:
            client = self._client()
        except Exception as exc:  # missing credentials, project or location
            raise BadInputError(f"{self.name}: cannot set up the Gemini client: {exc}",
                                "set GOOGLE_API_KEY, or GOOGLE_GENAI_USE_VERTEXAI=true with "
                                "GOOGLE_CLOUD_PROJECT and GOOGLE_CLOUD_LOCATION") from None

        def answer(example: Example) -> str:
            config = types.GenerateContentConfig(temperature=0, max_output_tokens=max_new_tokens,
                                                 system_instruction=example.system or None)
            response = client.models.generate_content(model=self.model, contents=genai_contents(example), config=config)
            return (response.text or "").strip()

        return _remote_map(self.name, answer, examples)

    def count_tokens(self, text: str) -> int:
        return math.ceil(len(text) / CHARS_PER_TOKEN)


# ---------------------------------------------------------------------------- resolve


@dataclass
class Resolver:
    """Turns model references into providers, sharing loaded local weights between them."""

    base_url: str | None = None
    api_key: str | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    _weights: dict[str, LocalWeights] = field(default_factory=dict)

    def registry_model(self, ref: str):
        """The registered model this reference names, or None."""
        from ..store.queries import get_model

        if ref == "base" or ref.startswith(("gemini:", "openai:")):
            return None
        try:
            return get_model(ref)
        except BadInputError:
            return None

    def provider(self, ref: str, anchor=None) -> Provider:
        """The provider for `ref`; `anchor` (a ModelVersion) gives "base" its meaning."""
        if ref == "base":
            if anchor is None:
                raise BadInputError('"base" names the base model of a registered model, and there is none here',
                                    "name the baseline itself (--baseline MODEL)")
            if anchor.remote_endpoint:
                return self._gemini_base(anchor)
            return self._local(anchor.base_model, name=f"base ({anchor.base_model})")
        if ref.startswith("gemini:"):
            return GeminiProvider(ref, ref.split(":", 1)[1], base_url=self.base_url, api_key=self.api_key)
        if ref.startswith("openai:"):
            return OpenAIProvider(ref, ref.split(":", 1)[1], base_url=self.base_url, api_key=self.api_key)
        model = self.registry_model(ref)
        if model is not None:
            return self._registered(ref, model)
        return self._local(ref, name=ref)

    def _registered(self, ref: str, model) -> Provider:
        spec = model.spec or {}
        if model.remote_endpoint:
            return GeminiProvider(ref, model.remote_endpoint, vertexai=True, project=spec.get("project"),
                                  location=spec.get("location"), base_url=self.base_url)
        if model.adapter_path:
            weights = self._weights_for(model.base_model)
            weights.add_adapter(model.id, model.adapter_path)
            return LocalProvider(ref, weights, adapter=model.id, batch_size=self.batch_size)
        if model.merged_path:
            return self._local(model.merged_path, name=ref)
        raise BadInputError(f"model {model.id} has neither weights nor an endpoint to evaluate")

    def _gemini_base(self, anchor) -> Provider:
        spec = anchor.spec or {}
        return GeminiProvider(f"base ({anchor.base_model})", anchor.base_model, vertexai=True,
                              project=spec.get("project"), location=spec.get("location"), base_url=self.base_url)

    def _local(self, source: str, name: str) -> Provider:
        _check_local(source)
        return LocalProvider(name, self._weights_for(source), batch_size=self.batch_size)

    def _weights_for(self, source: str) -> LocalWeights:
        if source not in self._weights:
            self._weights[source] = LocalWeights(source)
        return self._weights[source]


def _check_local(source: str) -> None:
    """A catalog name, a model folder, or a Hugging Face id in the local cache; else bad input."""
    from ..models.catalog import CATALOG
    from ..models.loading import resolve_model

    if source in CATALOG:
        return
    resolved = resolve_model(source)  # BadInputError for a path that is not a model folder
    if isinstance(resolved, Path):
        return
    from huggingface_hub import try_to_load_from_cache

    if not isinstance(try_to_load_from_cache(resolved, "config.json"), str):
        raise BadInputError(
            f"unknown model {source!r}: not in the registry, not a folder, not a catalog model, "
            "not in the local Hugging Face cache",
            "`tunesmith models list` shows registered models; gemini:MODEL and openai:MODEL name remote ones",
        )

