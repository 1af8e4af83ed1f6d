"""What a run costs on each path, and when owning hardware pays for itself.

Self-hosted: the run's hours times the GPU's hourly price (plan/hardware/*.yaml). Managed:
training tokens (dataset tokens x epochs) times the target's price per million
(targets/vertex/*.yaml). Electricity, storage, egress and people's time are not counted."""

from __future__ import annotations

from pydantic import BaseModel

from ..targets import Target, load_target, target_names

# A purchased GPU is written off over three years, the usual depreciation period for servers.
AMORTIZATION_MONTHS = 36


def managed_targets() -> list[Target]:
    return [load_target(n) for n in target_names() if n.startswith("vertex/")]


def managed_cost_usd(target: Target, tokens_per_epoch: float, epochs: float) -> float:
    return tokens_per_epoch * epochs * target.price_per_million_training_tokens_usd / 1e6


def rented_cost_usd(hours: float, usd_per_hour: float) -> float:
    return hours * usd_per_hour


class BreakEven(BaseModel):
    """Buying a GPU against paying the managed path (or renting the same GPU) run by run."""

    gpu: str
    purchase_usd: float
    runs_per_month: float
    managed_usd_per_month: float
    rented_usd_per_month: float
    months_to_repay_vs_managed: float | None  # None: never (the managed path costs nothing)
    months_to_repay_vs_renting: float | None
    runs_per_month_to_beat_managed: float | None  # buying beats managed over AMORTIZATION_MONTHS from here


def break_even(gpu: str, purchase_usd: float, runs_per_month: float, managed_usd_per_run: float,
               rented_usd_per_run: float) -> BreakEven:
    managed, rented = runs_per_month * managed_usd_per_run, runs_per_month * rented_usd_per_run
    return BreakEven(
        gpu=gpu, purchase_usd=purchase_usd, runs_per_month=runs_per_month,
        managed_usd_per_month=managed, rented_usd_per_month=rented,
        months_to_repay_vs_managed=purchase_usd / managed if managed > 0 else None,
        months_to_repay_vs_renting=purchase_usd / rented if rented > 0 else None,
        runs_per_month_to_beat_managed=(purchase_usd / AMORTIZATION_MONTHS / managed_usd_per_run
                                        if managed_usd_per_run > 0 else None),
    )
