"""JSON in and out of the hot paths: orjson where it can, the standard library where it cannot.

A SCIM list page serialises 100 resources and a read decodes as many stored JSON documents;
orjson does both several times faster than :mod:`json`. It is stricter than the standard
library in two corners (integers beyond 64 bits, numbers that overflow a double such as
``1e400``), so each call falls back to :mod:`json` there rather than failing a request over a
value the rest of the service accepts.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

__all__ = ["dumps", "dumps_text", "loads"]


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON bytes (no ASCII escaping)."""
    try:
        return orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError: big ints, non-str keys
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def dumps_text(value: Any) -> str:
    """Like :func:`dumps`, as text (what SQLAlchemy's JSON serializer hook returns)."""
    return dumps(value).decode()


def loads(data: str | bytes) -> Any:
    """Parse JSON text or bytes."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)
