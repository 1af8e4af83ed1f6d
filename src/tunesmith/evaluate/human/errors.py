"""Errors of the rating page and of rating tasks, each with the HTTP status the page answers with."""

from __future__ import annotations

from ...errors import BadInputError


class RatingError(BadInputError):
    """A rating or a link that cannot be used as given."""

    http_status = 422


class UnknownLinkError(RatingError):
    http_status = 404

    def __init__(self) -> None:
        super().__init__("this rating link is not valid", "ask for your link again")


class ClosedLinkError(RatingError):
    http_status = 410

    def __init__(self, why: str) -> None:
        super().__init__(f"this rating link no longer works: {why}", "thank you; nothing more is needed")


class AlreadyRatedError(RatingError):
    http_status = 409

    def __init__(self) -> None:
        super().__init__("this item was rated already", "reload the page to get the next item")
