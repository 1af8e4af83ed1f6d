"""Errors a user can act on: a sentence saying what is wrong and a hint saying what to do.

The CLI prints them without a traceback and exits with `exit_code`
(1: the operation failed, 2: bad usage or unreadable input).
"""

from __future__ import annotations


class TunesmithError(Exception):
    exit_code = 1

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\nHint: {self.hint}"


class BadInputError(TunesmithError):
    """The user's input (a file, an option, a spec) cannot be used as given."""

    exit_code = 2


class ExportError(TunesmithError):
    """An example cannot be represented in the requested format."""

    exit_code = 1
