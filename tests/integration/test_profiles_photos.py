"""Directory photos as stored thumbnails, over a real slapd, store and HTTP server.

The seed gives ada.lovelace a 4x4 JPEG; the tests give other users real photos with ldapmodify,
as an admin would, and read everything back through the HTTP routes and the store.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from PIL import Image
from sqlalchemy import event, select

from syncsvc.auth import create_token
from syncsvc.domain import RunMode, RunStatus
from syncsvc.http import create_app
from syncsvc.settings import ProfilesSettings, Settings
from syncsvc.store import create_engine, upgrade
from syncsvc.store.schema import UserPhotoRow, UserRow
from syncsvc.sync import SyncOptions, run_sync
from tests.integration.syncenv import (
    pipeline,
    settings_for,
    sync_once,
    users_by_name,
    with_sync,
)
from tests.support.slapd import Slapd, ldif_line

BASE = "https://people.example.test"
ENG = "ou=engineering,ou=people,dc=example,dc=com"
GRACE = f"uid=grace.hopper,{ENG}"
LINUS = f"uid=linus.torvalds,{ENG}"
PROFILE = "urn:syncsvc:params:scim:schemas:extension:profile:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


def jpeg(width: int, height: int, colour: tuple[int, int, int]) -> bytes:
    """A real JPEG photo: a gradient, so the encoder has something to compress."""
    image = Image.new("RGB", (width, height), colour)
    for x in range(0, width, 8):
        image.paste((x * 255 // width, colour[1], 255 - colour[2]), (x, 0, x + 4, height))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90)
    return out.getvalue()


def set_photo(slapd: Slapd, dn: str, data: bytes | None) -> None:
    """Replace (or, with None, delete) the entry's jpegPhoto, as an admin with ldapmodify."""
    change = (f"replace: jpegPhoto\n{ldif_line('jpegPhoto', data)}\n" if data
              else "delete: jpegPhoto\n")
    slapd.modify(f"dn: {dn}\nchangetype: modify\n{change}")


@dataclasses.dataclass
class Env:
    http: TestClient[Any, Any]
    token: str
    settings: Settings
    engine: Any
    serve: Any  # (ProfilesSettings) -> another client on the same store

    def _auth(self, token: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"} if token else {}

    async def get(self, path: str, *, token: str | None = "default",
                  headers: dict[str, str] | None = None) -> ClientResponse:
        token = self.token if token == "default" else token
        return await self.http.get(path, headers={**self._auth(token), **(headers or {})})

    async def user(self, user_name: str) -> dict[str, Any]:
        response = await self.get(f'/scim/v2/Users?filter=userName eq "{user_name}"')
        found: dict[str, Any] = (await response.json(content_type=None))["Resources"][0]
        return found

    async def patch_profile(self, user_id: str, value: dict[str, Any], expect: int = 200) -> Any:
        body = {"schemas": [PATCH_OP],
                "Operations": [{"op": "add", "path": PROFILE, "value": value}]}
        response = await self.http.patch(
            f"/scim/v2/Users/{user_id}", json=body,
            headers={**self._auth(self.token), "Content-Type": "application/scim+json"})
        assert expect == response.status, await response.text()
        return await response.json(content_type=None)

    async def stored(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(userName -> user row, user id -> photo row) straight from the store."""
        async with self.engine.connect() as conn:
            users = {r.user_name: r for r in await conn.execute(select(UserRow.__table__))}
            photos = {r.user_id: r for r in await conn.execute(select(UserPhotoRow.__table__))}
        return users, photos


@pytest.fixture
async def env(slapd: Slapd, store_url: str, aiohttp_client: Any) -> AsyncIterator[Env]:
    """The seed synced, served with public_base_url set and a scim:read+write token."""
    settings = dataclasses.replace(settings_for(slapd, store_url),
                                   profiles=ProfilesSettings(public_base_url=BASE))
    first = await sync_once(settings)
    assert RunStatus.SUCCESS == first.status
    engine = create_engine(settings.store)
    await upgrade(engine)
    async with engine.begin() as conn:
        token = await create_token(conn, name="tests", scopes="scim:read,scim:write",
                                   now=datetime.now(UTC))
    clients: list[TestClient[Any, Any]] = []

    async def serve(profiles: ProfilesSettings) -> TestClient[Any, Any]:
        client = await aiohttp_client(create_app(engine, dataclasses.replace(settings,
                                                                             profiles=profiles)))
        clients.append(client)
        return client

    try:
        yield Env(await serve(settings.profiles), token, settings, engine, serve)
    finally:
        for client in clients:
            await client.close()
        await engine.dispose()


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


class TestStoredThumbnail:
    async def test_photo_is_synced_resized_and_served(self, env: Env, slapd: Slapd) -> None:
        """A 1200x800 photo becomes a JPEG within 256x256 (aspect kept), served with a strong
        ETag, private caching and 304; the SCIM profile and the vCard point at it."""
        set_photo(slapd, GRACE, jpeg(1200, 800, (200, 40, 40)))
        report = await sync_once(env.settings)
        # Only grace changed, and only her photo: one update, nothing created.
        assert (RunStatus.SUCCESS, 0, 1) == (report.status, report.created, report.updated)

        grace = await env.user("grace.hopper")
        response = await env.get(f"/profiles/{grace['id']}/photo")
        assert (200, "image/jpeg") == (response.status, response.content_type)
        assert "private, no-cache" == response.headers["Cache-Control"]
        etag = response.headers["ETag"]
        assert etag.startswith('"') and not etag.startswith("W/")
        image = decode(await response.read())
        assert ("JPEG", (256, 171)) == (image.format, image.size)
        assert not image.info.get("exif")
        again = await env.get(f"/profiles/{grace['id']}/photo", headers={"If-None-Match": etag})
        assert (304, b"") == (again.status, await again.read())

        thumbnail = grace[PROFILE]["photo"]["thumbnail"]
        assert thumbnail.endswith(f"/profiles/{grace['id']}/photo")
        assert "url" not in grace[PROFILE]["photo"]
        vcard = await (await env.get(f"/profiles/{grace['id']}/vcard")).text()
        assert f"PHOTO:{BASE}/profiles/{grace['id']}/photo" in vcard.splitlines()

        # The seed's 4x4 photo of ada: kept at its size (never enlarged).
        ada = await env.user("ada.lovelace")
        tiny = decode(await (await env.get(f"/profiles/{ada['id']}/photo")).read())
        assert (4, 4) == tiny.size

    async def test_auth_and_missing_photo(self, env: Env) -> None:
        """No token: 401; a user without a photo and an unknown user: SCIM 404 documents."""
        linus = await env.user("linus.torvalds")
        ada = await env.user("ada.lovelace")
        assert 401 == (await env.get(f"/profiles/{ada['id']}/photo", token=None)).status
        for user_id in (linus["id"], "00000000-0000-0000-0000-000000000000"):
            response = await env.get(f"/profiles/{user_id}/photo")
            body = await response.json(content_type=None)
            assert (404, [ERROR], "404") == (response.status, body["schemas"], body["status"])
        assert "photo" not in linus.get(PROFILE, {})

    async def test_unchanged_photo_writes_nothing_then_removal_drops_it(
        self, env: Env, slapd: Slapd
    ) -> None:
        """A second full run with the same photos writes nothing (same rows, same versions);
        a photo deleted in LDAP removes the thumbnail on the next (incremental) run."""
        set_photo(slapd, GRACE, jpeg(640, 480, (10, 120, 200)))
        await sync_once(env.settings)
        users_before, photos_before = await env.stored()

        again = await sync_once(env.settings)
        assert (0, 0, 36) == (again.created, again.updated, again.unchanged)
        users_after, photos_after = await env.stored()
        assert {n: u.version for n, u in users_before.items()} == {
            n: u.version for n, u in users_after.items()}
        assert {i: (p.updated, p.source_hash) for i, p in photos_before.items()} == {
            i: (p.updated, p.source_hash) for i, p in photos_after.items()}
        grace_id = users_after["grace.hopper"].id
        assert 2 == len(photos_after) and grace_id in photos_after

        set_photo(slapd, GRACE, None)
        planned = await sync_once(env.settings, RunMode.INCREMENTAL, dry_run=True)
        assert 1 == planned.updated
        assert grace_id in (await env.stored())[1]  # a dry run writes nothing
        removed = await sync_once(env.settings, RunMode.INCREMENTAL)
        assert (RunMode.INCREMENTAL, 1) == (removed.mode, removed.updated)
        users, photos = await env.stored()
        assert grace_id not in photos and users["grace.hopper"].photo_hash is None
        assert users["grace.hopper"].version == users_after["grace.hopper"].version + 1
        assert 404 == (await env.get(f"/profiles/{grace_id}/photo")).status
        assert "photo" not in (await env.user("grace.hopper")).get(PROFILE, {})

    async def test_user_set_photo_url_wins_and_survives_syncs(
        self, env: Env, slapd: Slapd
    ) -> None:
        """A photo URL set through SCIM stays through photo changes and full syncs; the
        outputs use it, while the thumbnail is still kept up to date."""
        grace = await env.user("grace.hopper")
        await env.patch_profile(grace["id"], {"photo": {"url": "https://img.example.test/g.jpg"}})
        set_photo(slapd, GRACE, jpeg(300, 600, (0, 200, 0)))
        await sync_once(env.settings)
        first = await env.get(f"/profiles/{grace['id']}/photo")
        set_photo(slapd, GRACE, jpeg(600, 300, (0, 0, 200)))
        await sync_once(env.settings)
        await sync_once(env.settings, RunMode.INCREMENTAL)

        photo = (await env.user("grace.hopper"))[PROFILE]["photo"]
        assert "https://img.example.test/g.jpg" == photo["url"]
        assert photo["thumbnail"].endswith(f"/profiles/{grace['id']}/photo")
        vcard = await (await env.get(f"/profiles/{grace['id']}/vcard")).text()
        assert "PHOTO:https://img.example.test/g.jpg" in vcard.splitlines()
        second = await env.get(f"/profiles/{grace['id']}/photo")
        assert first.headers["ETag"] != second.headers["ETag"]
        assert (256, 128) == decode(await second.read()).size

    async def test_unusable_photo_is_a_problem_not_a_crash(self, env: Env, slapd: Slapd) -> None:
        """Bytes that are no image: the run succeeds, names the entry, stores no thumbnail;
        the user's other attributes are still synced."""
        set_photo(slapd, LINUS, b"\xff\xd8\xff\xe0 this is not really a jpeg" * 4)
        slapd.modify(f"dn: {LINUS}\nchangetype: modify\nreplace: title\ntitle: Kernel Hacker\n")
        report = await sync_once(env.settings)
        assert RunStatus.SUCCESS == report.status
        problems = [p.reason for p in report.problems if p.dn == LINUS]
        assert 1 == len(problems) and problems[0].startswith("photo: ")
        users, photos = await env.stored()
        linus = users["linus.torvalds"]
        assert ("Kernel Hacker", None) == (linus.resource["title"], linus.photo_hash)
        assert linus.id not in photos


    async def test_user_deleted_from_the_store_takes_its_thumbnail(
        self, env: Env, slapd: Slapd
    ) -> None:
        """on_missing = "delete": the user row goes, and its thumbnail with it (ON DELETE
        CASCADE, on SQLite too)."""
        users, photos = await env.stored()
        ada_id = users["ada.lovelace"].id
        assert ada_id in photos
        slapd.delete(f"uid=ada.lovelace,{ENG}")
        report = await sync_once(with_sync(env.settings, on_missing="delete"))
        assert 1 == report.deleted
        users, photos = await env.stored()
        assert "ada.lovelace" not in users and ada_id not in photos


class TestPhotoWrites:
    async def test_a_first_load_deletes_no_photo_a_changed_photo_is_replaced(
        self, slapd: Slapd, store_url: str
    ) -> None:
        """Users a run creates have no thumbnail to replace: the first load sends no DELETE to
        user_photo. A changed photo of a stored user is replaced (one row, the new bytes)."""
        deletes: list[str] = []

        def note(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
            if statement.startswith("DELETE FROM user_photo"):
                deletes.append(statement)

        settings = settings_for(slapd, store_url)
        async with pipeline(settings) as service:
            event.listen(service.engine.sync_engine, "before_cursor_execute", note)
            first = await run_sync(service.sync, SyncOptions())
            deleted_first = len(deletes)
            ada = (await users_by_name(service))["ada.lovelace"]
            set_photo(slapd, f"uid=ada.lovelace,{ENG}", jpeg(300, 300, (0, 90, 30)))
            second = await run_sync(service.sync, SyncOptions())
            async with service.engine.connect() as conn:
                photos = (await conn.execute(select(UserPhotoRow.__table__))).all()
            ada_after = (await users_by_name(service))["ada.lovelace"]

        assert (RunStatus.SUCCESS, RunStatus.SUCCESS, 1) == (first.status, second.status,
                                                             second.updated)
        assert 0 == deleted_first and deletes
        assert [ada.id] == [p.user_id for p in photos]
        assert (256, 256) == decode(photos[0].data).size
        assert ada_after.photo_hash not in (None, ada.photo_hash)


class TestPublicPhoto:
    async def test_public_page_shows_the_thumbnail_only_when_allowed(
        self, env: Env, slapd: Slapd
    ) -> None:
        """Opted in, photo allowed: the page's <img> is the thumbnail under /p/, served without
        a token. Photo not allowed: no <img>, and /p/{slug}/photo is the public 404."""
        set_photo(slapd, GRACE, jpeg(500, 500, (90, 90, 90)))
        await sync_once(env.settings)
        grace = await env.user("grace.hopper")
        await env.patch_profile(grace["id"], {"publicProfile": {"enabled": True, "slug": "grace"}})

        page = await (await env.get("/p/grace", token=None)).text()
        assert f'src="{BASE}/p/grace/photo"' in page
        response = await env.get("/p/grace/photo", token=None)
        assert (200, "image/jpeg") == (response.status, response.content_type)
        assert response.headers["Cache-Control"].startswith("public, max-age=")
        assert (256, 256) == decode(await response.read()).size

        hidden = await env.serve(ProfilesSettings(public_base_url=BASE,
                                                  public_fields=("displayName", "title")))
        page = await (await hidden.get("/p/grace")).text()
        assert "<img" not in page and "Grace Hopper" in page
        no_photo = await hidden.get("/p/grace/photo")
        missing = await hidden.get("/p/nobody-here")
        assert (404, await missing.read()) == (no_photo.status, await no_photo.read())


class TestPublicSlug:
    async def test_slug_is_unique_and_follows_every_write(self, env: Env) -> None:
        """A taken slug: 409 uniqueness for PATCH, PUT and POST; a freed slug can be taken, and
        the page follows the column."""
        grace = await env.user("grace.hopper")
        linus = await env.user("linus.torvalds")
        await env.patch_profile(grace["id"], {"publicProfile": {"enabled": True, "slug": "hopper"}})
        refused = await env.patch_profile(
            linus["id"], {"publicProfile": {"enabled": True, "slug": "hopper"}}, expect=409)
        assert ("uniqueness", "409") == (refused["scimType"], refused["status"])
        # A disabled page still holds its slug: turning it on later never collides.
        await env.patch_profile(linus["id"], {"publicProfile": {"enabled": False, "slug": "tux"}})

        headers = {"Authorization": f"Bearer {env.token}", "Content-Type": "application/scim+json"}

        def local_user(slug: str) -> dict[str, Any]:
            return {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", PROFILE],
                    "userName": "local.user",
                    PROFILE: {"publicProfile": {"enabled": True, "slug": slug}}}

        post = await env.http.post("/scim/v2/Users", headers=headers, json=local_user("tux"))
        assert 409 == post.status, await post.text()
        post = await env.http.post("/scim/v2/Users", headers=headers, json=local_user("local"))
        assert 201 == post.status, await post.text()
        local = await post.json(content_type=None)
        put = await env.http.put(f"/scim/v2/Users/{local['id']}", headers=headers,
                                 json=local_user("hopper"))
        assert 409 == put.status, await put.text()

        # grace moves to another slug: "hopper" is free again and the page follows.
        await env.patch_profile(grace["id"],
                                {"publicProfile": {"enabled": True, "slug": "grace-h"}})
        assert 404 == (await env.get("/p/hopper", token=None)).status
        assert "Grace Hopper" in await (await env.get("/p/grace-h", token=None)).text()
        await env.patch_profile(linus["id"], {"publicProfile": {"enabled": True, "slug": "hopper"}})
        assert "Linus Torvalds" in await (await env.get("/p/hopper", token=None)).text()

        users, _ = await env.stored()
        assert {"grace.hopper": "grace-h", "linus.torvalds": "hopper", "local.user": "local"} == {
            n: u.public_slug for n, u in users.items() if u.public_slug}

        # A sync never touches the slug.
        await sync_once(env.settings)
        users, _ = await env.stored()
        assert ("grace-h", "hopper") == (users["grace.hopper"].public_slug,
                                         users["linus.torvalds"].public_slug)
