"""Prometheus metrics in the text exposition format, written by hand: a few counters and
histograms need no client library. Thread-safe: the engine thread and the event loop both
record."""

from __future__ import annotations

import threading
from collections import defaultdict

LATENCY_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64)

Labels = tuple[tuple[str, str], ...]


class Histogram:
    def __init__(self, buckets: tuple[float, ...]):
        self.buckets = buckets
        self.counts = [0] * len(buckets)  # per bucket, not cumulative; cumulated when rendered
        self.total = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.total += 1
        self.sum += value
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1
                break


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, dict[Labels, float]] = defaultdict(lambda: defaultdict(float))
        self._histograms: dict[str, dict[Labels, Histogram]] = defaultdict(dict)
        self._gauges: dict[str, float] = {}
        self._help: dict[str, str] = {}

    def inc(self, name: str, help: str, value: float = 1.0, **labels: str) -> None:
        with self._lock:
            self._help[name] = help
            self._counters[name][_labels(labels)] += value

    def observe(self, name: str, help: str, value: float, buckets: tuple[float, ...], **labels: str) -> None:
        with self._lock:
            self._help[name] = help
            series = self._histograms[name]
            key = _labels(labels)
            if key not in series:
                series[key] = Histogram(buckets)
            series[key].observe(value)

    def set(self, name: str, help: str, value: float) -> None:
        with self._lock:
            self._help[name] = help
            self._gauges[name] = value

    def max_batch_size(self) -> int:
        """The largest batch generated so far (0 before the first)."""
        with self._lock:
            series = self._histograms.get("tunesmith_batch_size", {})
            sizes = [h.buckets[i] for h in series.values() for i, c in enumerate(h.counts) if c]
            return int(max(sizes, default=0))

    def render(self) -> str:
        lines: list[str] = []
        with self._lock:
            for name, series in sorted(self._counters.items()):
                lines += [f"# HELP {name} {self._help[name]}", f"# TYPE {name} counter"]
                lines += [f"{name}{_render_labels(key)} {_number(v)}" for key, v in sorted(series.items())]
            for name, series in sorted(self._histograms.items()):
                lines += [f"# HELP {name} {self._help[name]}", f"# TYPE {name} histogram"]
                for key, h in sorted(series.items()):
                    cumulative = 0
                    for bound, count in zip(h.buckets, h.counts):
                        cumulative += count
                        lines.append(f"{name}_bucket{_render_labels(key + (('le', _number(bound)),))} {cumulative}")
                    lines.append(f"{name}_bucket{_render_labels(key + (('le', '+Inf'),))} {h.total}")
                    lines.append(f"{name}_sum{_render_labels(key)} {_number(h.sum)}")
                    lines.append(f"{name}_count{_render_labels(key)} {h.total}")
            for name, value in sorted(self._gauges.items()):
                lines += [f"# HELP {name} {self._help[name]}", f"# TYPE {name} gauge", f"{name} {_number(value)}"]
        return "\n".join(lines) + "\n"


def _labels(labels: dict[str, str]) -> Labels:
    return tuple(sorted((k, str(v)) for k, v in labels.items()))


def _render_labels(labels: Labels) -> str:
    if not labels:
        return ""
    escaped = (v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") for _, v in labels)
    return "{" + ",".join(f'{k}="{v}"' for (k, _), v in zip(labels, escaped)) + "}"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))
