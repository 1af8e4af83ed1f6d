"""What every view uses: `render` a template, error pages, lookups that turn an unknown id
into a 404, and paging."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from ..errors import BadInputError, TunesmithError
from ..store import queries

PAGE_SIZE = 50


class NotFound(TunesmithError):
    """An id in an address that the store does not know: a 404 page."""


def render(request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200,
           headers: dict[str, str] | None = None) -> Response:
    return request.app.state.templates.TemplateResponse(request, name, context or {}, status_code=status_code,
                                                        headers=headers)


def is_htmx(request: Request) -> bool:
    """Whether htmx asked for a fragment. Restoring history (the back button, when htmx's own cache
    misses) asks for the whole page, though it says HX-Request too."""
    return (request.headers.get("hx-request") == "true"
            and request.headers.get("hx-history-restore-request") != "true")


def error_page(request: Request, status: int, message: str, hint: str | None = None) -> Response:
    """The error page; for an htmx request, a fragment that app.js puts in the flash area."""
    template = "_error.html" if is_htmx(request) else "error.html"
    return render(request, template, {"status": status, "message": message, "hint": hint}, status_code=status)


MAX_FORM_BYTES = 64_000  # the app's forms hold a stage or a name


async def form_fields(request: Request) -> dict[str, str]:
    """A URL-encoded form body (what htmx and plain forms send) as a dict; the last value of a repeated field wins."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise BadInputError(f"the form is over {MAX_FORM_BYTES:,} bytes")
    return dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))


def found(lookup, id_or_prefix: str, *args: Any):
    """`lookup(id_or_prefix)`, with "no such id" (and an ambiguous prefix) as a 404."""
    try:
        return lookup(id_or_prefix, *args)
    except BadInputError as exc:
        raise NotFound(exc.message, exc.hint) from None


def dataset_or_404(version: str):
    row = queries.get_dataset_version(version)
    if row is None:
        raise NotFound(f"no dataset version {version!r}", "the Datasets page lists every version the store knows")
    return row


@dataclass
class Paging:
    page: int  # 1-based
    size: int
    total: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def first_row(self) -> int:
        return self.offset + 1 if self.total else 0

    @property
    def last_row(self) -> int:
        return min(self.offset + self.size, self.total)


def page_number(value: int | None) -> int:
    return max(1, value or 1)
