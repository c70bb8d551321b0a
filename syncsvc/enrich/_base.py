"""The shapes every enrichment rule shares: the Enricher Protocol, updates, the rule chain.

A rule is a callable object configured in ``__init__`` (STYLE habit 7). Called with the user's
resource as mapped so far and the LDAP entry it came from, it returns an :class:`Update`: the
values to set and notes (problems that do not stop the rule, e.g. an invalid phone number kept
as is). It never mutates its input. A rule that cannot do its job raises :class:`RuleFailed`;
the chain turns that into a :class:`~syncsvc.domain.Problem` and goes on with the next rule.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from syncsvc.domain import LdapEntry, Problem, UserRecord
from syncsvc.enrich._paths import Setter
from syncsvc.errors import SyncSvcError

__all__ = [
    "Enriched",
    "Enricher",
    "Enrichment",
    "EnrichmentError",
    "NoEnrichment",
    "Rule",
    "RuleFailed",
    "Update",
]

log = structlog.get_logger(__name__)


class EnrichmentError(SyncSvcError):
    """A run-level failure of enrichment (a lookup file vanished or broke): the run fails.

    Going on without the file would strip every looked-up value from every user, then put them
    all back on the next run: two mass updates pushed downstream for one missing file.
    """


class RuleFailed(Exception):
    """One rule could not enrich one entry; the message is the problem's reason."""


@dataclass(frozen=True, slots=True)
class Update:
    """What one rule wants changed: ``(setter, value)`` pairs, and notes for the run."""

    sets: tuple[tuple[Setter, Any], ...] = ()
    notes: tuple[str, ...] = ()


NO_UPDATE = Update()


class Rule(Protocol):
    """One configured enrichment rule: pure, cheap to call, never mutates its input."""

    @property
    def label(self) -> str:
        """How problems name the rule, e.g. ``template displayName``."""
        ...

    def __call__(self, resource: Mapping[str, Any], entry: LdapEntry) -> Update: ...


@dataclass(frozen=True, slots=True)
class Enriched:
    """A record after enrichment, and the problems its rules recorded."""

    record: UserRecord
    problems: tuple[Problem, ...] = ()


class Enricher(Protocol):
    """What the sync pipeline calls after mapping a user and before the store.

    ``attributes`` are the LDAP attributes the rules read beyond the mapping's (the pipeline
    asks the directory for them); ``refresh`` runs once at the start of each run, off the event
    loop, and may do blocking I/O (re-reading a changed lookup file).
    """

    @property
    def attributes(self) -> tuple[str, ...]: ...

    def refresh(self) -> None: ...

    def __call__(self, record: UserRecord, entry: LdapEntry) -> Enriched: ...


@dataclass(frozen=True, slots=True)
class NoEnrichment:
    """The enricher of a config without ``[enrich]`` rules: the record passes unchanged."""

    attributes: tuple[str, ...] = ()

    def refresh(self) -> None:
        """Nothing to re-read."""

    def __call__(self, record: UserRecord, entry: LdapEntry) -> Enriched:
        return Enriched(record)


class _Refreshable(Protocol):
    def refresh(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Enrichment:
    """The configured rules, applied in order to each user.

    Each rule sees the result of the rules before it. A failing rule changes nothing and
    becomes a problem naming the entry's DN, the rule's position and kind; the entry is still
    written with what the other rules did (DESIGN: never lose data; see the package docs).
    """

    rules: tuple[Rule, ...]
    attributes: tuple[str, ...] = ()
    sources: tuple[_Refreshable, ...] = field(default=(), repr=False)  # lookup tables

    def refresh(self) -> None:
        """Re-read each lookup file that changed since the last run; raises EnrichmentError."""
        for source in self.sources:
            source.refresh()

    def __call__(self, record: UserRecord, entry: LdapEntry) -> Enriched:
        resource = _copy(record.resource)
        problems: list[Problem] = []
        changed = False
        for n, rule in enumerate(self.rules):
            try:
                update = rule(resource, entry)
            except RuleFailed as exc:
                problems.append(Problem(entry.dn, f"enrich.rules[{n}] ({rule.label}): {exc}"))
                continue
            except Exception as exc:  # a bug in a rule: one entry's problem, never the run's end
                log.exception("enrich.rule_crashed", rule=rule.label, dn=entry.dn)
                problems.append(Problem(
                    entry.dn, f"enrich.rules[{n}] ({rule.label}): internal error: "
                              f"{type(exc).__name__}: {exc}"))
                continue
            for setter, value in update.sets:
                if setter.get(resource) != value:
                    setter.set(resource, value)
                    changed = True
            problems += (Problem(entry.dn, f"enrich.rules[{n}] ({rule.label}): {note}")
                         for note in update.notes)
        if not changed:
            return Enriched(record, tuple(problems))
        return Enriched(dataclasses.replace(record, resource=resource), tuple(problems))


def _copy(value: Any) -> Any:
    """A copy of a JSON-like value deep enough that setters never touch the mapper's output."""
    if isinstance(value, Mapping):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_copy(item) for item in value]
    return value

