"""A small RFC 4515 filter parser and evaluator, for the LDIF directory.

It covers the forms syncsvc generates and that people write in ``user_filter``: ``&``, ``|``,
``!``, equality, presence, substrings, ``>=``/``<=`` (integers, generalizedTime, else text) and
``~=`` (treated as case-insensitive equality). Matching is case-insensitive, as for the
caseIgnore syntaxes that names, mail and objectClass use. Extensible match (``:=``) is refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from syncsvc.domain import AttrValue

__all__ = [
    "And",
    "Compare",
    "Equal",
    "FilterSyntaxError",
    "Not",
    "Or",
    "Present",
    "Substrings",
    "matches",
    "parse_filter",
]


class FilterSyntaxError(ValueError):
    """The filter text is not an RFC 4515 filter this evaluator understands."""


@dataclass(frozen=True, slots=True)
class And:
    parts: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    parts: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    part: Node


@dataclass(frozen=True, slots=True)
class Present:
    attribute: str


@dataclass(frozen=True, slots=True)
class Equal:
    attribute: str
    value: bytes


@dataclass(frozen=True, slots=True)
class Compare:
    attribute: str
    op: str  # ">=" or "<="
    value: bytes


@dataclass(frozen=True, slots=True)
class Substrings:
    attribute: str
    initial: bytes | None
    any: tuple[bytes, ...]
    final: bytes | None


Node = And | Or | Not | Present | Equal | Compare | Substrings

_ATTR = re.compile(r"^[A-Za-z0-9][A-Za-z0-9\-.;]*$")


def _unescape(text: str) -> bytes:
    out = bytearray()
    raw = text.encode("utf-8")
    i = 0
    while i < len(raw):
        if raw[i : i + 1] == b"\\":
            pair = raw[i + 1 : i + 3]
            try:
                out.append(int(pair, 16))
            except ValueError:
                raise FilterSyntaxError(f"bad escape {text!r}") from None
            if len(pair) != 2:
                raise FilterSyntaxError(f"bad escape {text!r}")
            i += 3
        else:
            out.append(raw[i])
            i += 1
    return bytes(out)


def parse_filter(text: str) -> Node:
    """Parse ``text`` (parentheses optional around a single item).

    Raises:
        FilterSyntaxError: unbalanced parentheses, an unknown operator, a bad escape.
    """
    text = text.strip()
    if not text.startswith("("):
        text = f"({text})"
    node, pos = _parse(text, 0)
    if pos != len(text):
        raise FilterSyntaxError(f"trailing text in filter {text!r}")
    return node


def _parse(text: str, pos: int) -> tuple[Node, int]:
    if pos >= len(text) or text[pos] != "(":
        raise FilterSyntaxError(f"expected '(' at {pos} in {text!r}")
    pos += 1
    if pos >= len(text):
        raise FilterSyntaxError(f"unterminated filter {text!r}")
    head = text[pos]
    if head in "&|":
        parts: list[Node] = []
        pos += 1
        while pos < len(text) and text[pos] == "(":
            part, pos = _parse(text, pos)
            parts.append(part)
        if pos >= len(text) or text[pos] != ")":
            raise FilterSyntaxError(f"expected ')' at {pos} in {text!r}")
        return (And(tuple(parts)) if head == "&" else Or(tuple(parts))), pos + 1
    if head == "!":
        part, pos = _parse(text, pos + 1)
        if pos >= len(text) or text[pos] != ")":
            raise FilterSyntaxError(f"expected ')' at {pos} in {text!r}")
        return Not(part), pos + 1
    end = text.find(")", pos)
    if end < 0:
        raise FilterSyntaxError(f"unterminated item in {text!r}")
    return _item(text[pos:end]), end + 1


def _item(item: str) -> Node:
    for op in (">=", "<=", "~="):
        attr, sep, value = item.partition(op)
        if sep and "=" not in attr:
            _check_attr(attr, item)
            if op == "~=":
                return Equal(attr.lower(), _unescape(value))
            return Compare(attr.lower(), op, _unescape(value))
    attr, sep, value = item.partition("=")
    if not sep:
        raise FilterSyntaxError(f"no operator in ({item})")
    if ":" in attr:
        raise FilterSyntaxError(f"extensible match is not supported: ({item})")
    _check_attr(attr, item)
    if value == "*":
        return Present(attr.lower())
    if "*" in value:
        pieces = value.split("*")
        return Substrings(
            attr.lower(),
            initial=_unescape(pieces[0]) or None,
            any=tuple(_unescape(p) for p in pieces[1:-1] if p),
            final=_unescape(pieces[-1]) or None,
        )
    return Equal(attr.lower(), _unescape(value))


def _check_attr(attr: str, item: str) -> None:
    if not _ATTR.match(attr):
        raise FilterSyntaxError(f"bad attribute name in ({item})")


# --- evaluation -----------------------------------------------------------------------------

Attributes = Mapping[str, Sequence[AttrValue]]


def _values(attributes: Attributes, name: str) -> list[bytes]:
    vals = attributes.get(name, ())
    return [v if isinstance(v, bytes) else v.encode("utf-8") for v in vals]


def _fold(value: bytes) -> bytes:
    try:
        return value.decode("utf-8").casefold().encode("utf-8")
    except UnicodeDecodeError:
        return value


_GT = re.compile(
    r"^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})?(\d{2})?(?:[.,](\d+))?(Z|[+-]\d{2}(?:\d{2})?)$"
)


def _generalized_time(value: bytes) -> datetime | None:
    match = _GT.match(value.decode("ascii", "replace"))
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    moment = datetime(
        int(year), int(month), int(day), int(hour), int(minute or 0), int(second or 0),
        int((fraction or "0")[:6].ljust(6, "0")), tzinfo=UTC,
    )
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5] or 0))
        moment = moment.replace(tzinfo=timezone(sign * offset))
    return moment


def _ordered(left: bytes, right: bytes) -> tuple[object, object]:
    """Comparable forms: integers, then generalizedTime, else case-folded bytes."""
    if left.lstrip(b"-").isdigit() and right.lstrip(b"-").isdigit():
        return int(left), int(right)
    lt, rt = _generalized_time(left), _generalized_time(right)
    if lt is not None and rt is not None:
        return lt, rt
    return _fold(left), _fold(right)


def _substring_match(value: bytes, node: Substrings) -> bool:
    text = _fold(value)
    pos = 0
    if node.initial is not None:
        initial = _fold(node.initial)
        if not text.startswith(initial):
            return False
        pos = len(initial)
    for piece in node.any:
        found = text.find(_fold(piece), pos)
        if found < 0:
            return False
        pos = found + len(_fold(piece))
    if node.final is not None:
        final = _fold(node.final)
        return len(text) - pos >= len(final) and text.endswith(final)
    return True


def matches(node: Node, attributes: Attributes) -> bool:
    """Whether an entry's attributes (lower-cased names) satisfy ``node``."""
    match node:
        case And(parts):
            return all(matches(p, attributes) for p in parts)
        case Or(parts):
            return any(matches(p, attributes) for p in parts)
        case Not(part):
            return not matches(part, attributes)
        case Present(attribute):
            return attribute == "objectclass" or bool(attributes.get(attribute))
        case Equal(attribute, value):
            wanted = _fold(value)
            return any(_fold(v) == wanted for v in _values(attributes, attribute))
        case Compare(attribute, op, value):
            for v in _values(attributes, attribute):
                left, right = _ordered(v, value)
                try:
                    if (left >= right) if op == ">=" else (left <= right):  # type: ignore[operator]
                        return True
                except TypeError:
                    continue
            return False
        case Substrings():
            return any(_substring_match(v, node) for v in _values(attributes, node.attribute))
    raise TypeError(f"not a filter node: {node!r}")
