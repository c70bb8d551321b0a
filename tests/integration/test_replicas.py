"""Two `serve` replicas on one PostgreSQL: both serve, exactly one syncs at a time."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import select

from syncsvc.auth import create_token
from syncsvc.settings import StoreSettings
from syncsvc.store import create_engine, upgrade
from syncsvc.store.schema import SyncRunRow
from tests.support import postgres
from tests.support.logscan import LogScan
from tests.support.slapd import Slapd


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:] if log.exists() else ""


async def _wait_ready(port: int, proc: subprocess.Popen[Any], log: Path) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(150):
            if proc.poll() is not None:  # it exited (a port taken, a crash): say why, now
                raise AssertionError(f"replica on {port} exited {proc.returncode}:\n{_tail(log)}")
            try:
                async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError(f"replica on {port} never became ready:\n{_tail(log)}")


class TestReplicas:
    async def test_two_replicas_share_one_store_without_overlapping_syncs(
        self, slapd: Slapd, pg_admin_url: str, tmp_path: Path, logscan: LogScan
    ) -> None:
        """Both answer SCIM; the runs recorded never overlap in time; several ran."""
        with postgres.fresh_database(pg_admin_url) as url:
            engine = create_engine(StoreSettings(url=url))
            await upgrade(engine)
            async with engine.begin() as conn:
                token = await create_token(conn, name="t", scopes="scim:read", now=datetime.now(UTC))
            ports = [_free_port(), _free_port()]
            env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCSVC_")}
            env.update(
                SYNCSVC_LDAP__URL=slapd.url, SYNCSVC_LDAP__BIND_DN=slapd.service_dn,
                SYNCSVC_LDAP__BIND_PASSWORD=slapd.service_password,
                SYNCSVC_LDAP__BASE_DN=slapd.base_dn, SYNCSVC_STORE__URL=url,
                SYNCSVC_SCHEDULE__INCREMENTAL_INTERVAL="1", SYNCSVC_SCHEDULE__JITTER="0",
                SYNCSVC_LOG__FORMAT="json",
            )
            # Logs go to files, not pipes: a replica syncing every second fills a pipe nobody
            # reads until the end, and then blocks on its next log line.
            logs = [tmp_path / f"replica-{port}.log" for port in ports]
            procs = []
            for port, log in zip(ports, logs, strict=True):
                with log.open("w") as err:
                    procs.append(subprocess.Popen(
                        [sys.executable, "-m", "syncsvc", "serve"], cwd=tmp_path,
                        env={**env, "SYNCSVC_HTTP__PORT": str(port)},
                        stdout=subprocess.DEVNULL, stderr=err))
            try:
                await asyncio.gather(*(_wait_ready(port, proc, log)
                                       for port, proc, log in zip(ports, procs, logs, strict=True)))
                await asyncio.sleep(6)  # several scheduled rounds on both replicas
                async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as s:
                    for port in ports:
                        async with s.get(f"http://127.0.0.1:{port}/scim/v2/Users?count=1") as r:
                            body: Any = await r.json(content_type=None)
                            assert (200, 30) == (r.status, body["totalResults"])
            finally:
                for proc in procs:
                    proc.send_signal(signal.SIGTERM)
                for proc in procs:
                    proc.wait(timeout=30)
                for log in logs:
                    logscan.scan(log.read_text(errors="replace"), "subprocess:syncsvc serve")
            assert [0, 0] == [p.returncode for p in procs], [_tail(log) for log in logs]
            async with engine.connect() as conn:
                rows = list(await conn.execute(
                    select(SyncRunRow.started, SyncRunRow.ended, SyncRunRow.status)
                    .order_by(SyncRunRow.started)))
            await engine.dispose()
        assert len(rows) >= 3
        assert all(r.ended is not None for r in rows)
        for earlier, later in zip(rows, rows[1:]):
            assert earlier.ended <= later.started, "two runs overlapped"
        assert {"success"} == {r.status for r in rows}
