"""Hide secrets before they reach a log line or a ``check-config --show`` listing.

Two small, dependency-free helpers shared by :mod:`syncsvc.settings` (``describe``) and
:mod:`syncsvc.logconfig` (the last-line-of-defence log processor). They work on names and
shapes only; they never need to know which values are secret in advance.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

__all__ = ["MASK", "is_secret_key", "mask_url_password", "redact_tree"]

MASK: Final = "***"
"""What a hidden value is replaced with."""

# A key is secret when it contains one of these anywhere ("bind_password", "client_secret")...
_SECRET_PARTS: Final = ("password", "passwd", "secret")
# ...or when its last word is one of these ("access_token", "Set-Cookie", "Authorization").
# Last word only: "token_name" or "cookie_count" name metadata, not the secret itself.
_SECRET_LAST_WORDS: Final = frozenset({"token", "authorization", "cookie", "credentials", "pwd"})
_WORDS: Final = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")

# A syncsvc API token (syncsvc.auth.tokens: "scs_" + 43 base64url characters), whole or cut
# short, anywhere in a string: a library that logs a raw header line (aiohttp's parser on a
# malformed request) must not write the token of the client that sent it.
_TOKEN: Final = re.compile(r"scs_[A-Za-z0-9_-]{8,}")

_AUTHORITY_END: Final = re.compile(r"[/?#\s]")

_MAX_DEPTH: Final = 8  # log values nest a little (headers, tracebacks); stop before a cycle bites


def is_secret_key(key: str) -> bool:
    """Whether a mapping key names a secret (any case; ``camelCase`` and ``kebab-case`` too)."""
    lowered = key.lower()
    if any(part in lowered for part in _SECRET_PARTS):
        return True
    words = _WORDS.findall(key)
    return bool(words) and words[-1].lower() in _SECRET_LAST_WORDS


def mask_url_password(url: str) -> str:
    """Replace the password of ``scheme://user:password@host/...`` with ``***``, in every URL of
    ``url`` (a message may name two: "copying from a://u:p@x to b://v:q@y").

    Anything else (no scheme, no userinfo, no password) is left unchanged. The password is
    everything between the first ``:`` and the last ``@`` of the authority, so an unencoded ``@``
    inside it is masked too; the authority ends at ``/``, ``?``, ``#`` or white space.
    """
    out: list[str] = []
    done = 0
    while (scheme_end := url.find("://", done)) >= 0:
        start = scheme_end + 3
        match = _AUTHORITY_END.search(url, start)
        end = match.start() if match else len(url)
        userinfo, at, host = url[start:end].rpartition("@")
        out.append(url[done:start])
        if at and ":" in userinfo:
            out.append(f"{userinfo.split(':', 1)[0]}:{MASK}@{host}")
        else:
            out.append(url[start:end])
        done = end
    out.append(url[done:])
    return "".join(out)


def redact_tree(value: Any, _depth: int = 0) -> Any:
    """Copy ``value`` with secret-named keys masked and URL passwords hidden, recursively.

    Mappings, lists and tuples are walked (to a fixed depth); strings lose any URL password
    and any API token (``scs_...``);
    other values are returned as they are. The input is never modified.
    """
    if _depth > _MAX_DEPTH:
        return value
    if isinstance(value, Mapping):
        return {
            key: MASK if isinstance(key, str) and is_secret_key(key) and item not in (None, "")
            else redact_tree(item, _depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        items = [redact_tree(item, _depth + 1) for item in value]
        return tuple(items) if isinstance(value, tuple) else items
    if isinstance(value, str):
        if "scs_" in value:
            value = _TOKEN.sub("scs_" + MASK, value)
        return mask_url_password(value) if "://" in value else value
    return value
