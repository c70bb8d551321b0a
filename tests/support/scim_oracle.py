"""A plain-Python SCIM filter evaluator: the test oracle for ``syncsvc.scim.filters``.

It reads the full SCIM document of a resource (core attributes at the top, extensions under their
URN, ``groups``/``members`` and ``meta`` filled in) and applies RFC 7644 §3.4.2.2 literally, with
the semantics documented in ``syncsvc/scim/filters.py`` (``ne`` is ``not eq``, ``eq null`` is
``not pr``, any-value for multi-valued attributes). It shares nothing with the SQL translator but
the schema registry (the spec) and the AST types.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any

from syncsvc.scim._filterparse import And, AttrPath, Compare, Filter, Not, Or, Present, ValuePath
from syncsvc.scim.schema import Attribute, load_schemas

__all__ = ["matches"]


def _present(value: Any) -> bool:
    if value is None or value == "":
        return False
    if isinstance(value, list):
        return any(_present(v) for v in value)
    if isinstance(value, dict):
        return any(_present(v) for v in value.values())
    return True


def _instant(text: str) -> datetime:
    parsed = datetime.fromisoformat(text)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _scalar_eq_or_order(have: Any, op: str, want: Any, attr: Attribute) -> bool:
    if have is None:
        return False
    if attr.type == "boolean":
        return isinstance(have, bool) and op == "eq" and have is want
    if attr.type in ("integer", "decimal"):
        if isinstance(have, bool) or not isinstance(have, int | float):
            return False
        a, b = have, want
    elif attr.type == "dateTime":
        a, b = have, _instant(want)
    else:
        if not isinstance(have, str):
            return False
        a, b = (have, want) if attr.case_exact else (have.lower(), want.lower())
        if op == "co":
            return b in a
        if op == "sw":
            return a.startswith(b)
        if op == "ew":
            return a.endswith(b)
    return {"eq": a == b, "gt": a > b, "ge": a >= b, "lt": a < b, "le": a <= b}[op]


def _scalar(have: Any, op: str, want: Any, attr: Attribute) -> bool:
    if want is None:
        return not _present(have) if op == "eq" else _present(have)
    if op == "ne":
        return not _scalar_eq_or_order(have, "eq", want, attr)
    return _scalar_eq_or_order(have, op, want, attr)


class _Oracle:
    def __init__(self, resource_type: str) -> None:
        self.registry = load_schemas()
        self.rt = resource_type

    def resolve(self, doc: dict[str, Any], path: AttrPath) -> tuple[Any, Attribute, Attribute | None]:
        if str(path).lower() == "schemas":
            return doc.get("schemas"), Attribute("schemas", "reference", "", multi_valued=True), None
        resolved = self.registry.resolve(self.rt, str(path))
        assert resolved is not None and resolved.attribute is not None, path
        schema = self.registry.resource(self.rt)
        base = doc if resolved.schema == schema.core else doc.get(resolved.schema) or {}
        return base.get(resolved.attribute.name), resolved.attribute, resolved.sub

    def match(self, node: Filter, doc: dict[str, Any]) -> bool:
        match node:
            case And(items):
                return all(self.match(i, doc) for i in items)
            case Or(items):
                return any(self.match(i, doc) for i in items)
            case Not(item):
                return not self.match(item, doc)
            case Present(path):
                value, attr, sub = self.resolve(doc, path)
                return _present(self._select(value, attr, sub))
            case Compare(path, op, want):
                value, attr, sub = self.resolve(doc, path)
                if attr.multi_valued:
                    leaf = sub or attr.sub("value") or attr
                    items = [self._pick(e, attr, leaf) for e in value or []]
                    if want is None:
                        present = any(_present(v) for v in items)
                        return not present if op == "eq" else present
                    return any(_scalar(v, op, want, leaf) for v in items)
                if sub is not None:
                    return _scalar((value or {}).get(sub.name), op, want, sub)
                return _scalar(value, op, want, attr)
            case ValuePath(path, inner):
                value, attr, _ = self.resolve(doc, path)
                if attr.multi_valued:
                    return any(self._inner(inner, e, attr) for e in value or [])
                return self._inner(inner, value or {}, attr)
        raise AssertionError(node)

    @staticmethod
    def _pick(element: Any, attr: Attribute, leaf: Attribute) -> Any:
        if not attr.sub_attributes:
            return element
        return element.get(leaf.name) if isinstance(element, dict) else None

    @staticmethod
    def _select(value: Any, attr: Attribute, sub: Attribute | None) -> Any:
        if sub is None:
            return value
        if attr.multi_valued:
            return [e.get(sub.name) for e in value or [] if isinstance(e, dict)]
        return (value or {}).get(sub.name)

    def _inner(self, node: Filter, element: dict[str, Any], attr: Attribute) -> bool:
        match node:
            case And(items):
                return all(self._inner(i, element, attr) for i in items)
            case Or(items):
                return any(self._inner(i, element, attr) for i in items)
            case Not(item):
                return not self._inner(item, element, attr)
            case Present(path):
                sub = attr.sub(path.attr)
                assert sub is not None
                return _present(element.get(sub.name))
            case Compare(path, op, want):
                sub = attr.sub(path.attr)
                assert sub is not None
                return _scalar(element.get(sub.name), op, want, sub)
        raise AssertionError(node)


@functools.cache
def _oracle(resource_type: str) -> _Oracle:
    return _Oracle(resource_type)


def matches(resource_type: str, node: Filter, doc: dict[str, Any]) -> bool:
    """Does the SCIM document ``doc`` of ``resource_type`` match the filter ``node``?"""
    return _oracle(resource_type).match(node, doc)
