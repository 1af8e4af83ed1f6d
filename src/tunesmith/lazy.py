"""Modules that load on first use.

SQLAlchemy with the store's mapped classes takes about a quarter of a second to import, numpy
and jinja2 a tenth between them, and most public names and CLI commands need none of them
until they run. `lazy_module(name)` stands for a module until something is read from it; then
it imports the module and forwards every read and write to it.

Import the store's modules as modules (`from ..store import queries`, then `queries.get_model`):
`from ..store.queries import get_model` works too, but loads SQLAlchemy at once.
"""

from __future__ import annotations

import importlib
import types
from typing import Any


class LazyModule(types.ModuleType):
    """A stand-in for the module `__name__`, imported on the first attribute read.

    The import goes through `importlib.import_module`, whose per-module locks make concurrent
    first reads from several threads safe; afterwards the module sits in `sys.modules` like any
    other, so patching `tunesmith.store.queries.get_model` in a test reaches callers that hold
    this stand-in too."""

    def _module(self) -> types.ModuleType:
        return importlib.import_module(self.__name__)

    @property
    def __dict__(self) -> dict[str, Any]:  # type: ignore[override]
        # vars() and what reads it (pytest's monkeypatch, to know what to restore) see the module's.
        return self._module().__dict__

    def __getattr__(self, name: str) -> Any:  # called only for names the stand-in lacks: all but __name__ & co
        return getattr(self._module(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._module(), name, value)

    def __delattr__(self, name: str) -> None:
        delattr(self._module(), name)

    def __dir__(self) -> list[str]:
        return dir(self._module())

    def __repr__(self) -> str:
        return f"<lazy module {self.__name__!r}>"


def lazy_module(name: str) -> types.ModuleType:
    """`name` (absolute), imported when first used."""
    return LazyModule(name)


# Third-party modules most floors use in a few functions only.
numpy = lazy_module("numpy")
jinja2 = lazy_module("jinja2")
yaml = lazy_module("yaml")
