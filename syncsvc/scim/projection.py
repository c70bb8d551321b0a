"""Attribute projection of responses: ``attributes`` and ``excludedAttributes``.

RFC 7644 §3.4.2.5 (and §3.9 for every other response carrying a resource) with the
``returned`` characteristic of RFC 7643 §2.4 / §7:

- ``always`` attributes (``id``) and the ``schemas`` attribute are always kept;
- ``never`` attributes (``password``) are always dropped;
- ``request`` attributes only appear when named in ``attributes``;
- with ``attributes``: only the named ones (plus ``always``); naming a sub-attribute
  ("name.givenName") keeps only that part of the parent; naming an extension URN keeps the
  whole extension;
- with ``excludedAttributes``: the default set minus the named ones (``always`` cannot be
  excluded); when both are given the inclusion is applied first, then the exclusion.

Names are case-insensitive and may be URN-qualified (§3.10); unknown names are ignored
rather than refused (the RFC gives no error for them, and clients send vendor names).
``schemas`` lists the core URN plus each extension still present in the result.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from syncsvc.scim.schema import ENTERPRISE_USER, Attribute, ResourceSchema, load_schemas

__all__ = ["EXPENSIVE", "needs", "project"]

# Parts of a resource that cost a query of their own; see needs().
EXPENSIVE: Final[Mapping[str, tuple[tuple[str, str], ...]]] = {
    "User": (("groups", ""), ("manager", ENTERPRISE_USER)),
    "Group": (("members", ""),),
}

_ALL: Final = None  # "the whole attribute" in a _Selection


@dataclass(frozen=True, slots=True)
class _Selection:
    """Parsed attribute paths: whole schemas, whole attributes, or sets of sub-attributes."""

    schemas: frozenset[str]  # lower-cased URNs named on their own
    attrs: Mapping[tuple[str, str], frozenset[str] | None]  # (urn, lower name) -> subs | _ALL

    def names(self, attr: Attribute) -> bool:
        """True when the attribute or one of its sub-attributes is named."""
        return attr.schema.lower() in self.schemas or (attr.schema, attr.name.lower()) in self.attrs

    def whole(self, attr: Attribute) -> bool:
        """True when the attribute is named as a whole (itself or via its schema URN)."""
        key = (attr.schema, attr.name.lower())
        return attr.schema.lower() in self.schemas or (
            key in self.attrs and self.attrs[key] is _ALL
        )

    def subs(self, attr: Attribute) -> frozenset[str]:
        """The lower-cased sub-attribute names named for ``attr`` (empty if none or whole)."""
        return self.attrs.get((attr.schema, attr.name.lower())) or frozenset()


def _parse(resource_type: str, paths: Sequence[str] | None) -> _Selection | None:
    if paths is None:
        return None
    registry = load_schemas()
    schemas: set[str] = set()
    attrs: dict[tuple[str, str], frozenset[str] | None] = {}
    for raw in paths:
        path = raw.strip()
        resolved = registry.resolve(resource_type, path) if path else None
        if resolved is None:
            continue  # unknown names are ignored (module docstring)
        if resolved.attribute is None:
            schemas.add(resolved.schema.lower())
            continue
        key = (resolved.schema, resolved.attribute.name.lower())
        if resolved.sub is None:
            attrs[key] = _ALL
        elif key not in attrs or attrs[key] is not _ALL:
            attrs[key] = (attrs.get(key) or frozenset()) | {resolved.sub.name.lower()}
    return _Selection(frozenset(schemas), attrs)


def _split(paths: Sequence[str] | str | None) -> Sequence[str] | None:
    # A query string value "a,b" may reach us unsplit; accept both forms.
    if paths is None:
        return None
    items = [paths] if isinstance(paths, str) else list(paths)
    flat = [part for item in items for part in item.split(",") if part.strip()]
    return flat or None


def _keep_top(attr: Attribute, incl: _Selection | None, excl: _Selection | None) -> bool:
    if attr.returned == "never":
        return False
    if attr.returned == "always":
        return True
    if incl is not None and not incl.names(attr):
        return False
    if incl is None and attr.returned == "request":
        return False
    return not (excl is not None and excl.whole(attr))


def _keep_sub(
    parent: Attribute, sub: Attribute, incl: _Selection | None, excl: _Selection | None
) -> bool:
    if sub.returned == "never":
        return False
    if sub.returned == "always":
        return True
    name = sub.name.lower()
    if incl is not None and not incl.whole(parent):
        if name not in incl.subs(parent):
            return False
    elif sub.returned == "request":
        return False
    return not (excl is not None and name in excl.subs(parent))


def _project_complex(
    attr: Attribute, value: Mapping[str, Any], incl: _Selection | None, excl: _Selection | None
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, sub_value in value.items():
        sub = attr.sub(key)
        if sub is None:
            # A sub-attribute outside the schema (added by the server) follows its parent.
            keep = incl is None or incl.whole(attr)
        else:
            keep = _keep_sub(attr, sub, incl, excl)
        if keep:
            out[key] = sub_value
    return out


def _project_value(
    attr: Attribute, value: Any, incl: _Selection | None, excl: _Selection | None
) -> Any:
    """The projected value, or None when nothing of it remains."""
    if attr.returned == "always" or attr.type != "complex" or not attr.sub_attributes:
        return value
    if attr.multi_valued and isinstance(value, list):
        items = [
            _project_complex(attr, item, incl, excl) if isinstance(item, Mapping) else item
            for item in value
        ]
        items = [item for item in items if item not in ({}, None)]
        return items or None
    if isinstance(value, Mapping):
        return _project_complex(attr, value, incl, excl) or None
    return value


def _project_attrs(
    schema: ResourceSchema,
    urn: str,
    body: Mapping[str, Any],
    incl: _Selection | None,
    excl: _Selection | None,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in body.items():
        attr = schema.top(urn, key)
        if attr is None:
            if incl is None:  # not in the schema: the caller added it on purpose
                out[key] = value
            continue
        if not _keep_top(attr, incl, excl):
            continue
        projected = _project_value(attr, value, incl, excl)
        if projected is not None:
            out[key] = projected
    return out


def project(
    resource: Mapping[str, Any],
    resource_type: str,
    *,
    attributes: Sequence[str] | None,
    excluded: Sequence[str] | None,
) -> dict[str, Any]:
    """Return ``resource`` reduced per ``attributes`` / ``excludedAttributes`` (RFC 7644 §3.4.2.5).

    ``resource`` is the full representation (with id, meta, groups/members as loaded). Each
    sequence item may itself be a comma-separated list, as in the query string.
    """
    schema = load_schemas().resource(resource_type)
    incl = _parse(resource_type, _split(attributes))
    excl = _parse(resource_type, _split(excluded))
    core_body: dict[str, Any] = {}
    extensions: dict[str, dict[str, Any]] = {}
    for key, value in resource.items():
        if key.lower() == "schemas":
            continue
        urn = schema.schema_urn(key) if key.lower().startswith("urn:") else None
        if urn is not None and urn != schema.core and isinstance(value, Mapping):
            projected = _project_attrs(schema, urn, value, incl, excl)
            if projected:
                extensions[urn] = projected
        else:
            core_body[key] = value
    out: dict[str, Any] = {"schemas": [schema.core, *extensions]}
    out.update(_project_attrs(schema, schema.core, core_body, incl, excl))
    out.update(extensions)
    return out


def needs(
    resource_type: str, attributes: Sequence[str] | None, excluded: Sequence[str] | None
) -> frozenset[str]:
    """Which expensive parts the response will show: a subset of "groups", "manager", "members".

    The caller loads only these: ``excludedAttributes=members`` must never load the member
    list of a 50k-member group, and ``attributes=userName`` needs neither groups nor manager.
    """
    # Asked on every read, nearly always with the same few selections (mostly none at all).
    return _needs(resource_type, _frozen(attributes), _frozen(excluded))


def _frozen(paths: Sequence[str] | None) -> tuple[str, ...] | None:
    return tuple(paths) if paths else None


@functools.lru_cache(maxsize=512)
def _needs(
    resource_type: str, attributes: tuple[str, ...] | None, excluded: tuple[str, ...] | None
) -> frozenset[str]:
    schema = load_schemas().resource(resource_type)
    incl = _parse(resource_type, _split(attributes))
    excl = _parse(resource_type, _split(excluded))
    needed = set()
    for name, urn in EXPENSIVE.get(schema.name, ()):
        attr = schema.top(urn or schema.core, name)
        if attr is None or not _keep_top(attr, incl, excl):
            continue
        if excl is not None and attr.sub_attributes:
            subs = {s.name.lower() for s in attr.sub_attributes if _keep_sub(attr, s, incl, excl)}
            if not subs:
                continue
        needed.add(name)
    return frozenset(needed)
