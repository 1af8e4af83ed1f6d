"""Helpers shared by the format modules: the errors they raise and field accessors."""

from __future__ import annotations

from typing import Any

from ..example import MODEL, USER, Example, Turn


class RecordError(ValueError):
    """A record has the wrong shape for its format; the message says what is wrong."""


class CannotRepresent(ValueError):
    """An example holds something the target format has no place for."""


def text_field(record: dict, key: str, *, required: bool = True) -> str | None:
    if key not in record or record[key] is None:
        if required:
            raise RecordError(f'missing field "{key}"')
        return None
    value = record[key]
    if not isinstance(value, str):
        raise RecordError(f'field "{key}" must be a string, not {type(value).__name__}')
    return value


def list_field(record: dict, key: str) -> list:
    if key not in record:
        raise RecordError(f'missing field "{key}"')
    value = record[key]
    if not isinstance(value, list):
        raise RecordError(f'field "{key}" must be a list, not {type(value).__name__}')
    return value


def rest(record: dict, consumed: tuple[str, ...]) -> dict[str, Any]:
    """The record's fields that the format does not consume: kept as the example's meta."""
    return {k: v for k, v in record.items() if k not in consumed}


def take_common(record: dict) -> dict[str, Any]:
    """A record's own "id" becomes the example's id (it also stays in meta, so that writing
    the example back keeps it)."""
    out: dict[str, Any] = {}
    if isinstance(record.get("id"), (str, int)) and not isinstance(record.get("id"), bool):
        out["id"] = str(record["id"])
    return out


def single_turn(example: Example, fmt: str) -> tuple[str, str]:
    """(user text, model text) of a one-exchange example, or CannotRepresent."""
    roles = [t.role for t in example.turns]
    if roles != [USER, MODEL]:
        raise CannotRepresent(
            f"{fmt} holds exactly one user turn and one model turn; "
            f"this example has roles {roles}"
        )
    return example.turns[0].text, example.turns[1].text


def no_system(example: Example, fmt: str) -> None:
    if example.system:
        raise CannotRepresent(f"{fmt} has no place for a system instruction")


def turns_from_pairs(pairs: list[tuple[str, str]]) -> list[Turn]:
    return [Turn(role, text) for role, text in pairs]


def split_system(turns: list[Turn], system_role: str = "system") -> tuple[str | None, list[Turn]]:
    """Leading system messages become the system instruction (joined by blank lines). A
    system message later in the conversation stays a turn, for the structure check to flag."""
    leading: list[str] = []
    i = 0
    while i < len(turns) and turns[i].role == system_role:
        leading.append(turns[i].text)
        i += 1
    return ("\n\n".join(leading) if leading else None), turns[i:]


def known_roles_only(example: Example, fmt: str) -> None:
    unknown = sorted({t.role for t in example.turns if t.role not in (USER, MODEL)})
    if unknown:
        raise CannotRepresent(f"{fmt} has no place for turns with role {', '.join(unknown)}")
