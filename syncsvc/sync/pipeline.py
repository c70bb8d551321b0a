"""The sync engine: directory -> mapping -> store, as full, incremental or change-feed runs.

Order (authentik's, see STYLE.md): users and groups are read concurrently, page by page, each
page written in one transaction (a page of groups naming many members: in parts, each in one);
then members and managers are resolved (they need both); then, after a complete read, the sweep
removes what the directory no longer has, within the guard. A failed read removes nothing and
leaves the marks where they were.

Memory: a run holds a page (or part) at a time, the anchors it read (compact past a bound,
syncsvc.sync.seen), and while resolving members one batch of groups; not the directory.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import structlog
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from syncsvc.domain import EntryKind, LdapEntry, Problem, RunMode, RunStatus, UserRecord
from syncsvc.enrich import Enricher, NoEnrichment
from syncsvc.enrich.photos import PHOTO_ATTRIBUTES, photo_of
from syncsvc.errors import ContentSyncRefreshRequired, SyncStopped, SyncSvcError
from syncsvc.ldap import (
    Directory,
    Flavor,
    SearchQuery,
    ServerInfo,
    changed_since,
    escape_filter_value,
    group_query,
    user_query,
)
from syncsvc.mapping import CompiledMapping, map_group, map_user
from syncsvc.settings import LdapSettings, SyncSettings
from syncsvc.store import runs, state, unavailable_reason, writes
from syncsvc.store.loadindexes import LoadIndexes
from syncsvc.store.maintenance import RunStatistics
from syncsvc.store.walcheckpoints import PageCheckpoints
from syncsvc.store.writes import PageOutcome, Removal, WriteContext
from syncsvc.sync.fingerprint import FINGERPRINT_KEY
from syncsvc.sync.lock import RunLock
from syncsvc.sync.photos import PhotoPlan, apply_photos, plan_photos
from syncsvc.sync.report import SyncReport
from syncsvc.sync.seen import AnchorSet, Survivors

__all__ = ["Progress", "SyncDeps", "SyncOptions", "run_sync"]

log = structlog.get_logger(__name__)


class Progress(Protocol):
    """Told as the run advances; the CLI draws it, the server ignores it."""

    def phase(self, name: str) -> None: ...
    def advance(self, kind: EntryKind, entries: int) -> None: ...


class _Quiet:
    def phase(self, name: str) -> None:
        pass

    def advance(self, kind: EntryKind, entries: int) -> None:
        pass


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncDeps:
    """Everything a run needs, built by the composition root."""

    engine: AsyncEngine
    directory: Directory
    flavor: Flavor
    mapping: CompiledMapping
    ldap: LdapSettings
    sync: SyncSettings
    lock: RunLock
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    # Told of every finished run (metrics); an observer must not raise.
    observers: tuple[Callable[[SyncReport], None], ...] = ()
    # Set on shutdown: a running sync stops at its next page boundary.
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    # Applied to each mapped user before the store ([enrich] rules); by default nothing.
    enricher: Enricher = field(default_factory=NoEnrichment)
    # Of the effective mapping and enrichment rules (syncsvc.sync.fingerprint); "" = not tracked.
    # An incremental run under other rules than the last full run's runs as a full run.
    rules_fingerprint: str = ""
    # Push targets are configured: every change also writes a push outbox row (same transaction).
    capture_changes: bool = False

    @property
    def user_attributes(self) -> tuple[str, ...]:
        """The LDAP attributes to read for users: the mapping's, the enrichment rules' and the
        photo attributes (binary; the sync stores thumbnails of them)."""
        names = {name.lower(): name for name in self.mapping.user_attributes}
        if names:  # empty means every attribute: nothing to add
            for name in (*self.enricher.attributes, *PHOTO_ATTRIBUTES):
                names.setdefault(name.lower(), name)
        return tuple(names.values())


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncOptions:
    mode: RunMode = RunMode.FULL
    dry_run: bool = False
    allow_deletions: bool = False
    trigger: str = "cli"
    progress: Progress = field(default_factory=_Quiet)
    run_id: str | None = None  # given by the admin API, which answers with it before the run ends
    # mode USER: the one user to re-read, by userName (its LDAP attribute) or by DN.
    user_name: str | None = None
    user_dn: str | None = None


# The AD domain controller (dsServiceName) that the uSNChanged marks were read from.
DC_KEY = "ad.dc"


def _mark_key(kind: EntryKind, what: str) -> str:
    return f"{kind.value.lower()}s.{what}"


class _Run:
    """The state of one run while it goes; discarded at the end."""

    def __init__(self, deps: SyncDeps, opts: SyncOptions, report: SyncReport) -> None:
        self.deps = deps
        self.opts = opts
        self.report = report
        self.ctx = WriteContext(now=deps.clock(), dry_run=opts.dry_run, keep_changes=opts.dry_run,
                                capture=deps.capture_changes)
        # Compact past EXACT_MAX anchors (syncsvc.sync.seen): a full read of 1M entries
        # would otherwise hold every anchor as a string until the sweep.
        self.seen: dict[EntryKind, AnchorSet] = {kind: AnchorSet() for kind in EntryKind}
        self.pages_with_new_rows = 0  # the store is being filled: see RunStatistics
        self.statistics = RunStatistics(deps.engine)
        # A first load drops secondary indexes and builds them once users, then members, are in.
        self.indexes = LoadIndexes(deps.engine)
        # SQLite: each page's checkpoint copied back while the next page is mapped.
        self.checkpoints = PageCheckpoints(deps.engine)
        self.marks: dict[EntryKind, str | None] = {EntryKind.USER: None, EntryKind.GROUP: None}
        self.changed_groups: list[str] = []
        self.created_groups: set[str] = set()  # of changed_groups, those with no members yet
        self.cookies: dict[EntryKind, bytes | None] = {}
        # Size of each complete read the sweep trusts (full read, or the server's present set).
        self.complete_reads: dict[EntryKind, int] = {}
        self.dc: str | None = None  # AD: the domain controller this run read from
        self.start_usn: int | None = None  # AD: its highestCommittedUSN when the run began
        self.writes: set[asyncio.Future[PageOutcome]] = set()

    async def drain(self) -> None:
        """Let page writes still in flight (their reader was cancelled) commit or fail."""
        if self.writes:
            await asyncio.gather(*self.writes, return_exceptions=True)
        await self.checkpoints.drain()

    # -- reading and writing pages -------------------------------------------------------------

    def _note_mark(self, kind: EntryKind, entry: LdapEntry) -> None:
        values = entry.get(self.deps.flavor.change_attribute)
        if not values:
            return
        value = values[0] if isinstance(values[0], str) else values[0].decode()
        current = self.marks[kind]
        if self.deps.flavor.change_attribute == "uSNChanged":
            if current is None or int(value) > int(current):
                self.marks[kind] = value
        elif current is None or value > current:  # generalizedTime sorts as text
            self.marks[kind] = value

    async def _write(
        self, kind: EntryKind, records: list[Any], photos: PhotoPlan | None = None
    ) -> PageOutcome:
        """One page in one transaction."""
        async with self.checkpoints.page(), self.deps.engine.begin() as conn:
            if kind is EntryKind.USER:
                outcome = await writes.upsert_users(conn, self.ctx, records)  # type: ignore[arg-type]
                if photos is not None:
                    await apply_photos(conn, self.ctx, photos, outcome)
            else:
                outcome = await writes.upsert_groups(conn, self.ctx, records)  # type: ignore[arg-type]
                self.changed_groups.extend(outcome.changed_ids)
                self.created_groups.update(outcome.created_ids)
            await writes.capture_page(conn, self.ctx, kind, outcome)  # last: photos included
        return outcome

    async def write_page(self, kind: EntryKind, entries: Sequence[LdapEntry]) -> None:
        """Map and write one page read; groups in parts of at most PART_VALUES values.

        A page is a number of entries, but a group can name 100k members: at 1M users the first
        page of groups held every department group, a million member DNs, and mapping and
        writing them at once (normalised DNs, the stored JSON, its hash) cost hundreds of MiB
        more than the entries themselves. Each part is written like a page of its own.
        """
        if kind is EntryKind.USER:  # about 20 values an entry: a page is one part
            await self._write_part(kind, entries)
            return
        for part in _parts(entries, PART_VALUES):
            await self._write_part(kind, part)

    async def _write_part(self, kind: EntryKind, entries: Sequence[LdapEntry]) -> None:
        if self.deps.stopping.is_set():
            raise SyncStopped("stopped by shutdown at a page boundary; nothing half-written")
        await self.deps.lock.ensure_held()  # lost (PostgreSQL restarted): another may sync now
        mapper = map_user if kind is EntryKind.USER else map_group
        records = []
        photos: dict[str, bytes | None] = {}  # anchor -> the directory's photo
        # A problem entry is still in the directory: it counts as seen, so no sweep removes it.
        self.seen[kind].update([entry.anchor for entry in entries])
        for entry in entries:
            self._note_mark(kind, entry)
            result = mapper(entry, self.deps.mapping)
            if isinstance(result, Problem):
                self.report.problems.append(result)
                continue
            if isinstance(result, UserRecord):
                # After mapping, before the store: the store hashes the enriched resource.
                enriched = self.deps.enricher(result, entry)
                self.report.problems.extend(enriched.problems)
                result = enriched.record
                photos[result.anchor] = photo_of(entry)
            records.append(result)
        self.report.read += len(entries)
        plan = None
        if kind is EntryKind.USER:
            plan = await plan_photos(self.deps.engine, self.ctx, records, photos)
        # Shielded: a cancellation (a failing sibling read) never cuts a page's transaction;
        # the run waits for such a write (drain) before it records its outcome.
        write = asyncio.ensure_future(self._write(kind, records, plan))
        self.writes.add(write)
        write.add_done_callback(self.writes.discard)
        outcome = await asyncio.shield(write)
        self.report.add(outcome)
        if outcome.created and not self.ctx.dry_run:
            self.pages_with_new_rows += 1
            self.statistics.pages_loaded(self.pages_with_new_rows)
        self.opts.progress.advance(kind, len(entries))
        log.info("sync.page_written", kind=kind.value, entries=len(entries),
                 created=outcome.created, updated=outcome.updated, unchanged=outcome.unchanged)

    async def users_read(self) -> None:
        """Every page is written: the users' tables change little more this run. The users'
        indexes a first load deferred are built now: resolving members and managers reads them
        (the memberships' index waits for :meth:`resolve`, which only inserts into it)."""
        await self.checkpoints.drain()  # the last page's: what follows writes much at once
        await self.indexes.restore("users read", members_later=True)
        if not self.ctx.dry_run:
            self.statistics.users_read(self.report.created + self.report.updated, self.report.read)

    async def read_paged(self, kind: EntryKind, query: SearchQuery) -> None:
        async for page in self.deps.directory.search(query):
            await self.write_page(kind, page)

    async def read_content_sync(self, kind: EntryKind, query: SearchQuery) -> list[Removal]:
        """RFC 4533 refresh: changed entries, and the server's word on what is gone.

        The refresh is one search that may hold the whole directory: its entries are written
        page by page while it is read. Its cookie is kept only once all of it was read and
        written (and stored only if the run succeeds), so a run that fails half-way re-reads.
        """
        key = _mark_key(kind, "cookie")
        async with self.deps.engine.connect() as conn:
            stored = await state.get_state(conn, key)
        cookie = bytes.fromhex(stored) if stored else None
        size = self.deps.sync.batch_size

        async def write(page: list[LdapEntry]) -> None:
            for start in range(0, len(page), size):
                await self.write_page(kind, page[start : start + size])

        try:
            result = await self.deps.directory.content_sync(query, cookie, write)
        except ContentSyncRefreshRequired:
            log.warning("sync.content_sync_refresh_required", kind=kind.value)
            cookie = None
            # The refused refresh may have sent pages already; the full one names every live
            # entry again, so only what it sends counts as seen.
            self.seen[kind] = AnchorSet()
            result = await self.deps.directory.content_sync(query, None, write)
        self.cookies[kind] = result.cookie
        async with self.deps.engine.connect() as conn:
            if cookie is None or result.present is not None:
                # No cookie: the server sent everything. A present phase: it named every survivor.
                # An entry written from an earlier page and deleted later in the same refresh
                # is in ``deleted``, not a survivor.
                keep = Survivors(self.seen[kind], result.deleted, result.present or ())
                self.complete_reads[kind] = len(keep)
                return await writes.plan_removals(conn, kind, keep=keep, policy=self.deps.sync.on_missing)
            if result.deleted:
                return await writes.plan_removals(
                    conn, kind, gone=set(result.deleted), policy=self.deps.sync.on_missing
                )
        return []

    # -- after the reads -----------------------------------------------------------------------

    def _read_users(self) -> set[str] | None:
        """The users this run read, to scope manager resolution; None (every user) once the
        run read too many to keep their anchors (far more than a scoped statement takes)."""
        return self.seen[EntryKind.USER].exact()

    async def resolve(self, *, all_groups: bool) -> None:
        self.opts.progress.phase("resolving members and managers")
        async with self.deps.engine.begin() as conn:
            bumped = set(self.changed_groups)
            members = await writes.resolve_members(
                conn, self.ctx, group_ids=None if all_groups else self.changed_groups,
                already_bumped=bumped, created=self.created_groups,
            )
            managers = await writes.resolve_managers(
                conn, self.ctx, anchors=None if all_groups else self._read_users())
        await self.indexes.restore("members resolved")
        for outcome in (members, managers):
            self.report.problems.extend(outcome.problems)
            self.report.changes.extend(outcome.changes)
        log.info("sync.resolved", groups_changed=members.updated, managers_changed=managers.updated,
                 dangling=len(members.problems) + len(managers.problems))

    async def guard_and_remove(self, removals: list[Removal]) -> None:
        """Remove within the deletion guard; over it, remove nothing and say what would go."""
        self.report.removals = removals
        if not removals:
            return
        await self.deps.lock.ensure_held()  # never remove without the lock
        sync = self.deps.sync
        live: dict[EntryKind, int] = {}
        async with self.deps.engine.connect() as conn:
            for kind in EntryKind:
                n = sum(1 for r in removals if r.kind is kind)
                # The share check asks only whether fewer than n / fraction are live.
                share = n <= sync.guard_max_deletions and sync.guard_max_fraction > 0
                below = n / sync.guard_max_fraction if share else None
                live[kind] = await writes.live_count(conn, kind, below=below)
        held: list[str] = []
        empty_read = False
        for kind in EntryKind:
            n = sum(1 for r in removals if r.kind is kind)
            noun = f"{kind.value.lower()}s"
            if n and self.complete_reads.get(kind) == 0:
                # An empty answer is far likelier a wrong base DN or filter than an empty company.
                held.append(f"the directory returned no {noun}; refusing to remove {n}")
                empty_read = True
            elif n > sync.guard_max_deletions or (live[kind] and n / live[kind] > sync.guard_max_fraction):
                held.append(f"would remove {n} of {live[kind]} {noun} "
                            f"(guard: {sync.guard_max_deletions} or {sync.guard_max_fraction:.0%})")
        # --allow-deletions confirms a large removal, never one that follows an empty read.
        if held and (empty_read or not self.opts.allow_deletions):
            self.report.status = RunStatus.GUARDED
            hint = "" if empty_read else "; confirm with --allow-deletions"
            _note(self.report, "; ".join(held) + hint)
            log.warning("sync.guarded", detail=self.report.detail, removals=len(removals))
            return
        self.opts.progress.phase("removing")
        async with self.deps.engine.begin() as conn:
            deactivated, deleted = await writes.remove(
                conn, self.ctx, removals, policy=sync.on_missing
            )
        self.report.deactivated += deactivated
        self.report.deleted += deleted
        log.info("sync.removed", deactivated=deactivated, deleted=deleted)

    def _fallback_marks(self) -> None:
        """A kind with no entries yet still needs a mark, or incremental runs would never start.

        After a full read: the run's start (timestamps; the overlap absorbs clock skew between
        syncsvc and the server), or the DC's highestCommittedUSN read at the start (AD).
        """
        if self.report.mode is not RunMode.FULL:
            return
        for kind, mark in self.marks.items():
            if mark is not None:
                continue
            if self.deps.flavor.change_attribute == "uSNChanged":
                if self.start_usn is not None:
                    self.marks[kind] = str(self.start_usn)
            else:
                self.marks[kind] = self.ctx.now.strftime("%Y%m%d%H%M%SZ")

    async def save_marks(self) -> None:
        if self.opts.dry_run:
            return
        self._fallback_marks()
        async with self.deps.engine.begin() as conn:
            for kind, mark in self.marks.items():
                if mark is not None:
                    old = await state.get_state(conn, _mark_key(kind, "mark"))
                    if old is None or _later(mark, old, self.deps.flavor):
                        await state.set_state(conn, _mark_key(kind, "mark"), mark, self.ctx.now)
            for kind, cookie in self.cookies.items():
                if cookie is not None:
                    await state.set_state(conn, _mark_key(kind, "cookie"), cookie.hex(), self.ctx.now)
            if self.dc is not None:
                await state.set_state(conn, DC_KEY, self.dc, self.ctx.now)
            if self.report.mode is RunMode.FULL and self.deps.rules_fingerprint:
                # Every entry was re-derived under these rules: incremental runs may follow.
                await state.set_state(conn, FINGERPRINT_KEY, self.deps.rules_fingerprint,
                                      self.ctx.now)


# A page of groups is cut where its member lists add up to more than this many values.
PART_VALUES = 50_000


def _parts(entries: Sequence[LdapEntry], budget: int) -> list[Sequence[LdapEntry]]:
    """``entries`` cut into runs whose attribute values add up to at most ``budget`` (an entry
    holding more is a part of its own)."""
    parts: list[Sequence[LdapEntry]] = []
    start = held = 0
    for at, entry in enumerate(entries):
        size = sum(len(values) for values in entry.attributes.values())
        if at > start and held + size > budget:
            parts.append(entries[start:at])
            start, held = at, 0
        held += size
    parts.append(entries[start:])
    return parts


def _later(a: str, b: str, flavor: Flavor) -> bool:
    return int(a) > int(b) if flavor.change_attribute == "uSNChanged" else a > b


def _since(mark: str, flavor: Flavor, overlap: int) -> str:
    """The mark to query from: timestamps go back by the overlap (their resolution is 1 s)."""
    if flavor.change_attribute == "uSNChanged":
        return mark
    stamp = datetime.strptime(mark[:14], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    return (stamp - timedelta(seconds=overlap)).strftime("%Y%m%d%H%M%SZ")


def _note(report: SyncReport, text: str) -> None:
    """Add to the run's detail (kept with the run, shown by the CLI and the admin API)."""
    report.detail = f"{report.detail}; {text}" if report.detail else text


async def _rules_changed(deps: SyncDeps) -> str | None:
    """Why an incremental run must run as a full one because the rules changed, else None."""
    if not deps.rules_fingerprint:
        return None
    async with deps.engine.connect() as conn:
        stored = await state.get_state(conn, FINGERPRINT_KEY)
    if stored == deps.rules_fingerprint:
        return None
    if stored is None:
        return ("no full run recorded under the current mapping and enrichment rules: "
                "ran as a full run")
    return "the mapping or enrichment rules changed since the last full run: ran as a full run"


async def _choose_method(
    deps: SyncDeps, mode: RunMode, info: ServerInfo | None
) -> tuple[RunMode, str, dict[EntryKind, str]]:
    """Which read a requested mode becomes: paged, timestamp/usn, or content sync."""
    if mode is RunMode.FULL:
        return mode, "paged", {}
    assert info is not None  # read by the caller for every incremental run
    feed = deps.ldap.change_feed
    if feed in ("auto", "syncrepl"):
        if info.content_sync:
            return mode, "contentsync", {}
        if feed == "syncrepl":
            raise SyncSvcError(f"{info.url} does not offer RFC 4533 content sync (syncprov)")
    async with deps.engine.connect() as conn:
        marks = {kind: await state.get_state(conn, _mark_key(kind, "mark")) for kind in EntryKind}
        stored_dc = await state.get_state(conn, DC_KEY)
    if any(m is None for m in marks.values()):
        log.info("sync.no_mark_full_run")  # never synced: an incremental run has nothing to start from
        return RunMode.FULL, "paged", {}
    if deps.flavor.change_attribute == "uSNChanged":
        # uSNChanged counts per domain controller: a mark from another DC means nothing here.
        if info.ad_service_name != stored_dc:
            log.warning("sync.dc_changed_full_run", was=stored_dc, now=info.ad_service_name)
            return RunMode.FULL, "paged", {}
        return mode, "usn", {k: v for k, v in marks.items() if v is not None}
    return mode, "timestamp", {k: v for k, v in marks.items() if v is not None}


async def run_sync(deps: SyncDeps, opts: SyncOptions) -> SyncReport:
    """Run one sync and return its report; raises only SyncBusy (another run holds the lock).

    Cancelled (a shutdown): the page being written rolls back, the run is recorded as failed,
    and the cancellation goes on.
    """
    report = SyncReport(run_id=opts.run_id or str(uuid.uuid4()), mode=opts.mode,
                        trigger=opts.trigger, dry_run=opts.dry_run)
    started = time.monotonic()
    try:
        await _run_locked(deps, opts, report, started)
    except (SQLAlchemyError, ConnectionError, TimeoutError) as exc:
        # Only the lock itself gets here (the run catches its own errors): the store could not
        # be reached to take it. Nothing ran, so nothing can be recorded; the caller sees why.
        reason = unavailable_reason(exc) or f"{type(exc).__name__}: {exc}"
        report.status = RunStatus.FAILED
        report.detail = f"store unavailable: {reason}; the run did not start"
        log.error("sync.not_started", reason=reason)
    return report


async def _run_locked(
    deps: SyncDeps, opts: SyncOptions, report: SyncReport, started: float
) -> None:
    async with deps.lock.hold():
        with structlog.contextvars.bound_contextvars(sync_run=report.run_id):
            run = _Run(deps, opts, report)
            log.info("sync.started", mode=opts.mode.value, trigger=opts.trigger, dry_run=opts.dry_run)
            try:
                if not opts.dry_run:
                    # Shielded: a shutdown landing here must not leave half a start behind.
                    await asyncio.shield(_start(deps, opts, report, run.ctx.now))
                await _execute(run)
                if report.status is RunStatus.RUNNING:
                    report.status = RunStatus.SUCCESS
                    await run.save_marks()
                    written = report.created + report.updated + report.deactivated + report.deleted
                    if not opts.dry_run:
                        await run.statistics.finish(written, report.read)
            except* SyncSvcError as group:
                exc = group.exceptions[0]
                report.status = RunStatus.FAILED
                report.detail = str(exc)
                log.error("sync.failed", error=str(exc), error_type=type(exc).__name__)
            except* asyncio.CancelledError:
                report.status = RunStatus.FAILED
                report.detail = "stopped by shutdown at a page boundary; nothing half-written"
                log.warning("sync.cancelled")
                await asyncio.shield(_close(run, started, cancelled=True))
                raise
            except* Exception as group:
                # A bug or a store failure: still end the run record, never leave it "running".
                exc = group.exceptions[0]
                report.status = RunStatus.FAILED
                reason = unavailable_reason(exc)
                if reason is not None:
                    report.detail = f"store unavailable: {reason}; nothing was removed"
                    log.error("sync.store_unavailable", reason=reason, error_type=type(exc).__name__)
                else:
                    report.detail = f"internal error: {type(exc).__name__}: {exc}"
                    log.exception("sync.crashed", exc_info=exc)
            # Shielded: a shutdown arriving while the outcome is written must not lose it.
            await asyncio.shield(_close(run, started))


async def _close(run: _Run, started: float, *, cancelled: bool = False) -> None:
    await run.drain()
    run.checkpoints.log_totals()
    try:  # a failed or stopped first load: its rows stay, so do the indexes they need
        await run.indexes.restore("run ended early")
    except Exception as exc:  # the store is gone: the next run's start or upgrade builds them
        log.warning("store.indexes_not_built", error=f"{type(exc).__name__}: {exc}")
    if cancelled:  # a shutdown waits for no statistics
        await run.statistics.cancel()
    else:  # a failed run's rows keep the statistics being gathered for them
        await run.statistics.settle()
    await _finish_after_cancel(run.deps, run.opts, run.report, started)


async def _start(deps: SyncDeps, opts: SyncOptions, report: SyncReport, now: datetime) -> None:
    async with deps.engine.begin() as conn:
        stale = await runs.fail_interrupted(conn, now)
        if stale:
            log.warning("sync.interrupted_runs_closed", runs=stale)
        await runs.start_run(conn, run_id=report.run_id, mode=opts.mode.value, method="pending",
                             trigger=opts.trigger, now=now)


async def _finish_after_cancel(
    deps: SyncDeps, opts: SyncOptions, report: SyncReport, started: float
) -> None:
    """Record how a run ended, retrying: after a cancellation the page's rollback may still hold
    SQLite's write lock for a moment (a run left "running" is closed by the next run)."""
    for attempt in range(5):
        try:
            await _finish(deps, opts, report, started)
            return
        except Exception as exc:
            log.warning("sync.finish_retry", attempt=attempt + 1, error=type(exc).__name__)
            await asyncio.sleep(0.5 * (attempt + 1))


async def _finish(deps: SyncDeps, opts: SyncOptions, report: SyncReport, started: float) -> None:
    report.seconds = time.monotonic() - started
    if not opts.dry_run:
        async with deps.engine.begin() as conn:
            await runs.finish_run(conn, run_id=report.run_id, status=report.status.value,
                                  method=report.method, counts=report.counts,
                                  detail=report.detail, problems=report.problems, now=deps.clock())
    log.info("sync.finished", status=report.status.value, seconds=round(report.seconds, 3),
             **report.counts)
    for observe in deps.observers:
        observe(report)


async def _execute(run: _Run) -> None:
    deps, report = run.deps, run.report
    usn = deps.flavor.change_attribute == "uSNChanged"
    info = None
    if run.opts.mode is RunMode.INCREMENTAL or usn:
        info = await deps.directory.server_info()
        if usn:
            run.dc, run.start_usn = info.ad_service_name, info.ad_highest_usn
    # Lookup files changed since the last run are re-read now, once, off the event loop.
    await asyncio.to_thread(deps.enricher.refresh)
    if not run.opts.dry_run:
        await run.indexes.repair()
    if run.opts.mode is RunMode.USER:
        await _one_user(run)
        return
    requested = run.opts.mode
    if requested is RunMode.INCREMENTAL:
        reason = await _rules_changed(deps)
        if reason is not None:
            # Otherwise the new rules would reach only the entries that happen to change.
            log.warning("sync.rules_changed_full_run", reason=reason)
            _note(report, reason)
            requested = RunMode.FULL
    mode, method, marks = await _choose_method(deps, requested, info)
    report.mode, report.method = mode, method
    queries = {
        EntryKind.USER: user_query(deps.ldap, deps.flavor, deps.user_attributes),
        EntryKind.GROUP: group_query(deps.ldap, deps.flavor, deps.mapping.group_attributes),
    }
    run.opts.progress.phase("reading")
    if not run.opts.dry_run and await _first_load(deps, method):
        await run.indexes.defer()
    if method == "contentsync":
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(run.read_content_sync(k, q)) for k, q in queries.items()]
        await run.users_read()
        await run.resolve(all_groups=False)
        await run.guard_and_remove([r for t in tasks for r in t.result()])
        return
    if marks:
        overlap = deps.ldap.incremental_overlap
        queries = {k: changed_since(q, deps.flavor, _since(marks[k], deps.flavor, overlap))
                   for k, q in queries.items()}
    async with asyncio.TaskGroup() as tg:
        for kind, query in queries.items():
            tg.create_task(run.read_paged(kind, query))
    await run.users_read()
    await run.resolve(all_groups=mode is RunMode.FULL)
    if mode is RunMode.FULL:
        run.opts.progress.phase("sweeping")
        run.complete_reads = {kind: len(run.seen[kind]) for kind in EntryKind}
        async with deps.engine.connect() as conn:
            removals = [r for kind in EntryKind
                        for r in await writes.plan_removals(conn, kind, keep=run.seen[kind],
                                                            policy=deps.sync.on_missing)]
        await run.guard_and_remove(removals)


async def _first_load(deps: SyncDeps, method: str) -> bool:
    """Whether this read loads every user: a paged full read, or a content-sync refresh without
    a cookie (the change feed's priming). :meth:`LoadIndexes.defer` checks the store is empty."""
    if method == "paged":
        return True  # chosen only for a full run
    if method != "contentsync":
        return False
    async with deps.engine.connect() as conn:
        return await state.get_state(conn, _mark_key(EntryKind.USER, "cookie")) is None


async def _one_user(run: _Run) -> None:
    """Re-read one user now: by DN (a base for the user filter) or by its userName attribute."""
    deps, opts = run.deps, run.opts
    run.report.method = "single"
    query = user_query(deps.ldap, deps.flavor, deps.user_attributes)
    if opts.user_dn:
        query = replace(query, base=opts.user_dn)
    elif opts.user_name:
        attribute = deps.mapping.user_name_attribute
        # The value goes into an LDAP filter: escaped, never pasted (RFC 4515 §3).
        query = replace(query, filter=f"(&{query.filter}({attribute}={escape_filter_value(opts.user_name)}))")
    else:
        raise SyncSvcError("name a user: by userName or by DN")
    found = 0
    async for page in deps.directory.search(query):
        found += len(page)
        await run.write_page(EntryKind.USER, page)
    if found != 1:
        raise SyncSvcError(f"expected one user, the directory returned {found}")
    await run.resolve(all_groups=False)
