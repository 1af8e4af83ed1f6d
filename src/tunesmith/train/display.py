"""The live training display: a progress bar with step, epoch, ETA, losses and speed; for a
job at Vertex AI, which reports minutes apart, one line per step and per change."""

from __future__ import annotations

from ..lazy import lazy_module

# rich loads when a display is made, not when the API is imported.
rich_console = lazy_module("rich.console")
rich_markup = lazy_module("rich.markup")
rich_progress = lazy_module("rich.progress")


class TrainingDisplay:
    def __init__(self, console: rich_console.Console | None = None):
        self.console = console or rich_console.Console(stderr=True)
        self.progress = rich_progress.Progress(
            rich_progress.TextColumn("step {task.completed}/{task.total}"),
            rich_progress.BarColumn(),
            rich_progress.TextColumn("epoch {task.fields[epoch]:.2f}"),
            rich_progress.TimeRemainingColumn(),
            rich_progress.TextColumn("train {task.fields[train]}  val {task.fields[val]}  {task.fields[speed]} tok/s"),
            rich_progress.TimeElapsedColumn(),
            console=self.console,
            transient=False,
        )
        self.task = None

    def __enter__(self) -> "TrainingDisplay":
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def __call__(self, row: dict) -> None:
        if "event" in row:
            self.progress.console.print(f"[dim]{row['event']}:[/dim] {row['message']}", highlight=False)
            return
        if self.task is None:
            self.task = self.progress.add_task("train", total=row.get("max_steps") or None, epoch=0.0,
                                               train="-", val="-", speed="-")
        fields = {"epoch": row.get("epoch", 0.0)}
        if "train_loss" in row:
            fields["train"] = f"{row['train_loss']:.4f}"
        if "eval_loss" in row:
            fields["val"] = f"{row['eval_loss']:.4f}"
            self.progress.console.print(f"step {row['step']}: validation loss {row['eval_loss']:.4f}"
                                        + (f", token accuracy {row['eval_token_accuracy']:.3f}"
                                           if "eval_token_accuracy" in row else "")
                                        + (f", answer accuracy {row['eval_accuracy']:.3f}"
                                           if "eval_accuracy" in row else ""), highlight=False)
        if "tokens_per_s" in row:
            fields["speed"] = f"{row['tokens_per_s']:.0f}"
        self.progress.update(self.task, completed=row["step"], total=row.get("max_steps") or None, **fields)


class RemoteDisplay:
    def __init__(self, console: rich_console.Console | None = None):
        self.console = console or rich_console.Console(stderr=True)

    def __call__(self, row: dict) -> None:
        if "event" in row:
            self.console.print(f"[dim]{row['event']}:[/dim] {rich_markup.escape(row['message'])}", highlight=False)
            return
        total = f"/{row['max_steps']}" if row.get("max_steps") else ""
        self.console.print(f"epoch {row['epoch']}, step {row['step']}{total}", highlight=False)
