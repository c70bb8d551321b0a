"""Profile outputs as pure functions: view, vCard, QR, signature templates, public page."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import pytest
import vobject

from syncsvc import profiles
from syncsvc.profiles import (
    PAGE_HEADERS,
    ProfileView,
    SignatureTemplateError,
    SignatureTemplates,
    make_vcard,
    qr_code,
    render_public_page,
    restricted,
    signature_context,
    view_of,
)

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PROFILE = "urn:syncsvc:params:scim:schemas:extension:profile:2.0:User"
EVIL = "<script>alert(1)</script>"

RESOURCE = {
    "id": "2819c223-7f76-453a-919d-413861904646",
    "userName": "bjensen",
    "name": {"givenName": "Barbara", "familyName": "Jensen", "formatted": "Ms. Barbara J Jensen"},
    "displayName": "Babs Jensen",
    "title": "Tour Guide; Senior",
    "emails": [{"value": "bjensen@example.com", "type": "work", "primary": True},
               {"value": "babs@jensen.org", "type": "home"}],
    "phoneNumbers": [{"value": "+1 555 555 5555", "type": "work"},
                     {"value": "+1 555 555 4444", "type": "mobile"}],
    "addresses": [{"type": "work", "locality": "Hollywood"}],
    "profileUrl": "https://login.example.com/bjensen",
    ENTERPRISE: {"organization": "Universal Studios", "department": "Tour Operations"},
    PROFILE: {
        "headline": "Guide", "bio": EVIL, "skills": ["tours", ""],
        "socialLinks": [{"type": "github", "url": "https://github.com/bjensen"},
                        {"type": "other", "url": "javascript:alert(1)"}],
        "photo": {"url": "https://photos.example.com/bjensen.jpg"},
        "publicProfile": {"enabled": True, "slug": "Babs"},
    },
}


class TestView:
    def test_view_takes_the_values_and_drops_unsafe_urls(self) -> None:
        """Plain values come through; a javascript: link never reaches a template."""
        view = view_of(RESOURCE, manager_name="Boss")
        assert ("Babs Jensen", "bjensen@example.com", "+1 555 555 4444") == (
            view.name, view.email, view.phone("mobile"))
        assert ("Tour Operations", "Universal Studios", "Hollywood") == (
            view.department, view.organization, view.location)
        assert ("tours",) == view.skills
        assert ["https://github.com/bjensen"] == [link.url for link in view.social_links]
        assert "babs" == view.slug

    def test_slug_needs_the_opt_in(self) -> None:
        """A slug without enabled=true is no public profile."""
        resource = {**RESOURCE, PROFILE: {"publicProfile": {"enabled": False, "slug": "babs"}}}
        assert "" == view_of(resource).slug

    def test_restricted_keeps_only_allowed_fields(self) -> None:
        view = restricted(view_of(RESOURCE), ["displayName", "title"])
        assert ("Babs Jensen", "Tour Guide; Senior", "babs") == (view.name, view.title, view.slug)
        assert ((), (), "", "", "") == (view.emails, view.phones, view.bio, view.id, view.user_name)

    def test_restricted_refuses_unknown_fields(self) -> None:
        with pytest.raises(ValueError, match="password"):
            restricted(ProfileView(), ["password"])


class TestVCard:
    def test_round_trip_escapes_text(self) -> None:
        """Separators in values are escaped: vobject reads back the exact title."""
        card = vobject.readOne(make_vcard(view_of(RESOURCE), url="https://p.example/p/babs"))
        assert "Tour Guide; Senior" == card.title.value
        assert ["Universal Studios", "Tour Operations"] == card.org.value
        assert ["1"] == card.email.params["PREF"]
        assert "https://photos.example.com/bjensen.jpg" == card.photo.value

    def test_compact_card_leaves_out_photo_and_links(self) -> None:
        card = vobject.readOne(make_vcard(view_of(RESOURCE), compact=True))
        assert {"photo", "x-socialprofile", "uid", "note"}.isdisjoint(card.contents)
        assert "Babs Jensen" == card.fn.value


class TestQr:
    def test_svg_and_png(self) -> None:
        code = qr_code("https://p.example/p/babs")
        assert code.svg().startswith(b"<?xml")
        assert code.png().startswith(b"\x89PNG")
        assert code.svg_inline().startswith("<svg")
        assert code.png_data_uri().startswith("data:image/png;base64,")


class TestSignature:
    def test_default_html_escapes_every_value(self) -> None:
        view = view_of({**RESOURCE, "title": EVIL})
        html = SignatureTemplates().render("html", signature_context(
            view, profile_url="https://p.example/p/babs", qr=qr_code("x")))
        assert "&lt;script&gt;" in html and "<script" not in html
        assert "https://github.com/bjensen" in html and "data:image/png" in html

    def test_text_is_not_escaped(self) -> None:
        view = view_of({**RESOURCE, "title": "R&D"})
        text = SignatureTemplates().render("txt", signature_context(view, profile_url="", qr=None))
        assert "R&D\n" in text

    def test_sandbox_refuses_internals(self, tmp_path: Path) -> None:
        """The template is the admin's, but Python internals stay out of reach."""
        path = tmp_path / "t.html"
        path.write_text("{{ user.__class__.__subclasses__() }}", encoding="utf-8")
        with pytest.raises(SignatureTemplateError) as caught:
            SignatureTemplates(html=path).render("html", signature_context(
                view_of(RESOURCE), profile_url="", qr=None))
        assert 422 == caught.value.status
        assert str(path) in caught.value.detail

    def test_fingerprint_follows_the_text(self, tmp_path: Path) -> None:
        path = tmp_path / "t.txt"
        path.write_text("a", encoding="utf-8")
        first = SignatureTemplates(txt=path).fingerprint
        path.write_text("b", encoding="utf-8")
        assert first != SignatureTemplates(txt=path).fingerprint


class TestPublicPage:
    def test_page_escapes_and_its_style_matches_the_csp_hash(self) -> None:
        """Values are escaped; the one inline style is allowed by its hash, and nothing else."""
        view = restricted(view_of(RESOURCE), ["displayName", "bio", "skills"])
        html = render_public_page(view, qr_svg=qr_code("x").svg_inline(), vcard_url="/p/babs/vcard")
        assert "&lt;script&gt;" in html and "<script" not in html
        assert "bjensen@example.com" not in html
        style = re.search(r"<style>(.*?)</style>", html, re.DOTALL)
        assert style is not None
        digest = base64.b64encode(hashlib.sha256(style.group(1).encode()).digest()).decode()
        assert f"'sha256-{digest}'" in PAGE_HEADERS["Content-Security-Policy"]


def test_exports_exist_once() -> None:
    """``__all__`` names real members, each once (ruff's RUF022 keeps its order)."""
    assert len(set(profiles.__all__)) == len(profiles.__all__)
    assert all(hasattr(profiles, name) for name in profiles.__all__)
