"""Monitoring: drift of production traffic against the training data, quality on fresh
labels, and a dated answer to "is it time to re-tune?". See docs/monitoring.md."""

from __future__ import annotations

from .runner import MonitorResult, monitor

__all__ = ["MonitorResult", "monitor"]
