"""The local web app (`tunesmith ui`): datasets, jobs with live curves, the registry and
evaluations, server-rendered with Jinja2, htmx for interaction, uPlot for charts and
Server-Sent Events for live updates. See docs/ui.md.

`create_app(config, sections)` builds the FastAPI app from sections (a router and its nav
link each); a later feature adds its pages as one more section."""

from __future__ import annotations

from .config import UiConfig

__all__ = ["UiConfig", "create_app", "default_sections", "Section", "serve_ui", "ui_in_background"]


def __getattr__(name: str):
    # FastAPI loads only when an app is built: `import tunesmith.web` stays light.
    if name in ("create_app", "default_sections", "Section"):
        from . import app

        return getattr(app, name)
    if name in ("serve_ui", "ui_in_background"):
        from . import server

        return getattr(server, name)
    raise AttributeError(name)
