"""SCIM filters (RFC 7644 §3.4.2.2) and sortBy (§3.4.2.3) as SQL that runs in the database.

``select(UserRow).where(user_where(text, engine.dialect.name))``: the filter becomes one
SQLAlchemy expression over the store's tables, with every value a bound parameter. Attributes
are resolved through the schema registry (case-insensitive, URN-qualified or not) and then
through an allow-list of storage locations; anything else is :class:`InvalidFilter`.

Semantics, where the RFC leaves room:

- ``ne`` is ``not eq``: a resource *without* the attribute matches ``title ne "x"``. On a
  multi-valued attribute (``emails.value ne "x"``) some value must differ (RFC: "any value").
- ``x eq null`` means ``not (x pr)`` and ``x ne null`` means ``x pr``; other operators with
  ``null`` are rejected. ``pr`` is "non-empty": ``""``, JSON null and empty arrays are absent.
- A multi-valued attribute without a sub-attribute means its ``value`` (``emails co "x"``);
  ``emails[type eq "work" and value co "@x"]`` holds both conditions on the same e-mail.
- Types are strict: a string attribute takes a string, a boolean one ``true``/``false``, a number
  one a number, a dateTime one an RFC 3339 string (compared as an instant, UTC if no offset).
  ``gt``/``ge``/``lt``/``le`` on booleans and binaries, and ``co``/``sw``/``ew`` on anything but
  strings, are ``invalidFilter``.
- caseExact=false strings compare case-folded. Columns the store folds in Python
  (``user_name_lower``, e-mail ``value_lower``, group ``display_name_lower``) are compared with
  the Python-folded literal: exact for all of Unicode. Everything else is folded with SQL
  ``lower()`` on both sides, which on SQLite (and on PostgreSQL with ``LC_CTYPE=C``) folds ASCII
  only: ``"É"`` and ``"é"`` then differ, but a value always equals itself.
- String ordering (``gt``... and sortBy) is by code point: ``COLLATE "C"`` on PostgreSQL, the
  default BINARY collation on SQLite, so both engines agree.
- ``groups`` (on Users) are direct memberships; ``groups.type`` is always ``"direct"``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Final

from sqlalchemy import (
    ColumnElement,
    FromClause,
    String,
    and_,
    case,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    true,
)

from syncsvc.errors import InvalidFilter, InvalidValue
from syncsvc.scim._filterparse import (
    And,
    AttrPath,
    Compare,
    Filter,
    Not,
    Or,
    Present,
    Value,
    ValuePath,
    parse,
)
from syncsvc.scim._sqljson import JsonValue, array_elements, not_blank
from syncsvc.scim.schema import (
    CORE_GROUP,
    CORE_USER,
    ENTERPRISE_USER,
    PROFILE_USER,
    Attribute,
    load_schemas,
)
from syncsvc.store.schema import EMAILS, GROUPS, MEMBERS, USERS

__all__ = [
    "Filter",
    "group_where",
    "order_by",
    "parse_filter",
    "sort_key",
    "unique_lookup",
    "user_where",
    "where",
]

DIALECTS: Final = frozenset({"sqlite", "postgresql"})

_ORDERING: Final = {"gt", "ge", "lt", "le"}
_SUBSTRING: Final = {"co", "sw", "ew"}
# Readable through SCIM but not stored where SQL can see it (or never returned, like password).
_NOT_FILTERABLE: Final = frozenset(
    {"password", "meta.version", "meta.location", "groups.$ref", "members.$ref",
     "members.display", f"{ENTERPRISE_USER}:manager.$ref".lower(),
     f"{ENTERPRISE_USER}:manager.displayname".lower()}
)


# Clients page through a few filters over and over; the parsed tree is immutable (frozen
# dataclasses), so one parse serves them all. Errors are not kept: each bad filter is reparsed.
@lru_cache(maxsize=256)
def parse_filter(text: str) -> Filter:
    """Parse a SCIM filter; a syntax error raises :class:`InvalidFilter` with a detail."""
    return parse(text)


def user_where(flt: str | Filter, dialect: str) -> ColumnElement[bool]:
    """The WHERE clause over ``scim_user`` for a filter (text or parsed)."""
    return where("User", flt, dialect)


def group_where(flt: str | Filter, dialect: str) -> ColumnElement[bool]:
    """The WHERE clause over ``scim_group`` for a filter (text or parsed)."""
    return where("Group", flt, dialect)


def where(resource_type: str, flt: str | Filter, dialect: str) -> ColumnElement[bool]:
    """The WHERE clause for ``resource_type`` ("User" or "Group") on ``dialect``."""
    node = parse(flt) if isinstance(flt, str) else flt
    return _Translator(resource_type, dialect).where(node)


def unique_lookup(resource_type: str, flt: str | Filter) -> tuple[str, str] | None:
    """For ``userName eq "..."`` or ``id eq "..."`` on Users (at most one row, by a unique index;
    what Okta and Entra ID send before every write): the ``scim_user`` column and the value to
    compare it with, as :func:`where` would; None for any other filter."""
    if resource_type != "User":
        return None
    node = parse(flt) if isinstance(flt, str) else flt
    if not isinstance(node, Compare) or node.op != "eq" or node.path.sub is not None \
            or not isinstance(node.value, str):
        return None
    if (node.path.uri or CORE_USER).lower() != CORE_USER.lower():
        return None
    attr = node.path.attr.lower()
    if attr == "username":
        return USERS.c.user_name_lower.key, node.value.lower()  # caseExact false, as where()
    if attr == "id":
        return USERS.c.id.key, node.value
    return None


# ---------------------------------------------------------------------------------------------
# Values a comparison reads


def _kind(attr: Attribute) -> str:
    if attr.type in ("string", "reference", "binary"):
        return "string"
    if attr.type in ("integer", "decimal"):
        return "number"
    return attr.type  # boolean | dateTime | complex


@dataclass(frozen=True, slots=True)
class _Scalar:
    """One single value: a column, a JSON value or a constant, with its SCIM characteristics."""

    name: str
    attr: Attribute
    column: ColumnElement[Any] | None = None
    json: JsonValue | None = None
    const: str | None = None
    folded: bool = False  # the column holds str.lower() of the value

    @property
    def kind(self) -> str:
        return _kind(self.attr)


@dataclass(frozen=True, slots=True)
class _Elements:
    """The values of a multi-valued attribute: EXISTS over rows or JSON array elements."""

    name: str
    attr: Attribute
    source: FromClause | None
    link: ColumnElement[bool]  # correlates an element with the outer row
    leaf: Callable[[str], _Scalar | None]  # sub-attribute name (lower-cased) -> its value
    selected: str | None = None  # "emails.type": compare/pr read this sub-attribute

    def any(self, predicate: ColumnElement[bool]) -> ColumnElement[bool]:
        query = exists()
        if self.source is not None:
            query = query.select_from(self.source)
        return query.where(self.link, predicate)


@dataclass(frozen=True, slots=True)
class _Complex:
    """A singular complex attribute named without a sub-attribute (``name``, ``manager``)."""

    name: str
    attr: Attribute
    leaf: Callable[[str], _Scalar | None]


def _like_escape(text: str) -> str:
    return text.replace("/", "//").replace("%", "/%").replace("_", "/_")


def _glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def _instant(value: Value, name: str, dialect: str) -> datetime:
    if not isinstance(value, str):
        raise InvalidFilter(f"{name} is a dateTime: compare it with an RFC 3339 string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidFilter(f"{name}: {value!r} is not an RFC 3339 dateTime") from exc
    parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    # SQLite keeps UTC as naive text (see store.schema); compare in the same form.
    return parsed.replace(tzinfo=None) if dialect == "sqlite" else parsed


class _Translator:
    def __init__(self, resource_type: str, dialect: str) -> None:
        if dialect not in DIALECTS:
            raise ValueError(f"unsupported SQL dialect {dialect!r}")
        self.registry = load_schemas()
        self.schema = self.registry.resource(resource_type)
        self.rt = self.schema.name
        self.dialect = dialect
        self.table = USERS if self.rt == "User" else GROUPS

    # -- the tree --------------------------------------------------------------------------

    def where(self, node: Filter) -> ColumnElement[bool]:
        match node:
            case And(items):
                return and_(*(self.where(i) for i in items))
            case Or(items):
                return or_(*(self.where(i) for i in items))
            case Not(item):
                return not_(self.where(item))
            case Present(path):
                return self.present(self.target(path))
            case Compare(path, op, value):
                return self.compare(self.target(path), op, value)
            case ValuePath(path, inner):
                return self.value_path(path, inner)
        raise InvalidFilter(f"unsupported filter node {type(node).__name__}")  # pragma: no cover

    def value_path(self, path: AttrPath, inner: Filter) -> ColumnElement[bool]:
        target = self.target(path)
        if isinstance(target, _Scalar) or (
            isinstance(target, _Elements) and not target.attr.sub_attributes
        ):
            raise InvalidFilter(f"{path}[...]: {path} is not a complex attribute")

        def scoped(node: Filter) -> ColumnElement[bool]:
            match node:
                case And(items):
                    return and_(*(scoped(i) for i in items))
                case Or(items):
                    return or_(*(scoped(i) for i in items))
                case Not(item):
                    return not_(scoped(item))
                case Present(p):
                    return self.scalar_present(self.leaf(target, p.attr, path))
                case Compare(p, op, value):
                    return self.scalar_compare(self.leaf(target, p.attr, path), op, value)
            raise InvalidFilter(f"value filters cannot be nested in {path}[...]")

        predicate = scoped(inner)
        return target.any(predicate) if isinstance(target, _Elements) else predicate

    @staticmethod
    def leaf(target: _Elements | _Complex, sub: str, path: AttrPath) -> _Scalar:
        if target.attr.sub(sub) is None:
            raise InvalidFilter(f"{target.attr.name} has no sub-attribute {sub!r}")
        found = target.leaf(sub.lower())
        if found is None:
            raise InvalidFilter(f"{target.attr.name}.{sub} cannot be filtered on")
        return found

    # -- operators on any target -----------------------------------------------------------

    def present(self, target: _Scalar | _Elements | _Complex) -> ColumnElement[bool]:
        if isinstance(target, _Scalar):
            return self.scalar_present(target)
        if isinstance(target, _Elements):
            if target.selected or not target.attr.sub_attributes:
                return target.any(self.scalar_present(self._value_leaf(target)))
            subs = [s for a in target.attr.sub_attributes if (s := target.leaf(a.name.lower()))]
            return target.any(or_(*(self.scalar_present(s) for s in subs)))
        # A complex value is present when some sub-attribute is (RFC: "non-empty node").
        subs = [s for a in target.attr.sub_attributes if (s := target.leaf(a.name.lower()))]
        return or_(*(self.scalar_present(s) for s in subs)) if subs else false()

    def compare(
        self, target: _Scalar | _Elements | _Complex, op: str, value: Value
    ) -> ColumnElement[bool]:
        if value is None:
            if op == "eq":
                return not_(self.present(target))
            if op == "ne":
                return self.present(target)
            raise InvalidFilter(f"{target.name} {op} null: only eq and ne take null")
        if isinstance(target, _Complex):
            raise InvalidFilter(f"{target.name} is complex: name a sub-attribute, e.g. "
                                f"{target.name}.{target.attr.sub_attributes[0].name}")
        if isinstance(target, _Elements):
            leaf = self._value_leaf(target)
            return target.any(self.scalar_compare(leaf, op, value))
        return self.scalar_compare(target, op, value)

    @staticmethod
    def _value_leaf(target: _Elements) -> _Scalar:
        leaf = target.leaf(target.selected or "value")
        if leaf is None:
            raise InvalidFilter(f"{target.name} has no value: name a sub-attribute")
        return leaf

    # -- operators on one value ------------------------------------------------------------

    def scalar_present(self, s: _Scalar) -> ColumnElement[bool]:
        if s.const is not None:
            return true() if s.const else false()
        if s.json is not None:
            return not_blank(s.json)
        assert s.column is not None
        if s.kind == "string":
            return and_(s.column.is_not(None), s.column != "")
        return s.column.is_not(None)

    def scalar_compare(self, s: _Scalar, op: str, value: Value) -> ColumnElement[bool]:
        if value is None:
            present = self.scalar_present(s)
            if op in ("eq", "ne"):
                return not_(present) if op == "eq" else present
            raise InvalidFilter(f"{s.name} {op} null: only eq and ne take null")
        if op == "ne":
            return not_(self.scalar_compare(s, "eq", value))
        if s.kind == "complex":
            raise InvalidFilter(f"{s.name} is complex: name a sub-attribute")
        if op in _ORDERING and s.attr.type in ("boolean", "binary"):
            raise InvalidFilter(f"{op} is not defined for {s.attr.type} attribute {s.name}")
        if op in _SUBSTRING and s.kind != "string":
            raise InvalidFilter(f"{op} needs a string attribute; {s.name} is {s.attr.type}")
        if s.kind == "boolean":
            return self._boolean(s, value)
        if s.kind == "number":
            return self._number(s, op, value)
        if s.kind == "dateTime":
            return self._datetime(s, op, value)
        if not isinstance(value, str):
            raise InvalidFilter(f"{s.name} is a string: compare it with a string")
        if s.const is not None:
            have, want = (s.const, value) if s.attr.case_exact else (s.const.lower(), value.lower())
            return true() if _python_compare(have, op, want) else false()
        if s.json is not None:
            return and_(s.json.is_kind("string"), self._string(s, s.json.text(), op, value))
        assert s.column is not None
        return and_(s.column.is_not(None), self._string(s, s.column, op, value))

    def _boolean(self, s: _Scalar, value: Value) -> ColumnElement[bool]:
        if not isinstance(value, bool):
            raise InvalidFilter(f"{s.name} is a boolean: compare it with true or false")
        if s.json is not None:
            return s.json.is_bool(value)
        assert s.column is not None
        return and_(s.column.is_not(None), s.column.is_(true() if value else false()))

    def _number(self, s: _Scalar, op: str, value: Value) -> ColumnElement[bool]:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidFilter(f"{s.name} is a number: compare it with a number")
        if s.json is not None:
            return and_(s.json.is_kind("number"), _ordered(s.json.number(), op, literal(value)))
        assert s.column is not None
        return and_(s.column.is_not(None), _ordered(s.column, op, literal(value)))

    def _datetime(self, s: _Scalar, op: str, value: Value) -> ColumnElement[bool]:
        if s.column is None:
            raise InvalidFilter(f"{s.name} cannot be filtered on")
        instant = _instant(value, s.name, self.dialect)
        return and_(s.column.is_not(None), _ordered(s.column, op, literal(instant, s.column.type)))

    def _string(
        self, s: _Scalar, lhs: ColumnElement[Any], op: str, value: str
    ) -> ColumnElement[bool]:
        exact = s.attr.case_exact
        if op in _SUBSTRING:
            if exact and self.dialect == "sqlite":
                # SQLite's LIKE ignores ASCII case; GLOB does not.
                glob = {"co": "*{}*", "sw": "{}*", "ew": "*{}"}[op].format(_glob_escape(value))
                return lhs.op("GLOB", is_comparison=True)(literal(glob, String))
            pattern = {"co": "%{}%", "sw": "{}%", "ew": "%{}"}[op]
            if exact:
                return lhs.like(literal(pattern.format(_like_escape(value)), String), escape="/")
            if s.folded:
                return lhs.like(
                    literal(pattern.format(_like_escape(value.lower())), String), escape="/"
                )
            if self.dialect == "sqlite":
                # SQLite's LIKE ignores ASCII case and its lower() folds nothing else: lower()
                # on both sides changes no answer and made a scan (`co`) cost 2.5 times as much.
                return lhs.like(literal(pattern.format(_like_escape(value)), String), escape="/")
            lowered = func.lower(literal(pattern.format(_like_escape(value)), String))
            return func.lower(lhs).like(lowered, escape="/")
        rhs: ColumnElement[Any]
        if exact:
            rhs = literal(value, String)
        elif s.folded:
            rhs = literal(value.lower(), String)
        else:
            lhs, rhs = func.lower(lhs), func.lower(literal(value, String))
        if op in _ORDERING and self.dialect == "postgresql":
            lhs = lhs.collate("C")
        return _ordered(lhs, op, rhs)

    # -- attribute resolution: the allow-list ----------------------------------------------

    def target(self, path: AttrPath) -> _Scalar | _Elements | _Complex:
        if path.attr.lower() == "schemas" and path.sub is None and path.uri is None:
            # RFC 7644 §3.4.2.2 lets clients filter on "schemas" (no schema defines it).
            attr = Attribute("schemas", "reference", self.schema.core, multi_valued=True)
            return self.elements(attr)
        found = self.registry.attribute(self.rt, str(path))
        if found is None:
            raise InvalidFilter(f"unknown attribute {str(path)!r} for {self.rt}")
        attr, sub = found
        key = _key(attr, sub)
        if key in _NOT_FILTERABLE:
            raise InvalidFilter(f"{path} cannot be filtered on")
        if sub is not None:
            if attr.multi_valued:
                elements = self.elements(attr)
                if elements.leaf(sub.name.lower()) is None:
                    raise InvalidFilter(f"{path} cannot be filtered on")
                return replace(elements, name=str(path), selected=sub.name.lower())
            leaf = self.complex(attr).leaf(sub.name.lower())
            if leaf is None:
                raise InvalidFilter(f"{path} cannot be filtered on")
            return leaf
        if attr.multi_valued:
            return self.elements(attr)
        if attr.type == "complex":
            return self.complex(attr)
        return self.single(attr)

    def single(self, attr: Attribute) -> _Scalar:
        """A singular, simple attribute: a hot column, or JSON in the resource or profile."""
        t = self.table
        name = attr.name
        if attr.schema in (CORE_USER, CORE_GROUP):
            columns: Mapping[str, tuple[ColumnElement[Any], bool]] = {
                "id": (t.c.id, False),
                "externalId": (t.c.external_id, False),
            }
            if self.rt == "User":
                columns = {**columns, "userName": (t.c.user_name_lower, True),
                           "displayName": (t.c.display_name, False), "active": (t.c.active, False)}
            else:
                columns = {**columns, "displayName": (t.c.display_name_lower, True)}
            if name in columns:
                column, folded = columns[name]
                return _Scalar(name, attr, column=column, folded=folded)
        return _Scalar(name, attr, json=self.json_of(attr))

    def json_of(self, attr: Attribute, *below: str) -> JsonValue:
        if attr.schema == PROFILE_USER:
            return JsonValue(self.dialect, USERS.c.profile, (attr.name, *below))
        if attr.schema == ENTERPRISE_USER:
            return JsonValue(self.dialect, USERS.c.resource, (ENTERPRISE_USER, attr.name, *below))
        return JsonValue(self.dialect, self.table.c.resource, (attr.name, *below))

    def complex(self, attr: Attribute) -> _Complex:
        t = self.table
        if attr.name == "meta" and attr.schema in (CORE_USER, CORE_GROUP):
            def meta(sub: str) -> _Scalar | None:
                sub_attr = attr.sub(sub)
                assert sub_attr is not None
                if sub == "created":
                    return _Scalar("meta.created", sub_attr, column=t.c.created)
                if sub == "lastmodified":
                    return _Scalar("meta.lastModified", sub_attr, column=t.c.last_modified)
                if sub == "resourcetype":
                    return _Scalar("meta.resourceType", sub_attr, const=self.rt)
                return None
            return _Complex(attr.name, attr, meta)
        if attr.name == "manager" and attr.schema == ENTERPRISE_USER:
            def manager(sub: str) -> _Scalar | None:
                sub_attr = attr.sub(sub)
                assert sub_attr is not None
                # Ids are minted lower-case (uuid4), so the column is its own folded form.
                if sub == "value":
                    return _Scalar("manager.value", sub_attr, column=t.c.manager_id, folded=True)
                return None
            return _Complex(attr.name, attr, manager)

        def in_json(sub: str) -> _Scalar | None:
            sub_attr = attr.sub(sub)
            assert sub_attr is not None
            if sub_attr.type == "dateTime":
                return None
            return _Scalar(f"{attr.name}.{sub_attr.name}", sub_attr,
                           json=self.json_of(attr, sub_attr.name))
        return _Complex(attr.name, attr, in_json)

    def elements(self, attr: Attribute) -> _Elements:
        name = attr.name
        if self.rt == "User" and name == "emails" and attr.schema == CORE_USER:
            return self._emails(attr)
        if self.rt == "User" and name == "groups" and attr.schema == CORE_USER:
            return self._groups(attr)
        if self.rt == "Group" and name == "members":
            return self._members(attr)
        source, element, link = array_elements(self.json_of(attr))

        def in_array(sub: str) -> _Scalar | None:
            if not attr.sub_attributes:  # a string array (skills): the element is the value
                return _Scalar(name, attr, json=element) if sub == "value" else None
            sub_attr = attr.sub(sub)
            if sub_attr is None or sub_attr.type == "dateTime":
                return None
            return _Scalar(f"{name}.{sub_attr.name}", sub_attr, json=element.at(sub_attr.name))
        return _Elements(name, attr, source, link, in_array)

    def _emails(self, attr: Attribute) -> _Elements:
        e = EMAILS.c

        def email(sub: str) -> _Scalar | None:
            sub_attr = attr.sub(sub)
            assert sub_attr is not None
            if sub == "value":
                return _Scalar("emails.value", sub_attr, column=e.value_lower, folded=True)
            if sub == "type":
                return _Scalar("emails.type", sub_attr, column=e.type)
            # The emails table keeps each address's position in the resource's array. Its
            # ``primary`` column defaults to false, but a filter must see what a client reads
            # (RFC 7644 §3.4.2.2: "the value that was returned"), so primary comes from the JSON.
            json = JsonValue(self.dialect, USERS.c.resource, ("emails", e.position, sub_attr.name))
            return _Scalar(f"emails.{sub_attr.name}", sub_attr, json=json)
        return _Elements("emails", attr, EMAILS, e.user_id == USERS.c.id, email)

    def _groups(self, attr: Attribute) -> _Elements:
        m, g = MEMBERS.c, GROUPS.c

        def group(sub: str) -> _Scalar | None:
            sub_attr = attr.sub(sub)
            assert sub_attr is not None
            if sub == "value":
                return _Scalar("groups.value", sub_attr, column=m.group_id, folded=True)
            if sub == "display":
                return _Scalar("groups.display", sub_attr, column=g.display_name_lower, folded=True)
            if sub == "type":  # only direct memberships are stored
                return _Scalar("groups.type", sub_attr, const="direct")
            return None
        source = MEMBERS.join(GROUPS, g.id == m.group_id)
        return _Elements("groups", attr, source, m.member_id == USERS.c.id, group)

    def _members(self, attr: Attribute) -> _Elements:
        m = MEMBERS.c

        def member(sub: str) -> _Scalar | None:
            sub_attr = attr.sub(sub)
            assert sub_attr is not None
            if sub == "value":
                return _Scalar("members.value", sub_attr, column=m.member_id, folded=True)
            if sub == "type":
                return _Scalar("members.type", sub_attr, column=m.member_type)
            return None
        return _Elements("members", attr, MEMBERS, m.group_id == GROUPS.c.id, member)


def _key(attr: Attribute, sub: Attribute | None) -> str:
    base = attr.name if attr.schema in (CORE_USER, CORE_GROUP) else f"{attr.schema}:{attr.name}"
    return (f"{base}.{sub.name}" if sub else base).lower()


def _ordered(lhs: ColumnElement[Any], op: str, rhs: Any) -> ColumnElement[bool]:
    result: ColumnElement[bool]
    if op == "eq":
        result = lhs == rhs
    elif op == "gt":
        result = lhs > rhs
    elif op == "ge":
        result = lhs >= rhs
    elif op == "lt":
        result = lhs < rhs
    elif op == "le":
        result = lhs <= rhs
    else:
        raise InvalidFilter(f"{op} is not supported here")
    return result


def _python_compare(have: str, op: str, want: str) -> bool:
    """For constants (meta.resourceType, groups.type), already case-folded if need be."""
    return {
        "eq": have == want, "co": want in have, "sw": have.startswith(want),
        "ew": have.endswith(want), "gt": have > want, "ge": have >= want,
        "lt": have < want, "le": have <= want,
    }[op]


# ---------------------------------------------------------------------------------------------
# sortBy (RFC 7644 §3.4.2.3)


def sort_key(resource_type: str, sort_by: str, dialect: str) -> ColumnElement[Any]:
    """The SQL value to order ``resource_type`` by for ``sortBy=sort_by``.

    Singular attributes sort by their value (case-folded when caseExact=false, by code point);
    ``emails`` / ``emails.value`` sort by the primary (else first) address. Other multi-valued
    attributes, complex attributes without a sub-attribute and unknown names raise
    :class:`InvalidValue` (the RFC names no scimType for a bad sortBy; "invalidValue" is the
    one whose description fits).
    """
    tr = _Translator(resource_type, dialect)
    try:
        target = tr.target(parse_path(sort_by))
    except InvalidFilter as exc:
        raise InvalidValue(f"sortBy: {exc.detail}") from exc
    if (isinstance(target, _Elements) and tr.rt == "User" and target.attr.name == "emails"
            and target.selected in (None, "value")):
        return _collate(USERS.c.primary_email, dialect)
    if not isinstance(target, _Scalar) or target.kind == "complex":
        raise InvalidValue(f"sortBy: cannot sort by {sort_by!r}")
    s = target
    if s.const is not None:
        return literal(s.const, String)
    if s.json is not None:
        if s.kind == "number":
            return s.json.number()
        if s.kind == "boolean":
            return case((s.json.is_bool(True), literal(1)), (s.json.is_bool(False), literal(0)))
        text = case((s.json.is_kind("string"), s.json.text()), else_=None)
        return _collate(text if s.attr.case_exact else func.lower(text), dialect)
    assert s.column is not None
    if s.kind != "string":
        return s.column
    return _collate(s.column if s.attr.case_exact or s.folded else func.lower(s.column), dialect)


def order_by(
    resource_type: str, sort_by: str | None, descending: bool, dialect: str
) -> tuple[ColumnElement[Any], ...]:
    """ORDER BY clauses: the sortBy key (missing values last when ascending, first when
    descending, RFC 7644 §3.4.2.3), then ``id`` so that pages are stable."""
    table = USERS if resource_type.lower() == "user" else GROUPS
    if sort_by is None:
        return (table.c.id,)
    key = sort_key(resource_type, sort_by, dialect)
    ordered = key.desc().nulls_first() if descending else key.asc().nulls_last()
    return ordered, table.c.id


def parse_path(text: str) -> AttrPath:
    """``[urn:]attr[.sub]`` for sortBy (a filter without an operator)."""
    node = parse(f"{text} pr")
    if not isinstance(node, Present):
        raise InvalidFilter(f"not an attribute path: {text!r}")
    return node.path


def _collate(expr: ColumnElement[Any], dialect: str) -> ColumnElement[Any]:
    return expr.collate("C") if dialect == "postgresql" else expr

