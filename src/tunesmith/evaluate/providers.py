"""Where an evaluated model's answers come from: one interface, three kinds.

- local: a base model, a base with a registered PEFT adapter, or a merged/full model,
  answered by batched greedy generation (models/generate.py, prompts and stops by models/chat.py). Adapters on the same base
  share one loaded copy of it: the base's own answers come from the same weights with the
  adapters switched off.
- llama.cpp (`engine="llama.cpp"`, or "auto" where it is the faster): a local model answered
  by llama.cpp's llama-server on its GGUF file (exported once, f16, and cached; the base
  model too, so both sides of a comparison run at the same precision), the prompt rendered
  here by the same chat renderer, an output space sent as a GBNF grammar.
- openai: any OpenAI-compatible chat-completions endpoint (base URL + key), temperature 0.
- Output spaces: a registered model whose training data had one (labels, a template, JSON
  fields) answers held to it, unless free: local models by constrained decoding
  (models/constrain.py), Gemini by a response schema (an enum of labels, a JSON object).
- gemini: Gemini through google-genai, a base model ("gemini:gemini-2.5-flash") or a model
  tuned on Vertex AI (its endpoint resource name, project and location from the registry).

A model reference resolves as follows (`resolve_provider`):

    "base"                     the base model of the model being evaluated
    gemini:MODEL               a Gemini model; credentials, project and location as google-genai
                               reads them from the environment (GOOGLE_API_KEY, or
                               GOOGLE_GENAI_USE_VERTEXAI + GOOGLE_CLOUD_PROJECT/LOCATION)
    openai:MODEL               chat completions at --base-url / $OPENAI_BASE_URL, key --api-key / $OPENAI_API_KEY
    anything else              the registry's one resolver (registry/resolver.py): a registered
                               model (merged weights, else base + adapter, else its Vertex AI
                               endpoint), else a base model (catalog name, folder, cached HF id)
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..data.example import Example
from ..data.output_space import OutputSpace
from ..errors import BadInputError, TunesmithError
from ..hardware import inference_device
from ..models.chat import prompt_messages, render_prompt
from ..models.constrain import gbnf, space_segments
from ..models.gemini import genai_client, genai_contents, response_schema_config
from ..models.generate import DEFAULT_BATCH_SIZE, generate_greedy
from ..models.llama_server import LlamaServer, choose_engine, find_llama_server
from ..models.loading import INFERENCE_WEIGHTS, load_for_inference, load_tokenizer
from ..registry.export import gguf_for_llama_cpp
from ..registry.resolver import ResolvedModel, model_output_space, resolve
from ..store import queries

REMOTE_CONCURRENCY = 4  # requests in flight to a remote endpoint
CHARS_PER_TOKEN = 3  # a cautious estimate where no tokenizer is at hand


class Provider(Protocol):
    name: str  # the reference as the user wrote it
    space: OutputSpace | None  # answers are held to it (None: free)

    def generate(self, examples: list[Example], max_new_tokens: int) -> list[str]: ...

    def count_tokens(self, text: str) -> int: ...


# ------------------------------------------------------------------------------ local


class LoadedBase:
    """One loaded base model (and its tokenizer) with any number of PEFT adapters on it."""

    def __init__(self, source: str, weights: str = "auto"):
        self.source = source
        self.weights = weights  # models/loading.py INFERENCE_WEIGHTS: auto, fp32, bf16 or int8
        self._model: Any = None
        self._tokenizer: Any = None
        self._adapters: dict[str, str] = {}  # adapter name -> folder

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self.source)
        return self._tokenizer

    def add_adapter(self, name: str, folder: str) -> None:
        if name not in self._adapters:
            self._adapters[name] = folder
            if self._model is not None:
                self._attach(name, folder)

    def _load(self):
        if self._model is None:
            # As serving loads it (serve/models.py), so evaluated = served.
            self._model = load_for_inference(self.source, inference_device(), self.weights)
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
    weights: LoadedBase
    adapter: str | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    space: OutputSpace | None = None

    def generate(self, examples: list[Example], max_new_tokens: int) -> list[str]:
        tokenizer = self.weights.tokenizer
        prompts = [render_prompt(ex, tokenizer) for ex in examples]
        constraints = [space_segments(self.space)] * len(prompts) if self.space is not None else None
        with self.weights.using(self.adapter) as model:
            return generate_greedy(model, tokenizer, prompts, max_new_tokens, self.batch_size, constraints)

    def count_tokens(self, text: str) -> int:
        return len(self.weights.tokenizer(text, add_special_tokens=False)["input_ids"])


@dataclass
class LlamaCppProvider:
    name: str
    server: LlamaServer
    tokenizer: Any  # the model's own: renders the prompt as the local engine does
    space: OutputSpace | None = None  # sent as a GBNF grammar: llama.cpp holds answers to it

    def generate(self, examples: list[Example], max_new_tokens: int) -> list[str]:
        prompts = [render_prompt(ex, self.tokenizer) for ex in examples]
        grammar = gbnf(space_segments(self.space)) if self.space is not None else None
        with ThreadPoolExecutor(max_workers=self.server.parallel) as pool:  # its slots batch continuously
            return [text.strip() for text in pool.map(lambda p: self.server.complete(p, max_new_tokens, grammar),
                                                      prompts)]

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])


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
    space: OutputSpace | None = None  # not sent: OpenAI's API has no schema for labels or text templates

    def generate(self, examples: list[Example], max_new_tokens: int) -> list[str]:
        from openai import OpenAI

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
    space: OutputSpace | None = None

    def _client(self):
        return genai_client(self.project, self.location, vertexai=self.vertexai, api_key=self.api_key,
                            base_url=self.base_url)

    def generate(self, examples: list[Example], max_new_tokens: int) -> list[str]:
        from google.genai import types

        try:
            client = self._client()
        except Exception as exc:  # missing credentials, project or location
            raise BadInputError(f"{self.name}: cannot set up the Gemini client: {exc}",
                                "set GOOGLE_API_KEY, or GOOGLE_GENAI_USE_VERTEXAI=true with "
                                "GOOGLE_CLOUD_PROJECT and GOOGLE_CLOUD_LOCATION") from None

        def answer(example: Example) -> str:
            config = types.GenerateContentConfig(temperature=0, max_output_tokens=max_new_tokens,
                                                 system_instruction=example.system or None,
                                                 **response_schema_config(self.space))
            response = client.models.generate_content(model=self.model, contents=genai_contents(example), config=config)
            text = (response.text or "").strip()
            return self.space.render(text) if self.space is not None else text

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
    free: bool = False  # True: no model is held to its output space
    weights: str = "auto"  # how local models hold their weights (models/loading.py INFERENCE_WEIGHTS)
    engine: str = "local"  # local | llama.cpp | auto (models/llama_server.py choose_engine)
    llama_server: str | None = None  # the llama-server binary (default: the one on PATH)
    _weights: dict[str, LoadedBase] = field(default_factory=dict)
    _servers: dict[str, LlamaServer] = field(default_factory=dict)

    def __post_init__(self):
        if self.weights not in INFERENCE_WEIGHTS:  # before any data is read or model loaded
            raise BadInputError(f"unknown weights {self.weights!r}", f"choose one of {', '.join(INFERENCE_WEIGHTS)}")
        self._engine = choose_engine(self.engine, self.llama_server, self.weights)

    @property
    def engine_used(self) -> str:
        """What generated for local models ("auto" made concrete)."""
        return self._engine

    def close(self) -> None:
        """Stop the llama-servers this resolver started."""
        for server in self._servers.values():
            server.stop()
        self._servers.clear()

    def __enter__(self) -> Resolver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def registry_model(self, ref: str):
        """The registered model this reference names, or None."""
        if ref == "base" or ref.startswith(("gemini:", "openai:")):
            return None
        try:
            return queries.get_model(ref)
        except BadInputError:
            return None

    def provider(self, ref: str, anchor=None) -> Provider:
        """The provider for `ref`; `anchor` (a ModelVersion) gives "base" its meaning."""
        if ref == "base":
            if anchor is None:
                raise BadInputError('"base" names the base model of a registered model, and there is none here',
                                    "name the baseline itself (--baseline MODEL)")
            if anchor.remote_endpoint:
                spec = anchor.spec or {}
                return GeminiProvider(f"base ({anchor.base_model})", anchor.base_model, vertexai=True,
                                      project=spec.get("project"), location=spec.get("location"), base_url=self.base_url)
            return self._local(resolve(anchor.base_model), name=f"base ({anchor.base_model})")
        if ref.startswith("gemini:"):
            return GeminiProvider(ref, ref.split(":", 1)[1], base_url=self.base_url, api_key=self.api_key)
        if ref.startswith("openai:"):
            return OpenAIProvider(ref, ref.split(":", 1)[1], base_url=self.base_url, api_key=self.api_key)
        return self._local(resolve(ref), name=ref)

    def _local(self, model: ResolvedModel, name: str) -> Provider:
        space = None if self.free else model.output_space
        if model.remote is not None:
            return GeminiProvider(name, model.remote.endpoint, vertexai=True, project=model.remote.project,
                                  location=model.remote.location, base_url=self.base_url, space=space)
        if self._engine == "llama.cpp":
            return self._llama_cpp(model, name, space)
        weights = self._weights_for(model.local.base)
        adapter = None
        if model.local.adapter_path:
            adapter = model.version.id
            weights.add_adapter(adapter, model.local.adapter_path)
        return LocalProvider(name, weights, adapter=adapter, batch_size=self.batch_size, space=space)

    def _llama_cpp(self, model: ResolvedModel, name: str, space: OutputSpace | None) -> LlamaCppProvider:
        source = model.version.id if model.version is not None else model.ref
        if source not in self._servers:
            gguf = gguf_for_llama_cpp(source, model.local, embedded_q4=False)
            self._servers[source] = LlamaServer(find_llama_server(self.llama_server), gguf, name=name,
                                                parallel=self.batch_size).start()
        return LlamaCppProvider(name, self._servers[source], load_tokenizer(model.local.base), space)

    def output_space(self, anchor) -> OutputSpace | None:
        """A registered model's output space (for reporting when it answers free)."""
        return model_output_space(anchor)

    def unconstrained(self, provider: Provider) -> Provider:
        """The same model answering free."""
        return dataclasses.replace(provider, space=None)

    def _weights_for(self, source: str) -> LoadedBase:
        if source not in self._weights:
            self._weights[source] = LoadedBase(source, self.weights)
        return self._weights[source]

