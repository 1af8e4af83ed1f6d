"""Human evaluation: blind rating tasks for domain experts, agreement between raters, and
the human verdict beside the automatic one. See docs/rating.md.

    created = create_task(eval_run="ev-…", raters=["ana", "ben"])   # private links in created.links
    task_results(created.task.id)["verdict_text"]
    human_verdict("ev-…")
"""

from __future__ import annotations

from .agreement import cohen_kappa, fleiss_kappa, krippendorff_alpha, reading
from .export import export_ratings
from .rating import next_item, open_link, page_setup, submit
from .results import human_verdict, task_results
from .tasks import CreatedTask, create_task, load_gold, rating_link

__all__ = [
    "CreatedTask",
    "cohen_kappa",
    "create_task",
    "export_ratings",
    "fleiss_kappa",
    "human_verdict",
    "krippendorff_alpha",
    "load_gold",
    "next_item",
    "open_link",
    "page_setup",
    "rating_link",
    "reading",
    "submit",
    "task_results",
]
