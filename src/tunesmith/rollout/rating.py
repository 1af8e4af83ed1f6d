"""Shadow pairs to people: a blind rating task (evaluate/human) whose items are the inputs a
rollout mirrored, with production's and the candidate's answers side by side."""

from __future__ import annotations

from ..errors import BadInputError
from ..evaluate.human.tasks import CreatedTask, create_task
from ..store import deployments
from .gate import model_label


def rate_shadow_pairs(name: str, raters: list[str], *, items: int | None = None, mode: str = "pairwise",
                      overlap: float = 0.2, seed: int = 0, link_base: str | None = None) -> CreatedTask:
    """A rating task from the running shadow rollout's answered pairs (at most `items`, seeded)."""
    deployment = deployments.get_deployment(name)
    if deployment.status != "running" or deployment.mode != "shadow":
        raise BadInputError(f"no shadow rollout is running on {name!r}",
                            f"`tunesmith rollout start {name} --candidate MODEL --mode shadow` starts one")
    rows = deployments.rollout_requests(deployment.rollout_id)
    shadows = {r.pair_id: r for r in rows if r.route == "shadow" and r.status_code == 200 and r.output_text is not None}
    inputs = []
    for row in rows:
        shadow = shadows.get(row.request_id)
        if row.route != "production" or shadow is None or row.output_text is None or not row.input_messages:
            continue
        turns = row.input_messages["turns"]
        text = "\n\n".join(f"{t['role']}: {t['text']}" for t in turns) if len(turns) > 1 else turns[0]["text"]
        inputs.append({"example_id": row.request_id, "input": text, "reference": None,
                       "outputs": {"production": row.output_text, "candidate": shadow.output_text}})
    if not inputs:
        raise BadInputError(f"the shadow rollout on {name!r} has no answered pairs with their text yet",
                            "pairs logged with --no-log cannot be rated: send traffic to a server that logs text")
    labels = {"production": model_label(deployment.production), "candidate": model_label(deployment.candidate)}
    return create_task(raters=raters, pairs={"labels": labels, "inputs": inputs,
                                             "source": {"rollout": deployment.rollout_id, "deployment": name}},
                       mode=mode, items=items, overlap=overlap, seed=seed, link_base=link_base)
