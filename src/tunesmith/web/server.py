"""Running the web app under uvicorn: in the foreground (`tunesmith ui`) or in a background
thread on a free loopback port (`ui_in_background`, for notebooks, the demo and tests)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..serve.server import run_in_thread
from .config import UiConfig


def serve_ui(config: UiConfig, **app_options: Any) -> None:
    """Serve until interrupted (Ctrl-C). `app_options` go to `create_app` (sections)."""
    import uvicorn

    from .app import create_app

    app = create_app(config, **app_options)
    uvicorn.run(app, host=config.host, port=config.port, log_level="warning", access_log=False)


@contextmanager
def ui_in_background(config: UiConfig | None = None, **app_options: Any) -> Iterator[str]:
    """Start the app in a thread and yield its base URL ("http://127.0.0.1:PORT"); stop it when the block ends."""
    from .app import create_app

    config = config or UiConfig(port=0)
    with run_in_thread(create_app(config, **app_options), config.host, config.port) as url:
        yield url
