"""SCIM schema definitions (RFC 7643 §7) as typed, frozen values, loaded from ``static/*.json``.

The JSON files are what ``/Schemas`` serves; this module gives the rest of the SCIM layer a
fast lookup: ``attribute(resource_type, path)`` for filters, PATCH, projection and validation.
Names are matched case-insensitively (RFC 7644 §3.10); paths may be URN-qualified.

The common attributes ``id``, ``externalId`` and ``meta`` (RFC 7643 §3.1) belong to no schema;
they live in ``static/common.json``, are not part of the served schema documents, and resolve
under each resource type's core schema URN (so ``urn:...:core:2.0:User:meta.created`` works).
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

__all__ = [
    "CORE_GROUP",
    "CORE_USER",
    "ENTERPRISE_USER",
    "PROFILE_USER",
    "SCHEMA_SCHEMA",
    "Attribute",
    "ResolvedPath",
    "ResourceSchema",
    "SchemaRegistry",
    "load_schemas",
]

CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_USER = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
# syncsvc's own extension: rich profile data owned by syncsvc, never by the directory.
PROFILE_USER = "urn:syncsvc:params:scim:schemas:extension:profile:2.0:User"
# The schema of schema documents themselves (RFC 7643 §7, §8.7.2).
SCHEMA_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema"

AttrType = Literal[
    "string", "boolean", "decimal", "integer", "dateTime", "binary", "reference", "complex"
]
Mutability = Literal["readOnly", "readWrite", "immutable", "writeOnly"]
Returned = Literal["always", "never", "default", "request"]
Uniqueness = Literal["none", "server", "global"]

_STATIC = Path(__file__).parent / "static"
# schema URN -> the file in static/ that defines it it defines
_SCHEMA_FILES: Mapping[str, str] = {
    CORE_USER: "User.json",
    CORE_GROUP: "Group.json",
    ENTERPRISE_USER: "EnterpriseUser.json",
    PROFILE_USER: "ProfileUser.json",
}


@dataclass(frozen=True, slots=True)
class Attribute:
    """One attribute definition; ``schema`` is the URN it belongs to."""

    name: str
    type: AttrType
    schema: str
    multi_valued: bool = False
    required: bool = False
    case_exact: bool = False
    mutability: Mutability = "readWrite"
    returned: Returned = "default"
    uniqueness: Uniqueness = "none"
    canonical_values: tuple[str, ...] = ()
    reference_types: tuple[str, ...] = ()
    description: str = ""
    sub_attributes: tuple[Attribute, ...] = ()

    def sub(self, name: str) -> Attribute | None:
        """A sub-attribute by case-insensitive name."""
        lowered = name.lower()
        return next((a for a in self.sub_attributes if a.name.lower() == lowered), None)


@dataclass(frozen=True, slots=True)
class ResourceSchema:
    """A resource type: its core schema and extensions, with attribute lookup.

    ``attributes[core]`` starts with the common attributes (id, externalId, meta; RFC 7643
    §3.1), then the core schema's own; each extension URN maps to its attributes.
    """

    name: str  # "User" | "Group"
    endpoint: str  # "/Users"
    core: str  # URN of the core schema
    extensions: tuple[str, ...]
    attributes: dict[str, tuple[Attribute, ...]] = field(default_factory=dict)  # URN -> attributes
    description: str = ""

    @property
    def schemas(self) -> tuple[str, ...]:
        """Every schema URN of this resource type: the core one first."""
        return (self.core, *self.extensions)

    def schema_urn(self, urn: str) -> str | None:
        """The canonical spelling of ``urn`` if it is one of this type's schemas (any case)."""
        lowered = urn.lower()
        return next((s for s in self.schemas if s.lower() == lowered), None)

    def top(self, urn: str, name: str) -> Attribute | None:
        """A top-level attribute of schema ``urn`` by case-insensitive name."""
        lowered = name.lower()
        return next((a for a in self.attributes.get(urn, ()) if a.name.lower() == lowered), None)


@dataclass(frozen=True, slots=True)
class ResolvedPath:
    """An attribute path resolved against a resource type (RFC 7644 §3.10).

    ``attribute`` is None when the path names a whole extension schema (e.g. a PATCH path or an
    ``attributes=`` entry that is just the enterprise URN); ``sub`` is None for a top-level path.
    """

    schema: str
    attribute: Attribute | None
    sub: Attribute | None = None


@dataclass(frozen=True, slots=True)
class SchemaRegistry:
    """Every schema and resource type syncsvc serves; built once by :func:`load_schemas`."""

    documents: Mapping[str, Mapping[str, Any]]  # URN -> schema document as shipped
    resources: Mapping[str, ResourceSchema]  # "User" -> ...

    def resource(self, resource_type: str) -> ResourceSchema:
        """The resource type by name ("User", "Group"; any case). KeyError when unknown."""
        lowered = resource_type.lower()
        for name, schema in self.resources.items():
            if name.lower() == lowered:
                return schema
        raise KeyError(resource_type)

    def resolve(self, resource_type: str, path: str) -> ResolvedPath | None:
        """Resolve ``[URN:]attr[.sub]`` or a bare schema URN; None when nothing matches.

        RFC 7644 §3.10: names are case-insensitive and may be prefixed with their schema URN.
        Without a URN, the core schema is searched first, then the extensions in order.
        Value filters (``emails[type eq "work"]``) are not paths here: callers strip them.
        """
        schema = self.resource(resource_type)
        rest = path
        urns: Sequence[str] = schema.schemas
        lowered = path.lower()
        for urn in schema.schemas:
            if lowered == urn.lower():
                return ResolvedPath(urn, None)
            if lowered.startswith(urn.lower() + ":"):
                rest = path[len(urn) + 1 :]
                urns = (urn,)
                break
        parts = rest.split(".")
        if len(parts) > 2 or not all(parts):
            return None
        for urn in urns:
            attr = schema.top(urn, parts[0])
            if attr is None:
                continue
            if len(parts) == 1:
                return ResolvedPath(urn, attr)
            sub = attr.sub(parts[1])
            return ResolvedPath(urn, attr, sub) if sub is not None else None
        return None

    def attribute(self, resource_type: str, path: str) -> tuple[Attribute, Attribute | None] | None:
        """``(attribute, sub_attribute or None)`` for ``path``; None when unknown.

        Accepts "userName", "name.givenName", "EMAILS.Value" and URN-qualified forms such as
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value".
        """
        resolved = self.resolve(resource_type, path)
        if resolved is None or resolved.attribute is None:
            return None
        return resolved.attribute, resolved.sub

    def schema_documents(self, base_url: str) -> list[dict[str, Any]]:
        """The documents ``GET /Schemas`` lists (RFC 7644 §4), with absolute meta.location."""
        return [self._document(urn, base_url) for urn in self.documents]

    def schema_document(self, urn: str, base_url: str) -> dict[str, Any] | None:
        """One schema document (``GET /Schemas/{urn}``; URN matched in any case), or None."""
        lowered = urn.lower()
        for known in self.documents:
            if known.lower() == lowered:
                return self._document(known, base_url)
        return None

    def _document(self, urn: str, base_url: str) -> dict[str, Any]:
        doc = copy.deepcopy(dict(self.documents[urn]))
        doc["meta"] = {
            "resourceType": "Schema",
            "location": f"{base_url.rstrip('/')}/Schemas/{urn}",
        }
        return doc


def _attribute(raw: Mapping[str, Any], schema: str) -> Attribute:
    return Attribute(
        name=raw["name"],
        type=raw["type"],
        schema=schema,
        multi_valued=raw.get("multiValued", False),
        required=raw.get("required", False),
        case_exact=raw.get("caseExact", False),
        mutability=raw.get("mutability", "readWrite"),
        returned=raw.get("returned", "default"),
        uniqueness=raw.get("uniqueness", "none"),
        canonical_values=tuple(raw.get("canonicalValues", ())),
        reference_types=tuple(raw.get("referenceTypes", ())),
        description=raw.get("description", ""),
        sub_attributes=tuple(_attribute(s, schema) for s in raw.get("subAttributes", ())),
    )


def _read(name: str) -> dict[str, Any]:
    text = (_STATIC / name).read_text(encoding="utf-8")
    return cast(dict[str, Any], json.loads(text))


@functools.cache
def load_schemas() -> SchemaRegistry:
    """Load the shipped schema documents once (static data, so caching is safe)."""
    documents = {urn: _read(fname) for urn, fname in _SCHEMA_FILES.items()}
    common = _read("common.json")["attributes"]

    def build(name: str, endpoint: str, core: str, extensions: tuple[str, ...]) -> ResourceSchema:
        attrs = {
            core: tuple(_attribute(a, core) for a in (*common, *documents[core]["attributes"]))
        }
        for ext in extensions:
            attrs[ext] = tuple(_attribute(a, ext) for a in documents[ext]["attributes"])
        return ResourceSchema(
            name, endpoint, core, extensions, attrs, documents[core]["description"]
        )

    resource_types = {
        "User": build("User", "/Users", CORE_USER, (ENTERPRISE_USER, PROFILE_USER)),
        "Group": build("Group", "/Groups", CORE_GROUP, ()),
    }
    return SchemaRegistry(documents, resource_types)
