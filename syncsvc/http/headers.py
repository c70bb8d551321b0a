"""Security headers on every response, in one place (OWASP secure-headers baseline).

- Every response: ``X-Content-Type-Options: nosniff``, so a browser never runs a JSON error
  or a vCard as HTML or script.
- Every document a browser renders (HTML, and SVG, which can carry script):
  a Content-Security-Policy (the route's own when it set one, else :data:`DEFAULT_CSP`, which
  allows nothing to load and nothing to run), always with ``frame-ancestors 'none'``;
  ``X-Frame-Options: DENY`` for browsers that predate frame-ancestors;
  ``Referrer-Policy: no-referrer``, so no user id or slug leaks to the sites a page links to.

Pages that need more than :data:`DEFAULT_CSP` (the admin page's own script and style sheet,
the public page's hashed style, a signature's inline styles) set their policy themselves;
this only fills in what is missing, and never loosens what a route chose.

It hooks ``on_response_prepare`` rather than being a middleware: the signal sees every
response, those a middleware never gets to touch too (aiohttp's own error pages for exceptions
that escape the middlewares, redirects raised as exceptions, streamed responses).
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

__all__ = ["DEFAULT_CSP", "DOCUMENT_TYPES", "add_security_headers", "install_security_headers"]

DEFAULT_CSP: Final = (
    "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
"""The policy of a document whose route set none: no script, style, image, frame or form."""

DOCUMENT_TYPES: Final = frozenset({"text/html", "application/xhtml+xml", "image/svg+xml"})
"""Content types a browser renders as a document (and that can therefore run script)."""


def _with_frame_ancestors(policy: str) -> str:
    if "frame-ancestors" in policy.lower():
        return policy
    return f"{policy.rstrip().rstrip(';')}; frame-ancestors 'none'"


def add_security_headers(response: web.StreamResponse) -> None:
    """Fill in the missing security headers of ``response`` (see the module docstring)."""
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    if response.content_type.lower() not in DOCUMENT_TYPES:
        return
    policy = headers.get("Content-Security-Policy")
    headers["Content-Security-Policy"] = _with_frame_ancestors(policy) if policy else DEFAULT_CSP
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "no-referrer")


async def _on_prepare(_request: web.Request, response: web.StreamResponse) -> None:
    add_security_headers(response)


def install_security_headers(app: web.Application) -> None:
    """Apply :func:`add_security_headers` to every response ``app`` sends."""
    app.on_response_prepare.append(_on_prepare)
