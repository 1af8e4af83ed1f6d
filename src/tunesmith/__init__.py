"""tunesmith: from a pile of examples to a fine-tuned model in production, with an honest
verdict on whether it beats the model you started with.

The whole lifecycle from Python, as one flat namespace (docs/python.md walks through it):

    import tunesmith as ts

    ts.write_tickets("tickets.jsonl")                       # or your own data, in any common format
    report = ts.check(["tickets.jsonl"])                    # the guide's pitfalls, before paying
    ts.prepare(["tickets.jsonl"], "prepared", ts.PrepareOptions(dedupe=True))
    ts.export("prepared", "gemini", "gemini-data")          # for Gemini tuning on Vertex AI
    ts.plan(data="prepared")                                # memory, time and cost of each path
    result = ts.train(ts.LocalSpec(data="prepared"))        # the job and the model it registered
    ts.evaluate(result.model.id)                            # against its base, on the sealed test split
    with ts.serve_in_background([result.model.id]) as url:  # OpenAI- and Gemini-compatible
        ...

Names are imported on first use, so `import tunesmith` and the CLI's start stay fast (torch,
transformers and the server load only when a function needs them)."""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

__version__ = "0.1.0"

# Each public name and the module that defines it. The modules are imported on first use, by
# name (importlib), so this package imports none of its floors itself (and the import
# contract sees no import from here).
_WHERE = {
    # data: read, check, prepare, export
    "Example": "tunesmith.data.example",
    "load_dataset": "tunesmith.data.dataset",
    "check": "tunesmith.data.check",
    "render_report": "tunesmith.data.report",
    "PrepareOptions": "tunesmith.data.prepare",
    "prepare": "tunesmith.data.prepare",
    "export": "tunesmith.data.export",
    "OutputSpace": "tunesmith.data.output_space",
    "learn_output_space": "tunesmith.data.output_space",
    "dataset_output_space": "tunesmith.data.output_space",
    "write_tickets": "tunesmith.examples.tickets",
    "generate_tickets": "tunesmith.examples.tickets",
    # plan
    "plan": "tunesmith.plan.planner",
    "preflight": "tunesmith.plan.planner",
    # train
    "LocalSpec": "tunesmith.train.spec",
    "VertexSpec": "tunesmith.train.spec",
    "TrainSpec": "tunesmith.train.spec",
    "load_spec": "tunesmith.train.spec",
    "TrainResult": "tunesmith.train.jobs",
    "train": "tunesmith.train.jobs",
    "get_job": "tunesmith.train.jobs",
    "list_jobs": "tunesmith.train.jobs",
    "cancel_job": "tunesmith.train.jobs",
    "resume_job": "tunesmith.train.jobs",
    "TrainingDisplay": "tunesmith.train.display",
    "estimate_vertex_cost": "tunesmith.train.backends.vertex",
    # registry
    "get_model": "tunesmith.registry.models",
    "list_models": "tunesmith.registry.models",
    "set_model_stage": "tunesmith.registry.models",
    "resolve_model": "tunesmith.registry.resolver",
    "export_model": "tunesmith.registry.export",
    # evaluate
    "EvalResult": "tunesmith.evaluate.runner",
    "evaluate": "tunesmith.evaluate.runner",
    "compare": "tunesmith.evaluate.runner",
    # monitor
    "monitor": "tunesmith.monitor.runner",
    "MonitorResult": "tunesmith.monitor.runner",
    # serve
    "ServeConfig": "tunesmith.serve.config",
    "serve": "tunesmith.serve.server",
    "serve_in_background": "tunesmith.serve.server",
    # rollout
    "create_deployment": "tunesmith.rollout.deployments",
    "start_rollout": "tunesmith.rollout.deployments",
    "stop_rollout": "tunesmith.rollout.deployments",
    "promote": "tunesmith.rollout.deployments",
    "rollback": "tunesmith.rollout.deployments",
    "RolloutSettings": "tunesmith.rollout.deployments",
    "rollout_status": "tunesmith.rollout.gate",
    "record_feedback": "tunesmith.rollout.feedback",
    "import_labels": "tunesmith.rollout.feedback",
    # errors
    "TunesmithError": "tunesmith.errors",
    "BadInputError": "tunesmith.errors",
}
# Public names that differ from the name in their module.
_RENAMED = {"render_report": "render_terminal", "estimate_vertex_cost": "estimate", "resolve_model": "resolve",
            "rollout_status": "gate"}

__all__ = sorted(_WHERE) + ["__version__"]


def _public(name: str) -> Any:
    return getattr(importlib.import_module(_WHERE[name]), _RENAMED.get(name, name))


class _Namespace(types.ModuleType):
    """`tunesmith.plan` is the planning function, though a subpackage of the same name exists:
    Python sets a package's attribute to each subpackage it imports (tunesmith.plan, .train,
    .serve, .evaluate), which would shadow the public function once anything imported them."""

    def __getattribute__(self, name: str) -> Any:
        if name in _WHERE:
            return _public(name)
        return super().__getattribute__(name)

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(f"module 'tunesmith' has no attribute {name!r}")

    def __dir__(self) -> list[str]:
        return __all__


sys.modules[__name__].__class__ = _Namespace
