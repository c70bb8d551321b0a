"""The SCIM filter grammar (RFC 7644 §3.4.2.2) as a small recursive-descent parser.

Why not ``scim2-filter-parser`` (0.7.0): its parser gives ``and`` and ``or`` the same precedence
(``a or b and c`` parses as ``(a or b) and c``), its lexer reads numbers one digit at a time (so
``12``, ``-1`` and ``1.5`` fail), strings cannot contain ``\\"``, and the AST keeps ``true`` and
``"true"`` apart only as the same text. The grammar is small enough to own:

    FILTER    = attrExp / logExp / valuePath / *1"not" "(" FILTER ")"
    valuePath = attrPath "[" valFilter "]"
    attrExp   = (attrPath SP "pr") / (attrPath SP compareOp SP compValue)
    compValue = false / null / true / number / string          ; JSON (RFC 8259)
    attrPath  = [URI ":"] ATTRNAME *1subAttr

Precedence, highest first: grouping, ``not``, ``and``, ``or``. Keywords, operators and the
``true``/``false``/``null`` literals are case-insensitive (RFC 5234 quoted strings). One widely
sent extension is accepted: ``emails[type eq "work"].value eq "x"`` (a PATCH-style path used as a
filter) means ``emails[type eq "work" and value eq "x"]``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TypeAlias

from syncsvc.errors import InvalidFilter
from syncsvc.scim.inputs import unstorable

__all__ = [
    "OPERATORS",
    "And",
    "AttrPath",
    "Compare",
    "Filter",
    "Not",
    "Or",
    "Present",
    "Value",
    "ValuePath",
    "parse",
]

Value: TypeAlias = str | bool | int | float | None
OPERATORS = frozenset({"eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"})
MAX_LENGTH = 4096  # a filter is a URL parameter or a short JSON string, never a document
MAX_DEPTH = 32


@dataclass(frozen=True, slots=True)
class AttrPath:
    """``[uri:]attr[.sub]`` as written (case kept; resolution is case-insensitive)."""

    attr: str
    sub: str | None = None
    uri: str | None = None

    def __str__(self) -> str:
        text = f"{self.uri}:{self.attr}" if self.uri else self.attr
        return f"{text}.{self.sub}" if self.sub else text


@dataclass(frozen=True, slots=True)
class Compare:
    """``path op value``; ``op`` is lower-cased, ``value`` is the decoded JSON literal."""

    path: AttrPath
    op: str
    value: Value


@dataclass(frozen=True, slots=True)
class Present:
    """``path pr``."""

    path: AttrPath


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Filter, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Filter, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Filter


@dataclass(frozen=True, slots=True)
class ValuePath:
    """``path[filter]``: every condition of ``filter`` must hold for the same value of ``path``.

    Paths inside ``filter`` are sub-attribute names of ``path`` (``sub`` and ``uri`` are None).
    """

    path: AttrPath
    filter: Filter


Filter: TypeAlias = Compare | Present | And | Or | Not | ValuePath

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<punct>[()\[\]])
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<number>-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)(?![\w.$:-])
  | (?P<subattr>\.[A-Za-z$][\w$-]*)
  | (?P<word>[A-Za-z$][\w$:.\-]*)
    """,
    re.VERBOSE,
)
_NAME = re.compile(r"\$?[A-Za-z][\w-]*\Z")  # ATTRNAME (+ "$ref", RFC 7643 §2.4)


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str  # punct | string | number | subattr | word | end
    text: str
    pos: int


def _tokenize(text: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise InvalidFilter(f"unexpected character {text[pos]!r} at position {pos}")
        kind = match.lastgroup or ""
        if kind != "ws":
            tokens.append(_Tok(kind, match.group(), pos))
        pos = match.end()
    tokens.append(_Tok("end", "", len(text)))
    return tokens


def _path(tok: _Tok) -> AttrPath:
    """Split ``urn:...:User:name.givenName`` at the last colon, then at the (single) dot."""
    uri, _, rest = tok.text.rpartition(":")
    parts = rest.split(".")
    if len(parts) > 2 or not all(_NAME.match(p) for p in parts):
        raise InvalidFilter(f"invalid attribute path {tok.text!r} at position {tok.pos}")
    return AttrPath(parts[0], parts[1] if len(parts) == 2 else None, uri or None)


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.i = 0
        self.depth = 0

    def peek(self) -> _Tok:
        return self.tokens[self.i]

    def take(self) -> _Tok:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def expect(self, text: str) -> None:
        tok = self.take()
        if tok.text != text:
            found = repr(tok.text) if tok.kind != "end" else "the end of the filter"
            raise InvalidFilter(f"expected {text!r} at position {tok.pos}, found {found}")

    def keyword(self, *words: str) -> bool:
        tok = self.peek()
        return tok.kind == "word" and tok.text.lower() in words

    def parse(self) -> Filter:
        result = self.or_expr(inner=False)
        tok = self.peek()
        if tok.kind != "end":
            raise InvalidFilter(f"unexpected {tok.text!r} at position {tok.pos}")
        return result

    def or_expr(self, *, inner: bool) -> Filter:
        items = [self.and_expr(inner=inner)]
        while self.keyword("or"):
            self.take()
            items.append(self.and_expr(inner=inner))
        return items[0] if len(items) == 1 else Or(tuple(items))

    def and_expr(self, *, inner: bool) -> Filter:
        items = [self.unary(inner=inner)]
        while self.keyword("and"):
            self.take()
            items.append(self.unary(inner=inner))
        return items[0] if len(items) == 1 else And(tuple(items))

    def unary(self, *, inner: bool) -> Filter:
        negate = False
        if self.keyword("not"):
            self.take()
            negate = True
            if self.peek().text != "(":
                raise InvalidFilter(f"'not' must be followed by '(' at position {self.peek().pos}")
        if self.peek().text == "(":
            self.take()
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise InvalidFilter(f"filter nests deeper than {MAX_DEPTH} levels")
            item = self.or_expr(inner=inner)
            self.depth -= 1
            self.expect(")")
            return Not(item) if negate else item
        return self.attr_exp(inner=inner)

    def attr_exp(self, *, inner: bool) -> Filter:
        tok = self.take()
        if tok.kind != "word" or tok.text.lower() in ("and", "or", "not"):
            found = repr(tok.text) if tok.kind != "end" else "the end of the filter"
            raise InvalidFilter(f"expected an attribute name at position {tok.pos}, found {found}")
        path = _path(tok)
        if inner and (path.uri or path.sub):
            raise InvalidFilter(
                f"inside [...] name a sub-attribute only, not {tok.text!r} (position {tok.pos})"
            )
        if self.peek().text == "[":
            if inner:
                raise InvalidFilter(f"value filters cannot be nested (position {self.peek().pos})")
            if path.sub:
                raise InvalidFilter(f"{tok.text!r}[...]: the filter goes before the sub-attribute")
            self.take()
            inside = self.or_expr(inner=True)
            self.expect("]")
            if self.peek().kind == "subattr":  # emails[type eq "work"].value eq "x"
                sub = self.take().text[1:]
                inside = And((inside, self.comparison(AttrPath(sub), self.peek())))
            return ValuePath(path, inside)
        return self.comparison(path, tok)

    def comparison(self, path: AttrPath, at: _Tok) -> Filter:
        op_tok = self.take()
        op = op_tok.text.lower() if op_tok.kind == "word" else ""
        if op == "pr":
            return Present(path)
        if op not in OPERATORS:
            if op_tok.kind == "end":
                raise InvalidFilter(f"expected an operator after {str(path)!r}")
            raise InvalidFilter(f"the operator {op_tok.text!r} is not supported (position {op_tok.pos})")
        return Compare(path, op, self.value(op))

    def value(self, op: str) -> Value:
        tok = self.take()
        if tok.kind == "string":
            try:
                decoded = json.loads(tok.text)
            except ValueError as exc:
                raise InvalidFilter(f"invalid string at position {tok.pos}: {exc.args[0]}") from exc
            if unstorable(decoded):  # no stored value holds one: refuse, do not query
                raise InvalidFilter(f"the string at position {tok.pos} holds a NUL character or "
                                    "an unpaired surrogate")
            return str(decoded)
        if tok.kind == "number":
            return float(tok.text) if any(c in tok.text for c in ".eE") else int(tok.text)
        if tok.kind == "word" and tok.text.lower() in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[tok.text.lower()]
        if tok.kind == "end":
            raise InvalidFilter(f"expected a value after {op!r}")
        raise InvalidFilter(
            f"expected a value (string, number, true, false or null) at position {tok.pos}, "
            f"found {tok.text!r}"
        )


def parse(text: str) -> Filter:
    """Parse a filter; any syntax error raises :class:`InvalidFilter` saying where."""
    if len(text) > MAX_LENGTH:
        raise InvalidFilter(f"filter longer than {MAX_LENGTH} characters")
    if not text.strip():
        raise InvalidFilter("empty filter")
    return _Parser(text).parse()
