"""The state store: one SQL database for dataset versions, jobs, their events and
metrics, and the model registry. See docs/store.md.

Importing this package imports SQLAlchemy; the CLI imports it only in commands that need it.
"""

from __future__ import annotations

from .db import database_url, get_engine, session_scope, tunesmith_home
from .queries import (
    add_event,
    add_metrics,
    create_job,
    get_job,
    get_model,
    job_events,
    job_metrics,
    list_jobs,
    list_models,
    new_id,
    record_dataset_version,
    register_model,
    set_model_stage,
    update_job,
)
from .schema import (
    FINISHED_JOB_STATUSES,
    JOB_BACKENDS,
    JOB_STATUSES,
    METRIC_COLUMNS,
    MODEL_STAGES,
    DatasetVersion,
    Job,
    JobEvent,
    ModelVersion,
    StepMetrics,
)

__all__ = [
    "FINISHED_JOB_STATUSES",
    "JOB_BACKENDS",
    "JOB_STATUSES",
    "METRIC_COLUMNS",
    "MODEL_STAGES",
    "DatasetVersion",
    "Job",
    "JobEvent",
    "ModelVersion",
    "StepMetrics",
    "add_event",
    "add_metrics",
    "create_job",
    "database_url",
    "get_engine",
    "get_job",
    "get_model",
    "job_events",
    "job_metrics",
    "list_jobs",
    "list_models",
    "new_id",
    "record_dataset_version",
    "register_model",
    "session_scope",
    "set_model_stage",
    "tunesmith_home",
    "update_job",
]
