"""Which models a server answers for, and the pool that keeps their weights loaded.

A served name is a registry id, a registry alias, or a base model (a catalog name, a local
folder or a Hugging Face id), resolved by the registry's one resolver. A model tuned on Vertex AI has no weights here: it is served
by forwarding its requests to its endpoint (proxy.py), and the pool never sees it. Adapters on one base share its weights: the base is loaded
once, on first use; each adapter is added to it with PEFT's `load_adapter` on first use and
picked per batch with `set_adapter` (base requests run inside `disable_adapter()`). When
more than `max_adapters` adapters are loaded, or the weights pass the memory budget, the
least recently used adapter (then base) is dropped.

The pool is used from the engine's thread only, so it needs no lock.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..data.output_space import OutputSpace
from ..errors import BadInputError, TunesmithError
from ..hardware import inference_device
from ..models.catalog import DEFAULT_BASE_MODEL
from ..models.loading import check_inference_weights, load_for_inference, load_tokenizer
from ..registry.resolver import RemoteEndpoint, ResolvedModel, resolve, resolve_version
from ..store import queries

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from .metrics import Metrics


@dataclass(frozen=True)
class ServedModel:
    name: str  # how /v1/models lists it: the alias, else the registry id, else the base model
    names: tuple[str, ...]  # every name a client may use for it
    base: str  # the weights to load: a base model, or a merged model's folder
    adapter_path: str | None = None  # a PEFT adapter on `base`
    model_id: str | None = None  # the registry id
    base_model: str | None = None  # the base it was tuned from (lineage for /v1/models)
    created_at: int = 0  # unix seconds
    remote: RemoteEndpoint | None = None  # set for a model served by its Vertex AI endpoint, not from `base`
    output_space: OutputSpace | None = None  # its training data's: answers are held to it unless a request says otherwise


def resolve_model_name(name: str) -> ServedModel:
    """A registry id, alias or id prefix, else a base model (registry/resolver.py). Raises
    BadInputError for neither, or for a registered model without weights on this machine."""
    return served(resolve(name))


def served(model: ResolvedModel) -> ServedModel:
    version = model.version
    if version is None:
        return ServedModel(name=model.ref, names=(model.ref,), base=model.ref)
    names = tuple(n for n in (version.name, version.id) if n)
    common = dict(name=names[0], names=names, model_id=version.id, base_model=version.base_model,
                  created_at=int(version.created_at.timestamp()), output_space=model.output_space)
    if model.remote is not None:
        return ServedModel(base=version.base_model, remote=model.remote, **common)
    return ServedModel(base=model.local.base, adapter_path=model.local.adapter_path, **common)


def default_models() -> tuple[list[ServedModel], list[str]]:
    """With no names given: the embedded base model and every registered model with weights
    on this machine or an endpoint on Vertex AI; and why each other registered model was left out."""
    models = [ServedModel(name=DEFAULT_BASE_MODEL, names=(DEFAULT_BASE_MODEL,), base=DEFAULT_BASE_MODEL)]
    skipped = []
    for version in queries.list_models(limit=1000):
        try:
            models.append(served(resolve_version(version)))
        except BadInputError as exc:
            skipped.append(exc.message)
    return models, skipped


def resolve_models(names: list[str]) -> tuple[list[ServedModel], list[str]]:
    """The models to serve, and the registered models left out (only with no names given)."""
    if not names:
        return default_models()
    models = [resolve_model_name(name) for name in names]
    taken: dict[str, str] = {}
    for model in models:
        for name in model.names:
            if taken.setdefault(name, model.name) != model.name:
                raise BadInputError(f"the name {name!r} is given twice")
    return models, []


DTYPE_WEIGHTS = {"auto": "auto", "float32": "fp32", "bfloat16": "bf16"}


@dataclass
class _Base:
    model: Any  # a PreTrainedModel, or a PeftModel around it once an adapter is loaded
    tokenizer: PreTrainedTokenizerBase
    weight_bytes: int
    adapters: dict[str, str] = field(default_factory=dict)  # adapter path -> PEFT adapter name


class ModelPool:
    def __init__(self, max_adapters: int = 8, memory_budget_gb: float | None = None, device: str = "auto",
                 dtype: str = "auto", metrics: Metrics | None = None, weights: str = "auto"):
        self.max_adapters = max_adapters
        self.memory_budget_bytes = None if memory_budget_gb is None else int(memory_budget_gb * 1e9)
        self.device = inference_device() if device == "auto" else device
        # weights (auto, fp32, bf16, int8: models/loading.py) wins; an explicit dtype names the same two floats
        self.weights = weights if weights != "auto" else DTYPE_WEIGHTS.get(dtype, dtype)
        check_inference_weights(self.weights, self.device)
        self.metrics = metrics
        self._bases: OrderedDict[str, _Base] = OrderedDict()  # least recently used first
        self._adapters: OrderedDict[tuple[str, str], int] = OrderedDict()  # (base, path) -> bytes, LRU first
        self._adapter_count = 0  # names PEFT adapters a0, a1, ...: a path is no valid adapter name
        self.loads = 0  # adapters and bases loaded so far (tests watch eviction through it)

    def tokenizer(self, base: str) -> PreTrainedTokenizerBase:
        return self._base(base).tokenizer

    @contextmanager
    def use(self, served: ServedModel) -> Iterator[tuple[PreTrainedModel, PreTrainedTokenizerBase]]:
        """The model with `served`'s adapter active (none for a base), and its tokenizer."""
        base = self._base(served.base)
        if served.adapter_path is None:
            context = base.model.disable_adapter() if base.adapters else nullcontext()
        else:
            adapter = self._adapter(served.base, base, served.adapter_path)  # may wrap base.model in a PeftModel
            base.model.set_adapter(adapter)
            context = nullcontext()
        with context:
            yield base.model, base.tokenizer

    @contextmanager
    def use_mixed(self, served: list[ServedModel]) -> Iterator[tuple[PreTrainedModel, PreTrainedTokenizerBase, dict]]:
        """One base with the adapters of every model in `served` loaded, for PEFT's mixed-adapter batch:
        the model, its tokenizer, and adapter path -> PEFT adapter name ("__base__": no adapter)."""
        base_name = served[0].base
        base = self._base(base_name)
        paths = sorted({m.adapter_path for m in served if m.adapter_path is not None})
        names = {path: self._adapter(base_name, base, path) for path in paths}
        if any(base.adapters.get(path) != name for path, name in names.items()):
            raise TunesmithError(f"{len(paths)} adapters do not fit in this server's --max-adapters at once")
        base.model.set_adapter(names[paths[0]])  # PEFT applies per-row adapters only with one enabled
        yield base.model, base.tokenizer, {None: "__base__", **names}

    def loaded(self) -> dict[str, list[str]]:
        """Loaded bases and the adapter paths on each."""
        return {name: list(base.adapters) for name, base in self._bases.items()}

    def _base(self, name: str) -> _Base:
        if name in self._bases:
            self._bases.move_to_end(name)
            return self._bases[name]
        model = load_for_inference(name, self.device, self.weights)
        base = _Base(model, load_tokenizer(name), _parameter_bytes(model.parameters()))
        self._bases[name] = base
        self.loads += 1
        self._evict(keep_base=name)
        self._report()
        return base

    def _adapter(self, base_name: str, base: _Base, path: str) -> str:
        key = (base_name, path)
        if path in base.adapters:
            self._adapters.move_to_end(key)
            return base.adapters[path]
        from peft import PeftModel

        adapter = f"a{self._adapter_count}"
        self._adapter_count += 1
        try:
            if base.adapters:
                base.model.load_adapter(path, adapter_name=adapter)
            else:
                base.model = PeftModel.from_pretrained(base.model, path, adapter_name=adapter)
        except (OSError, ValueError, RuntimeError) as exc:
            raise TunesmithError(f"cannot load the adapter {path} onto {base_name}: {exc}") from exc
        base.model.eval()
        base.adapters[path] = adapter
        self._adapters[key] = _parameter_bytes(p for n, p in base.model.named_parameters() if f".{adapter}." in n)
        self.loads += 1
        self._evict(keep_base=base_name, keep_adapter=key)
        self._report()
        return adapter

    def _evict(self, keep_base: str, keep_adapter: tuple[str, str] | None = None) -> None:
        while len(self._adapters) > self.max_adapters or self._over_budget():
            victim = next((key for key in self._adapters if key != keep_adapter), None)
            if victim is not None:
                self._drop_adapter(victim)
                continue
            base = next((name for name in self._bases if name != keep_base), None)
            if base is None:
                return  # what this request needs does not fit: serve it anyway
            for key in [k for k in self._adapters if k[0] == base]:
                del self._adapters[key]
            del self._bases[base]

    def _drop_adapter(self, key: tuple[str, str]) -> None:
        base_name, path = key
        base = self._bases[base_name]
        adapter = base.adapters.pop(path)
        del self._adapters[key]
        if base.adapters:
            with warnings.catch_warnings():  # "adapter was active, now deleted": use() sets one before each batch
                warnings.simplefilter("ignore", UserWarning)
                base.model.delete_adapter(adapter)
        else:  # PEFT cannot delete a model's last adapter: take the LoRA layers out instead
            base.model = base.model.unload()

    def _over_budget(self) -> bool:
        if self.memory_budget_bytes is None:
            return False
        used = sum(b.weight_bytes for b in self._bases.values()) + sum(self._adapters.values())
        return used > self.memory_budget_bytes

    def _report(self) -> None:
        if self.metrics is not None:
            self.metrics.set("tunesmith_loaded_bases", "Base models with weights loaded.", len(self._bases))
            self.metrics.set("tunesmith_loaded_adapters", "LoRA adapters loaded.", len(self._adapters))


def _parameter_bytes(parameters: Any) -> int:
    return sum(p.numel() * p.element_size() for p in parameters)
