"""A user as the profile outputs see it: plain, flat, safe values taken from a SCIM User.

Every card, signature and page is built from a :class:`ProfileView`, never from the raw
resource, so that what may go out is decided in one place: :func:`view_of` keeps only http(s)
URLs (a ``javascript:`` link cannot reach a template), and :func:`restricted` blanks every field
the admin did not allow on public pages.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from syncsvc.scim.schema import ENTERPRISE_USER, PROFILE_USER

__all__ = [
    "PUBLIC_FIELDS",
    "Email",
    "Phone",
    "ProfileView",
    "SocialLink",
    "http_url",
    "public_slug",
    "restricted",
    "view_of",
]

SLUG: Final = re.compile(r"[a-z0-9-]{3,64}")

# Public field name (settings.profiles.public_fields) -> the ProfileView attributes it covers.
PUBLIC_FIELDS: Final[Mapping[str, tuple[str, ...]]] = {
    "displayName": ("display_name",),
    "name": ("given_name", "family_name", "middle_name", "prefix", "suffix"),
    "title": ("title",),
    "department": ("department",),
    "organization": ("organization",),
    "emails": ("emails",),
    "phoneNumbers": ("phones",),
    "photo": ("photo_url",),
    "headline": ("headline",),
    "bio": ("bio",),
    "skills": ("skills",),
    "languages": ("languages",),
    "interests": ("interests",),
    "socialLinks": ("social_links",),
    "pronouns": ("pronouns",),
    "location": ("location",),
    "office": ("office",),
}


@dataclass(frozen=True, slots=True)
class Email:
    value: str
    type: str | None
    primary: bool


@dataclass(frozen=True, slots=True)
class Phone:
    value: str
    type: str | None


@dataclass(frozen=True, slots=True)
class SocialLink:
    type: str
    url: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ProfileView:
    """What a card, a signature or a page may show of one user (empty: unknown or withheld)."""

    id: str = ""
    user_name: str = ""
    display_name: str = ""
    given_name: str = ""
    family_name: str = ""
    middle_name: str = ""
    prefix: str = ""
    suffix: str = ""
    title: str = ""
    department: str = ""
    organization: str = ""
    emails: tuple[Email, ...] = ()
    phones: tuple[Phone, ...] = ()
    photo_url: str = ""
    directory_url: str = ""  # the directory's profileUrl (labeledURI)
    headline: str = ""
    bio: str = ""
    skills: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    interests: tuple[str, ...] = ()
    social_links: tuple[SocialLink, ...] = ()
    pronouns: str = ""
    location: str = ""
    office: str = ""
    manager_name: str = ""
    slug: str = ""  # set only when the user opted in to a public page

    @property
    def name(self) -> str:
        """The name to show: displayName, else given and family name, else userName."""
        joined = " ".join(p for p in (self.given_name, self.family_name) if p)
        return self.display_name or joined or self.user_name

    @property
    def email(self) -> str:
        """The primary (else the first) e-mail address."""
        primary = [e for e in self.emails if e.primary] or list(self.emails)
        return primary[0].value if primary else ""

    def phone(self, *types: str) -> str:
        """The first phone number of one of ``types`` (any type when none is given)."""
        for phone in self.phones:
            if not types or (phone.type or "").lower() in types:
                return phone.value
        return ""


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _texts(values: Any) -> tuple[str, ...]:
    if not isinstance(values, list):
        return ()
    return tuple(t for t in (_text(v) for v in values) if t)


def http_url(value: Any) -> str:
    """``value`` if it is an absolute http(s) URL, else "" (so no other scheme reaches HTML)."""
    text = _text(value)
    try:
        parts = urlsplit(text)
    except ValueError:
        return ""
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return ""
    return text


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _dicts(values: Any) -> Iterable[Mapping[str, Any]]:
    return [v for v in values if isinstance(v, Mapping)] if isinstance(values, list) else []


def public_slug(profile: Mapping[str, Any] | None) -> str:
    """The slug of an opted-in public profile (enabled and a well-formed slug), else ""."""
    public = (profile or {}).get("publicProfile")
    if not isinstance(public, Mapping) or public.get("enabled") is not True:
        return ""
    slug = _text(public.get("slug")).lower()
    return slug if SLUG.fullmatch(slug) else ""


def view_of(resource: Mapping[str, Any], *, manager_name: str | None = None) -> ProfileView:
    """The view of a SCIM User resource (as :func:`syncsvc.scim.serialize.user_resource` makes)."""
    name = _map(resource.get("name"))
    enterprise = _map(resource.get(ENTERPRISE_USER))
    profile = _map(resource.get(PROFILE_USER))
    photo = _map(profile.get("photo"))
    photo_url = http_url(photo.get("url")) or http_url(photo.get("thumbnail"))
    if not photo_url:
        photos = sorted(_dicts(resource.get("photos")), key=lambda p: p.get("type") != "photo")
        photo_url = next((u for u in (http_url(p.get("value")) for p in photos) if u), "")
    addresses = list(_dicts(resource.get("addresses")))
    location = _text(profile.get("location"))
    if not location and addresses:
        location = _text(addresses[0].get("locality"))
    links = []
    for link in _dicts(profile.get("socialLinks")):
        url = http_url(link.get("url"))
        if url:
            links.append(SocialLink(type=_text(link.get("type")).lower() or "other", url=url))
    return ProfileView(
        id=_text(resource.get("id")),
        user_name=_text(resource.get("userName")),
        display_name=_text(resource.get("displayName")) or _text(name.get("formatted")),
        given_name=_text(name.get("givenName")),
        family_name=_text(name.get("familyName")),
        middle_name=_text(name.get("middleName")),
        prefix=_text(name.get("honorificPrefix")),
        suffix=_text(name.get("honorificSuffix")),
        title=_text(resource.get("title")),
        department=_text(enterprise.get("department")),
        organization=_text(enterprise.get("organization")),
        emails=tuple(Email(_text(e.get("value")), _text(e.get("type")) or None,
                           e.get("primary") is True)
                     for e in _dicts(resource.get("emails")) if _text(e.get("value"))),
        phones=tuple(Phone(_text(p.get("value")), _text(p.get("type")) or None)
                     for p in _dicts(resource.get("phoneNumbers")) if _text(p.get("value"))),
        photo_url=photo_url,
        directory_url=http_url(resource.get("profileUrl")),
        headline=_text(profile.get("headline")),
        bio=_text(profile.get("bio")),
        skills=_texts(profile.get("skills")),
        languages=_texts(profile.get("languages")),
        interests=_texts(profile.get("interests")),
        social_links=tuple(links),
        pronouns=_text(profile.get("pronouns")),
        location=location,
        office=_text(profile.get("office")),
        manager_name=_text(manager_name),
        slug=public_slug(profile),
    )


def restricted(view: ProfileView, public_fields: Iterable[str]) -> ProfileView:
    """Only the allowed fields of ``view`` (plus its slug); everything else is blanked.

    Raises:
        ValueError: a field name is not one of :data:`PUBLIC_FIELDS`.
    """
    keep: set[str] = {"slug"}
    for field in public_fields:
        if field not in PUBLIC_FIELDS:
            raise ValueError(f"unknown public field {field!r}; known: {', '.join(PUBLIC_FIELDS)}")
        keep.update(PUBLIC_FIELDS[field])
    blank = ProfileView()
    return dataclasses.replace(
        blank, **{f.name: getattr(view, f.name) for f in dataclasses.fields(view) if f.name in keep}
    )
