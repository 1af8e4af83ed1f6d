"""`tunesmith ui`: the local web app (datasets, jobs with live curves, the registry, evaluations)."""

from __future__ import annotations

from typing import Optional

import typer


def ui_command(
    host: str = typer.Option("127.0.0.1", help="address to bind; anything but loopback needs an API key"),
    port: int = typer.Option(7860, help="port"),
    api_key: Optional[str] = typer.Option(None, "--api-key", help="the key the browser must present once (open the app with ?key=KEY); default $TUNESMITH_API_KEY"),
    serve: bool = typer.Option(False, "--serve", help="also serve the models' API (tunesmith serve's defaults) in this process"),
    api_port: int = typer.Option(8000, help="the API's port with --serve"),
) -> None:
    """Open the web app: datasets, jobs with live curves, the model registry and evaluations."""
    from ..web import UiConfig
    from ..web.app import missing_assets
    from ..web.server import serve_ui

    config = UiConfig(host=host, port=port, api_key=api_key)
    config.check_binding()
    missing = missing_assets()
    if missing:
        print(f"warning: the web app's JavaScript is missing ({', '.join(missing)}): charts and buttons will not "
              "work; run `make` in the tunesmith checkout (npm ci) to install it")
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    key_part = "/?key=KEY" if config.resolved_api_key() else ""
    if serve:
        from ..serve import ServeConfig, resolve_models
        from ..serve.app import create_app
        from ..serve.server import run_in_thread

        api = ServeConfig(host=host, port=api_port, api_key=api_key)
        api.check_binding()
        served, skipped = resolve_models(api.models)
        for reason in skipped:
            print(f"not served: {reason}")
        with run_in_thread(create_app(api, served), host, api_port) as api_url:
            print(f"API: {api_url}/v1 (OpenAI), {api_url}/v1beta (Gemini)")
            print(f"tunesmith ui on http://{shown_host}:{port}{key_part} (Ctrl-C stops it)")
            serve_ui(config)
        return
    print(f"tunesmith ui on http://{shown_host}:{port}{key_part} (Ctrl-C stops it)")
    serve_ui(config)
