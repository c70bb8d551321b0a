"""HTTP routes of the profile outputs and of the quality report.

- ``GET /profiles/{id}/vcard``, ``qr.svg``, ``qr.png``, ``signature.html``, ``signature.txt``
  (``scim:read``): built from the stored user, with a weak ETag from the row's version (plus a
  fingerprint of the settings and templates) and ``Cache-Control: private, no-cache``;
  ``If-None-Match`` answers 304.
- ``GET /profiles/{id}/photo`` (``scim:read``): the thumbnail the sync stored from the directory's
  photo, with a strong ETag of its bytes; a user without one is a SCIM 404.
- ``GET /p/{slug}``, ``GET /p/{slug}/vcard`` and ``GET /p/{slug}/photo`` (no authentication): the
  public page, card and thumbnail of a user who opted in, restricted to
  ``profiles.public_fields`` (no ``photo`` there: no photo route). Anything else is the one 404.
- ``GET /admin/quality`` (``admin``): the directory-quality report as JSON.

Scopes are the auth middleware's job (``default_scope_for``); handlers only raise.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncEngine

from syncsvc.errors import ConfigError, InvalidValue, NotFound
from syncsvc.profiles._public import PAGE_HEADERS, not_found_body, render_public_page
from syncsvc.profiles._qr import qr_code
from syncsvc.profiles._signature import SignatureKind, SignatureTemplates, signature_context
from syncsvc.profiles._vcard import VCARD_TYPE, make_vcard
from syncsvc.profiles._view import SLUG, ProfileView, public_slug, restricted, view_of
from syncsvc.profiles.quality import quality_report
from syncsvc.scim.serialize import user_resource
from syncsvc.settings import ProfilesSettings, Settings
from syncsvc.store.photos import load_photo
from syncsvc.store.schema import UserRow

__all__ = ["PROFILES", "ProfilesState", "add_routes", "profiles_state"]

_USERS: Final = UserRow.__table__
_PRIVATE_CACHE: Final = "private, no-cache"  # always revalidate; the ETag makes that cheap
_NOSNIFF: Final = {"X-Content-Type-Options": "nosniff"}


@dataclass(frozen=True, slots=True)
class ProfilesState:
    """What the profile routes need: the store, their settings and the compiled templates."""

    engine: AsyncEngine
    settings: ProfilesSettings
    signatures: SignatureTemplates
    fingerprint: str  # of the settings and templates: part of every ETag


PROFILES: Final = web.AppKey("profiles", ProfilesState)


def _template_path(value: str, settings: Settings) -> Path | None:
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_absolute() and settings.source is not None:
        path = settings.source.parent / path  # like every relative path in the config
    return path


def profiles_state(engine: AsyncEngine, settings: Settings) -> ProfilesState:
    """Build the state from the settings; a template problem surfaces when it is rendered.

    Raises:
        ConfigError: ``profiles.public_fields`` names an unknown field.
    """
    profiles = settings.profiles
    try:
        restricted(ProfileView(), profiles.public_fields)
    except ValueError as exc:
        raise ConfigError([f"profiles.public_fields: {exc}"]) from exc
    signatures = SignatureTemplates(html=_template_path(profiles.signature_template, settings),
                                    txt=_template_path(profiles.signature_text_template, settings))
    digest = hashlib.sha256(repr(profiles).encode() + signatures.fingerprint.encode())
    return ProfilesState(engine, profiles, signatures, digest.hexdigest()[:12])


def _base_url(request: web.Request) -> str:
    configured = request.app[PROFILES].settings.public_base_url.rstrip("/")
    return configured or f"{request.scheme}://{request.host}"


def _etag(request: web.Request, version: int, variant: str) -> str:
    state = request.app[PROFILES]
    digest = hashlib.sha256(f"{state.fingerprint}|{_base_url(request)}|{variant}".encode())
    return f'W/"{version}-{digest.hexdigest()[:10]}"'


def _matches(request: web.Request, etag: str) -> bool:
    """If-None-Match (RFC 9110 §13.1.2): weak comparison, a list or ``*``."""
    header = request.headers.get("If-None-Match")
    if not header:
        return False
    if header.strip() == "*":
        return True
    wanted = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == wanted for tag in header.split(","))


def _respond(
    request: web.Request, body: bytes | str, *, content_type: str, etag: str,
    cache: str = _PRIVATE_CACHE, headers: dict[str, str] | None = None,
) -> web.Response:
    out = {"ETag": etag, "Cache-Control": cache, **_NOSNIFF, **(headers or {})}
    if _matches(request, etag):
        return web.Response(status=304, headers=out)
    data = body.encode("utf-8") if isinstance(body, str) else body
    charset = "utf-8" if isinstance(body, str) else None
    return web.Response(body=data, content_type=content_type, charset=charset, headers=out)


def _filename(view: ProfileView) -> str:
    ascii_name = unicodedata.normalize("NFKD", view.user_name or view.name or view.slug)
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", ascii_name.encode("ascii", "ignore").decode())
    return (safe.strip("-.") or "contact") + ".vcf"


def _page_url(request: web.Request, view: ProfileView) -> str:
    return f"{_base_url(request)}/p/{view.slug}" if view.slug else ""


async def _load(request: web.Request) -> tuple[Row[Any], ProfileView]:
    user_id = request.match_info["id"]
    async with request.app[PROFILES].engine.connect() as conn:
        row = (await conn.execute(select(_USERS).where(_USERS.c.id == user_id))).first()
        if row is None:
            raise NotFound(f"no user {user_id}")
        manager = None
        if row.manager_id is not None:
            manager = await conn.scalar(
                select(func.coalesce(_USERS.c.display_name, _USERS.c.user_name))
                .where(_USERS.c.id == row.manager_id))
    # With the service's base URL the stored thumbnail's URL is absolute, so the outputs can
    # use it (a photo URL the user set comes first).
    resource = user_resource(row, base_url=_base_url(request), groups=None, manager_name=manager)
    return row, view_of(resource, manager_name=manager)


async def vcard(request: web.Request) -> web.Response:
    """GET /profiles/{id}/vcard: the full business card (vCard 4.0)."""
    row, view = await _load(request)
    url = _page_url(request, view) or view.directory_url
    return _respond(request, make_vcard(view, url=url), content_type=VCARD_TYPE,
                    etag=_etag(request, row.version, "vcard"),
                    headers={"Content-Disposition": f'attachment; filename="{_filename(view)}"'})


def _qr_payload(request: web.Request, view: ProfileView) -> str:
    """The public page's URL when the user opted in, else the compact vCard."""
    return _page_url(request, view) or make_vcard(view, url=view.directory_url, compact=True)


async def qr_svg(request: web.Request) -> web.Response:
    """GET /profiles/{id}/qr.svg."""
    row, view = await _load(request)
    return _respond(request, qr_code(_qr_payload(request, view)).svg(), content_type="image/svg+xml",
                    etag=_etag(request, row.version, "qr.svg"),
                    headers={"Content-Security-Policy": "default-src 'none'"})


async def qr_png(request: web.Request) -> web.Response:
    """GET /profiles/{id}/qr.png."""
    row, view = await _load(request)
    return _respond(request, qr_code(_qr_payload(request, view)).png(), content_type="image/png",
                    etag=_etag(request, row.version, "qr.png"))


async def _signature(request: web.Request, kind: SignatureKind) -> web.Response:
    state = request.app[PROFILES]
    row, view = await _load(request)
    link = _page_url(request, view) if state.settings.signature_link else ""
    qr = qr_code(_qr_payload(request, view)) if state.settings.signature_qr else None
    body = state.signatures.render(kind, signature_context(view, profile_url=link, qr=qr))
    headers = {}
    if kind == "html":
        headers["Content-Security-Policy"] = (
            "default-src 'none'; img-src https: data:; style-src 'unsafe-inline'")
    return _respond(request, body, content_type="text/html" if kind == "html" else "text/plain",
                    etag=_etag(request, row.version, f"signature.{kind}"), headers=headers)


async def signature_html(request: web.Request) -> web.Response:
    """GET /profiles/{id}/signature.html."""
    return await _signature(request, "html")


async def signature_txt(request: web.Request) -> web.Response:
    """GET /profiles/{id}/signature.txt."""
    return await _signature(request, "txt")


def _not_found() -> web.Response:
    """The one 404 of /p/: the same bytes and headers for a missing and a private profile."""
    return web.Response(status=404, body=not_found_body(), content_type="text/html",
                        charset="utf-8", headers={**PAGE_HEADERS, "Cache-Control": "no-store"})


async def _public(request: web.Request) -> tuple[Row[Any], ProfileView] | None:
    """The opted-in, active user with this slug, restricted to the public fields."""
    slug = request.match_info["slug"].lower()
    if not SLUG.fullmatch(slug):
        return None
    state = request.app[PROFILES]
    async with state.engine.connect() as conn:
        # public_slug is unique and indexed, kept in step with the profile by every SCIM write.
        row = (await conn.execute(
            select(_USERS).where(_USERS.c.public_slug == slug, _USERS.c.active))).first()
    # The opt-in flag is checked here, on the same row, so a private profile costs the same
    # query as a missing one.
    if row is None or public_slug(row.profile) != slug:
        return None
    base = _base_url(request)
    view = view_of(user_resource(row, base_url=base, groups=None, manager_name=None))
    if row.photo_hash and view.photo_url == _thumbnail_url(base, row.id):
        # The stored thumbnail, under the public path: the page needs no token to show it.
        view = dataclasses.replace(view, photo_url=f"{base}/p/{slug}/photo")
    return row, restricted(view, state.settings.public_fields)


def _thumbnail_url(base: str, user_id: str) -> str:
    """Where the SCIM body (serialize) points ``photo.thumbnail``."""
    return f"{base}/profiles/{user_id}/photo"


async def _photo_response(
    request: web.Request, user_id: str, photo_hash: str, cache: str, headers: dict[str, str]
) -> web.Response | None:
    """The stored thumbnail; strong ETag (the bytes' hash): 304 without loading them."""
    etag = f'"{photo_hash[:32]}"'
    out = {"ETag": etag, "Cache-Control": cache, **_NOSNIFF, **headers}
    if _matches(request, etag):
        return web.Response(status=304, headers=out)
    async with request.app[PROFILES].engine.connect() as conn:
        photo = await load_photo(conn, user_id)
    if photo is None:  # removed by a sync since the row was read
        return None
    return web.Response(body=photo.data, content_type=photo.content_type, headers=out)


async def photo(request: web.Request) -> web.Response:
    """GET /profiles/{id}/photo: the thumbnail made from the directory's photo."""
    user_id = request.match_info["id"]
    async with request.app[PROFILES].engine.connect() as conn:
        found = (await conn.execute(
            select(_USERS.c.photo_hash).where(_USERS.c.id == user_id))).first()
    if found is None:
        raise NotFound(f"no user {user_id}")
    response = None
    if found.photo_hash:
        response = await _photo_response(request, user_id, found.photo_hash, _PRIVATE_CACHE, {})
    if response is None:
        raise NotFound(f"user {user_id} has no stored photo")
    return response


async def public_page(request: web.Request) -> web.Response:
    """GET /p/{slug}: the public profile page (no authentication)."""
    found = await _public(request)
    if found is None:
        return _not_found()
    row, view = found
    page_url = _page_url(request, view)
    body = render_public_page(view, qr_svg=qr_code(page_url).svg_inline(scale=4),
                              vcard_url=f"/p/{view.slug}/vcard")
    cache = f"public, max-age={request.app[PROFILES].settings.public_max_age}"
    return _respond(request, body, content_type="text/html", etag=_etag(request, row.version, "page"),
                    cache=cache, headers=PAGE_HEADERS)


async def public_vcard(request: web.Request) -> web.Response:
    """GET /p/{slug}/vcard: the public card, restricted like the page."""
    found = await _public(request)
    if found is None:
        return _not_found()
    row, view = found
    cache = f"public, max-age={request.app[PROFILES].settings.public_max_age}"
    return _respond(request, make_vcard(view, url=_page_url(request, view)),
                    content_type=VCARD_TYPE, etag=_etag(request, row.version, "public-vcard"),
                    cache=cache, headers={
                        **PAGE_HEADERS,
                        "Content-Disposition": f'attachment; filename="{_filename(view)}"'})


async def public_photo(request: web.Request) -> web.Response:
    """GET /p/{slug}/photo: the stored thumbnail of a public profile that may show its photo."""
    found = await _public(request)
    if found is None or "photo" not in request.app[PROFILES].settings.public_fields:
        return _not_found()
    row, _view = found
    if not row.photo_hash:
        return _not_found()
    cache = f"public, max-age={request.app[PROFILES].settings.public_max_age}"
    response = await _photo_response(request, row.id, row.photo_hash, cache, PAGE_HEADERS)
    return response if response is not None else _not_found()


async def quality(request: web.Request) -> web.Response:
    """GET /admin/quality[?limit=N]: the directory-quality report (admin scope)."""
    try:
        limit = max(0, min(int(request.query.get("limit", "20")), 1000))
    except ValueError as exc:
        raise InvalidValue("limit must be an integer") from exc
    async with request.app[PROFILES].engine.connect() as conn:
        report = await quality_report(conn, limit=limit)
    return web.json_response(report, dumps=lambda o: json.dumps(o, ensure_ascii=False))


def add_routes(app: web.Application, engine: AsyncEngine, settings: Settings) -> None:
    """Mount the profile, public-page and quality routes on ``app``."""
    app[PROFILES] = profiles_state(engine, settings)
    r = app.router
    r.add_get("/profiles/{id}/vcard", vcard)
    r.add_get("/profiles/{id}/qr.svg", qr_svg)
    r.add_get("/profiles/{id}/qr.png", qr_png)
    r.add_get("/profiles/{id}/signature.html", signature_html)
    r.add_get("/profiles/{id}/signature.txt", signature_txt)
    r.add_get("/profiles/{id}/photo", photo)
    r.add_get("/p/{slug}", public_page)
    r.add_get("/p/{slug}/vcard", public_vcard)
    r.add_get("/p/{slug}/photo", public_photo)
    r.add_get("/admin/quality", quality)
