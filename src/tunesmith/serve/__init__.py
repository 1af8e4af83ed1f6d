"""Serving: an OpenAI- and Gemini-compatible API for base and tuned models, with batching,
streaming, keys, metrics and a request log. See docs/serving.md.

Importing this package is light; FastAPI, uvicorn and torch load when a server starts."""

from __future__ import annotations

from .config import ServeConfig
from .log import FromLogSummary, dataset_from_log, parse_since
from .models import ServedModel, resolve_models
from .server import serve, serve_in_background

__all__ = [
    "FromLogSummary",
    "ServeConfig",
    "ServedModel",
    "dataset_from_log",
    "parse_since",
    "resolve_models",
    "serve",
    "serve_in_background",
]
