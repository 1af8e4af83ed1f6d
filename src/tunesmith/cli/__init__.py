"""The `tunesmith` command: a thin layer over the library, one module per command group.

The one place where tunesmith's own modules are imported inside functions: each command
imports the library it runs when it runs, so `tunesmith --help` and a quick command start in
a fraction of a second (importing every floor takes about a second: SQLAlchemy, numpy,
pydantic models, rich). The import-linter contract sees these imports all the same."""

from __future__ import annotations

import sys

import typer

from ..errors import TunesmithError
from . import data, examples, jobs, models, rate, rollout
from .evaluate import eval_command
from .monitor import monitor_command
from .plan import plan_command
from .serve import serve_command
from .train import train_command
from .ui import ui_command

app = typer.Typer(
    name="tunesmith",
    help="From a pile of examples to a fine-tuned model in production, with an honest verdict.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(data.app, name="data")
app.add_typer(examples.app, name="examples")
app.add_typer(jobs.app, name="jobs")
app.add_typer(models.app, name="models")
app.add_typer(rate.app, name="rate")
app.add_typer(rollout.app, name="rollout")
app.command("plan")(plan_command)
app.command("train")(train_command)
app.command("eval")(eval_command)
app.command("serve")(serve_command)
app.command("monitor")(monitor_command)
app.command("ui")(ui_command)


def main() -> None:
    """Entry point: user-facing errors print as a sentence and a hint, never a traceback.
    Usage errors and exit codes are click's (standalone mode); ours are caught here."""
    from pydantic import ValidationError

    try:
        app()
    except TunesmithError as exc:
        _fail(f"error: {exc.message}", exc.hint, exc.exit_code)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "options"
        _fail(f"error: {field}: {first['msg']}", None, 2)


def _fail(message: str, hint: str | None, code: int) -> None:
    print(message, file=sys.stderr)
    if hint:
        print(f"hint: {hint}", file=sys.stderr)
    sys.exit(code)
