"""Format drift: outputs that do not follow the dataset's output format.

The guide's pitfall "inconsistent output formatting": when most outputs follow one template
(`Category: …\\nPriority: …\\nAction: …`, a JSON object with fixed keys, a code block) the
few that do not teach the model to break it. Without --template, the check infers the
dominant format from the outputs' *signatures*; with --template SPEC, every output must
match SPEC.

SPEC language (the signature of an output is written in it too, so a dominant signature
is a SPEC: `template_from_signature(signature)` is `parse_template(signature)`):

    json                 a JSON object, any keys
    json:K1,K2           a JSON object with exactly the keys K1 and K2, in any order
    json:K1,K2,...       a JSON object with at least the keys K1 and K2 (other keys allowed)
    json:                the empty JSON object {}
    json-array           a JSON array
    keys:K1,K2,K3        exactly the lines "K1: value", "K2: value", "K3: value", in this
                         order, each value non-empty (blank lines between them are ignored)
    keys                 every non-blank line is "Key: value" with a non-empty value, any keys
    fence, fence:LANG    one fenced code block (```…```), tagged LANG when LANG is given
    bullets              every non-blank line is a bullet ("- ", "* ", "+ ", "• ")
    numbered             every non-blank line is a numbered item ("1. ", "2) ")
    regex:PATTERN        the whole output matches the Python regular expression PATTERN
    TEXT with {}         a literal template: the output is TEXT with each {} standing for
                         some non-blank text (newlines included), e.g.
                         "Category: {}\\nPriority: {}\\nAction: {}"

In a literal template the two characters \\n stand for a newline (shells pass them through
as typed); `{}` is always a placeholder; a SPEC that starts with json:, keys:, fence: or
regex: is read as that form. Outputs are compared without leading and trailing whitespace
(a regex with re.DOTALL). Keys are case-sensitive: "category:" is not "Category:". An
object whose keys the language cannot write (one with a comma, say) has the signature "json".

Signatures that are not templates: "text" (free text), "invalid-json" (looks like a JSON
object but does not parse) and "empty". A dataset of free text has no template and gets
no finding."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from ...errors import BadInputError
from ..example import Example
from ..findings import Finding, about
from ..label_shape import find_label_drift
from .messages import count, quote

if TYPE_CHECKING:
    from . import CheckContext

FREE_TEXT = "text"
INVALID_JSON = "invalid-json"
EMPTY = "empty"

# A format is dominant when it covers at least 60% of at least 10 outputs: a clear majority,
# so that what deviates is a minority worth a look, and enough outputs to call it a pattern.
DOMINANT_SHARE = 0.6
MIN_OUTPUTS = 10
SHAPES_SHOWN = 5  # deviant shapes spelled out in a message; the rest are counted

# These three match stripped lines. "Key: value": the key starts with a letter and is short;
# the value may be empty here (the templates require it non-empty). "https://…" is not a key line.
_KEY_LINE = re.compile(r"([^\W\d_][\w \-]{0,40}?)\s*:(?!//)\s*(.*?)")
_BULLET = re.compile(r"[-*+•]\s+\S")
_NUMBERED = re.compile(r"\d{1,3}[.)]\s+\S")
_KEY_NAME = re.compile(r"[^\W\d_][\w \-]{0,40}")  # a key in keys:K1,K2
_VISIBLE = re.compile(r"\S")
_AT_LEAST = "..."


class Template(Protocol):
    def matches(self, text: str) -> bool: ...

    def describe(self) -> str: ...


# ---------------------------------------------------------------------------- signatures


def output_signature(text: str) -> str:
    """The shape of one output, written in the SPEC language ("keys:Category,Priority",
    "json:label,score", "fence:python", "bullets", ...) or "text", "invalid-json", "empty"."""
    text = text.strip()
    if not text:
        return EMPTY
    if text[0] in "{[" and text[-1] in "}]":
        value = _load_json(text)
        if isinstance(value, dict):
            return _json_signature(value)
        if isinstance(value, list):
            return "json-array"
        if text[0] == "{":
            return INVALID_JSON
    if text.startswith("```"):
        lang = _fence_language(text)
        if lang is not None:
            return f"fence:{lang}" if lang else "fence"
    lines = _nonblank_lines(text)
    keys = _line_keys(lines)
    if keys is not None:
        return "keys:" + ",".join(key for key, _ in keys)
    if all(_BULLET.match(line) for line in lines):
        return "bullets"
    if all(_NUMBERED.match(line) for line in lines):
        return "numbered"
    return FREE_TEXT


def _load_json(text: str) -> object:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def _json_signature(value: dict) -> str:
    keys = sorted(value)
    if all(_writable_json_key(k) for k in keys):
        return "json:" + ",".join(keys)
    return "json"  # a key the SPEC language cannot write: fall back to "any object"


def _writable_json_key(key: str) -> bool:
    return bool(key) and key == key.strip() and "," not in key and key != _AT_LEAST


def _fence_language(text: str) -> str | None:
    """The language tag of an output that is one fenced code block ("" when untagged), else None."""
    if text.count("```") != 2 or not text.endswith("```") or "\n" not in text:
        return None
    first_line = text.split("\n", 1)[0][3:].strip()
    return first_line.split()[0] if first_line else ""


def _nonblank_lines(text: str) -> list[str]:
    """The lines with something on them, stripped."""
    return [stripped for stripped in (line.strip() for line in text.splitlines()) if stripped]


def _line_keys(lines: list[str]) -> list[tuple[str, str]] | None:
    """(key, value) of each line when every line is "Key: value", else None."""
    pairs = []
    for line in lines:
        m = _KEY_LINE.fullmatch(line)
        if m is None:
            return None
        pairs.append(m.groups())
    return pairs or None


def dominant_signature(outputs: list[str]) -> tuple[str, float] | None:
    """The signature at least 60% of the outputs share, with its share; None when there is
    no such majority, too few outputs, or the majority is free text.

    When no single signature has a majority but one family does (JSON objects with varying
    keys, "Key: value" lines with varying keys) the family is the template: "json", "keys"."""
    if len(outputs) < MIN_OUTPUTS:
        return None
    signatures = Counter(output_signature(o) for o in outputs)
    families: Counter[str] = Counter()
    for signature, n in signatures.items():
        family = signature.split(":", 1)[0]
        if family in ("json", "keys", "fence"):
            families[family] += n
    for counts in (signatures, families):
        for signature, n in counts.most_common(1):
            if _is_template(signature) and n >= DOMINANT_SHARE * len(outputs):
                return signature, n / len(outputs)
    return None


def _is_template(signature: str) -> bool:
    return signature not in (FREE_TEXT, INVALID_JSON, EMPTY)


def template_from_signature(signature: str) -> Template:
    """The template a signature stands for (a template signature is a SPEC)."""
    if not _is_template(signature):
        raise ValueError(f"{signature!r} is the signature of outputs without a template")
    return parse_template(signature)


def describe_signature(signature: str) -> str:
    """A signature in words, for messages."""
    if not _is_template(signature):
        return {FREE_TEXT: "free text", INVALID_JSON: "invalid JSON", EMPTY: "empty"}[signature]
    return template_from_signature(signature).describe()


# ----------------------------------------------------------------------------- templates


@dataclass(frozen=True)
class JsonObject:
    keys: tuple[str, ...] | None  # None: any keys
    at_least: bool = False  # the keys must be present; others are allowed

    def matches(self, text: str) -> bool:
        value = _load_json(text.strip())
        if not isinstance(value, dict):
            return False
        if self.keys is None:
            return True
        if self.at_least:
            return all(k in value for k in self.keys)
        return sorted(value) == sorted(self.keys)

    def describe(self) -> str:
        if self.keys is None:
            return "a JSON object"
        if not self.keys:
            return "an empty JSON object {}" if not self.at_least else "a JSON object"
        keys = ", ".join(f'"{k}"' for k in self.keys)
        return f"a JSON object with {'at least ' if self.at_least else ''}the keys {keys}"


@dataclass(frozen=True)
class JsonArray:
    def matches(self, text: str) -> bool:
        return isinstance(_load_json(text.strip()), list)

    def describe(self) -> str:
        return "a JSON array"


@dataclass(frozen=True)
class KeyLines:
    keys: tuple[str, ...] | None  # None: any keys

    def matches(self, text: str) -> bool:
        pairs = _line_keys(_nonblank_lines(text))
        if pairs is None or not all(value for _, value in pairs):
            return False
        return self.keys is None or tuple(key for key, _ in pairs) == self.keys

    def describe(self) -> str:
        if self.keys is None:
            return '"Key: value" lines'
        return '"' + "\\n".join(f"{key}: …" for key in self.keys) + '"'


@dataclass(frozen=True)
class Fence:
    language: str | None  # None: any or no tag

    def matches(self, text: str) -> bool:
        found = _fence_language(text.strip()) if text.strip().startswith("```") else None
        return found is not None and (self.language is None or found == self.language)

    def describe(self) -> str:
        return f"a ```{self.language} code block" if self.language else "a ``` code block"


@dataclass(frozen=True)
class ListItems:
    numbered: bool

    def matches(self, text: str) -> bool:
        lines = _nonblank_lines(text)
        item = _NUMBERED if self.numbered else _BULLET
        return bool(lines) and all(item.match(line) for line in lines)

    def describe(self) -> str:
        return "a numbered list" if self.numbered else "a bulleted list"


@dataclass(frozen=True)
class Literal:
    """Fixed text with {} placeholders, each standing for some non-blank text."""

    text: str  # stripped, with at least one {}

    def matches(self, output: str) -> bool:
        # Each literal piece is taken where it first occurs after some visible text: the
        # earliest spot leaves the most room for the rest, so this finds a match whenever
        # there is one, in linear time (a regex of lazy groups backtracks cubically).
        output = output.strip()
        first, *middle, last = self.text.split("{}")
        end = len(output) - len(last)
        if not output.startswith(first) or not output.endswith(last) or end < len(first):
            return False
        pos = len(first)
        for piece in middle:
            visible = _VISIBLE.search(output, pos, end)
            found = -1 if visible is None else output.find(piece, visible.end(), end)
            if found < 0:
                return False
            pos = found + len(piece)
        return _VISIBLE.search(output, pos, end) is not None

    def describe(self) -> str:
        return '"' + self.text.replace("\n", "\\n") + '"'


@dataclass(frozen=True)
class Regex:
    pattern: re.Pattern

    def matches(self, text: str) -> bool:
        return self.pattern.fullmatch(text.strip()) is not None

    def describe(self) -> str:
        return f"text matching the regular expression {self.pattern.pattern!r}"


def parse_template(spec: str) -> Template:
    """A SPEC (see the module docstring) as a template; BadInputError when it is not one."""
    spec = spec.strip()
    name, colon, arg = spec.partition(":")
    simple = {
        "json": JsonObject(None),
        "json-array": JsonArray(),
        "keys": KeyLines(None),
        "fence": Fence(None),
        "bullets": ListItems(numbered=False),
        "numbered": ListItems(numbered=True),
    }
    if not colon and spec in simple:
        return simple[spec]
    if colon and name == "json":
        return _json_template(arg)
    if colon and name == "keys":
        return KeyLines(_key_list(arg, spec))
    if colon and name == "fence" and arg.strip():
        return Fence(arg.strip())
    if colon and name == "regex":
        return _regex_template(arg)
    if "{}" in spec:
        return Literal(spec.replace("\\n", "\n").strip())  # "\\n" typed in a shell is a newline
    raise BadInputError(
        f"--template {spec!r} is not a template I know",
        "use json, json:KEY1,KEY2, keys:KEY1,KEY2, fence[:LANG], bullets, numbered, regex:PATTERN, "
        'or a literal template with {} placeholders such as "Category: {}\\nPriority: {}"',
    )


def _json_template(arg: str) -> JsonObject:
    if not arg.strip():
        return JsonObject(keys=())
    keys = [k.strip() for k in arg.split(",")]
    at_least = keys[-1] == _AT_LEAST
    if at_least:
        keys = keys[:-1]
    for key in keys:
        if not key or key == _AT_LEAST:
            raise BadInputError(
                f"--template json:{arg}: every key must be named ('...' may only come last)",
                "write the keys separated by commas, e.g. json:category,priority or json:category,...",
            )
    return JsonObject(tuple(keys), at_least)


def _key_list(arg: str, spec: str) -> tuple[str, ...]:
    keys = tuple(k.strip() for k in arg.split(","))
    for key in keys:
        if not _KEY_NAME.fullmatch(key):
            raise BadInputError(
                f'--template {spec}: {key!r} cannot be the key of a "Key: value" line',
                "a key starts with a letter and holds letters, digits, spaces, '-' or '_' "
                "(at most 41 characters); separate keys with commas, e.g. keys:Category,Priority,Action",
            )
    return keys


def _regex_template(pattern: str) -> Regex:
    try:
        return Regex(re.compile(pattern, re.DOTALL))
    except re.error as exc:
        raise BadInputError(f"--template regex:{pattern}: not a valid regular expression ({exc})") from None


# --------------------------------------------------------------------------------- check


def check_format_drift(examples: list[Example], ctx: CheckContext) -> list[Finding]:
    """format-drift: outputs that deviate from --template (error) or from the dominant
    format of the outputs (warning)."""
    answered = [ex for ex in examples if ex.last_model_index() is not None]  # the rest: bad-structure
    outputs = [ex.output_text for ex in answered]
    if ctx.template:
        template = parse_template(ctx.template)
        severity = "error"
    else:
        dominant = dominant_signature(outputs)
        if dominant is None:
            return _label_drift(answered)
        template = template_from_signature(dominant[0])
        severity = "warning"
    deviants = [(ex, out) for ex, out in zip(answered, outputs) if not template.matches(out)]
    if not deviants:
        return []
    shapes = _shapes(out for _, out in deviants)
    n, total = len(deviants), len(outputs)
    if ctx.template:
        message = (
            f"{n:,} of {total:,} outputs ({n / total:.0%}) do not match the template given with "
            f"--template, {template.describe()}: {shapes}."
        )
        hint = "Fix these outputs, or set them aside with tunesmith data prepare --enforce-template."
    else:
        follow = total - n
        message = (
            f"Outputs do not all share one format: {follow / total:.0%} ({follow:,} of {total:,}) are "
            f"{template.describe()} and {n:,} are not ({shapes})."
        )
        hint = (
            "Rewrite these outputs in the common format, or set them aside with tunesmith data prepare "
            "--enforce-template (name the format yourself with --template SPEC)."
        )
    return [about("format-drift", severity, message, hint, [ex for ex, _ in deviants])]


def _label_drift(answered: list[Example]) -> list[Finding]:
    """format-drift in a classification set: outputs written in another shape than a label."""
    outputs = [ex.output_text.strip() for ex in answered]
    drift = find_label_drift(outputs)
    if drift is None or not drift.off_shape:
        return []
    by_output: Counter[str] = Counter(outputs[i] for i in drift.off_shape)
    shown = ", ".join(
        f"{quote(out, 40)} → {drift.suggestion(out)}{'' if drift.off_shape_of(out) else ' (no such class)'}"
        + (f" ({n})" if n > 1 else "")
        for out, n in by_output.most_common(SHAPES_SHOWN)
    )
    more = len(by_output) - SHAPES_SHOWN
    n, total = len(drift.off_shape), len(outputs)
    unmatched = sum(1 for label in drift.off_shape.values() if label is None)
    message = (
        f"{count(n, 'output')} of {total:,} ({n / total:.1%}) {'is' if n == 1 else 'are'} not written as the labels "
        f"are ({drift.shape.describe()}): {shown}{f' and {more:,} more' if more > 0 else ''}. "
        "Trained as written, each is a class of its own."
        + (f" {count(unmatched, 'output')} name{'s' if unmatched == 1 else ''} no existing class." if unmatched else "")
    )
    hint = (
        "Write each as the label it means; tunesmith data prepare --enforce-template does it (the original "
        "is kept in the manifest), or sets them aside with --label-drift quarantine."
    )
    return [about("format-drift", "warning", message, hint, [answered[i] for i in drift.off_shape])]


def _shapes(outputs: Iterable[str]) -> str:
    """'42 free text, 18 "Category: …\\nAction: …"', largest first."""
    counts = Counter(_shape(out) for out in outputs).most_common()
    shown = ", ".join(f"{n:,} {shape}" for shape, n in counts[:SHAPES_SHOWN])
    rest = sum(n for _, n in counts[SHAPES_SHOWN:])
    if rest:
        others = len(counts) - SHAPES_SHOWN
        shown += f", {rest:,} in {others} other shape{'s' if others > 1 else ''}"
    return shown


def _shape(output: str) -> str:
    signature = output_signature(output)
    shape = describe_signature(signature)
    if signature.startswith("keys:") and not KeyLines(None).matches(output):
        shape += " with an empty value"
    return shape


CHECKS = [check_format_drift]
