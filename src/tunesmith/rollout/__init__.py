"""Rollout: deployments (a stable name over a production model and a candidate), shadow and A/B
assignment, feedback, confidence sequences, and the gate that promotes or rolls back.
See docs/rollout.md."""

from __future__ import annotations

from .deployments import (
    GUARDRAILS,
    METRICS,
    RolloutSettings,
    assign_arm,
    create_deployment,
    parse_guardrails,
    promote,
    rollback,
    start_rollout,
    stop_rollout,
)
from .feedback import import_labels, record_feedback
from .gate import GateResult, apply_gate, gate

__all__ = [
    "GUARDRAILS",
    "METRICS",
    "GateResult",
    "RolloutSettings",
    "apply_gate",
    "assign_arm",
    "create_deployment",
    "gate",
    "import_labels",
    "parse_guardrails",
    "promote",
    "record_feedback",
    "rollback",
    "start_rollout",
    "stop_rollout",
]
