"""A minimal app around the rating router, for tests and for trying the page alone:

    uvicorn --factory tunesmith.web.rating.testing:rating_app
"""

from __future__ import annotations

from fastapi import FastAPI

from .routes import router


def rating_app() -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(router)
    return app
