"""Tables for the terminal."""

from __future__ import annotations

def id_table(headers: list[str], rows: list[list[str]], id_columns: tuple[int, ...] = (0,)):
    """A rich Table whose id columns are never cut or wrapped (ids are what users copy); on a
    narrow terminal the other columns give way, folding their text onto more lines."""
    from rich.table import Table

    table = Table(*headers)
    for index, column in enumerate(table.columns):
        if index in id_columns:
            column.no_wrap = True
            column.min_width = max((len(row[index]) for row in rows), default=0)
        else:
            column.overflow = "fold"
    for row in rows:
        table.add_row(*row)
    return table
