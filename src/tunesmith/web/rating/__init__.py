"""The blind rating page: a rater opens their private link, sees an input and two
anonymous answers, and rates them with the keyboard. Include `router` in the web app.
"""

from __future__ import annotations

from .routes import router

__all__ = ["router"]
