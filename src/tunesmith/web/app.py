"""The app factory: sections (a router and its nav link each), templates, static files,
the guard (security.py), and error pages.

A section is what a feature adds to the app:

    from fastapi import APIRouter
    from tunesmith.web.app import Section
    from tunesmith.web.pages import render

    router = APIRouter()

    @router.get("/ratings")
    def ratings(request: Request):
        return render(request, "rating/list.html", {"tasks": ...})

    SECTION = Section(router, nav=("Ratings", "/ratings"), templates="tunesmith.web.rating")

and one line in `default_sections()`. Its templates extend "base.html" (the nav, the
stylesheet, htmx, the flash area for errors); `templates` names a package whose
`templates/` folder is searched after the app's own. `open_prefixes` lists paths that need
no key (a rater's private link carries its own token); the Host check and the same-origin
rule still apply to them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from jinja2 import ChoiceLoader, Environment, PackageLoader, select_autoescape
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.templating import Jinja2Templates

from ..errors import BadInputError, TunesmithError
from . import filters
from .config import UiConfig
from .pages import NotFound, error_page
from .security import Guard

STATIC_DIR = Path(__file__).parent / "static"
VENDOR_FILES = ("htmx.min.js", "uPlot.iife.min.js", "uPlot.min.css")


@dataclass(frozen=True)
class Section:
    router: APIRouter
    nav: tuple[str, str] | None = None  # (label, path) in the top bar
    templates: str | None = None  # a package with a templates/ folder
    open_prefixes: tuple[str, ...] = field(default_factory=tuple)


def default_sections() -> list[Section]:
    from . import rating
    from .views import datasets, deployments, evals, jobs, models, monitor, overview

    # The rating pages are a rater's private link alone (no nav, no key: the link's token is the key).
    ratings = Section(rating.router, open_prefixes=("/rate/", "/rate-assets/"))
    return [overview.SECTION, datasets.SECTION, jobs.SECTION, models.SECTION, evals.SECTION, deployments.SECTION,
            monitor.SECTION, ratings]


def missing_assets() -> list[str]:
    """The vendored JavaScript files (`make` copies them from node_modules) that are not there."""
    return [name for name in VENDOR_FILES if not (STATIC_DIR / "vendor" / name).is_file()]


def create_app(config: UiConfig | None = None, sections: Sequence[Section] | None = None) -> FastAPI:
    config = config or UiConfig()
    config.check_binding()
    sections = list(default_sections() if sections is None else sections)
    app = FastAPI(title="tunesmith", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.config = config
    app.state.templates = _templates(sections)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/health", include_in_schema=False)
    def health() -> dict:
        return {"status": "ok", "missing_assets": missing_assets()}

    for section in sections:
        app.include_router(section.router)
    _error_pages(app)
    app.add_middleware(Guard, api_key=config.resolved_api_key(), loopback_only=config.loopback(),
                       open_prefixes=[p for s in sections for p in s.open_prefixes])
    return app


def _templates(sections: Sequence[Section]) -> Jinja2Templates:
    loaders = [PackageLoader("tunesmith.web", "templates")]
    loaders += [PackageLoader(s.templates, "templates") for s in sections if s.templates]
    env = Environment(loader=ChoiceLoader(loaders), autoescape=select_autoescape(default=True),
                      trim_blocks=True, lstrip_blocks=True)
    filters.install(env)
    env.globals["nav"] = [s.nav for s in sections if s.nav]
    env.globals["missing_assets"] = missing_assets()
    return Jinja2Templates(env=env)


def _error_pages(app: FastAPI) -> None:
    """Unknown ids and bad input get a page (or, for htmx, a fragment for the flash area); never a traceback."""

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound):
        return error_page(request, 404, exc.message, exc.hint)

    @app.exception_handler(BadInputError)
    async def bad_input(request: Request, exc: BadInputError):
        return error_page(request, 400, exc.message, exc.hint)

    @app.exception_handler(TunesmithError)
    async def failed(request: Request, exc: TunesmithError):
        return error_page(request, 500, exc.message, exc.hint)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("query", "path", "body"))
        return error_page(request, 400, f"{where or 'request'}: {first.get('msg', 'invalid')}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 404:
            return error_page(request, 404, f"there is no page at {request.url.path}", "the links in the top bar lead to every page")
        return error_page(request, exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception):
        return error_page(request, 500, f"the page failed: {type(exc).__name__}: {exc}",
                          "this is a bug in tunesmith; the server's log has the details")
