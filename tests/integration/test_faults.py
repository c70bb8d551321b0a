"""Faults survived: real processes killed, frozen or restarted in the middle of the work.

For every fault: no row lost (the store is compared with a snapshot taken before), no wrong
deactivation or deletion, the run recorded as failed or guarded with a reason, SCIM reads
answering (or 503 with a SCIM error while the store is down), and full recovery once the fault
is gone, without restarting syncsvc. Faults covered elsewhere, and not repeated here:
slapd stopped (SIGTERM) mid-run and a filter matching nothing (test_sync_changes.py), SIGTERM of
`serve` mid-sync on SQLite (test_shutdown.py), two replicas racing (test_replicas.py,
test_sync_lock.py). The figures of the last run are in docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select, update

from syncsvc.auth import create_token
from syncsvc.domain import EntryKind, RunStatus
from syncsvc.http import create_app
from syncsvc.settings import Settings, StoreSettings
from syncsvc.store import create_engine, runs, upgrade
from syncsvc.store.schema import SyncRunRow, UserRow
from syncsvc.sync import SyncOptions, run_sync
from tests.integration.syncenv import pipeline, settings_for, sync_once
from tests.support import postgres
from tests.support.faults import (
    ReadOnlySwitch,
    Snapshot,
    free_port,
    lost_rows,
    snapshot,
    stopped,
    syncsvc_env,
    writes_held,
)
from tests.support.slapd import Slapd

BASE = "dc=example,dc=com"
SALES = f"ou=sales,ou=people,{BASE}"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
PROFILE = "urn:syncsvc:params:scim:schemas:extension:profile:2.0:User"
BIG_USERS = 1500
BIG_PAGE = 50


class FaultAt:
    """A progress observer that injects a fault once, when a page has been written: the first
    one, or the *page*-th of *kind*."""

    def __init__(self, fault: Callable[[], None], kind: EntryKind | None = None,
                 page: int = 1) -> None:
        self._fault: Callable[[], None] | None = fault
        self._kind, self._left = kind, page

    def phase(self, name: str) -> None:
        pass

    def advance(self, kind: EntryKind, entries: int) -> None:
        if self._kind not in (None, kind):
            return
        self._left -= 1
        if self._fault is not None and self._left == 0:
            fault, self._fault = self._fault, None
            fault()


async def _synced_with_profile(slapd: Slapd, store_url: str, **overrides: Any) -> Settings:
    """The seed directory synced once, one user given profile data (owned by syncsvc)."""
    settings = settings_for(slapd, store_url, **overrides)
    assert RunStatus.SUCCESS == (await sync_once(settings)).status
    async with pipeline(settings) as service, service.engine.begin() as conn:
        await conn.execute(update(UserRow).where(UserRow.user_name == "ada.lovelace")
                           .values(profile={"headline": "first programmer", "pronouns": "she/her"}))
    return settings


async def _state(settings: Settings) -> Snapshot:
    async with pipeline(settings) as service:
        return await snapshot(service.engine)


async def _record(settings: Settings, run_id: str) -> runs.RunRecord:
    async with pipeline(settings) as service, service.engine.connect() as conn:
        record = await runs.get_run(conn, run_id)
    assert record is not None
    return record


class TestDirectoryFaults:
    async def test_slapd_killed_mid_full_sync(self, slapd: Slapd, store_url: str) -> None:
        """SIGKILL of slapd after the first page: the run fails naming the lost connection,
        nothing is deactivated or changed; once slapd is back the next run completes."""
        settings = await _synced_with_profile(slapd, store_url)
        slapd.delete(f"uid=noah.jones,{SALES}")  # a complete read would deactivate him
        before = await _state(settings)

        report = await sync_once(settings, progress=FaultAt(slapd.kill))

        assert (RunStatus.FAILED, 0, 0) == (report.status, report.deactivated, report.deleted)
        assert "connection lost" in (report.detail or "") or "reach" in (report.detail or "")
        assert before == await _state(settings)
        record = await _record(settings, report.run_id)
        assert ("failed", report.detail) == (record.status, record.detail)

        slapd.start()
        again = await sync_once(settings)
        assert (RunStatus.SUCCESS, 1, 0) == (again.status, again.deactivated, again.deleted)

    async def test_slapd_frozen_past_the_read_timeout(self, slapd: Slapd, store_url: str) -> None:
        """slapd SIGSTOPped (sockets open, no answer) longer than ldap.read_timeout: the run
        fails with a timeout reason instead of hanging, removes nothing; after SIGCONT it works."""
        settings = await _synced_with_profile(slapd, store_url, ldap_read_timeout=1.0,
                                              ldap_connect_timeout=1.0)
        slapd.delete(f"uid=noah.jones,{SALES}")
        before = await _state(settings)
        with stopped(slapd.pid):
            frozen = await sync_once(settings)  # frozen from the start: the bind times out
        assert (RunStatus.FAILED, 0) == (frozen.status, frozen.deactivated + frozen.deleted)
        assert "timed out" in (frozen.detail or ""), frozen.detail

        with contextlib.ExitStack() as later:  # frozen after the first page; SIGCONT on exit
            freeze = FaultAt(lambda: later.enter_context(stopped(slapd.pid)))
            mid = await sync_once(settings, progress=freeze)
        assert (RunStatus.FAILED, 0) == (mid.status, mid.deactivated + mid.deleted)
        assert "timed out" in (mid.detail or ""), mid.detail
        assert before == await _state(settings)
        assert "failed" == (await _record(settings, mid.run_id)).status

        again = await sync_once(settings)
        assert (RunStatus.SUCCESS, 1) == (again.status, again.deactivated)

    async def test_every_user_entry_gone_removes_nothing(
        self, slapd: Slapd, store_url: str
    ) -> None:
        """All 31 person entries deleted from the directory (the filter now matches nothing):
        the run is guarded with a reason, even with --allow-deletions; nothing changes; once the
        entries are back (same entryUUIDs) the next run finds everyone, creates and removes
        nothing."""
        settings = await _synced_with_profile(slapd, store_url)
        before = await _state(settings)
        people = slapd.search("(objectClass=inetOrgPerson)", ["*", "entryUUID"])
        dns = [line[4:] for line in people.splitlines() if line.startswith("dn: ")]
        assert 31 == len(dns)
        slapd.modify("\n".join(f"dn: {dn}\nchangetype: delete\n" for dn in dns))

        report = await sync_once(settings, allow_deletions=True)

        assert (RunStatus.GUARDED, 0, 0) == (report.status, report.deactivated, report.deleted)
        assert "returned no users" in (report.detail or "")
        assert before == await _state(settings)
        record = await _record(settings, report.run_id)
        assert ("guarded", True) == (record.status, "returned no users" in (record.detail or ""))

        slapd.add(people, relax=True)
        again = await sync_once(settings)
        assert (RunStatus.SUCCESS, 0, 0, 0) == (again.status, again.created, again.deactivated,
                                                again.deleted)
        assert before == await _state(settings)


@pytest.fixture(scope="module")
def big_slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    """A slapd with 1500 users and 30 groups, shared by the tests that need a long full run."""
    with Slapd.generated(tmp_path_factory.mktemp("big"), users=BIG_USERS, groups=30) as server:
        yield server


def _store_env(slapd: Slapd, store_url: str, **more: str) -> dict[str, str]:
    return syncsvc_env(
        SYNCSVC_LDAP__URL=slapd.url, SYNCSVC_LDAP__BIND_DN=slapd.service_dn,
        SYNCSVC_LDAP__BIND_PASSWORD=slapd.service_password, SYNCSVC_LDAP__BASE_DN=slapd.base_dn,
        SYNCSVC_LDAP__PAGE_SIZE=str(BIG_PAGE), SYNCSVC_SYNC__BATCH_SIZE=str(BIG_PAGE),
        SYNCSVC_STORE__URL=store_url, **more,
    )


def _big_settings(slapd: Slapd, store_url: str) -> Settings:
    """In-process settings for the big directory, with the pages the subprocesses use."""
    settings = settings_for(slapd, store_url, batch_size=BIG_PAGE)
    return dataclasses.replace(settings, ldap=dataclasses.replace(settings.ldap,
                                                                  page_size=BIG_PAGE))


async def _count_users(engine: Any) -> int:
    try:
        async with engine.connect() as conn:
            return int(await conn.scalar(select(func.count()).select_from(UserRow)) or 0)
    except Exception:  # the schema is not there yet, or the store is down on purpose
        return -1


async def _wait_for_users(engine: Any, at_least: int, proc: subprocess.Popen[Any]) -> int:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        written = await _count_users(engine)
        if written >= at_least:
            return written
        assert proc.poll() is None, f"syncsvc exited early with {proc.returncode}"
        await asyncio.sleep(0.05)
    raise AssertionError(f"fewer than {at_least} users written in 90 s")


class TestProcessKilled:
    async def test_sigkill_of_syncsvc_sync_mid_run(
        self, big_slapd: Slapd, store_url: str, tmp_path: Path
    ) -> None:
        """`syncsvc sync --full` SIGKILLed mid-run: only whole pages were written and every one of
        them survives; the next run closes the orphaned run as failed and completes."""
        engine = create_engine(StoreSettings(url=store_url))
        with (tmp_path / "sync.log").open("w") as err:
            proc = subprocess.Popen([sys.executable, "-m", "syncsvc", "sync", "--full"],
                                    cwd=tmp_path, env=_store_env(big_slapd, store_url),
                                    stdout=subprocess.DEVNULL, stderr=err)
        try:
            await _wait_for_users(engine, 300, proc)
            async with writes_held(store_url):  # the next page waits: the kill lands mid-write
                await asyncio.sleep(0.2)
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=30)
            before = await snapshot(engine)
            async with engine.connect() as conn:
                orphan = (await conn.execute(select(SyncRunRow))).one()
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            await engine.dispose()
        users, groups = len(before["scim_user"]), len(before["scim_group"])
        print(f"\nkilled with {users} users and {groups} groups committed")
        assert 0 == users % BIG_PAGE, f"{users} users: a page was half-written"
        assert users < BIG_USERS
        assert "running" == orphan.status

        settings = _big_settings(big_slapd, store_url)
        report = await sync_once(settings)
        after = await _state(settings)
        assert (RunStatus.SUCCESS, 0) == (report.status, report.deactivated + report.deleted)
        assert len(after["scim_user"]) + len(after["scim_group"]) - users - groups == report.created
        assert BIG_USERS == len(after["scim_user"])
        assert not any(lost_rows(before, after).values()), lost_rows(before, after)
        assert all(row["active"] for row in after["scim_user"])
        closed = await _record(settings, orphan.id)
        assert "failed" == closed.status and "interrupted" in (closed.detail or "")

    async def test_sigterm_of_serve_mid_sync_on_postgresql(
        self, big_slapd: Slapd, pg_admin_url: str, tmp_path: Path
    ) -> None:
        """SIGTERM reaching `serve` while a page of its sync waits to commit, on PostgreSQL
        (test_shutdown.py covers SQLite): exit 0, the page commits whole, the run is recorded
        as stopped by shutdown, and the next run completes with every committed row."""
        with postgres.fresh_database(pg_admin_url) as url:
            engine = create_engine(StoreSettings(url=url))
            with (tmp_path / "serve.log").open("w") as err:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "syncsvc", "serve"], cwd=tmp_path,
                    env=_store_env(big_slapd, url, SYNCSVC_HTTP__PORT=str(free_port()),
                                   SYNCSVC_SCHEDULE__ENABLED="false"),
                    stdout=subprocess.DEVNULL, stderr=err)
            try:
                await _wait_for_users(engine, 300, proc)
                async with writes_held(url):  # the signal lands while a page waits to commit
                    await asyncio.sleep(0.2)
                    proc.send_signal(signal.SIGTERM)
                    await asyncio.sleep(0.5)
                code = await asyncio.to_thread(proc.wait, 60)
                before = await snapshot(engine)
                async with engine.connect() as conn:
                    stopped_run = (await conn.execute(select(SyncRunRow))).one()
            finally:
                if proc.poll() is None:
                    proc.kill()
                proc.wait()
                await engine.dispose()
            users = len(before["scim_user"])
            assert 0 == code, (tmp_path / "serve.log").read_text()[-2000:]
            assert 0 == users % BIG_PAGE and users < BIG_USERS, users
            assert "failed" == stopped_run.status
            assert "stopped by shutdown" in (stopped_run.detail or "")

            settings = _big_settings(big_slapd, url)
            report = await sync_once(settings)
            after = await _state(settings)
        assert (RunStatus.SUCCESS, 0) == (report.status, report.deactivated + report.deleted)
        assert BIG_USERS == len(after["scim_user"])
        assert not any(lost_rows(before, after).values()), lost_rows(before, after)


@pytest.fixture(scope="module")
def pg_cluster() -> Iterator[Any]:
    """A PostgreSQL cluster of this module's own, to stop and start (never the shared one)."""
    with postgres.private_cluster() as cluster:
        yield cluster


class TestStoreFaults:
    async def test_a_run_that_lost_its_lock_stops(self, slapd: Slapd, pg_cluster: Any) -> None:
        """PostgreSQL restarted between two pages: the advisory lock went with its session and
        another replica may be syncing now, while pooled connections reconnect silently. The
        run stops before its next page, failed with the reason, and removes nothing; the next
        run takes the lock again and succeeds."""
        url = postgres.sqlalchemy_url(pg_cluster.url,
                                      await postgres.create_database(pg_cluster.url))
        settings = await _synced_with_profile(slapd, url)
        slapd.delete(f"uid=noah.jones,{SALES}")
        before = await _state(settings)

        def restart() -> None:
            pg_cluster.halt()
            pg_cluster.resume()

        # The third page of users: the single page of groups is long written by then.
        report = await sync_once(settings, progress=FaultAt(restart, EntryKind.USER, 3))

        assert (RunStatus.FAILED, 0) == (report.status, report.deactivated + report.deleted)
        assert "lost its lock" in (report.detail or ""), report.detail
        assert before == await _state(settings)
        assert "failed" == (await _record(settings, report.run_id)).status
        again = await sync_once(settings)
        assert (RunStatus.SUCCESS, 1) == (again.status, again.deactivated)

    async def test_postgresql_restarted_during_scim_traffic_and_a_sync(
        self, big_slapd: Slapd, pg_cluster: Any, tmp_path: Path
    ) -> None:
        """A private PostgreSQL stopped and started while `serve` syncs and answers SCIM reads:
        reads answer 200 or 503 with a SCIM error body (never a 500), the sync is recorded as
        failed with the reason, and without restarting syncsvc reads work again and a new full
        run completes with every committed row and the profile data intact."""
        cluster = pg_cluster
        url = postgres.sqlalchemy_url(cluster.url, await postgres.create_database(cluster.url))
        engine = create_engine(StoreSettings(url=url))
        await upgrade(engine)
        async with engine.begin() as conn:
            token = await create_token(conn, name="t", scopes="scim:read,scim:write,admin",
                                       now=datetime.now(UTC))
        port = free_port()
        log = tmp_path / "serve.log"  # a file, not a pipe: a full pipe would block the server
        with log.open("w") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "syncsvc", "serve"], cwd=tmp_path,
                env=_store_env(big_slapd, url, SYNCSVC_HTTP__PORT=str(port),
                               SYNCSVC_SCHEDULE__ENABLED="false"),
                stdout=subprocess.DEVNULL, stderr=err)
        base = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"}
        timeout = aiohttp.ClientTimeout(total=30)
        try:
            async with aiohttp.ClientSession(base, headers=headers, timeout=timeout) as http:
                await _wait_for_users(engine, 200, proc)  # the startup full run is writing
                async with writes_held(url):  # its next page waits: the stop lands mid-run
                    ada = await _first_user_id(http)
                    await _patch_profile(http, ada, {"headline": "kept across a restart"})
                    before = await snapshot(engine)
                    seen: list[tuple[int, Any]] = []
                    stop = asyncio.Event()
                    readers = [asyncio.create_task(_read_loop(http, ada, seen, stop))
                               for _ in range(4)]
                    await asyncio.sleep(0.3)
                    cluster.halt()
                await asyncio.sleep(2.0)
                async with http.get("/readyz") as response:
                    assert 503 == response.status
                cluster.resume()
                await asyncio.sleep(1.0)
                stop.set()
                await asyncio.gather(*readers)

                statuses = {status for status, _ in seen}
                print(f"\nreads during the restart: {Counter(s for s, _ in seen)}")
                assert statuses <= {200, 503}, f"unexpected statuses {statuses}"
                assert 503 in statuses and 200 in statuses
                for status, body in seen:
                    if status == 503:
                        assert ([ERROR_SCHEMA], "503") == (body["schemas"], body["status"])
                        assert "store is unavailable" in body["detail"]
                        assert "5" == body["Retry-After"]
                async with http.get("/readyz") as response:
                    assert 200 == response.status
                async with http.get(f"/scim/v2/Users/{ada}") as response:
                    body = await response.json(content_type=None)
                    assert 200 == response.status
                    assert "kept across a restart" == body[PROFILE]["headline"]

                startup = await _wait_for_run_end(engine)
                assert "failed" == startup.status
                assert "store unavailable" in (startup.detail or "")
                async with http.post("/admin/sync", json={"mode": "full"}) as response:
                    assert 202 == response.status, await response.text()
                    run_id = (await response.json())["id"]
                record = await _wait_for_run_end(engine, run_id)
                assert "success" == record.status, record.detail
                after = await snapshot(engine)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
            await engine.dispose()
        err = log.read_text()
        assert 0 == proc.returncode, err[-2000:]
        assert "http.unhandled" not in err and "Traceback" not in err
        assert BIG_USERS == len(after["scim_user"])
        assert not any(lost_rows(before, after).values()), lost_rows(before, after)
        assert all(row["active"] for row in after["scim_user"])

    async def test_sqlite_store_read_only(self, slapd: Slapd, tmp_path: Path,
                                          aiohttp_client: Any) -> None:
        """The SQLite store stops accepting writes (injected: see ReadOnlySwitch): SCIM writes
        answer 503 with a SCIM error, reads go on, a sync fails with the reason and removes
        nothing; once writable again, writes and syncs work without a restart."""
        store_url = f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
        settings = await _synced_with_profile(slapd, store_url)
        slapd.delete(f"uid=noah.jones,{SALES}")
        engine = create_engine(StoreSettings(url=store_url))
        switch = ReadOnlySwitch(engine)
        try:
            await upgrade(engine)
            async with engine.begin() as conn:
                token = await create_token(conn, name="t", scopes="scim:read,scim:write",
                                           now=datetime.now(UTC))
            http = await aiohttp_client(create_app(engine, settings))
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"}
            ada = await _first_user_id(http, headers)
            before = await snapshot(engine)

            switch.on = True
            patch = await _patch_profile(http, ada, {"headline": "never stored"}, headers,
                                         expect=503)
            assert ([ERROR_SCHEMA], "503") == (patch["schemas"], patch["status"])
            assert "read-only" in patch["detail"]
            guest = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                     "userName": "guest.user"}
            created = await http.post("/scim/v2/Users", headers=headers, json=guest)
            assert 503 == created.status
            read = await http.get(f"/scim/v2/Users/{ada}", headers=headers)
            assert 200 == read.status
            listed = await http.get("/scim/v2/Users", headers=headers, params={"count": "100"})
            total = (await listed.json(content_type=None))["totalResults"]
            assert (200, 30) == (listed.status, total)
            async with pipeline(settings) as service:  # the run writes through the failing engine
                frozen = await run_sync(dataclasses.replace(service.sync, engine=engine),
                                        SyncOptions())
            assert (RunStatus.FAILED, 0) == (frozen.status, frozen.deactivated + frozen.deleted)
            assert "read-only" in (frozen.detail or ""), frozen.detail
            assert before == await snapshot(engine)

            switch.on = False
            await _patch_profile(http, ada, {"headline": "stored now"}, headers)
            again = await sync_once(settings)
            assert (RunStatus.SUCCESS, 1) == (again.status, again.deactivated)
        finally:
            await engine.dispose()


async def _first_user_id(http: Any, headers: dict[str, str] | None = None) -> str:
    async with http.get("/scim/v2/Users", params={"count": "1"}, headers=headers) as response:
        body = await response.json(content_type=None)
        assert 200 == response.status, body
    return str(body["Resources"][0]["id"])


async def _patch_profile(http: Any, user_id: str, value: dict[str, Any],
                         headers: dict[str, str] | None = None, expect: int = 200) -> Any:
    body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "add", "path": PROFILE, "value": value}]}
    async with http.patch(f"/scim/v2/Users/{user_id}", json=body, headers=headers) as response:
        text = await response.text()
        assert expect == response.status, text
        return await response.json(content_type=None)


async def _read_loop(http: Any, user_id: str, seen: list[tuple[int, Any]],
                     stop: asyncio.Event) -> None:
    paths = [f"/scim/v2/Users/{user_id}", "/scim/v2/Users?count=5",
             '/scim/v2/Users?filter=userName sw "a"&count=3', "/scim/v2/Groups?count=2"]
    i = 0
    while not stop.is_set():
        async with http.get(paths[i % len(paths)]) as response:
            body = await response.json(content_type=None)
            if response.status == 503:  # the client is told when to come back
                body["Retry-After"] = response.headers.get("Retry-After")
            seen.append((response.status, body))
        i += 1
        await asyncio.sleep(0.02)


async def _wait_for_run_end(engine: Any, run_id: str | None = None) -> Any:
    """The run *run_id* (else the first run) once it is no longer running."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        async with engine.connect() as conn:
            query = select(SyncRunRow).order_by(SyncRunRow.started)
            if run_id is not None:
                query = query.where(SyncRunRow.id == run_id)
            row = (await conn.execute(query.limit(1))).first()
        if row is not None and row.status != "running":
            return row
        await asyncio.sleep(0.2)
    raise AssertionError(f"run {run_id or '(first)'} did not end within 90 s")
