"""How the web app is served: one pydantic model, filled from `tunesmith ui`'s flags or by a caller."""

from __future__ import annotations

import os

from pydantic import BaseModel

from ..errors import BadInputError
from ..serve.config import API_KEY_ENV, is_loopback


class UiConfig(BaseModel):
    host: str = "127.0.0.1"
    port: int = 7860  # 0: any free port (tests, ui_in_background)
    api_key: str | None = None  # None: $TUNESMITH_API_KEY, else no key (loopback only)
    # How often a live page's stream looks for new metric rows and events. A new row reaches
    # the page within this plus the page's own drawing time (well under the 2 s promised).
    poll_interval_s: float = 0.5

    def resolved_api_key(self) -> str | None:
        return self.api_key or os.environ.get(API_KEY_ENV) or None

    def loopback(self) -> bool:
        return is_loopback(self.host)

    def check_binding(self) -> None:
        """An app reachable from other machines must ask for a key, like the API server."""
        if not self.loopback() and not self.resolved_api_key():
            raise BadInputError(
                f"refusing to serve the web app on {self.host} without an API key: anyone who can reach it "
                "could read the store and cancel jobs",
                f"pass --api-key KEY or set {API_KEY_ENV}, or bind 127.0.0.1",
            )
