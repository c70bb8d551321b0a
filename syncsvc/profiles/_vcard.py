"""vCard 4.0 (RFC 6350) business cards, built with vobject.

vobject's vCard support is modelled on 3.0, but the properties used here serialise the same
way in 4.0 (text escaping, TYPE parameters); the version line says 4.0 and PHOTO/URL carry
URIs as 4.0 wants (3.0 would have needed ``VALUE=uri``).
"""

from __future__ import annotations

from typing import Final

import vobject  # type: ignore[import-untyped]  # no stubs are published

from syncsvc.profiles._view import ProfileView

__all__ = ["VCARD_TYPE", "make_vcard"]

VCARD_TYPE: Final = "text/vcard"

# SCIM phoneNumbers.type -> vCard TEL TYPE values (RFC 6350 §6.4.1).
_TEL_TYPES: Final = {
    "work": ["work", "voice"],
    "home": ["home", "voice"],
    "mobile": ["cell"],
    "fax": ["fax"],
    "pager": ["pager"],
}


def make_vcard(view: ProfileView, *, url: str = "", compact: bool = False) -> str:
    """The vCard 4.0 text of ``view``: N, FN, TITLE, ORG, EMAIL, TEL, PHOTO, URL, social links.

    Args:
        view: what to put on the card (a public card gets a :func:`restricted` view).
        url: the profile page's address (the public page when there is one).
        compact: leave out the photo, the social links, the note and the UID, for a QR code
            (whose capacity is a few hundred characters at a readable size).
    """
    card = vobject.vCard()
    card.add("version").value = "4.0"
    card.add("kind").value = "individual"
    if view.family_name or view.given_name:
        card.add("n").value = vobject.vcard.Name(
            family=view.family_name, given=view.given_name, additional=view.middle_name,
            prefix=view.prefix, suffix=view.suffix)
    card.add("fn").value = view.name or view.slug or "unknown"
    if view.title:
        card.add("title").value = view.title
    if view.organization or view.department:
        card.add("org").value = [view.organization, *([view.department] if view.department else [])]
    for email in view.emails:
        prop = card.add("email")
        prop.value = email.value
        if email.type:
            prop.params["TYPE"] = [email.type.lower()]
        if email.primary:
            prop.params["PREF"] = ["1"]
    for phone in view.phones:
        prop = card.add("tel")
        prop.value = phone.value
        prop.params["TYPE"] = _TEL_TYPES.get((phone.type or "").lower(), ["voice"])
    if url:
        card.add("url").value = url
    if compact:
        return str(card.serialize())
    if view.id:
        card.add("uid").value = f"urn:uuid:{view.id}"
    if view.photo_url:
        card.add("photo").value = view.photo_url
    if view.directory_url and view.directory_url != url:
        card.add("url").value = view.directory_url
    for link in view.social_links:
        # URL;TYPE=... is what most address books read; X-SOCIALPROFILE is Apple's and Google's.
        prop = card.add("url")
        prop.value = link.url
        prop.params["TYPE"] = [link.type]
        social = card.add("x-socialprofile")
        social.value = link.url
        social.params["TYPE"] = [link.type]
    if view.headline:
        card.add("note").value = view.headline
    return str(card.serialize())
