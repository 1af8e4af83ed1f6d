"""Running the app under uvicorn: in the foreground (`tunesmith serve`) or in a background
thread on a free loopback port (`serve_in_background`, for notebooks, the demo and tests)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import TunesmithError
from .config import ServeConfig
from .models import ServedModel

STARTUP_TIMEOUT_S = 60


def serve(config: ServeConfig, models: list[ServedModel] | None = None) -> None:
    """Serve until interrupted (Ctrl-C)."""
    import uvicorn

    from .app import create_app

    config.check_binding()
    app = create_app(config, models)
    uvicorn.run(app, host=config.host, port=config.port, log_level="info", access_log=False)


@contextmanager
def serve_in_background(models: list[str] | None = None, port: int = 0, config: ServeConfig | None = None,
                        **options: Any) -> Iterator[str]:
    """Start the real server in a thread and yield its base URL ("http://127.0.0.1:PORT");
    stop it when the block ends. `options` are ServeConfig fields (api_key, log_requests, ...)."""
    from .app import create_app

    config = config or ServeConfig(models=list(models or []), port=port, **options)
    config.check_binding()
    with run_in_thread(create_app(config), config.host, config.port) as url:
        yield url


@contextmanager
def run_in_thread(app: Any, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Run an app built by `create_app` under uvicorn in a thread; yield its base URL."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, name="tunesmith-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise TunesmithError(f"the server did not start on {host}:{port}", "is the port free? port=0 picks a free one")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join()
