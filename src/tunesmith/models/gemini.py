"""Gemini through google-genai, the one place for it: the client, a conversation as Gemini
contents, and Google Cloud failures turned into sentences a user can act on. Managed tuning
(train/backends/vertex.py), evaluation (evaluate/providers.py) and the serving proxy
(serve/proxy.py) all go through here.

Credentials never appear in error messages: google-auth, google-cloud-storage and google-genai
put the service's answer and the URL in their exceptions, not the token or the key."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..errors import TunesmithError
from .chat import prompt_messages

if TYPE_CHECKING:
    from ..data.example import Example
    from ..data.output_space import OutputSpace

TRANSIENT_HTTP_CODES = (408, 429, 500, 502, 503, 504)


def genai_client(project: str | None = None, location: str | None = None, *, vertexai: bool = True,
                 api_key: str | None = None, base_url: str | None = None):
    """A google-genai client. Vertex mode (tuning, tuned endpoints): Application Default
    Credentials, project and location falling back to GOOGLE_CLOUD_PROJECT / GOOGLE_CLOUD_LOCATION,
    GOOGLE_VERTEX_BASE_URL overriding the endpoint (the SDK reads it). Otherwise the Gemini API
    with `api_key`, GOOGLE_API_KEY or GEMINI_API_KEY. `base_url` points either at another server."""
    from google import genai
    from google.genai import types

    options = types.HttpOptions(base_url=base_url) if base_url else None
    if vertexai:
        return genai.Client(vertexai=True, project=project, location=location, http_options=options)
    api_key = api_key or os.environ.get("GOOGLE_API_KEY") or os.environ.get("GEMINI_API_KEY")
    return genai.Client(api_key=api_key, http_options=options) if api_key else genai.Client(http_options=options)


def genai_contents(example: Example) -> list:
    """The example's prompt (its turns before the last model turn) as google-genai contents;
    its system instruction goes in the request's config (`system_instruction`), not here."""
    from google.genai import types

    return [types.Content(role="model" if m["role"] == "assistant" else "user", parts=[types.Part(text=m["content"])])
            for m in prompt_messages(example) if m["role"] != "system"]

def response_schema_config(space: OutputSpace | None) -> dict:
    """GenerateContentConfig fields that hold Gemini's answer to an output space: an enum of the
    labels (text/x.enum), or a JSON object of the template's fields (application/json; the
    caller renders a template's answer back into its lines with `space.render`). {} for none."""
    if space is None:
        return {}
    return {"response_mime_type": space.response_mime_type(), "response_schema": space.response_schema()}


_HINT_BY_CODE = {
    400: "check the spec's fields and the exported data; docs/managed.md lists the common errors",
    401: "the credentials were refused: `gcloud auth application-default login`, or check "
         "GOOGLE_APPLICATION_CREDENTIALS",
    403: "the account needs the Vertex AI User role (roles/aiplatform.user) on the project, with the Vertex AI API "
         "enabled (`gcloud services enable aiplatform.googleapis.com`) and billing on",
    404: "check project and location: tuning runs in a few regions only (docs/managed.md)",
    429: "a quota is exhausted: wait, or ask for more tuning quota in the console (IAM & Admin > Quotas)",
}


def cloud_error(exc: Exception, doing: str) -> TunesmithError | None:
    """A TunesmithError for a failure of a Google client while `doing` something, or None when
    `exc` is not one (a bug, to be raised as it is)."""
    from google.api_core import exceptions as core
    from google.auth import exceptions as auth
    from google.genai import errors as genai_errors

    if isinstance(exc, auth.DefaultCredentialsError):  # its text names a file or a variable, never a key
        return TunesmithError(f"{doing}: no usable Google Cloud credentials ({exc})",
                              "run `gcloud auth application-default login`, or point GOOGLE_APPLICATION_CREDENTIALS "
                              "at a service-account key file")
    if isinstance(exc, auth.RefreshError):
        reason = exc.args[0] if exc.args and isinstance(exc.args[0], str) else type(exc).__name__
        return TunesmithError(f"{doing}: no access token for these credentials ({reason})", _HINT_BY_CODE[401])
    if isinstance(exc, genai_errors.APIError):
        return TunesmithError(f"{doing}: Vertex AI answered {exc.code} {exc.status or ''}: {exc.message}".replace(" :", ":"),
                              _hint(exc.code))
    if isinstance(exc, core.NotFound):
        return TunesmithError(f"{doing}: the bucket does not exist, or this account cannot see it",
                              "create it (`gcloud storage buckets create gs://BUCKET --location=REGION`) or fix `bucket`")
    if isinstance(exc, core.Forbidden):
        return TunesmithError(f"{doing}: {exc.message}", "the account needs Storage Object Admin "
                                                        "(roles/storage.objectAdmin) on the bucket")
    if isinstance(exc, core.GoogleAPICallError):
        return TunesmithError(f"{doing}: {exc.message}", _hint(exc.code or 0))
    if _is_connection_error(exc):
        return TunesmithError(f"{doing}: cannot reach Google Cloud ({type(exc).__name__})",
                              "check the network, or GOOGLE_VERTEX_BASE_URL and STORAGE_EMULATOR_HOST if set")
    return None


def is_transient(exc: Exception) -> bool:
    """Worth another try later: the network, a timeout, a quota or a server-side error."""
    from google.genai import errors as genai_errors

    if isinstance(exc, genai_errors.APIError):
        return exc.code in TRANSIENT_HTTP_CODES
    return _is_connection_error(exc)


def _is_connection_error(exc: Exception) -> bool:
    import importlib

    import requests
    from google.auth import exceptions as auth

    kinds: list[type] = [requests.ConnectionError, requests.Timeout, auth.TransportError]
    for name in ("httpx", "httpx2"):  # google-genai sends through httpx2 when it is installed, else httpx
        try:
            kinds.append(importlib.import_module(name).TransportError)
        except ImportError:
            pass
    return isinstance(exc, tuple(kinds))


def _hint(code: int) -> str:
    if code >= 500:
        return "a problem on Google's side; try again in a few minutes"
    return _HINT_BY_CODE.get(code, "see docs/managed.md, common errors")
