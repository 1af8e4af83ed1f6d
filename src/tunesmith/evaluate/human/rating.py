"""The rater's side: what a private link shows next and how a rating is stored.

Everything here is keyed by the rater's token and an item's place in the rater's queue
(`n`); what goes back to the page is the input, the reference, the two outputs as "left"
and "right", and progress. Model names, model keys, item and task ids never leave this
module, so the page cannot give away which model wrote what.
"""

from __future__ import annotations

from ...store import db, queries, schema
from .errors import AlreadyRatedError, ClosedLinkError, RatingError, UnknownLinkError

SCALE = (1, 2, 3, 4, 5)
SCALE_ANCHORS = {
    1: "Unusable: wrong, off-topic or harmful",
    2: "Poor: major errors or omissions",
    3: "Acceptable: right in substance, with flaws",
    4: "Good: correct and complete, minor issues",
    5: "Excellent: correct, complete and well put",
}
PAIRWISE_LABELS = {"left": "A is better", "right": "B is better", "tie": "Tie (equally good)",
                   "both_bad": "Both are bad"}


def open_link(token: str) -> tuple[schema.Rater, schema.RatingTask]:
    """The rater and the task of a link; refused when the link is unknown, the task closed or expired."""
    rater = queries.rater_by_token(token) if token else None
    if rater is None:
        raise UnknownLinkError()
    task = queries.get_rating_task(rater.task_id)
    if task.status == "closed":
        raise ClosedLinkError("the rating task is closed")
    if task.expires_at is not None and task.expires_at <= schema.utc_now():
        raise ClosedLinkError("the rating task has expired")
    return rater, task


def page_setup(token: str) -> dict:
    """What the page needs once: the mode, the instructions, the scale's anchors."""
    _, task = open_link(token)
    return {"mode": task.mode, "instructions": task.instructions or "", "anchors": SCALE_ANCHORS,
            "choices": PAIRWISE_LABELS}


def next_item(token: str) -> dict:
    """The first item of the rater's queue not rated yet (`item` is None when all are done), with progress."""
    rater, _ = open_link(token)
    queue = queries.rater_queue(rater.id)
    done = sum(rating is not None for _, _, rating in queue)
    state = {"done": done, "total": len(queue), "item": None}
    for assignment, item, rating in queue:
        if rating is None:
            left, right = ((item.first_output, item.second_output) if assignment.first_on_left
                           else (item.second_output, item.first_output))
            state["item"] = {"n": assignment.sequence, "input": item.input_text, "reference": item.reference,
                             "left": left, "right": right}
            break
    return state


def submit(token: str, n: int, *, choice: str | None = None, left_score: int | None = None,
           right_score: int | None = None, comment: str | None = None) -> dict:
    """Store the rating of item `n` of the rater's queue; returns the next item as `next_item` does."""
    rater, task = open_link(token)
    choice, left_score, right_score = _check(task.mode, choice, left_score, right_score)
    comment = (comment or "").strip() or None
    with db.session_scope() as session:
        entry = next((row for row in queries.rater_queue(rater.id, session=session) if row[0].sequence == n), None)
        if entry is None:
            raise RatingError(f"there is no item {n} in this queue", "reload the page")
        assignment, item, rating = entry
        if rating is not None:
            raise AlreadyRatedError()
        try:
            queries.add_rating(assignment, item, choice=choice, left_score=left_score, right_score=right_score,
                               comment=comment, session=session)
        except queries.RatedTwiceError as exc:  # sent twice at once: the store refuses the second
            raise AlreadyRatedError() from exc
    return next_item(token)


def _check(mode: str, choice, left_score, right_score) -> tuple[str | None, int | None, int | None]:
    if mode in ("pairwise", "both"):
        if choice not in schema.PAIRWISE_CHOICES:
            raise RatingError("choose which answer is better", f"one of: {', '.join(schema.PAIRWISE_CHOICES)}")
    elif choice is not None:
        raise RatingError("this task asks for scores, not a choice")
    if mode in ("scale", "both"):
        for side, score in (("A", left_score), ("B", right_score)):
            if score not in SCALE:
                raise RatingError(f"give answer {side} a score from 1 to 5")
    elif left_score is not None or right_score is not None:
        raise RatingError("this task asks for a choice, not scores")
    return choice, left_score, right_score
