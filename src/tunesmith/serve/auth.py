"""API keys: OpenAI clients send `Authorization: Bearer KEY`, Gemini clients
`x-goog-api-key: KEY` (or `?key=KEY`). Keys are compared in constant time."""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from .errors import ApiError

OPEN_PATHS = frozenset({"/health"})  # a load balancer's probe needs no key


def presented_key(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    authorization = headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return headers.get("x-goog-api-key") or query.get("key") or None


def check_key(expected: str, headers: Mapping[str, str], query: Mapping[str, str]) -> None:
    """Raise 401 unless the request carries `expected`."""
    given = presented_key(headers, query)
    if given is None:
        raise ApiError(401, "no API key given: send 'Authorization: Bearer KEY' or 'x-goog-api-key: KEY'",
                       code="invalid_api_key")
    if not hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8")):
        raise ApiError(401, "the API key is not valid", code="invalid_api_key")
