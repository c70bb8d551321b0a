"""Profile outputs over real HTTP on the synced seed directory: vCard, QR, signatures, /p/."""

from __future__ import annotations

import dataclasses
import io
import struct
import xml.etree.ElementTree as ET
import zlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import segno
import vobject
import zxingcpp
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from syncsvc.auth import create_token
from syncsvc.http import create_app
from syncsvc.settings import ProfilesSettings, Settings
from syncsvc.store import create_engine, upgrade
from tests.integration.syncenv import settings_for, sync_once

BASE = "https://people.example.test"
ENG = "ou=engineering,ou=people,dc=example,dc=com"
PROFILE = "urn:syncsvc:params:scim:schemas:extension:profile:2.0:User"
EVIL = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


@dataclasses.dataclass
class Api:
    http: TestClient[Any, Any]
    token: str

    async def get(self, path: str, *, token: str | None = "default",
                  headers: dict[str, str] | None = None) -> ClientResponse:
        auth = {"Authorization": f"Bearer {self.token if token == 'default' else token}"} if token else {}
        return await self.http.get(path, headers={**auth, **(headers or {})})

    async def user_id(self, user_name: str) -> str:
        response = await self.get(f'/scim/v2/Users?filter=userName eq "{user_name}"')
        body = await response.json(content_type=None)
        return str(body["Resources"][0]["id"])

    async def patch_profile(self, user_id: str, value: dict[str, Any]) -> None:
        body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "add", "path": PROFILE, "value": value}]}
        response = await self.http.patch(
            f"/scim/v2/Users/{user_id}", json=body,
            headers={"Authorization": f"Bearer {self.token}",
                     "Content-Type": "application/scim+json"})
        assert 200 == response.status, await response.text()


@dataclasses.dataclass
class Env:
    api: Api
    settings: Settings
    serve: Any  # (ProfilesSettings) -> async context of an Api on the same store


@pytest.fixture
async def env(slapd: Any, store_url: str, aiohttp_client: Any) -> AsyncIterator[Env]:
    """The seed synced into the store and served with public_base_url set."""
    settings = dataclasses.replace(settings_for(slapd, store_url),
                                   profiles=ProfilesSettings(public_base_url=BASE))
    await sync_once(settings)
    engine = create_engine(settings.store)
    await upgrade(engine)
    async with engine.begin() as conn:
        token = await create_token(conn, name="tests", scopes="scim:read,scim:write",
                                   now=datetime.now(UTC))
    clients: list[TestClient[Any, Any]] = []

    async def serve(profiles: ProfilesSettings) -> Api:
        client = await aiohttp_client(create_app(engine, dataclasses.replace(settings,
                                                                             profiles=profiles)))
        clients.append(client)
        return Api(client, token)

    try:
        yield Env(await serve(settings.profiles), settings, serve)
    finally:
        for client in clients:
            await client.close()
        await engine.dispose()


def _png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """Decode a non-interlaced 1-bit greyscale PNG (what segno writes) into rows of 0/255."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert (1, 0, 0) == (depth, color, interlace)
        elif kind == b"IDAT":
            idat += body
    raw, stride = zlib.decompress(idat), (width + 7) // 8
    rows, prev = [], bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a, b, c = (line[i - 1] if i else 0), prev[i], (prev[i - 1] if i else 0)
            if kind == 1:
                line[i] = (line[i] + a) & 255
            elif kind == 2:
                line[i] = (line[i] + b) & 255
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(255 if line[x >> 3] >> (7 - (x & 7)) & 1 else 0 for x in range(width)))
        prev = line
    return width, height, rows


def decode_qr(png: bytes) -> str:
    """The text of the QR code in a PNG, read by zxing-cpp (an independent decoder)."""
    width, height, rows = _png_pixels(png)
    image = memoryview(b"".join(rows)).cast("B", shape=[height, width])
    found = zxingcpp.read_barcodes(image)
    assert 1 == len(found), "no single QR code found"
    return str(found[0].text)


def svg_path(svg: bytes | str) -> str:
    root = ET.fromstring(svg)
    paths = [el.get("d") for el in root.iter() if el.tag.endswith("path")]
    assert 1 == len(paths)
    return str(paths[0])


def fresh_svg(payload: str) -> bytes:
    out = io.BytesIO()
    segno.make_qr(payload, error="m", boost_error=True, encoding="utf-8").save(
        out, kind="svg", scale=4, border=4)
    return out.getvalue()


class TestVCard:
    async def test_vcard_parses_back_with_the_right_fields(self, env: Env) -> None:
        """vobject reads the card: 4.0, N, FN, TITLE, ORG, typed EMAIL and TEL, URL, social."""
        ada = await env.api.user_id("ada.lovelace")
        await env.api.patch_profile(ada, {"socialLinks": [
            {"type": "github", "url": "https://github.com/ada"}],
            "photo": {"url": "https://img.example.test/ada.jpg"}})
        response = await env.api.get(f"/profiles/{ada}/vcard")
        assert 200 == response.status
        assert "text/vcard" == response.content_type
        assert response.headers["ETag"].startswith('W/"')
        assert "no-cache" in response.headers["Cache-Control"]
        card = vobject.readOne(await response.text())
        assert "4.0" == card.version.value
        assert ("Lovelace", "Ada") == (card.n.value.family, card.n.value.given)
        assert "Ada Lovelace" == card.fn.value
        assert "VP Engineering" == card.title.value
        assert "Example Corp" == card.org.value[0]
        emails = [(e.value, e.params.get("TYPE")) for e in card.contents["email"]]
        assert [("ada.lovelace@example.com", ["work"])] == emails
        tels = {t.value: t.params["TYPE"] for t in card.contents["tel"]}
        assert {"+1 415 555 1101": ["work", "voice"], "+1 415 555 2101": ["cell"]} == tels
        assert "https://img.example.test/ada.jpg" == card.photo.value
        urls = {u.value for u in card.contents["url"]}
        assert {"https://people.example.com/ada.lovelace", "https://github.com/ada"} == urls
        assert "https://github.com/ada" == card.contents["x-socialprofile"][0].value
        assert f"urn:uuid:{ada}" == card.uid.value

    async def test_if_none_match_gives_304(self, env: Env) -> None:
        """The same ETag back: 304 with the ETag and no body."""
        ada = await env.api.user_id("ada.lovelace")
        first = await env.api.get(f"/profiles/{ada}/vcard")
        etag = first.headers["ETag"]
        again = await env.api.get(f"/profiles/{ada}/vcard", headers={"If-None-Match": etag})
        assert 304 == again.status
        assert etag == again.headers["ETag"]
        assert b"" == await again.read()

    async def test_unknown_user_is_404_and_a_token_is_needed(self, env: Env) -> None:
        """An unknown id: the SCIM 404 document; no token: 401."""
        missing = await env.api.get("/profiles/00000000-0000-0000-0000-000000000000/vcard")
        assert 404 == missing.status
        ada = await env.api.user_id("ada.lovelace")
        assert 401 == (await env.api.get(f"/profiles/{ada}/vcard", token=None)).status


class TestQr:
    async def test_private_profile_qr_holds_the_vcard(self, env: Env) -> None:
        """Not opted in: the PNG decodes to a vCard with the user's name and e-mail."""
        grace = await env.api.user_id("grace.hopper")
        response = await env.api.get(f"/profiles/{grace}/qr.png")
        assert (200, "image/png") == (response.status, response.content_type)
        card = vobject.readOne(decode_qr(await response.read()))
        assert "Grace Hopper" == card.fn.value
        assert "grace.hopper@example.com" == card.email.value

    async def test_public_profile_qr_holds_the_page_url(self, env: Env) -> None:
        """Opted in: PNG and SVG encode the public URL; the SVG is segno's own for that URL."""
        grace = await env.api.user_id("grace.hopper")
        await env.api.patch_profile(grace, {"publicProfile": {"enabled": True, "slug": "grace"}})
        png = await env.api.get(f"/profiles/{grace}/qr.png")
        assert f"{BASE}/p/grace" == decode_qr(await png.read())
        svg = await env.api.get(f"/profiles/{grace}/qr.svg")
        assert "image/svg+xml" == svg.content_type
        assert svg.headers["ETag"] != png.headers["ETag"]
        assert svg_path(fresh_svg(f"{BASE}/p/grace")) == svg_path(await svg.read())


class TestSignature:
    async def test_html_signature_escapes_injection(self, env: Env) -> None:
        """A <script> in headline and bio comes out as text, never as markup."""
        ada = await env.api.user_id("ada.lovelace")
        await env.api.patch_profile(ada, {"headline": EVIL, "bio": EVIL})
        response = await env.api.get(f"/profiles/{ada}/signature.html")
        assert (200, "text/html") == (response.status, response.content_type)
        html = await response.text()
        assert ESCAPED in html
        assert "<script" not in html
        assert "Ada Lovelace" in html and "VP Engineering" in html
        assert "data:image/png;base64," in html  # the QR code, on by default
        assert "script-src" not in response.headers["Content-Security-Policy"]

    async def test_text_signature(self, env: Env) -> None:
        """The plain-text signature: name, title, e-mail, no QR, text/plain."""
        ada = await env.api.user_id("ada.lovelace")
        response = await env.api.get(f"/profiles/{ada}/signature.txt")
        assert "text/plain" == response.content_type
        text = await response.text()
        assert "Ada Lovelace\nVP Engineering\n" in text
        assert "ada.lovelace@example.com" in text

    async def test_admin_template_values_are_escaped_and_options_apply(
        self, env: Env, tmp_path: Path
    ) -> None:
        """An admin template printing the bio gets it escaped; QR and link follow the settings."""
        template = tmp_path / "sig.html"
        template.write_text("<p>{{ user.bio }}</p>{% if qr %}QR{% endif %}[{{ profileUrl }}]",
                            encoding="utf-8")
        ada = await env.api.user_id("ada.lovelace")
        await env.api.patch_profile(ada, {"bio": EVIL,
                                          "publicProfile": {"enabled": True, "slug": "ada-l"}})
        api = await env.serve(ProfilesSettings(public_base_url=BASE,
                                               signature_template=str(template),
                                               signature_qr=False))
        html = await (await api.get(f"/profiles/{ada}/signature.html")).text()
        assert f"<p>{ESCAPED}</p>[{BASE}/p/ada-l]" == html

    @pytest.mark.parametrize(("source", "named"), [
        ("<p>{{ user.name | nosuchfilter }}</p>", "line 1"),
        ("<p>\n{{ user.nothing.deeper }}</p>", "line 2"),
        ("{{ ''.__class__.__mro__ }}", "line 1"),
    ], ids=["syntax", "undefined", "sandbox"])
    async def test_broken_template_is_a_clear_422(
        self, env: Env, tmp_path: Path, source: str, named: str
    ) -> None:
        """A template that does not compile or render: 422, a SCIM error naming file and line."""
        template = tmp_path / "broken.html"
        template.write_text(source, encoding="utf-8")
        api = await env.serve(ProfilesSettings(signature_template=str(template)))
        ada = await env.api.user_id("ada.lovelace")
        response = await api.get(f"/profiles/{ada}/signature.html")
        assert 422 == response.status
        body = await response.json(content_type=None)
        assert "422" == body["status"]
        assert str(template) in body["detail"] and named in body["detail"]

    async def test_missing_template_file_is_named(self, env: Env, tmp_path: Path) -> None:
        api = await env.serve(ProfilesSettings(signature_text_template=str(tmp_path / "nope.txt")))
        ada = await env.api.user_id("ada.lovelace")
        response = await api.get(f"/profiles/{ada}/signature.txt")
        assert 422 == response.status
        assert "nope.txt" in (await response.json(content_type=None))["detail"]


class TestSyncUpdates:
    async def test_title_change_by_sync_updates_card_and_signature(
        self, env: Env, slapd: Any
    ) -> None:
        """A sync that changes the title moves the ETags, and the new title is served."""
        ada = await env.api.user_id("ada.lovelace")
        before = {kind: (await env.api.get(f"/profiles/{ada}/{kind}")).headers["ETag"]
                  for kind in ("vcard", "signature.html", "signature.txt")}
        slapd.modify(f"dn: uid=ada.lovelace,{ENG}\nchangetype: modify\nreplace: title\n"
                     "title: Chief Analytical Engine Officer\n")
        await sync_once(env.settings)
        for kind, etag in before.items():
            response = await env.api.get(f"/profiles/{ada}/{kind}", headers={"If-None-Match": etag})
            assert 200 == response.status, kind
            assert etag != response.headers["ETag"]
            assert "Chief Analytical Engine Officer" in await response.text()
        card = vobject.readOne(await (await env.api.get(f"/profiles/{ada}/vcard")).text())
        assert "Chief Analytical Engine Officer" == card.title.value


class TestPublicPage:
    async def test_public_page_shows_only_public_fields_escaped(self, env: Env) -> None:
        """No token needed; the bio is escaped; no e-mail or phone; security headers set."""
        ada = await env.api.user_id("ada.lovelace")
        await env.api.patch_profile(ada, {"bio": EVIL, "skills": ["Analysis", "<b>bold</b>"],
                                          "publicProfile": {"enabled": True, "slug": "ada"}})
        response = await env.api.get("/p/ada", token=None)
        assert (200, "text/html") == (response.status, response.content_type)
        html = await response.text()
        assert ESCAPED in html and "&lt;b&gt;bold&lt;/b&gt;" in html
        assert "<script" not in html
        assert "Ada Lovelace" in html and "VP Engineering" in html
        assert "ada.lovelace@example.com" not in html and "415 555" not in html
        assert 'href="/p/ada/vcard"' in html and "<svg" in html
        headers = response.headers
        assert headers["Content-Security-Policy"].startswith("default-src 'none'")
        assert "script-src" not in headers["Content-Security-Policy"]
        assert ("nosniff", "DENY", "no-referrer") == (
            headers["X-Content-Type-Options"], headers["X-Frame-Options"],
            headers["Referrer-Policy"])
        card = vobject.readOne(await (await env.api.get("/p/ada/vcard", token=None)).text())
        assert "Ada Lovelace" == card.fn.value
        assert {"email", "tel", "uid"}.isdisjoint(card.contents)
        assert f"{BASE}/p/ada" == card.url.value

    async def test_not_opted_in_is_indistinguishable_from_missing(self, env: Env) -> None:
        """A slug with enabled=false, a missing slug, a malformed one: the same 404, byte for byte."""
        linus = await env.api.user_id("linus.torvalds")
        await env.api.patch_profile(linus, {"publicProfile": {"enabled": False, "slug": "linus"}})
        answers = []
        for path in ("/p/linus", "/p/nobody-here", "/p/linus/vcard", "/p/NO_SUCH"):
            response = await env.api.get(path, token=None)
            headers = {k: v for k, v in response.headers.items()
                       if k.lower() not in ("date", "x-request-id")}
            answers.append((response.status, headers, await response.read()))
        assert 404 == answers[0][0]
        for other in answers[1:]:
            assert answers[0] == other

    async def test_deactivated_user_page_is_gone(self, env: Env, slapd: Any) -> None:
        """A user removed from the directory (deactivated) no longer has a public page."""
        frances = await env.api.user_id("frances.allen")
        await env.api.patch_profile(frances, {"publicProfile": {"enabled": True, "slug": "frances"}})
        assert 200 == (await env.api.get("/p/frances", token=None)).status
        slapd.delete(f"uid=frances.allen,{ENG}")
        await sync_once(env.settings)
        assert 404 == (await env.api.get("/p/frances", token=None)).status
