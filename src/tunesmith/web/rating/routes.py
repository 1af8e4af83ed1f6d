"""Routes of the blind rating page; every one is keyed by the rater's private token.

    GET  /rate/{token}           the page (plain HTML, CSS and rating.js; nothing from elsewhere)
    GET  /rate/{token}/next      the next item to rate and progress, as JSON
    POST /rate/{token}/ratings   store a rating; answers with the next item
    GET  /rate-assets/rating.js  the page's script

A wrong link answers 404, a closed or expired task 410, a second rating of an item 409,
an incomplete rating 422; each with {"error", "hint"}. Responses carry no model name,
model key, item id or task id (see evaluate/human/rating.py), are not cached, and send
no referrer, so the token does not leak to another site.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field

from ...evaluate.human import rating
from ...evaluate.human.errors import RatingError

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
router = APIRouter()

PRIVATE_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"}


class RatingIn(BaseModel):
    n: int = Field(ge=1)  # the item's place in the rater's queue
    choice: str | None = None  # left | right | tie | both_bad
    left_score: int | None = Field(default=None, ge=1, le=5)
    right_score: int | None = Field(default=None, ge=1, le=5)
    comment: str | None = Field(default=None, max_length=5000)


def _refused(exc: RatingError) -> JSONResponse:
    return JSONResponse({"error": exc.message, "hint": exc.hint}, status_code=exc.http_status, headers=PRIVATE_HEADERS)


@router.get("/rate/{token}", response_class=HTMLResponse, include_in_schema=False)
def rating_page(request: Request, token: str):
    try:
        setup = rating.page_setup(token)
    except RatingError as exc:
        return templates.TemplateResponse(request, "refused.html", {"message": exc.message, "hint": exc.hint},
                                          status_code=exc.http_status, headers=PRIVATE_HEADERS)
    return templates.TemplateResponse(request, "rate.html", setup, headers=PRIVATE_HEADERS)


@router.get("/rate/{token}/next", include_in_schema=False)
def next_item(token: str):
    try:
        return JSONResponse(rating.next_item(token), headers=PRIVATE_HEADERS)
    except RatingError as exc:
        return _refused(exc)


@router.post("/rate/{token}/ratings", include_in_schema=False)
def post_rating(token: str, body: RatingIn):
    try:
        state = rating.submit(token, body.n, choice=body.choice, left_score=body.left_score,
                              right_score=body.right_score, comment=body.comment)
    except RatingError as exc:
        return _refused(exc)
    return JSONResponse(state, headers=PRIVATE_HEADERS)


@router.get("/rate-assets/rating.js", include_in_schema=False)
def rating_script():
    return FileResponse(HERE / "rating.js", media_type="text/javascript")
