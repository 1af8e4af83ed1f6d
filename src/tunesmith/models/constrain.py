"""Constrained decoding: every answer a valid label, template instance or JSON value.

An output space (data/output_space.py), a choice list or a JSON schema becomes a list of
*segments* read left to right: fixed text (`Category:`), a choice among strings (the labels,
a field's values), free text (a field's open value: bytes from an alphabet), and the end. A
jump lets decoding go on at any of several later segments: the way past an optional JSON key.
The segments make a small automaton over **bytes** (UTF-8), so a token may span segments
the way the tokenizer writes text (" High" after "Priority:"), and a label can come out in
any tokenization the model prefers.

At each decoding step a row's automaton state gives the tokens allowed next: those whose
bytes the automaton can read from that state, found by walking a byte trie of the
vocabulary alongside the automaton (a label prefix prunes the walk to a few branches), and
the end-of-turn token once the state accepts. The allowed tokens of a state are computed
once and cached: a label space has as many states as its labels have distinct prefixes.

A `RowState` follows one row through its constraint: before each step it masks the row's
scores to the allowed tokens, after it reads the chosen token. Evaluation (models/generate.py)
and the server's engine (serve/engine.py) give each row of a batch its own (or none: a free
row)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from ..data.output_space import BOOLEAN, NUMBER, Field, OutputSpace
from ..errors import BadInputError

if TYPE_CHECKING:
    import torch

# ------------------------------------------------------------------------------ segments


@dataclass(frozen=True)
class Text:
    """Fixed bytes."""
    value: bytes


@dataclass(frozen=True)
class Choice:
    """One of these byte strings."""
    options: tuple[bytes, ...]


@dataclass(frozen=True)
class Free:
    """Bytes from an alphabet, at least `min_len` of them."""
    alphabet: frozenset[int]
    min_len: int = 1


@dataclass(frozen=True)
class Number:
    """A JSON number: -?(0|[1-9][0-9]*)(.[0-9]+)?, at most MAX_DIGITS digits before and after
    the point, so that a number ends."""
    integer: bool = False


MAX_DIGITS = 12


def number_step(progress: tuple[str, int], byte: int, integer: bool) -> tuple[str, int] | None:
    """progress: (part, digits in it); part: "" (start), "-", "0", "int", ".", "frac"."""
    part, n = progress
    digit = 48 <= byte <= 57
    if part in ("", "-"):
        if byte == 45 and part == "":
            return ("-", 0)
        if byte == 48:
            return ("0", 1)
        return ("int", 1) if digit else None
    if part in ("0", "int"):
        if digit and part == "int" and n < MAX_DIGITS:
            return ("int", n + 1)
        return (".", 0) if byte == 46 and not integer else None
    if digit and n < MAX_DIGITS:
        return ("frac", n + 1)
    return None


@dataclass(frozen=True)
class AnyJsonObject:
    """Any JSON object (OpenAI's json_object), nested at most `max_depth` deep."""
    max_depth: int = 6


@dataclass(frozen=True)
class Jump:
    """No bytes: decoding goes on at any of these (later) segment indexes."""
    targets: tuple[int, ...]


_ALL = frozenset(range(256))
LINE = _ALL - {ord("\n"), ord("\r")}  # a value on one line
JSON_STRING = _ALL - {ord('"'), ord("\\"), ord("\n"), ord("\r"), ord("\t")} - set(range(32))

Segment = Text | Choice | Free | Number | AnyJsonObject | Jump

# --- any JSON object: a small pushdown reader, its state a tuple (stack, mode) ---------------
# modes: "{" (the opening brace), "key?" (a key or "}"), "key" (a key after ","), ":",
# "value", "after" (",", "]" or "}" next), "str"/"esc" (in a string; the stack top says whether
# a key), "num:PART:DIGITS" (see number_step), "lit:REST" (the rest of true/false/null), "done".
_WS = frozenset(b" \n\t\r")


def json_step(state: tuple, byte: int, max_depth: int) -> tuple | None:
    stack, mode = state
    ch = chr(byte)
    if mode == "{":
        return (("o",), "key?") if ch == "{" else None
    if mode in ("str", "esc"):
        if mode == "esc":
            return (stack, "str") if ch in '"\\/bfnrtu' else None  # \uXXXX: the hex digits pass as text
        if ch == "\\":
            return (stack, "esc")
        if ch == '"':
            if stack[-1] == "k":
                return (stack[:-1], ":")
            return (stack, "after")
        return (stack, "str") if byte >= 32 else None
    if mode.startswith("num:"):
        _, part, n = mode.split(":")
        nxt = number_step((part, int(n)), byte, False)
        if nxt is not None:
            return (stack, f"num:{nxt[0]}:{nxt[1]}")
        return json_step((stack, "after"), byte, max_depth) if part in ("0", "int", "frac") else None
    if mode.startswith("lit:"):
        rest = mode[4:]
        if ch != rest[0]:
            return None
        return (stack, "lit:" + rest[1:]) if len(rest) > 1 else (stack, "after")
    if byte in _WS and mode != "done":
        return state
    if mode in ("key?", "key"):
        if ch == '"':
            return (stack + ("k",), "str")
        if ch != "}" or mode != "key?":
            return None
        return (stack[:-1], "after") if len(stack) > 1 else ((), "done")
    if mode == ":":
        return (stack, "value") if ch == ":" else None
    if mode == "value":
        if ch == '"':
            return (stack, "str")
        if ch in "-0123456789":
            part, n = number_step(("", 0), byte, False)
            return (stack, f"num:{part}:{n}")
        if ch in "tfn":
            return (stack, "lit:" + {"t": "rue", "f": "alse", "n": "ull"}[ch])
        if ch in "{[" and len(stack) < max_depth:
            return ((stack + ("o",), "key?") if ch == "{" else (stack + ("a",), "value"))
        if ch == "]" and stack and stack[-1] == "a":  # an empty array
            return (stack[:-1], "after")
        return None
    if mode == "after":
        if not stack:
            return None
        if ch == ",":
            return (stack, "key" if stack[-1] == "o" else "value")
        if ch == ("}" if stack[-1] == "o" else "]"):
            return (stack[:-1], "after") if len(stack) > 1 else ((), "done")
        return None
    return None


def label_segments(labels: Sequence[str]) -> tuple[Segment, ...]:
    if not labels:
        raise BadInputError("a choice needs at least one option")
    return (Choice(tuple(sorted({label.encode() for label in labels}))),)


def space_segments(space: OutputSpace) -> tuple[Segment, ...]:
    """The segments of a learned output space."""
    if space.kind == "labels":
        return label_segments(space.labels)
    segments: list[Segment] = []
    if space.kind == "keys":
        for i, f in enumerate(space.fields):
            segments.append(Text(("\n" if i else "").encode() + f"{f.name}:".encode()))
            segments += [Choice(tuple(f" {v}".encode() for v in f.values))] if f.values is not None \
                else [Text(b" "), Free(LINE)]
        return tuple(segments)
    return _json_members(space)


def _json_value(f: Field) -> list[Segment]:
    if f.values is not None:
        return [Choice(tuple(json.dumps(v).encode() for v in f.values))]
    return _scalar({NUMBER: "number", BOOLEAN: "boolean"}.get(f.type, "string"))


def _json_members(space: OutputSpace) -> tuple[Segment, ...]:
    """A JSON object of the space's keys in its order, the optional ones free to be left out.
    Each member is laid out twice, first in the object (no comma) and after another; after "{"
    and after each member a jump goes to every member that may come next (up to the next
    required one) and, when no required one is left, to the closing "}". With every key
    required each jump has one target: a straight line."""
    colon, comma = (b":", b",") if space.compact_json else (b": ", b", ")
    fields = space.fields
    segments: list[Segment] = [Text(b"{"), Jump(())]  # the jumps are filled in once the blocks are laid out
    starts: dict[tuple[int, bool], int] = {}
    ends: dict[int, int] = {}  # the index of each member's closing jump -> the member
    for first in (True, False):
        for j, f in enumerate(fields):
            starts[j, first] = len(segments)
            segments.append(Text((b"" if first else comma) + json.dumps(f.name).encode() + colon))
            segments += _json_value(f)
            ends[len(segments)] = j
            segments.append(Jump(()))
    close = len(segments)
    segments.append(Text(b"}"))

    def following(after: int, first: bool) -> Jump:
        targets = []
        for m in range(after + 1, len(fields)):
            targets.append(starts[m, first])
            if fields[m].required:
                return Jump(tuple(targets))
        return Jump(tuple(targets) + (close,))

    segments[1] = following(-1, True)
    for at, j in ends.items():
        segments[at] = following(j, False)
    return tuple(segments)


# --------------------------------------------------------------------------- as a grammar


def gbnf(segments: Sequence[Segment]) -> str:
    """The same constraint as a GBNF grammar, for llama.cpp (llama-server's `grammar` field):
    llama.cpp then masks the tokens that leave it at each step, as compile_constraint does here.
    The segments from the start and from each jump's target make one rule each, up to the next
    jump (its targets, as alternatives) or the next rule's start."""
    entries = sorted({0} | {t for seg in segments if isinstance(seg, Jump) for t in seg.targets})
    name = lambda index: "root" if index == 0 else f"s{index}"
    lines, rules = [], ""
    for entry in entries:
        if entry >= len(segments):
            continue
        parts = []
        for index in range(entry, len(segments)):
            if index != entry and index in entries:
                parts.append(name(index))
                break
            segment = segments[index]
            if isinstance(segment, Jump):
                alternatives = " | ".join(name(t) for t in segment.targets if t < len(segments))
                if alternatives:  # the end among the targets: the alternatives are optional
                    parts.append(f"({alternatives})" + ("?" if len(segments) in segment.targets else ""))
                break
            if isinstance(segment, AnyJsonObject):
                rules = _JSON_GBNF
            parts.append(_gbnf_piece(segment))
        lines.append(f"{name(entry)} ::= {' '.join(parts)}")
    return "\n".join(lines) + "\n" + rules


def _gbnf_piece(segment: Segment) -> str:
    if isinstance(segment, Text):
        return _gbnf_literal(segment.value)
    if isinstance(segment, Choice):
        return "(" + " | ".join(_gbnf_literal(option) for option in segment.options) + ")"
    if isinstance(segment, Free):
        return f"{_gbnf_class(segment.alphabet)}{{{segment.min_len},}}"
    if isinstance(segment, Number):
        digits = f"[0-9]{{0,{MAX_DIGITS - 1}}}"
        fraction = "" if segment.integer else f' ("." [0-9]{{1,{MAX_DIGITS}}})?'
        return f'("-"? ("0" | [1-9] {digits}){fraction})'
    return "object"  # AnyJsonObject: JSON's own grammar (any depth; the local reader stops at max_depth)


_JSON_GBNF = r"""object ::= "{" ws (string ws ":" ws value ws ("," ws string ws ":" ws value ws)*)? "}"
value ::= object | array | string | number | "true" | "false" | "null"
array ::= "[" ws (value ws ("," ws value ws)*)? "]"
string ::= "\"" ([^"\\\x00-\x1f] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4}))* "\""
number ::= "-"? ("0" | [1-9] [0-9]*) ("." [0-9]+)? ([eE] [-+]? [0-9]+)?
ws ::= [ \t\n\r]*
"""


def _gbnf_literal(value: bytes) -> str:
    escaped = "".join(f"\\x{ord(ch):02x}" if ord(ch) < 32 or ch in '"\\' else ch for ch in value.decode("utf-8"))
    return f'"{escaped}"'


def _gbnf_class(alphabet: frozenset[int]) -> str:
    """A character class for a byte alphabet that holds every byte of a multi-byte UTF-8
    character (LINE, JSON_STRING): what it leaves out is ASCII."""
    left_out = sorted(set(range(256)) - alphabet)
    if any(byte >= 128 for byte in left_out):
        raise ValueError("only alphabets that leave out ASCII bytes alone have a character class")
    return "[^" + "".join(f"\\x{byte:02x}" for byte in left_out) + "]" if left_out else "[\\x00-\\U0010ffff]"


def schema_segments(schema: dict) -> tuple[Segment, ...]:
    """The segments of a JSON schema: objects (every property, in order), strings, numbers,
    integers, booleans, null, enums and consts. BadInputError for what a fixed sequence of
    segments cannot hold (arrays, anyOf, open objects)."""
    segments = _schema(schema, "schema")
    return tuple(_merge_text(segments))


def _scalar(kind: str) -> list[Segment]:
    if kind == "string":
        return [Text(b'"'), Free(JSON_STRING, 0), Text(b'"')]
    if kind in ("number", "integer"):
        return [Number(integer=kind == "integer")]
    if kind == "boolean":
        return [Choice((b"true", b"false"))]
    if kind == "null":
        return [Text(b"null")]
    raise BadInputError(f"the JSON schema type {kind!r} cannot be enforced while decoding",
                        "use objects, strings, numbers, integers, booleans, null and enums")


def _schema(schema: dict, where: str) -> list[Segment]:
    if not isinstance(schema, dict):
        raise BadInputError(f"{where} is not a JSON schema object")
    if "enum" in schema:
        return [Choice(tuple(json.dumps(v).encode() for v in schema["enum"]))]
    if "const" in schema:
        return [Text(json.dumps(schema["const"]).encode())]
    kind = schema.get("type")
    if kind == "object" or (kind is None and "properties" in schema):
        properties = schema.get("properties") or {}
        if not properties:
            raise BadInputError(f"{where}: an object without properties cannot be enforced while decoding",
                                "list its properties, or ask for json_object")
        out: list[Segment] = []
        for i, (name, sub) in enumerate(properties.items()):
            out.append(Text((b"{" if i == 0 else b", ") + json.dumps(name).encode() + b": "))
            out += _schema(sub, f"{where}.{name}")
        return out + [Text(b"}")]
    if isinstance(kind, str):
        return _scalar(kind)
    raise BadInputError(f"{where}: {json.dumps(schema)[:80]} cannot be enforced while decoding",
                        "use objects, strings, numbers, integers, booleans, null and enums")


def _merge_text(segments: list[Segment]) -> list[Segment]:
    out: list[Segment] = []
    for seg in segments:
        if isinstance(seg, Text) and out and isinstance(out[-1], Text):
            out[-1] = Text(out[-1].value + seg.value)
        else:
            out.append(seg)
    return out


# ----------------------------------------------------------------------------- automaton

_State = tuple[int, Any]  # (segment index, offset | prefix | length); index len(segments): the end


class Automaton:
    """A nondeterministic automaton over bytes; a state of the whole is a set of (segment,
    progress) pairs, interned as a small int."""

    def __init__(self, segments: tuple[Segment, ...]):
        self.segments = segments
        self._sets: list[frozenset[_State]] = []
        self._ids: dict[frozenset[_State], int] = {}
        self._step: dict[tuple[int, int], int | None] = {}
        self.start = self._intern(self._closure({(0, self._zero(0))}))

    def _zero(self, index: int) -> Any:
        if index < len(self.segments) and isinstance(self.segments[index], Choice):
            return b""
        if index < len(self.segments) and isinstance(self.segments[index], AnyJsonObject):
            return ((), "{")
        if index < len(self.segments) and isinstance(self.segments[index], Number):
            return ("", 0)
        return 0

    def _closure(self, states: set[_State]) -> frozenset[_State]:
        """Add the states reachable without reading: past a finished segment to the next."""
        todo, seen = list(states), set(states)
        while todo:
            index, progress = todo.pop()
            if index >= len(self.segments):
                continue
            seg = self.segments[index]
            if isinstance(seg, Jump):
                for nxt in ((target, self._zero(target)) for target in seg.targets):
                    if nxt not in seen:
                        seen.add(nxt)
                        todo.append(nxt)
                continue
            finished = (isinstance(seg, Text) and progress == len(seg.value)) or \
                       (isinstance(seg, Choice) and progress in seg.options) or \
                       (isinstance(seg, Free) and progress >= seg.min_len) or \
                       (isinstance(seg, AnyJsonObject) and progress == ((), "done")) or \
                       (isinstance(seg, Number) and progress[0] in ("0", "int", "frac"))
            if finished:
                nxt = (index + 1, self._zero(index + 1))
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return frozenset(seen)

    def _intern(self, states: frozenset[_State]) -> int:
        if states not in self._ids:
            self._ids[states] = len(self._sets)
            self._sets.append(states)
        return self._ids[states]

    def accepts(self, state: int) -> bool:
        return any(index == len(self.segments) for index, _ in self._sets[state])

    def step(self, state: int, byte: int) -> int | None:
        """The state after reading `byte`, or None when nothing can read it."""
        key = (state, byte)
        if key in self._step:
            return self._step[key]
        out: set[_State] = set()
        for index, progress in self._sets[state]:
            if index >= len(self.segments):
                continue
            seg = self.segments[index]
            if isinstance(seg, Jump):
                continue  # reads nothing: its targets are in the state too (_closure)
            if isinstance(seg, Text):
                if progress < len(seg.value) and seg.value[progress] == byte:
                    out.add((index, progress + 1))
            elif isinstance(seg, Choice):
                prefix = progress + bytes((byte,))
                if any(option.startswith(prefix) for option in seg.options):
                    out.add((index, prefix))
            elif isinstance(seg, Number):
                nxt = number_step(progress, byte, seg.integer)
                if nxt is not None:
                    out.add((index, nxt))
            elif isinstance(seg, AnyJsonObject):
                nxt = json_step(progress, byte, seg.max_depth)
                if nxt is not None:
                    out.add((index, nxt))
            elif byte in seg.alphabet:
                out.add((index, min(progress + 1, seg.min_len)))
        result = self._intern(self._closure(out)) if out else None
        self._step[key] = result
        return result

    def read(self, state: int | None, data: bytes) -> int | None:
        for byte in data:
            if state is None:
                return None
            state = self.step(state, byte)
        return state

    def matches(self, text: str) -> bool:
        state = self.read(self.start, text.encode())
        return state is not None and self.accepts(state)


# ---------------------------------------------------------------------------- vocabulary


def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level alphabet: each byte is written as one printable character."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    n = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(printable, chars)}


class Vocabulary:
    """Every token's bytes (special tokens left out), as a byte trie."""

    def __init__(self, tokenizer: Any, size: int):
        self.size = size  # the model's logits width (may exceed the tokenizer's)
        special = set(tokenizer.all_special_ids) | set(getattr(tokenizer, "added_tokens_decoder", {}) or {})
        pieces = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
        decoder = _byte_decoder()
        byte_level = all(ch in decoder for piece in pieces[:2000] if piece for ch in piece)
        self.root: dict = {}
        for token_id, piece in enumerate(pieces):
            if token_id in special or not piece or token_id >= size:
                continue
            data = _piece_bytes(piece, decoder, byte_level, tokenizer, token_id)
            if not data:
                continue
            node = self.root
            for byte in data:
                node = node.setdefault(byte, {})
            node.setdefault(-1, []).append(token_id)


def _piece_bytes(piece: str, decoder: dict[str, int], byte_level: bool, tokenizer: Any, token_id: int) -> bytes:
    if byte_level:
        return bytes(decoder[ch] for ch in piece) if all(ch in decoder for ch in piece) else b""
    if piece.startswith("<0x") and piece.endswith(">") and len(piece) == 6:  # SentencePiece byte fallback
        return bytes((int(piece[3:5], 16),))
    if "▁" in piece:
        return piece.replace("▁", " ").encode()
    return tokenizer.decode([token_id]).encode()


@lru_cache(maxsize=4)
def _vocabulary(tokenizer: Any, size: int) -> Vocabulary:
    return Vocabulary(tokenizer, size)


# ----------------------------------------------------------------------------- compiled


class Constraint:
    """Segments compiled against one vocabulary: the allowed tokens of each state, cached."""

    def __init__(self, segments: tuple[Segment, ...], vocabulary: Vocabulary, stop_ids: Sequence[int]):
        self.automaton = Automaton(segments)
        self.vocabulary = vocabulary
        self.stop_ids = list(stop_ids)
        self._allowed: dict[int, Any] = {}

    def allowed(self, state: int) -> torch.Tensor:
        """The token ids allowed from `state` (as a tensor of ids)."""
        import torch

        if state not in self._allowed:
            ids: list[int] = list(self.stop_ids) if self.automaton.accepts(state) else []
            stack = [(self.vocabulary.root, state)]
            step = self.automaton.step
            while stack:
                node, at = stack.pop()
                for byte, child in node.items():
                    if byte < 0:
                        continue
                    nxt = step(at, byte)
                    if nxt is None:
                        continue
                    ids.extend(child.get(-1, ()))
                    stack.append((child, nxt))
            self._allowed[state] = torch.tensor(sorted(set(ids)), dtype=torch.long)
        return self._allowed[state]


_COMPILED: dict[tuple[int, int, tuple], Constraint] = {}
_COMPILED_MAX = 64


def compile_constraint(segments: tuple[Segment, ...], tokenizer: Any, vocab_size: int,
                       stop_ids: Sequence[int]) -> Constraint:
    """The compiled constraint for these segments and this tokenizer (cached: the same label
    set compiles once for a whole evaluation or a server's life)."""
    key = (id(tokenizer), vocab_size, segments, tuple(stop_ids))
    if key not in _COMPILED:
        if len(_COMPILED) >= _COMPILED_MAX:
            _COMPILED.pop(next(iter(_COMPILED)))
        _COMPILED[key] = Constraint(segments, _vocabulary(tokenizer, vocab_size), stop_ids)
    return _COMPILED[key]


class RowState:
    """One row's place in its constraint while it decodes."""

    def __init__(self, constraint: Constraint):
        self.constraint = constraint
        self.state: int | None = constraint.automaton.start
        self.ended = False

    def advance(self, token: int) -> None:
        if self.ended or self.state is None:
            return
        if token in self.constraint.stop_ids:
            self.ended = True
            return
        data = _token_bytes(self.constraint.vocabulary, token)
        self.state = self.constraint.automaton.read(self.state, data) if data is not None else None

    def mask(self, scores: torch.Tensor) -> torch.Tensor:
        """The row's scores with every token it may not take at -inf."""
        import torch

        if self.ended or self.state is None:  # finished (padding follows) or off the rails: leave it
            return scores
        allowed = self.constraint.allowed(self.state).to(scores.device)
        if allowed.numel() == 0:
            return scores
        out = torch.full_like(scores, float("-inf"))
        out[allowed] = scores[allowed]
        return out


@lru_cache(maxsize=4)
def _token_table(vocabulary: Vocabulary) -> dict[int, bytes]:
    table: dict[int, bytes] = {}
    stack: list[tuple[dict, bytes]] = [(vocabulary.root, b"")]
    while stack:
        node, prefix = stack.pop()
        for key, child in node.items():
            if key < 0:
                for token_id in child:
                    table[token_id] = prefix
            else:
                stack.append((child, prefix + bytes((key,))))
    return table


def _token_bytes(vocabulary: Vocabulary, token: int) -> bytes | None:
    return _token_table(vocabulary).get(token)
