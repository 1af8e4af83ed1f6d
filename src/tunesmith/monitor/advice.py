"""The answer to "is it time to re-tune?": now, by a date, or not yet, with the reasons.

Rules, in order (each threshold a constant here, named in the answer):
1. **now** when quality on fresh labels is below the release level beyond the tolerance
   (quality.py's sequential test, valid however often the monitor runs), or when the
   latest window's traffic has drifted (the two-sample test) and at least RETUNE_UNCOVERED of
   it lies far from every training example beyond the expected share.
2. **plan by DATE** when the uncovered share grows across windows (a least-squares line over
   the windows, slope significantly above zero at FORECAST_ALPHA) and the line reaches
   RETUNE_UNCOVERED within HORIZON_DAYS: the date is where it does.
3. **no need** otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ..lazy import numpy as np

RETUNE_UNCOVERED = 0.15  # share of traffic far from the training data, beyond the expected share
HORIZON_DAYS = 90
FORECAST_ALPHA = 0.05
MIN_FORECAST_WINDOWS = 3


@dataclass
class Forecast:
    date: datetime | None  # when the uncovered share's trend line reaches RETUNE_UNCOVERED
    slope_per_day: float
    p_value: float
    windows: int

    def to_dict(self) -> dict:
        return {"date": self.date.isoformat() if self.date else None, "slope_per_day": self.slope_per_day,
                "p_value": self.p_value, "windows": self.windows, "threshold": RETUNE_UNCOVERED}


def forecast(times: list[datetime], uncovered: list[float], now: datetime) -> Forecast | None:
    """The date the uncovered share's linear trend crosses RETUNE_UNCOVERED (None when it does not rise)."""
    from scipy.stats import linregress  # heavy: imported when first needed

    if len(times) < MIN_FORECAST_WINDOWS:
        return None
    days = np.array([(t - now).total_seconds() / 86400 for t in times])
    y = np.asarray(uncovered, dtype=float)
    if np.ptp(days) == 0:
        return None
    if np.ptp(y) == 0:
        return Forecast(None, 0.0, 1.0, len(times))
    fit = linregress(days, y)
    p_one_sided = fit.pvalue / 2 if fit.slope > 0 else 1 - fit.pvalue / 2
    date = None
    if fit.slope > 0 and p_one_sided < FORECAST_ALPHA:
        crossing = (RETUNE_UNCOVERED - fit.intercept) / fit.slope  # days from now
        date = now + timedelta(days=max(0.0, float(crossing)))
    return Forecast(date, float(fit.slope), float(p_one_sided), len(times))


@dataclass
class Answer:
    action: str  # "now" | "plan" | "none"
    date: datetime | None
    headline: str
    paragraph: str
    reasons: list[str]

    @property
    def retune_advised(self) -> bool:
        return self.action != "none"

    def to_dict(self) -> dict:
        return {"action": self.action, "date": self.date.isoformat() if self.date else None,
                "headline": self.headline, "paragraph": self.paragraph, "reasons": self.reasons,
                "retune_advised": self.retune_advised}


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def answer(*, subject: str, input_drift: dict, latest: dict | None, uncovered: float, requests: int,
           quality: dict | None, trend: Forecast | None, cost: dict | None, now: datetime) -> Answer:
    reasons: list[str] = []
    now_reasons: list[str] = []
    if quality and quality.get("release_value") is not None:
        low, high = quality["sequence_interval"]
        text = (f"{quality['label']} on {quality['n']} fresh labels is {_pct(quality['value'])} "
                f"(95% confidence sequence {_pct(low)}-{_pct(high)}) against {_pct(quality['release_value'])} "
                f"at release")
        test = f"sequential test wealth {quality['wealth']:.3g}, a drop at 20"
        if quality["dropped"]:
            now_reasons.append(f"{text}: below the release level beyond the {_pct(quality['tolerance'])} tolerance ({test})")
        else:
            reasons.append(f"{text}: no drop beyond the {_pct(quality['tolerance'])} tolerance is shown ({test})")
    elif quality:
        reasons.append(f"{quality['label']} on {quality['n']} fresh labels is {_pct(quality['value'])} "
                       "(no evaluation at release to compare with)")
    drift_text = (f"input drift AUC {input_drift['auc']:.3f} (p = {input_drift['p_value']:.3g}) on {requests} requests; "
                  f"{_pct(uncovered)} of the latest traffic lies far from every training example beyond the expected share")
    latest_drifted = (latest or input_drift).get("drifted", False)
    if latest_drifted and uncovered >= RETUNE_UNCOVERED:
        now_reasons.append(f"{drift_text}, at or above the {_pct(RETUNE_UNCOVERED)} re-tune threshold")
    else:
        reasons.append(drift_text + ("" if input_drift["drifted"] else "; no significant drift"))
    if trend is not None and trend.date is not None:
        trend_text = (f"the uncovered share grows {_pct(trend.slope_per_day)} a day over {trend.windows} windows "
                      f"(p = {trend.p_value:.3g}) and reaches {_pct(RETUNE_UNCOVERED)} by {trend.date:%Y-%m-%d}")
    else:
        trend_text = None
    cost_text = _cost_text(cost)
    if now_reasons:
        action, date = "now", now
        headline = f"Re-tune {subject} now"
        body = now_reasons + reasons
    elif trend_text and trend.date <= now + timedelta(days=HORIZON_DAYS):
        action, date = "plan", trend.date
        headline = f"Plan a re-tune of {subject} by {trend.date:%Y-%m-%d}"
        body = [trend_text] + reasons
    else:
        action, date = "none", None
        headline = f"No need to re-tune {subject}"
        body = reasons + ([trend_text + f", beyond the {HORIZON_DAYS}-day horizon"] if trend_text else [])
    paragraph = headline + ": " + "; ".join(body) + "." + (f" {cost_text}" if cost_text else "")
    return Answer(action, date, headline, paragraph, body)


def _cost_text(cost: dict | None) -> str | None:
    if not cost:
        return None
    if cost.get("error"):
        return f"Re-tune cost: not estimated ({cost['error']})."
    parts = []
    if cost.get("managed"):
        m = cost["managed"]
        parts.append(f"managed {m['target']} about ${m['usd']:.2f}")
    for s in cost.get("self_hosted", []):
        parts.append(f"{s['method']} on {s['gpu']} about ${s['usd']:.2f} in {s['time_s'] / 3600:.1f} h")
    on = cost.get("workload", "the training data")
    return ("A re-tune would cost " + ", ".join(parts) + f" (from `tunesmith plan`, on {on}).") if parts else None
