"""API errors, in the shape each client SDK parses: OpenAI's and Gemini's.

A handler raises `ApiError(status, message)`; the app renders it for the API the request
came in on, so the official clients raise their own typed errors (openai.NotFoundError,
google.genai.errors.ClientError) with our message."""

from __future__ import annotations

from typing import Any

# OpenAI's error `type` and Gemini's `status` for each HTTP status we answer with.
_OPENAI_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
                 413: "invalid_request_error", 500: "server_error", 502: "server_error", 503: "server_error"}
_GEMINI_STATUSES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 404: "NOT_FOUND",
                    413: "INVALID_ARGUMENT", 500: "INTERNAL", 502: "UNAVAILABLE", 503: "UNAVAILABLE"}


class ApiError(Exception):
    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param  # the offending field, for OpenAI's `param`
        self.code = code  # OpenAI's machine-readable `code` (invalid_api_key, model_not_found, ...)


def openai_error_body(error: ApiError) -> dict[str, Any]:
    return {"error": {"message": error.message, "type": _OPENAI_TYPES.get(error.status, "invalid_request_error"),
                      "param": error.param, "code": error.code}}


def gemini_error_body(error: ApiError) -> dict[str, Any]:
    return {"error": {"code": error.status, "message": error.message,
                      "status": _GEMINI_STATUSES.get(error.status, "INVALID_ARGUMENT")}}


def error_body(api: str, error: ApiError) -> dict[str, Any]:
    return gemini_error_body(error) if api == "gemini" else openai_error_body(error)


def api_of_path(path: str) -> str:
    """Which API a request path belongs to: Gemini's are /v1beta/models/NAME:METHOD, or
    /v1/... as google-genai 3 calls them by default."""
    return "gemini" if path.startswith("/v1beta/") or (path.startswith("/v1/models/") and ":" in path) else "openai"
