"""A bounded soak: mixed SCIM reads and writes at 32 connections against `syncsvc serve` while
syncs run one after another, then: no error, bounded memory, no leaked connection.

CI runs the short form (60 s). The long form is the same test with more time:

    SYNCSVC_SOAK_SECONDS=600 .venv/bin/python -m pytest tests/integration/test_soak.py -s

``SYNCSVC_SOAK_STORE=sqlite`` runs it on SQLite instead of PostgreSQL (a fresh database on the
test server); ``SYNCSVC_SOAK_REPORT=FILE`` also writes the figures there as JSON. The figures
(requests, req/s, p50/p99, RSS, runs) are printed either way (shown with ``-s``).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from syncsvc.auth import create_token
from syncsvc.settings import StoreSettings
from syncsvc.store import create_engine, upgrade
from tests.support import postgres
from tests.support.faults import free_port, rss_kib, syncsvc_env
from tests.support.slapd import Slapd

ROOT = Path(__file__).resolve().parents[2]
SECONDS = float(os.environ.get("SYNCSVC_SOAK_SECONDS", "60"))
WARMUP = max(10.0, SECONDS / 6)
CONNECTIONS = 32
USERS = 300
PROFILE = "urn:syncsvc:params:scim:schemas:extension:profile:2.0:User"
CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SCIM_JSON = "application/scim+json"


@dataclass
class Tally:
    """What the load saw: latencies per request, errors with their first examples."""

    latencies: list[float] = field(default_factory=list)
    operations: Counter[str] = field(default_factory=Counter)
    errors: int = 0
    examples: list[str] = field(default_factory=list)

    def check(self, op: str, status: int, expected: int, started: float, body: str) -> None:
        self.latencies.append(time.perf_counter() - started)
        self.operations[op] += 1
        if status != expected:
            self.errors += 1
            if len(self.examples) < 5:
                self.examples.append(f"{op}: {status} (expected {expected}): {body[:300]}")


@pytest.fixture
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """PostgreSQL by default (a fresh database), SQLite with SYNCSVC_SOAK_STORE=sqlite."""
    if os.environ.get("SYNCSVC_SOAK_STORE", "postgresql") == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
        return
    with postgres.fresh_database(request.getfixturevalue("pg_admin_url")) as url:
        yield url


@pytest.fixture
def directory(make_slapd: Callable[[str | Path], Slapd], tmp_path: Path) -> Slapd:
    seed = tmp_path / "soak.ldif"
    subprocess.run([sys.executable, str(ROOT / "bench" / "gen_ldif.py"), "--users", str(USERS),
                    "--groups", "20", "-o", str(seed)], check=True)
    return make_slapd(seed)


class TestSoak:
    async def test_mixed_scim_load_while_syncing(
        self, directory: Slapd, store: str, tmp_path: Path
    ) -> None:
        """32 connections of reads and writes plus back-to-back syncs: every response has the
        expected status, RSS grows under 10% after warm-up, and no connection is left open."""
        engine = create_engine(StoreSettings(url=store))
        await upgrade(engine)
        async with engine.begin() as conn:
            token = await create_token(conn, name="soak", scopes="admin", now=datetime.now(UTC))
        await engine.dispose()
        port = free_port()
        log = tmp_path / "serve.log"  # a file: a pipe nobody reads would fill and block the server
        with log.open("w") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "syncsvc", "serve"], cwd=tmp_path,
                env=syncsvc_env(
                    SYNCSVC_LDAP__URL=directory.url, SYNCSVC_LDAP__BIND_DN=directory.service_dn,
                    SYNCSVC_LDAP__BIND_PASSWORD=directory.service_password,
                    SYNCSVC_LDAP__BASE_DN=directory.base_dn, SYNCSVC_STORE__URL=store,
                    SYNCSVC_HTTP__PORT=str(port), SYNCSVC_SCHEDULE__ENABLED="false",
                    SYNCSVC_LDAP__PAGE_SIZE="100", SYNCSVC_SYNC__BATCH_SIZE="100",
                    SYNCSVC_LOG__LEVEL="warning",
                    # The SCIM caches fill up to their bound by design (every PATCH is a new
                    # rendering to keep): small bounds, so that growth past them is a leak.
                    SYNCSVC_SCIM__RESPONSE_CACHE_BYTES="1048576",
                    SYNCSVC_SCIM__RENDERED_CACHE_BYTES="1048576"),
                stdout=subprocess.DEVNULL, stderr=err)
        try:
            figures = await _soak(port, token, proc.pid, directory, store)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
        figures["server_exit"] = proc.returncode
        print("\nsoak figures:", json.dumps(figures, indent=1))
        report = os.environ.get("SYNCSVC_SOAK_REPORT")
        if report:
            Path(report).write_text(json.dumps(figures, indent=1))
        errors_in_log = [l for l in log.read_text().splitlines() if '"level": "error"' in l
                         or "Traceback" in l]
        assert 0 == figures["errors"], figures["error_examples"]
        assert 0 == figures["sync_failures"], figures["sync_failures_detail"]
        assert sum(figures["syncs"].values()) >= 2, "syncs did not run repeatedly"
        assert [] == errors_in_log[:3]
        assert figures["rss_growth"] < 0.10, figures
        assert 0 == figures["established_at_end"], "client connections left open on the server"
        assert 0 == figures["db_busy_at_end"], "database sessions still checked out at the end"
        assert figures["db_sessions_at_end"] <= 15, "more sessions than the pool allows (10 + 5)"
        assert 0 == proc.returncode


async def _soak(port: int, token: str, pid: int, directory: Slapd, store: str) -> dict[str, Any]:
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": SCIM_JSON}
    timeout = aiohttp.ClientTimeout(total=60)
    # The syncs go through a session of their own: the load's 32 connections are always busy.
    async with aiohttp.ClientSession(base, headers=headers, timeout=timeout) as admin:
        await _wait_ready(admin)
        await _wait_until_synced(admin)
        ids = await _user_ids(admin)
        figures = await _load(base, headers, timeout, ids, admin, pid, directory)
    # Every client is closed now: the server must hold no connection of ours, and its pool
    # must have every database session back.
    figures["established_at_end"] = await _settled(lambda: _established(port))
    figures["db_busy_at_end"], figures["db_sessions_at_end"] = await _db_sessions(store)
    return figures


async def _load(base: str, headers: dict[str, str], timeout: aiohttp.ClientTimeout, ids: list[str],
                admin: aiohttp.ClientSession, pid: int, directory: Slapd) -> dict[str, Any]:
    tally = Tally()
    runs: Counter[str] = Counter()
    failures: list[str] = []
    durations: list[float] = []
    stop = asyncio.Event()
    rng = random.Random(7)
    connector = aiohttp.TCPConnector(limit=CONNECTIONS)
    async with aiohttp.ClientSession(base, headers=headers, timeout=timeout,
                                     connector=connector) as http:
        workers = [asyncio.create_task(_worker(http, ids, tally, stop, random.Random(n)))
                   for n in range(CONNECTIONS)]
        syncer = asyncio.create_task(
            _sync_loop(admin, directory, rng, runs, failures, durations, stop))
        started = time.perf_counter()
        await asyncio.sleep(WARMUP)
        rss_warm, fds_warm = rss_kib(pid), len(os.listdir(f"/proc/{pid}/fd"))
        warm_requests = len(tally.latencies)
        await asyncio.sleep(SECONDS - WARMUP)
        stop.set()
        await asyncio.gather(*workers, syncer)
        elapsed = time.perf_counter() - started
    rss_end, fds_end = rss_kib(pid), len(os.listdir(f"/proc/{pid}/fd"))
    latencies = sorted(tally.latencies)
    return {
        "seconds": round(elapsed, 1), "warmup_seconds": WARMUP, "connections": CONNECTIONS,
        "requests": len(latencies), "requests_after_warmup": len(latencies) - warm_requests,
        "req_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(1000 * statistics.median(latencies), 1),
        "p99_ms": round(1000 * latencies[int(0.99 * (len(latencies) - 1))], 1),
        "operations": dict(tally.operations), "errors": tally.errors,
        "error_examples": tally.examples, "syncs": dict(runs), "sync_seconds": durations,
        "sync_failures": len(failures),
        "sync_failures_detail": failures[:3],
        "rss_kib_after_warmup": rss_warm, "rss_kib_end": rss_end,
        "rss_growth": round((rss_end - rss_warm) / rss_warm, 4),
        "fds_after_warmup": fds_warm, "fds_end": fds_end,
    }


async def _worker(http: aiohttp.ClientSession, ids: list[str], tally: Tally, stop: asyncio.Event,
                  rng: random.Random) -> None:
    """One connection's worth of load: a weighted mix of SCIM reads and writes."""
    async def call(op: str, method: str, path: str, expected: int, **kw: Any) -> Any:
        started = time.perf_counter()
        async with http.request(method, path, **kw) as response:
            text = await response.text()
            tally.check(op, response.status, expected, started, text)
            return json.loads(text) if text and response.status == expected else None

    async def get_by_id() -> None:
        await call("get", "GET", f"/scim/v2/Users/{rng.choice(ids)}", 200)

    async def filtered() -> None:
        letter = rng.choice("abcdefghijklmnoprstw")
        await call("filter", "GET", "/scim/v2/Users", 200,
                   params={"filter": f'userName sw "{letter}" and active eq true', "count": "10"})

    async def page() -> None:
        await call("page", "GET", "/scim/v2/Users", 200,
                   params={"startIndex": str(rng.randint(1, USERS)), "count": "50"})

    async def groups() -> None:
        await call("groups", "GET", "/scim/v2/Groups", 200,
                   params={"count": "5", "excludedAttributes": "members"})

    async def patch() -> None:
        body = {"schemas": [PATCH_OP], "Operations": [
            {"op": "replace", "path": f"{PROFILE}:headline", "value": f"soak {rng.random():.6f}"}]}
        await call("patch", "PATCH", f"/scim/v2/Users/{rng.choice(ids)}", 200, json=body)

    async def create_delete() -> None:
        name = f"soak-{uuid.uuid4().hex[:12]}"
        made = await call("post", "POST", "/scim/v2/Users", 201,
                          json={"schemas": [CORE_USER], "userName": name})
        if made is not None:
            await call("delete", "DELETE", f"/scim/v2/Users/{made['id']}", 204)

    ops: list[tuple[int, Callable[[], Awaitable[None]]]] = [
        (30, get_by_id), (20, filtered), (15, page), (5, groups), (20, patch), (10, create_delete),
    ]
    choices = [fn for weight, fn in ops for _ in range(weight)]
    while not stop.is_set():
        await rng.choice(choices)()


async def _sync_loop(http: aiohttp.ClientSession, directory: Slapd, rng: random.Random,
                     runs: Counter[str], failures: list[str], durations: list[float],
                     stop: asyncio.Event) -> None:
    """Syncs back to back through the admin API, full and incremental in turn; before each, one
    directory change so that runs have something to write."""
    found = await asyncio.to_thread(directory.search, "(objectClass=inetOrgPerson)", ["1.1"])
    people = sorted(line[4:] for line in found.splitlines() if line.startswith("dn: "))
    n = 0
    while not stop.is_set():
        await asyncio.to_thread(_touch_user, directory, rng.choice(people), n)
        mode = "full" if n % 2 == 0 else "incremental"
        began = time.perf_counter()
        async with http.post("/admin/sync", json={"mode": mode}) as response:
            if response.status != 202:
                failures.append(f"POST /admin/sync: {response.status} {await response.text()}")
                await asyncio.sleep(0.5)
                continue
            run_id = (await response.json())["id"]
        while True:
            async with http.get(f"/admin/runs/{run_id}") as response:
                run = await response.json(content_type=None)
            if run.get("status") != "running":
                break
            await asyncio.sleep(0.2)
        runs[f"{mode}:{run['status']}"] += 1
        durations.append(round(time.perf_counter() - began, 2))
        if run["status"] != "success":
            failures.append(f"{mode} run {run_id}: {run['status']} {run.get('detail')}")
        n += 1


def _touch_user(directory: Slapd, dn: str, n: int) -> None:
    """Change one user's title in the directory (as an admin would), so the next sync writes."""
    directory.modify(f"dn: {dn}\nchangetype: modify\nreplace: title\ntitle: Soak title {n}\n")


async def _wait_ready(http: aiohttp.ClientSession) -> None:
    for _ in range(300):
        try:
            async with http.get("/readyz") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError("syncsvc serve never became ready")


async def _wait_until_synced(http: aiohttp.ClientSession) -> None:
    """The startup full run has ended, successfully."""
    for _ in range(600):
        async with http.get("/admin/runs") as response:
            runs = (await response.json(content_type=None))["runs"]
        if runs and runs[0]["status"] != "running":
            assert "success" == runs[0]["status"], runs[0]
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the startup sync did not end")


async def _user_ids(http: aiohttp.ClientSession) -> list[str]:
    async with http.get("/scim/v2/Users", params={"count": str(USERS), "attributes": "id"}) as r:
        body = await r.json(content_type=None)
    return [str(u["id"]) for u in body["Resources"]]


def _established(port: int) -> int:
    """Established TCP connections whose local end is the server's port (server side)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == "01":  # 01: ESTABLISHED
                count += 1
    return count


async def _settled(measure: Callable[[], int]) -> int:
    """*measure* once it reaches 0, or its last value after 5 s (closing takes a moment)."""
    value = measure()
    for _ in range(50):
        if value == 0:
            break
        await asyncio.sleep(0.1)
        value = measure()
    return value


async def _db_sessions(store: str) -> tuple[int, int]:
    """(sessions not idle, all sessions) on the store's PostgreSQL database, ours excluded: the
    server's pool, whose connections must all be back (idle) once the load is over. (0, 0) on
    SQLite, where the pool's connections are files of the same process."""
    if not store.startswith("postgresql"):
        return 0, 0
    conn = await asyncpg.connect(store.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        query = ("SELECT count(*) FILTER (WHERE state <> 'idle'), count(*) FROM pg_stat_activity "
                 "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        for _ in range(50):
            busy, total = await conn.fetchrow(query)
            if busy == 0:
                break
            await asyncio.sleep(0.1)
        return int(busy), int(total)
    finally:
        await conn.close()
