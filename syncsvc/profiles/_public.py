"""The public profile page ``/p/{slug}``: only the allowed fields, strict security headers.

The page is the one unauthenticated view of a user, so: it is rendered from a
:func:`~syncsvc.profiles._view.restricted` view, with autoescaping, under a Content-Security-
Policy that allows no script at all; a user who did not opt in gets exactly the bytes and
headers of a slug that does not exist (:func:`not_found_body`).
"""

from __future__ import annotations

import base64
import functools
import hashlib
from importlib import resources
from typing import Final

import jinja2
from markupsafe import Markup

from syncsvc.profiles._view import ProfileView

__all__ = ["PAGE_HEADERS", "not_found_body", "render_public_page"]

_STYLE: Final = (
    "body{margin:0;background:#f4f5f7;font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,"
    "sans-serif;color:#1d1d1f}"
    ".card{max-width:36rem;margin:2rem auto;padding:2rem;background:#fff;border-radius:12px;"
    "box-shadow:0 1px 4px rgba(0,0,0,.08)}"
    "h1{margin:.5rem 0 0;font-size:1.6rem}h2{font-size:1rem;margin:1.5rem 0 .5rem;color:#555}"
    ".muted{color:#666}.title{margin:.25rem 0;font-weight:600}.headline{font-style:italic}"
    ".bio{white-space:pre-line}.photo{border-radius:50%;object-fit:cover}"
    ".tags{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:.4rem}"
    ".tags li{background:#eef1f6;border-radius:999px;padding:.1rem .7rem;font-size:.9rem}"
    ".plain{list-style:none;padding:0}.links li{display:inline;margin-right:1rem}"
    ".qr svg{width:160px;height:auto;margin-top:1rem}"
    ".button{display:inline-block;padding:.5rem 1rem;border-radius:6px;background:#1a5fb4;"
    "color:#fff;text-decoration:none}"
)
_STYLE_HASH: Final = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()

PAGE_HEADERS: Final[dict[str, str]] = {
    # No script, no frames, no forms; the photo may come from any https host or be the stored
    # thumbnail under /p/ (same origin), the QR is inline.
    "Content-Security-Policy": (
        f"default-src 'none'; img-src 'self' https: data:; style-src 'sha256-{_STYLE_HASH}'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
"""Security headers of every response under ``/p/`` (found or not)."""

_LABELS: Final = {"linkedin": "LinkedIn", "x": "X", "github": "GitHub", "website": "Website",
                  "other": "Link"}

_TEMPLATES: Final = resources.files("syncsvc.profiles") / "templates"


@functools.cache
def _page() -> jinja2.Template:
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    return env.from_string((_TEMPLATES / "public.html.j2").read_text(encoding="utf-8"))


@functools.cache
def not_found_body() -> bytes:
    """The body of every 404 under ``/p/``: the same for a missing slug and a private profile."""
    return (_TEMPLATES / "not_found.html").read_bytes()


def render_public_page(view: ProfileView, *, qr_svg: str, vcard_url: str) -> str:
    """The page of a :func:`restricted` ``view``, with its QR code (an inline ``<svg>``)."""
    lists = [("Skills", view.skills), ("Languages", view.languages), ("Interests", view.interests)]
    return _page().render(user=view, lists=lists, labels=_LABELS, style=Markup(_STYLE),
                        qr_svg=Markup(qr_svg), vcard_url=vcard_url)
