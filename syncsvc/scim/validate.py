"""Validation and coercion of POST/PUT bodies (and PATCH values) against the schemas.

RFC 7643 §2 (attribute types and characteristics) and RFC 7644 §3.3 / §3.5.1. What is refused:

- a body that is not an object, or whose ``schemas`` does not list the core URN:
  :class:`InvalidSyntax`;
- an unknown top-level attribute that is not URN-qualified, or an unknown (sub-)attribute inside
  a known schema: :class:`InvalidSyntax` (strict: a typo must not vanish silently);
- a value of the wrong type, a missing required attribute, two ``primary: true`` values, or a
  profile value over its limit: :class:`InvalidValue`.

What is accepted on purpose (clients in the wild; RFC 7644 §3.3 lets a server ignore unknown
extensions):

- URN-qualified keys of unknown extensions are ignored, as are unknown URNs in ``schemas``;
  an extension object present but missing from ``schemas`` is accepted and its URN added, and
  a ``schemas`` key inside an extension object is ignored;
- flat URN-qualified attribute keys (``"urn:...:enterprise:2.0:User:department": "x"``);
- ``"True"``/``"false"`` (any case) for booleans; integral strings for integers; numbers for
  strings (``employeeNumber: 12345``);
- a single value where a multi-valued attribute expects an array (it is wrapped);
- a bare scalar where a complex attribute with a ``value`` sub-attribute is expected
  (Entra ID's ``manager: "id"``) becomes ``{"value": scalar}``; a manager without a value is
  treated as unassigned;
- attribute names in any case (they are returned in their canonical case);
- ``null`` means unassigned (RFC 7643 §2.5) and is dropped.

readOnly attributes (id, meta, groups, manager.displayName, members.display, the profile's
completeness and photo.thumbnail) are dropped silently (RFC 7643 §2.2, RFC 7644 §3.5.1: "SHALL
be ignored"). Canonical values (emails.type, members.type, ...) are NOT enforced: RFC 7643 §2.3
lets clients send others, and they do. ``immutable`` is not checked here (that needs the stored
resource). ``password`` (writeOnly) is passed through: the caller must not store it as is.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final
from urllib.parse import urlsplit

from syncsvc.errors import InvalidSyntax, InvalidValue
from syncsvc.scim.schema import (
    CORE_GROUP,
    CORE_USER,
    ENTERPRISE_USER,
    PROFILE_USER,
    Attribute,
    ResourceSchema,
    load_schemas,
)
from syncsvc.store.schema import GroupRow, UserEmailRow, UserRow

__all__ = ["PROFILE_LIMITS", "coerce_value", "validate_resource"]

_BOOLEANS: Final = {"true": True, "false": False}
_INTEGER: Final = re.compile(r"[+-]?\d+")
_SLUG: Final = re.compile(r"[a-z0-9-]{3,64}")

# Limits of the profile extension (owned by syncsvc): attribute name -> (max chars, max items).
PROFILE_LIMITS: Final[Mapping[str, tuple[int | None, int | None]]] = {
    "headline": (200, None),
    "bio": (2000, None),
    "skills": (100, 50),
    "languages": (100, 50),
    "interests": (100, 50),
    "socialLinks": (None, 50),
}
_HTTP_URLS: Final = frozenset({"url"})  # socialLinks.url, photo.url


def coerce_value(attribute: Attribute, value: Any) -> Any:
    """Check and coerce ``value`` for ``attribute``; None means "unassigned".

    The PATCH engine calls this with the attribute (or sub-attribute) a path resolved to.
    readOnly sub-attributes inside a complex value are dropped; whether the attribute itself
    may be written is the caller's decision (it raises :class:`Mutability`).
    Raises :class:`InvalidValue` (wrong type, over a limit) or :class:`InvalidSyntax`
    (unknown sub-attribute), with a detail naming the attribute.
    """
    return _coerce(attribute, value, _label(attribute))


def validate_resource(
    body: Mapping[str, Any], resource_type: str, *, for_update: bool
) -> dict[str, Any]:
    """Return the cleaned resource of a POST (``for_update=False``) or PUT body.

    The result has ``schemas`` (core URN, then the extensions present), canonical attribute
    names, coerced values, extension objects under their URN, and no id/meta or other readOnly
    attribute. Required attributes (userName, Group displayName) are enforced for both: a PUT
    replaces the whole resource (RFC 7644 §3.5.1). See the module docstring for the rules.
    """
    if not isinstance(body, Mapping):
        raise InvalidSyntax("the request body must be a JSON object")
    schema = load_schemas().resource(resource_type)
    _check_schemas(body, schema)
    target: dict[str, dict[str, Any]] = {urn: {} for urn in schema.schemas}
    for key, value in body.items():
        if not isinstance(key, str):
            raise InvalidSyntax("attribute names must be strings")
        if key.lower() == "schemas":
            continue
        if key.lower().startswith("urn:"):
            _place_qualified(schema, resource_type, key, value, target)
        else:
            _place(schema, schema.core, key, None, value, target)
    _check_required(schema, target)
    extensions = [urn for urn in schema.extensions if target[urn]]
    out: dict[str, Any] = {"schemas": [schema.core, *extensions]}
    out.update(target[schema.core])
    out.update({urn: target[urn] for urn in extensions})
    _check_stored_lengths(out, resource_type)
    del for_update  # the same rules hold for both today; PUT-only checks will go here
    return out


def _column_length(column: Any) -> int:
    length = column.type.length
    assert isinstance(length, int)  # every column named below is a bounded String
    return length


# Attributes kept in bounded columns (the store's schema says how long): PostgreSQL refuses a
# longer value outright, which must be the client's 400, not a 500 from the driver.
_STORED_LENGTHS: Final[Mapping[str, Mapping[str, int]]] = {
    "User": {"userName": _column_length(UserRow.__table__.c.user_name),
             "externalId": _column_length(UserRow.__table__.c.external_id),
             "displayName": _column_length(UserRow.__table__.c.display_name),
             "emails.value": _column_length(UserEmailRow.__table__.c.value),
             "emails.type": _column_length(UserEmailRow.__table__.c.type)},
    "Group": {"displayName": _column_length(GroupRow.__table__.c.display_name),
              "externalId": _column_length(GroupRow.__table__.c.external_id)},
}


def _check_stored_lengths(resource: Mapping[str, Any], resource_type: str) -> None:
    for path, most in _STORED_LENGTHS.get(resource_type, {}).items():
        name, _, sub = path.partition(".")
        values = resource.get(name)
        if sub:
            items = values if isinstance(values, list) else []
            values = [item.get(sub) for item in items if isinstance(item, Mapping)]
        for value in values if isinstance(values, list) else [values]:
            if isinstance(value, str) and len(value) > most:
                raise InvalidValue(f"{path} is longer than {most} characters")


def _check_schemas(body: Mapping[str, Any], schema: ResourceSchema) -> None:
    raw = next((v for k, v in body.items() if isinstance(k, str) and k.lower() == "schemas"), None)
    if isinstance(raw, str):
        raw = [raw]  # a bare string: accepted like any single value for a multi-valued attribute
    if not isinstance(raw, list) or not all(isinstance(u, str) for u in raw):
        raise InvalidSyntax(f"'schemas' must be an array of URNs including {schema.core}")
    if schema.core.lower() not in {u.lower() for u in raw}:
        raise InvalidSyntax(f"'schemas' must include {schema.core} for a {schema.name}")


def _place_qualified(
    schema: ResourceSchema,
    resource_type: str,
    key: str,
    value: Any,
    target: dict[str, dict[str, Any]],
) -> None:
    urn = schema.schema_urn(key)
    if urn is not None:
        if value is None:
            return
        if not isinstance(value, Mapping):
            raise InvalidSyntax(f"'{urn}' must be an object of that schema's attributes")
        for name, item in value.items():
            if isinstance(name, str) and name.lower() == "schemas":
                continue  # an extension object echoing its own URN list; not an attribute
            _place(schema, urn, name, None, item, target)
        return
    resolved = load_schemas().resolve(resource_type, key)
    if resolved is None or resolved.attribute is None:
        return  # an extension we do not know: ignored (RFC 7644 §3.3)
    sub = resolved.sub.name if resolved.sub is not None else None
    _place(schema, resolved.schema, resolved.attribute.name, sub, value, target)


def _place(
    schema: ResourceSchema,
    urn: str,
    name: str,
    sub_name: str | None,
    value: Any,
    target: dict[str, dict[str, Any]],
) -> None:
    attr = schema.top(urn, name)
    if attr is None:
        where = "" if urn == schema.core else f" of {urn}"
        raise InvalidSyntax(f"unknown attribute '{name}'{where} for a {schema.name}")
    if attr.mutability == "readOnly":
        return
    bucket = target[urn]
    if sub_name is None:
        if attr.name in bucket:
            raise InvalidSyntax(f"attribute '{_label(attr)}' is given more than once")
        coerced = _coerce(attr, value, _label(attr))
        if coerced is not None:
            bucket[attr.name] = coerced
        return
    if attr.multi_valued:
        raise InvalidSyntax(
            f"'{_label(attr)}.{sub_name}' names no single value; send '{attr.name}'"
        )
    sub = attr.sub(sub_name)
    if sub is None or sub.mutability == "readOnly":
        return
    coerced = _coerce(sub, value, f"{_label(attr)}.{sub.name}")
    if coerced is not None:
        existing = bucket.setdefault(attr.name, {})
        if not isinstance(existing, dict):
            raise InvalidSyntax(f"attribute '{_label(attr)}' is given more than once")
        existing[sub.name] = coerced


def _check_required(schema: ResourceSchema, target: Mapping[str, Mapping[str, Any]]) -> None:
    for urn in schema.schemas:
        for attr in schema.attributes.get(urn, ()):
            if not attr.required or attr.mutability == "readOnly":
                continue
            value = target[urn].get(attr.name)
            if value is None or (isinstance(value, str) and not value.strip()) or value == []:
                raise InvalidValue(f"required attribute '{_label(attr)}' is missing or empty")


def _label(attr: Attribute) -> str:
    return attr.name if attr.schema in (CORE_USER, CORE_GROUP) else f"{attr.schema}:{attr.name}"


def _coerce(attr: Attribute, value: Any, label: str) -> Any:
    if value is None:
        return None
    if not attr.multi_valued:
        if isinstance(value, list):
            raise InvalidValue(f"attribute '{label}' is single-valued; got an array")
        single = _single(attr, value, label)
        _check_limits(attr, single, label)
        return single
    items = value if isinstance(value, list) else [value]
    out = [_single(attr, item, label) for item in items if item is not None]
    out = [item for item in out if item not in (None, {})]
    if attr.type == "complex" and sum(1 for i in out if i.get("primary") is True) > 1:
        raise InvalidValue(f"attribute '{label}' has more than one primary value (RFC 7643 §2.4)")
    _check_limits(attr, out, label)
    return out


def _single(attr: Attribute, value: Any, label: str) -> Any:
    match attr.type:
        case "complex":
            return _complex(attr, value, label)
        case "boolean":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.strip().lower() in _BOOLEANS:
                return _BOOLEANS[value.strip().lower()]  # Entra ID sends "True"/"False"
        case "integer":
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            if isinstance(value, float) and value.is_integer():
                return int(value)
            if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
                return int(value)
        case "decimal":
            if isinstance(value, int | float) and not isinstance(value, bool):
                return value
        case "dateTime":
            if isinstance(value, str) and _is_datetime(value):
                return value
        case "binary":
            if isinstance(value, str) and _is_base64(value):
                return value
        case "string":
            if isinstance(value, str):
                return value
            if isinstance(value, int | float) and not isinstance(value, bool):
                return str(value)  # employeeNumber: 12345
        case "reference":
            if isinstance(value, str):
                return value
    raise InvalidValue(f"attribute '{label}' must be of type {attr.type}; got {_show(value)}")


def _complex(attr: Attribute, value: Any, label: str) -> dict[str, Any] | None:
    if not isinstance(value, Mapping):
        if attr.sub("value") is not None and isinstance(value, str | int | float | bool):
            value = {"value": value}  # manager: "id" (Entra ID)
        else:
            raise InvalidValue(f"attribute '{label}' must be an object; got {_show(value)}")
    out: dict[str, Any] = {}
    for key, item in value.items():
        sub = attr.sub(key) if isinstance(key, str) else None
        if sub is None:
            raise InvalidSyntax(f"unknown sub-attribute '{key}' of '{label}'")
        if sub.name in out:
            raise InvalidSyntax(f"sub-attribute '{label}.{sub.name}' is given more than once")
        if sub.mutability == "readOnly":
            continue
        coerced = _coerce(sub, item, f"{label}.{sub.name}")
        if coerced is not None:
            out[sub.name] = coerced
    if attr.schema == ENTERPRISE_USER and attr.name == "manager" and not out.get("value"):
        # Entra ID clears the manager with {"value": ""}; a manager without an id is no manager.
        return None if not out.get("$ref") else out
    return out


def _check_limits(attr: Attribute, value: Any, label: str) -> None:
    if attr.schema != PROFILE_USER or value is None:
        return
    max_chars, max_items = PROFILE_LIMITS.get(attr.name, (None, None))
    values = value if isinstance(value, list) else [value]
    if max_items is not None and len(values) > max_items:
        raise InvalidValue(f"attribute '{label}' has {len(values)} values; at most {max_items}")
    if max_chars is not None:
        for item in values:
            if isinstance(item, str) and len(item) > max_chars:
                raise InvalidValue(f"attribute '{label}' is longer than {max_chars} characters")
    if attr.name in _HTTP_URLS:
        for item in values:
            parts = urlsplit(item)
            if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
                raise InvalidValue(f"attribute '{label}' must be an http(s) URL; got {_show(item)}")
    if attr.name == "slug":
        for item in values:
            if not _SLUG.fullmatch(item):
                raise InvalidValue(
                    f"attribute '{label}' must be 3 to 64 of a-z, 0-9 and '-'; got {_show(item)}"
                )


def _is_datetime(value: str) -> bool:
    # xsd:dateTime (RFC 7643 §2.3.5); fromisoformat accepts "Z" from Python 3.11 on.
    if "T" not in value:
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_base64(value: str) -> bool:
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
