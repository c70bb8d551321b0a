"""Named value transforms for mapping rules, and the compiler that chains them.

A rule names its transforms as a list, e.g. ``["all", "lower"]``; the chain runs, in order, on
the tuple of values of the source attribute:

- cardinality: ``first`` (keep the first value; the default when a chain names none),
  ``all`` (keep every value; multi-valued targets only), ``join:<sep>`` (one text of all values);
- per value: every other transform, applied to each value still in play.

Every per-value transform is a pure function here, unit-tested on its own. :func:`compile_chain`
checks names, arguments and value kinds once, at config time, and returns one callable so that
mapping 100k entries does no parsing. A transform that fails on a value raises
:class:`TransformFailed`, which the mapper turns into a :class:`~syncsvc.domain.Problem`.
"""

from __future__ import annotations

import base64
import difflib
import enum
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from syncsvc.domain import AttrValue

__all__ = [
    "CARDINALITY",
    "TEXT_STEP",
    "TRANSFORMS",
    "Chain",
    "Kind",
    "TransformFailed",
    "TransformSpec",
    "as_text",
    "bitmask_off",
    "bitmask_on",
    "compile_chain",
    "first_token",
    "negate",
    "postal_address",
    "present",
    "rdn",
    "strip_uid",
    "to_base64",
    "to_bool",
    "to_int",
    "to_lower",
    "to_strip",
    "to_upper",
    "to_uuid",
    "utf8",
]

ValueFn = Callable[[Any], Any]


class Kind(enum.Enum):
    """What a chain carries at one point; checked at compile time against each transform."""

    RAW = "a raw LDAP value"  # str or bytes, as read
    TEXT = "text"
    INT = "an integer"
    BOOL = "a boolean"


class TransformFailed(Exception):  # noqa: N818 - a value-level outcome, not a program error
    """A transform could not convert a value; the mapper reports it as the entry's Problem."""

    def __init__(self, transform: str, value: object, detail: str, attribute: str = "") -> None:
        super().__init__(transform, value, detail, attribute)
        self.transform = transform
        self.value = value
        self.detail = detail
        self.attribute = attribute

    def at(self, attribute: str) -> TransformFailed:
        """The same failure, naming the LDAP attribute (or template) it came from."""
        return TransformFailed(self.transform, self.value, self.detail, attribute)

    def reason(self) -> str:
        """One line for :attr:`Problem.reason`: attribute, transform and (truncated) value."""
        shown = _shorten(self.value)
        if self.transform == TEXT_STEP:
            return f"attribute {self.attribute!r}: value {shown} is not UTF-8 text"
        detail = _shorten_text(self.detail, 80)
        return (
            f"attribute {self.attribute!r}: transform {self.transform!r} "
            f"failed on {shown}: {detail}"
        )


def _shorten(value: object, limit: int = 40) -> str:
    if isinstance(value, str | bytes) and len(value) > limit:
        return repr(value[:limit]) + "..."
    return repr(value)


def _shorten_text(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- per-value transforms -------------------------------------------------------------------


def as_text(value: AttrValue) -> str:
    """Text of a value: ``str`` as is, ``bytes`` decoded as UTF-8 (ValueError if they are not)."""
    if isinstance(value, bytes):
        return value.decode("utf-8")  # UnicodeDecodeError is a ValueError
    return value


def utf8(value: AttrValue) -> str:
    """``utf8``: bytes -> str, strictly UTF-8; text passes through."""
    return as_text(value)


def to_lower(value: AttrValue) -> str:
    """``lower``: lower-case text."""
    return as_text(value).lower()


def to_upper(value: AttrValue) -> str:
    """``upper``: upper-case text."""
    return as_text(value).upper()


def to_strip(value: AttrValue) -> str:
    """``strip``: text without leading and trailing white space."""
    return as_text(value).strip()


def first_token(value: AttrValue) -> str:
    """``first_token``: text up to the first white space (labeledURI is ``URI [label]``)."""
    parts = as_text(value).split(None, 1)
    return parts[0] if parts else ""


_HEX: Final = frozenset("0123456789abcdefABCDEF")


def rdn(value: AttrValue) -> str:
    """``rdn``: value of a DN's first RDN, ``uid=jo,ou=p,dc=x`` -> ``jo``.

    RFC 4514 escapes (``\\,`` and ``\\2C``) are undone; a multi-valued RDN gives its first value.
    """
    text = as_text(value).strip()
    name, sep, rest = text.partition("=")
    if not sep or not name.strip():
        raise ValueError("not a DN")
    out = bytearray()
    i, n = 0, len(rest)
    while i < n:
        ch = rest[i]
        if ch == "\\":
            pair = rest[i + 1 : i + 3]
            if len(pair) == 2 and set(pair) <= _HEX:
                out.append(int(pair, 16))
                i += 3
                continue
            if i + 1 >= n:
                raise ValueError("DN ends in a lone backslash")
            out += rest[i + 1].encode()
            i += 2
            continue
        if ch in ",+;":
            break
        out += ch.encode()
        i += 1
    return out.decode("utf-8").strip()


# uniqueMember is "Name and Optional UID" (RFC 4517 3.3.21): DN, then optionally #'0101'B.
_UID_SUFFIX: Final = re.compile(r"(?<!\\)#'[01]*'B\Z")


def strip_uid(value: AttrValue) -> str:
    """``strip_uid``: a uniqueMember value without its optional ``#'0101'B`` UID suffix."""
    text = as_text(value)
    return _UID_SUFFIX.sub("", text) if text.endswith("'B") else text


_POSTAL_ESCAPE: Final = re.compile(r"\\(24|5[cC])")


def postal_address(value: AttrValue) -> str:
    """``postal_address``: RFC 4517 Postal Address (``line$line``, ``\\24`` = ``$``) -> lines."""
    lines = as_text(value).split("$")
    return "\n".join(
        _POSTAL_ESCAPE.sub(lambda m: "$" if m.group(1) == "24" else "\\", line).strip()
        for line in lines
    )


def to_int(value: AttrValue | int) -> int:
    """``int``: decimal text -> int."""
    if isinstance(value, int):
        return value
    return int(as_text(value).strip())


_TRUE: Final = frozenset({"true"})
_FALSE: Final = frozenset({"false"})


def to_bool(value: AttrValue) -> bool:
    """``bool``: LDAP Boolean ``TRUE`` / ``FALSE`` (any case) -> bool."""
    text = as_text(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("not TRUE or FALSE")


def negate(value: bool) -> bool:  # noqa: FBT001 - a transform takes the value positionally
    """``not``: the boolean opposite."""
    return not value


def present(value: object) -> bool:  # noqa: ARG001 - called only for values that exist
    """``present``: True (the chain runs only when the attribute has a value)."""
    return True


def bitmask_on(mask: int) -> ValueFn:
    """``bitmask_on:<n>``: True when any bit of ``n`` is set in the integer value."""

    def check(value: AttrValue | int) -> bool:
        return bool(to_int(value) & mask)

    return check


def bitmask_off(mask: int) -> ValueFn:
    """``bitmask_off:<n>``: True when no bit of ``n`` is set (AD: ``bitmask_off:2`` = enabled)."""

    def check(value: AttrValue | int) -> bool:
        return not to_int(value) & mask

    return check


def to_uuid(value: AttrValue) -> str:
    """``uuid``: 16 bytes in GUID (little-endian) layout, as AD's objectGUID -> UUID text.

    Text that already is a UUID is normalised to lower-case canonical form.
    """
    if isinstance(value, bytes):
        return str(uuid.UUID(bytes_le=value))
    return str(uuid.UUID(value.strip()))


def to_base64(value: AttrValue) -> str:
    """``base64``: bytes (text as UTF-8) -> standard base64 text."""
    raw = value if isinstance(value, bytes) else value.encode("utf-8")
    return base64.b64encode(raw).decode("ascii")


# --- registry -------------------------------------------------------------------------------

_TEXTUAL: Final = frozenset({Kind.RAW, Kind.TEXT})


@dataclass(frozen=True, slots=True)
class TransformSpec:
    """A per-value transform as config names it: what it takes, what it gives, how to build it."""

    name: str
    accepts: frozenset[Kind]
    returns: Kind
    build: Callable[[str | None], ValueFn]
    argument: str = ""  # e.g. "<n>": the transform needs ":<n>"; empty: it takes none


def _plain(fn: ValueFn) -> Callable[[str | None], ValueFn]:
    return lambda _arg: fn


def _mask(factory: Callable[[int], ValueFn]) -> Callable[[str | None], ValueFn]:
    def build(arg: str | None) -> ValueFn:
        mask = int(arg or "", 0)  # ValueError -> reported as a bad argument
        if mask <= 0:
            raise ValueError("the mask must be a positive integer")
        return factory(mask)

    return build


TRANSFORMS: Final[dict[str, TransformSpec]] = {
    spec.name: spec
    for spec in (
        TransformSpec("lower", _TEXTUAL, Kind.TEXT, _plain(to_lower)),
        TransformSpec("upper", _TEXTUAL, Kind.TEXT, _plain(to_upper)),
        TransformSpec("strip", _TEXTUAL, Kind.TEXT, _plain(to_strip)),
        TransformSpec("utf8", _TEXTUAL, Kind.TEXT, _plain(utf8)),
        TransformSpec("first_token", _TEXTUAL, Kind.TEXT, _plain(first_token)),
        TransformSpec("rdn", _TEXTUAL, Kind.TEXT, _plain(rdn)),
        TransformSpec("strip_uid", _TEXTUAL, Kind.TEXT, _plain(strip_uid)),
        TransformSpec("postal_address", _TEXTUAL, Kind.TEXT, _plain(postal_address)),
        TransformSpec("uuid", _TEXTUAL, Kind.TEXT, _plain(to_uuid)),
        TransformSpec("base64", _TEXTUAL, Kind.TEXT, _plain(to_base64)),
        TransformSpec("int", _TEXTUAL | {Kind.INT}, Kind.INT, _plain(to_int)),
        TransformSpec("bool", _TEXTUAL, Kind.BOOL, _plain(to_bool)),
        TransformSpec("not", frozenset({Kind.BOOL}), Kind.BOOL, _plain(negate)),
        TransformSpec("present", frozenset(Kind), Kind.BOOL, _plain(present)),
        TransformSpec("bitmask_on", _TEXTUAL | {Kind.INT}, Kind.BOOL, _mask(bitmask_on), "<n>"),
        TransformSpec("bitmask_off", _TEXTUAL | {Kind.INT}, Kind.BOOL, _mask(bitmask_off), "<n>"),
    )
}
"""Per-value transforms by name."""

CARDINALITY: Final = ("first", "all", "join")
"""Transforms that choose which values go on: at most one per chain."""

TEXT_STEP: Final = "text"
"""Name of the implicit last step that decodes raw values (bytes) for a text target."""


# --- chains ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Chain:
    """A compiled transform list: ``run(values)`` gives the value, a list (``multi``) or None.

    None means "nothing to map": no value left, or only empty text.
    """

    run: Callable[[Sequence[Any]], Any]
    multi: bool
    kind: Kind
    plain_text: bool = False  # the whole chain is "first value, as text": callers may inline it


def compile_chain(
    names: Sequence[str],
    *,
    start: Kind,
    target: Kind,
    multi_ok: bool,
    all_by_default: bool = False,
) -> tuple[Chain | None, list[str]]:
    """Check and build a chain; return it, or None and every problem found.

    ``start`` is the kind of the input (RAW for attributes, TEXT for templates); ``target`` the
    kind the SCIM attribute needs (TEXT or BOOL). Raw values reaching a text target are decoded
    as UTF-8; integers are written as decimal text.
    """
    problems: list[str] = []
    steps: list[tuple[str, str, Any]] = []  # (op, name, fn-or-separator)
    cardinality = ""
    kind: Kind | None = start  # None once an unknown transform hides what flows on
    for spec in names:
        name, colon, arg = spec.partition(":")
        argument = arg if colon else None
        if name in CARDINALITY:
            if cardinality:
                problems.append(f"'{spec}': use only one of 'first', 'all', 'join:<sep>'")
                continue
            cardinality = name
            if name == "join":
                if argument is None:
                    problems.append("'join' needs a separator: 'join:<sep>', e.g. 'join:, '")
                    continue
                if kind is not None and kind not in _TEXTUAL:
                    problems.append(f"'{spec}' takes text, but gets {kind.value} here")
                kind = Kind.TEXT
            elif argument is not None:
                problems.append(f"'{name}' takes no argument")
                continue
            elif name == "all" and not multi_ok:
                problems.append("'all' needs a multi-valued target such as emails[work]")
                continue
            steps.append((name, spec, argument))
            continue
        transform = TRANSFORMS.get(name)
        if transform is None:
            problems.append(f"unknown transform {spec!r}{_did_you_mean(name)}")
            kind = None
            continue
        if transform.argument and argument is None:
            problems.append(f"'{name}' needs an argument: '{name}:{transform.argument}'")
            kind = None
            continue
        if not transform.argument and argument is not None:
            problems.append(f"'{name}' takes no argument")
            continue
        try:
            fn = transform.build(argument)
        except ValueError as exc:
            problems.append(f"'{spec}': bad argument ({exc})")
            kind = None
            continue
        if kind is not None and kind not in transform.accepts:
            problems.append(f"'{spec}' cannot take {kind.value}{_hint(transform)}")
        kind = transform.returns
        steps.append(("map", spec, fn))
    if kind is not None:
        kind = _finish(steps, kind, target, problems)
    if problems:
        return None, problems
    if not cardinality:
        cardinality = "all" if all_by_default else "first"
        steps.insert(0, (cardinality, cardinality, None))
    multi = cardinality == "all"
    plain = [op for op, _name, _fn in steps] == ["first", "map"] and steps[1][2] is as_text
    return Chain(_runner(steps, multi=multi), multi, target, plain), []


def _finish(
    steps: list[tuple[str, str, Any]], kind: Kind, target: Kind, problems: list[str]
) -> Kind:
    if target is Kind.TEXT:
        if kind is Kind.RAW:
            steps.append(("map", TEXT_STEP, as_text))
        elif kind is Kind.INT:
            steps.append(("map", TEXT_STEP, str))
        elif kind is Kind.BOOL:
            problems.append("gives a boolean, but this target needs text")
        return Kind.TEXT
    if kind is not Kind.BOOL:
        problems.append(
            f"gives {kind.value}, but this target needs a boolean: "
            "end with 'bool', 'not', 'present' or 'bitmask_off:<n>'"
        )
    return target


def _hint(transform: TransformSpec) -> str:
    if transform.accepts == frozenset({Kind.BOOL}):
        return " (put 'bool', 'present' or 'bitmask_on:<n>' before it)"
    return ""


def _did_you_mean(name: str) -> str:
    close = difflib.get_close_matches(name, [*TRANSFORMS, *CARDINALITY], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _apply(name: str, fn: ValueFn, value: Any) -> Any:
    try:
        return fn(value)
    except (ValueError, TypeError) as exc:
        raise TransformFailed(name, value, str(exc) or type(exc).__name__) from None


def _runner(steps: list[tuple[str, str, Any]], *, multi: bool) -> Callable[[Sequence[Any]], Any]:
    maps = tuple((name, fn) for op, name, fn in steps[1:] if op == "map")
    if steps[0][0] == "first" and len(maps) == len(steps) - 1:
        # The common shape (first value, then per-value steps), kept tight: it runs per entry.
        if len(maps) == 1 and maps[0][1] is as_text:

            def run_text(values: Sequence[Any]) -> Any:
                value = values[0]
                if value.__class__ is not str:
                    value = _apply(TEXT_STEP, as_text, value)
                return value or None

            return run_text

        def run_first(values: Sequence[Any]) -> Any:
            value = values[0]
            for name, fn in maps:
                try:
                    value = fn(value)
                except (ValueError, TypeError) as exc:
                    raise TransformFailed(name, value, str(exc) or type(exc).__name__) from None
            return None if value == "" else value

        return run_first

    def run(values: Sequence[Any]) -> Any:
        current = list(values)
        for op, name, arg in steps:
            if op == "first":
                current = current[:1]
            elif op == "join":
                current = [arg.join([_apply(TEXT_STEP, as_text, v) for v in current])]
            elif op == "map":
                try:
                    current = [arg(v) for v in current]
                except (ValueError, TypeError):  # rare: redo one by one to name the value
                    current = [_apply(name, arg, v) for v in current]
        current = [v for v in current if v != ""]
        if multi:
            return current or None
        return current[0] if current else None

    return run
