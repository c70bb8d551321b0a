"""Normalisation rules: e-mails, phone numbers, whitespace, title case.

Each rule rewrites values already in the resource and adds none. Values it cannot normalise are
kept as they are: an invalid phone number is still the best number the directory has, and
dropping it would lose data (DESIGN.md); the ``phone`` rule reports it as a problem of the run
(``on_invalid = "problem"``, the default) so that the directory gets fixed, or keeps quiet
(``"keep"``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Final, Literal

import phonenumbers

from syncsvc.domain import LdapEntry
from syncsvc.enrich._base import NO_UPDATE, Update
from syncsvc.enrich._paths import ListSetter, PathSetter

__all__ = [
    "EmailRule",
    "PhoneRule",
    "TitleCaseRule",
    "WhitespaceRule",
    "collapse_whitespace",
    "title_case",
    "to_e164",
]

_EMAILS: Final = ListSetter("emails")
_PHONES: Final = ListSetter("phoneNumbers")


class EmailRule:
    """Lower-case and trim every ``emails[].value`` (the store compares e-mails folded anyway;
    downstream tools often do not)."""

    __slots__ = ()

    @property
    def label(self) -> str:
        return "email"

    def __call__(self, resource: Mapping[str, Any], entry: LdapEntry) -> Update:
        items = resource.get("emails")
        if not items:
            return NO_UPDATE
        out = []
        for item in items:
            value = item.get("value")
            if isinstance(value, str):
                item = {**item, "value": value.strip().lower()}
            out.append(item)
        return Update(sets=((_EMAILS, out),))


def to_e164(number: str, region: str | None) -> str | None:
    """``number`` in E.164 (``+14155551101``), or None when it is not a valid number.

    ``region`` (ISO 3166 alpha-2) applies to numbers written without ``+country``.
    """
    try:
        parsed = phonenumbers.parse(number, region or None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


class PhoneRule:
    """Every ``phoneNumbers[].value`` (of ``types``, default all) to E.164.

    Args:
        region: default region for national numbers (``DE``, ``US``); empty: only numbers
            written with ``+country`` can be parsed.
        types: phone types to touch (``work``, ``mobile``...); empty: all.
        on_invalid: ``problem`` keeps the value and records a problem; ``keep`` keeps it quietly.
    """

    __slots__ = ("_on_invalid", "_region", "_types")

    def __init__(self, region: str = "", types: Iterable[str] = (),
                 on_invalid: Literal["problem", "keep"] = "problem") -> None:
        self._region = region.upper()
        self._types = frozenset(types)
        self._on_invalid = on_invalid

    @property
    def label(self) -> str:
        return "phone"

    def __call__(self, resource: Mapping[str, Any], entry: LdapEntry) -> Update:
        items = resource.get("phoneNumbers")
        if not items:
            return NO_UPDATE
        out, notes = [], []
        for item in items:
            value = item.get("value")
            if isinstance(value, str) and (not self._types or item.get("type") in self._types):
                e164 = to_e164(value, self._region)
                if e164 is not None:
                    item = {**item, "value": e164}
                elif self._on_invalid == "problem":
                    region = f" for region {self._region}" if self._region else ""
                    notes.append(f"phoneNumbers[{item.get('type')}] {value!r} is not a valid "
                                 f"phone number{region}; kept as is")
            out.append(item)
        return Update(sets=((_PHONES, out),), notes=tuple(notes))


def collapse_whitespace(text: str) -> str:
    """Trim and turn every run of whitespace (tabs, newlines, NBSP) into one space."""
    return " ".join(text.split())


class WhitespaceRule:
    """Collapse whitespace in each of ``targets`` that holds text."""

    __slots__ = ("_targets",)

    def __init__(self, targets: Iterable[PathSetter]) -> None:
        self._targets = tuple(targets)

    @property
    def label(self) -> str:
        return "whitespace"

    def __call__(self, resource: Mapping[str, Any], entry: LdapEntry) -> Update:
        sets = []
        for setter in self._targets:
            value = setter.get(resource)
            if isinstance(value, str) and value:
                sets.append((setter, collapse_whitespace(value)))
        return Update(sets=tuple(sets))


_SMALL: Final = frozenset((
    "a", "an", "and", "as", "at", "but", "by", "for", "in", "of", "on", "or", "the", "to", "via",
    "da", "de", "del", "della", "der", "des", "di", "du", "la", "le", "van", "von", "y", "zu"))
_PART: Final = re.compile(r"([\s\-'’/(]+)")


def title_case(text: str, keep: frozenset[str] = frozenset(), small: frozenset[str] = _SMALL) -> str:
    """Title case that leaves deliberate casing alone.

    A word written all in one case gets a capital first letter (``SENIOR ENGINEER`` ->
    ``Senior Engineer``); a mixed-case word (``McDonald``, ``iOS``) is kept; words in ``keep``
    (compared case-insensitively, e.g. ``IT``, ``VP``) take the spelling given there; small
    words (``of``, ``van``) stay lower-case except at the start. Hyphenated and apostrophe
    parts count as words (``jean-luc o'neil`` -> ``Jean-Luc O'Neil``).
    """
    keep_map = {word.lower(): word for word in keep}
    parts = _PART.split(text)
    out = []
    first = True
    for part in parts:
        if not part or _PART.fullmatch(part):
            out.append(part)
            continue
        lower = part.lower()
        if lower in keep_map:
            out.append(keep_map[lower])
        elif part not in (lower, part.upper()):
            out.append(part)  # mixed case: someone meant it
        elif not first and lower in small:
            out.append(lower)
        else:
            out.append(lower[:1].upper() + lower[1:])
        first = False
    return "".join(out)


class TitleCaseRule:
    """Title-case each of ``targets`` (see :func:`title_case`).

    Args:
        targets: the attributes to change (``title``, ``name.familyName``...).
        keep: words with a fixed spelling (acronyms: ``IT``, ``HR``, ``VP``).
    """

    __slots__ = ("_keep", "_targets")

    def __init__(self, targets: Iterable[PathSetter], keep: Iterable[str] = ()) -> None:
        self._targets = tuple(targets)
        self._keep = frozenset(keep)

    @property
    def label(self) -> str:
        return "title_case"

    def __call__(self, resource: Mapping[str, Any], entry: LdapEntry) -> Update:
        sets = []
        for setter in self._targets:
            value = setter.get(resource)
            if isinstance(value, str) and value:
                sets.append((setter, title_case(value, self._keep)))
        return Update(sets=tuple(sets))
