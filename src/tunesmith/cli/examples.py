"""`tunesmith examples …`: bundled example data."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="Bundled example data.", no_args_is_help=True)


@app.command("tickets")
def tickets_command(
    out: Path = typer.Option(..., help="JSONL file to write"),
    n: int = typer.Option(1200, "-n", min=1, help="number of tickets"),
    seed: int = typer.Option(0, help="random seed"),
) -> None:
    """Generate realistic customer-support tickets (input-output JSONL) with the guide's pitfalls mixed in."""
    from ..examples.tickets import write_tickets

    tickets = write_tickets(out, n=n, seed=seed)
    print(f"wrote {len(tickets.records)} tickets to {out}")
