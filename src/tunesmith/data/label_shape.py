"""The shape of a class label, and the outputs written in another shape.

In a classification set the outputs are bare labels (`card_arrival`, `ORDER`, `Billing`),
and the commonest drift is an output written in another shape: a prefix (`Intent:
card_arrival`), another case or separator (`Card Arrival`), a sentence naming the label
(`The intent is card_arrival.`). Each such output silently becomes a class of one.

`find_label_drift(outputs)` decides whether outputs are labels (most of them are repeats of a
few short single-line values), learns the dominant shape of a label from them, and returns
every output off that shape with the class it most likely means. A shape has three parts,
each judged only where the labels agree on it (DOMINANT_SHARE of the outputs):
- case: lower, UPPER, Capitalised, Title Case;
- separators: the characters that join the words of a label (`_`, `-`, space, `.`, `/`);
  one used by fewer than SEPARATOR_MIN_SHARE of the outputs is off-shape;
- characters: letters and digits only, between the separators.
A label used only off-shape is not a class: it is drift, and its canonical spelling (the
same words in the dominant shape) is suggested; unless it is common (OWN_CLASS_MIN), then it is
a class spelt its own way."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

LABEL_LIKE_MAX_WORDS = 6
MIN_OUTPUTS = 10
# Outputs are labels when values that repeat cover this share of them (drift is mostly one-off).
REPEATED_SHARE = 0.8
DOMINANT_SHARE = 0.9
SEPARATOR_MIN_SHARE = 0.05
SEPARATORS = "_-./ "
MAX_CLASSES = 200
# An off-shape label this common that names no other class is a class spelt its own way
# (Banking77 has "Refund_not_showing_up" and "reverted_card_payment?", 160 examples each),
# not drift: drift is the odd output here and there.
OWN_CLASS_MIN = 10

_CASES = ("lower", "UPPER", "Capitalised", "Title Case")
_PLAIN = re.compile(r"[^\W_]+(?:[_\-./ ][^\W_]+)*")
_PREFIX = re.compile(r"^\s*[^\W\d_][\w \-]{0,30}?\s*[:=]\s*")  # "Intent: ", "label = "
_EDGE = re.compile(r"^[\s\"'`“”‘’(\[{<*]+|[\s\"'`“”‘’)\]}>*.!?,;]+$")


def _cases(label: str) -> frozenset[str]:
    """The cases a label is written in (a label without letters is in every case)."""
    letters = [ch for ch in label if ch.isalpha()]
    if not letters:
        return frozenset(_CASES)
    words = [w for w in re.split(f"[{re.escape(SEPARATORS)}]+", label) if any(ch.isalpha() for ch in w)]
    found = set()
    if label == label.lower():
        found.add("lower")
    if label == label.upper():
        found.add("UPPER")
    if label[0].isupper() and label[1:] == label[1:].lower():
        found.add("Capitalised")
    if all(w[0].isupper() and w[1:] == w[1:].lower() for w in words):
        found.add("Title Case")
    return frozenset(found)


def _separators(label: str) -> frozenset[str]:
    return frozenset(ch for ch in SEPARATORS if ch in label.strip())


def label_words(text: str) -> list[str]:
    """A label's words (runs of letters and digits), case, separators and punctuation aside:
    `Card Arrival`, `card_arrival`, `card-arrival?` -> card, arrival."""
    return re.findall(r"[^\W_]+", text.casefold())


@dataclass(frozen=True)
class LabelShape:
    case: str | None  # one of _CASES, or None where labels are written in several
    separators: frozenset[str]  # those a label may use
    plain: bool  # letters and digits only between separators

    def fits(self, output: str) -> bool:
        if output != output.strip() or "\n" in output:
            return False
        if self.case is not None and self.case not in _cases(output):
            return False
        if not _separators(output) <= self.separators:
            return False
        return not self.plain or _PLAIN.fullmatch(output) is not None

    def describe(self) -> str:
        joined = {"_": 'words joined by "_"', "-": 'words joined by "-"', " ": "words separated by spaces",
                  ".": 'words joined by "."', "/": 'words joined by "/"'}
        parts = [] if self.case is None else [{"lower": "lowercase", "UPPER": "uppercase"}.get(self.case, self.case)]
        seps = sorted(self.separators)
        parts.append(" or ".join(joined[s] for s in seps) if seps else "one word")
        if self.plain:
            parts.append("letters and digits only")
        return ", ".join(parts)

    def reshape(self, text: str) -> str:
        """The same words in this shape (the first allowed separator; `_` when none is)."""
        words = label_words(text)
        sep = next((s for s in "_- ./" if s in self.separators), "_")
        if self.case == "UPPER":
            words = [w.upper() for w in words]
        elif self.case == "Title Case":
            words = [w.capitalize() for w in words]
        elif self.case == "Capitalised":
            words = [words[0].capitalize(), *words[1:]] if words else words
        return sep.join(words)


@dataclass
class LabelDrift:
    shape: LabelShape
    classes: list[str]  # the distinct outputs in the shape, most common first
    # per off-shape output (index into the outputs): the class it most likely means, or None
    off_shape: dict[int, str | None] = field(default_factory=dict)

    def off_shape_of(self, output: str) -> str | None:
        """The class an off-shape output means, or None."""
        return canonical_label(output, self.classes)

    def suggestion(self, output: str) -> str:
        """What to write instead: the class it means, or its words in the label shape."""
        return canonical_label(output, self.classes) or self.shape.reshape(_core(output))


def learn_label_shape(outputs: list[str]) -> tuple[LabelShape, list[str]] | None:
    """The dominant shape of the labels and the classes written in it, when the outputs are
    labels; None when they are not (free text, templates, too few)."""
    counts = Counter(outputs)
    repeated = {value: n for value, n in counts.items() if n > 1}
    total = len(outputs)
    if total < MIN_OUTPUTS or not 2 <= len(repeated) <= max(2, min(MAX_CLASSES, total // 5)):
        return None
    if sum(repeated.values()) < REPEATED_SHARE * total:
        return None
    if not all(len(v.split()) <= LABEL_LIKE_MAX_WORDS and "\n" not in v and v.strip() == v and v for v in repeated):
        return None
    case_votes: Counter[str] = Counter()
    separator_votes: Counter[str] = Counter()
    plain = 0
    for value, n in counts.items():
        for case in _cases(value):
            case_votes[case] += n
        for sep in _separators(value):
            separator_votes[sep] += n
        plain += n if _PLAIN.fullmatch(value) else 0
    case, votes = max(case_votes.items(), key=lambda kv: (kv[1], -_CASES.index(kv[0])))
    shape = LabelShape(
        case=case if votes >= DOMINANT_SHARE * total else None,
        separators=frozenset(s for s, n in separator_votes.items() if n >= SEPARATOR_MIN_SHARE * total),
        plain=plain >= DOMINANT_SHARE * total,
    )
    classes = [value for value, _ in counts.most_common() if shape.fits(value)]
    classes += [value for value, n in counts.most_common()
                if n >= OWN_CLASS_MIN and not shape.fits(value) and canonical_label(value, classes) is None]
    return shape, classes


def find_label_drift(outputs: list[str]) -> LabelDrift | None:
    """Outputs off the dominant label shape, each with the class it most likely means; None
    when the outputs are not labels. (A drift with no off-shape output is returned too.)"""
    learned = learn_label_shape(outputs)
    if learned is None:
        return None
    shape, classes = learned
    drift = LabelDrift(shape, classes)
    mapped: dict[str, str | None] = {}
    own = set(classes)
    for i, output in enumerate(outputs):
        if output not in own and not shape.fits(output):
            if output not in mapped:
                mapped[output] = canonical_label(output, classes)
            drift.off_shape[i] = mapped[output]
    return drift


def _core(output: str) -> str:
    """An output without a `Key:` prefix and surrounding quotes or punctuation."""
    return _EDGE.sub("", _PREFIX.sub("", output.strip(), count=1)) or output.strip()


def canonical_label(output: str, classes: list[str]) -> str | None:
    """The class an off-shape output most likely means: the class with the same words
    (`Card Arrival`), once a `Key:` prefix and edge punctuation are gone (`Intent:
    card_arrival`), or the longest class named inside it (`The intent is card_arrival.`).
    None when no class fits, or when two equally long classes are named."""
    by_words: dict[tuple[str, ...], str] = {}
    for label in classes:
        by_words.setdefault(tuple(label_words(label)), label)
    for text in (output, _core(output)):
        found = by_words.get(tuple(label_words(text)))
        if found is not None:
            return found
    words = label_words(_core(output))
    named: list[tuple[int, str]] = []
    for key, label in by_words.items():
        if key and _contains(words, key):
            named.append((len(key), label))
    if not named:
        return None
    named.sort(key=lambda item: -item[0])
    if len(named) > 1 and named[1][0] == named[0][0]:
        return None
    return named[0][1]


def _contains(words: list[str], key: tuple[str, ...]) -> bool:
    n = len(key)
    return any(tuple(words[i : i + n]) == key for i in range(len(words) - n + 1))
