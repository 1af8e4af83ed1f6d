"""What stands between a request and a page: the Host check, the key, and the same-origin rule.

- Host: bound to loopback, the app answers only requests addressed to a loopback name. A
  web page elsewhere that points its own domain name at 127.0.0.1 (DNS rebinding) would
  otherwise be same-origin with this app and could read it.
- Key: with a key (always, off loopback) every request carries it, as the API server takes
  it (`Authorization: Bearer KEY`, `x-goog-api-key`, `?key=`) or in a cookie. Opening any
  page with `?key=KEY` once sets the cookie (HttpOnly, SameSite=Strict) and redirects to the
  same address without the key, so it leaves the address bar and the history.
- Same origin: a request that changes state (POST, PUT, PATCH, DELETE) from a browser must
  come from this app's own pages: `Sec-Fetch-Site` must say same-origin, else `Origin` (or
  `Referer`) must be this app's address. Browsers always send one of them on such a request,
  and a page on another site cannot forge them; a client sending none of them is not a
  browser, so no other site can be driving it.

Paths a section declares open (`Section.open_prefixes`) skip the key; they still get the
Host check and the same-origin rule.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from http.cookies import SimpleCookie
from urllib.parse import urlencode, urlsplit

from starlette.datastructures import Headers, QueryParams
from starlette.responses import PlainTextResponse, RedirectResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from ..serve.auth import presented_key

KEY_COOKIE = "tunesmith_ui_key"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
ALWAYS_OPEN = ("/static/", "/health")


class Guard:
    """ASGI middleware (plain ASGI, so Server-Sent Event streams pass through untouched)."""

    def __init__(self, app: ASGIApp, api_key: str | None, loopback_only: bool, open_prefixes: Iterable[str] = ()):
        self.app = app
        self.api_key = api_key
        self.loopback_only = loopback_only
        self.open_prefixes = ALWAYS_OPEN + tuple(open_prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        if self.loopback_only and _host_name(host) not in LOOPBACK_NAMES:
            await _refuse(400, f"this app answers requests for 127.0.0.1 or localhost, not {host!r}")(scope, receive, send)
            return
        path, method = scope["path"], scope["method"]
        if method in UNSAFE_METHODS and not same_origin(headers, scheme=scope.get("scheme", "http")):
            await _refuse(403, "refused: this request did not come from this app's own pages")(scope, receive, send)
            return
        if self.api_key and not path.startswith(self.open_prefixes):
            query = QueryParams(scope.get("query_string", b""))
            given = presented_key(headers, query) or _cookie(headers, KEY_COOKIE)
            if given is None or not hmac.compare_digest(given.encode("utf-8"), self.api_key.encode("utf-8")):
                await _refuse(401, "this app needs its key: open it once as http://HOST:PORT/?key=KEY (the key "
                                   "tunesmith ui was started with), or send 'Authorization: Bearer KEY'")(scope, receive, send)
                return
            if method == "GET" and query.get("key"):  # from the address bar into a cookie, then out of sight
                rest = urlencode([(k, v) for k, v in query.multi_items() if k != "key"])
                response = RedirectResponse(path + (f"?{rest}" if rest else ""), status_code=303)
                response.set_cookie(KEY_COOKIE, given, httponly=True, samesite="strict", path="/")
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def same_origin(headers: Headers, scheme: str = "http") -> bool:
    """Whether a state-changing request came from this app's own pages (or from no browser at all)."""
    site = headers.get("sec-fetch-site")
    if site is not None:
        return site in ("same-origin", "none")  # "none": the user typed it or used a bookmark
    here = f"{scheme}://{headers.get('host', '')}"
    origin = headers.get("origin")
    if origin is not None:
        return origin == here
    referer = headers.get("referer")
    if referer is not None:
        parts = urlsplit(referer)
        return f"{parts.scheme}://{parts.netloc}" == here
    return True


def _host_name(host: str) -> str:
    if host.startswith("["):  # [::1]:7860
        return host[: host.find("]") + 1]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _cookie(headers: Headers, name: str) -> str | None:
    jar = SimpleCookie()
    try:
        jar.load(headers.get("cookie", ""))
    except Exception:  # a malformed Cookie header: as if there were none
        return None
    return jar[name].value if name in jar else None


def _refuse(status: int, message: str) -> PlainTextResponse:
    return PlainTextResponse(message + "\n", status_code=status)
