"""SIGTERM while `serve` is in the middle of a full sync of 10k users."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import func, select

from syncsvc.settings import StoreSettings
from syncsvc.store import create_engine
from syncsvc.store.schema import SyncRunRow, UserRow
from tests.integration.syncenv import settings_for, sync_once
from tests.support.slapd import Slapd


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


ROOT = Path(__file__).resolve().parents[2]
PAGE = 500


class TestShutdownDuringSync:
    async def test_sigterm_mid_sync_exits_0_with_whole_pages_only(
        self, make_slapd: Callable[[str | Path], Slapd], tmp_path: Path
    ) -> None:
        """Exit 0; the run is recorded as stopped; only whole pages were written; a rerun completes."""
        seed = tmp_path / "10k.ldif"
        subprocess.run([sys.executable, str(ROOT / "bench" / "gen_ldif.py"), "--users", "10000",
                        "--groups", "50", "-o", str(seed)], check=True)
        slapd = make_slapd(seed)
        store = f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCSVC_")}
        env.update(SYNCSVC_LDAP__URL=slapd.url, SYNCSVC_LDAP__BIND_DN=slapd.service_dn,
                   SYNCSVC_LDAP__BIND_PASSWORD=slapd.service_password,
                   SYNCSVC_LDAP__BASE_DN=slapd.base_dn, SYNCSVC_LDAP__PAGE_SIZE=str(PAGE),
                   SYNCSVC_SYNC__BATCH_SIZE=str(PAGE), SYNCSVC_STORE__URL=store,
                   SYNCSVC_HTTP__PORT=str(_free_port()), SYNCSVC_LOG__FORMAT="json")
        proc = subprocess.Popen([sys.executable, "-m", "syncsvc", "serve"], cwd=tmp_path, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        engine = create_engine(StoreSettings(url=store))
        try:
            deadline = time.monotonic() + 60
            written = 0
            while time.monotonic() < deadline and written < 1000:
                time.sleep(0.2)
                try:
                    async with engine.connect() as conn:
                        written = await conn.scalar(select(func.count()).select_from(UserRow)) or 0
                except Exception:  # the schema is not there yet
                    written = 0
            assert 1000 <= written < 10000, f"stopped too late or never started ({written})" + (
                proc.stderr.read()[-3000:] if proc.poll() is not None and proc.stderr else "")
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=60)
            assert 0 == proc.returncode, err[-2000:]
            async with engine.connect() as conn:
                users = await conn.scalar(select(func.count()).select_from(UserRow)) or 0
                run = (await conn.execute(select(SyncRunRow))).one()
            assert 0 == users % PAGE, f"{users} users: a page was half-written"
            assert users < 10000
            assert ("failed", True) == (run.status, "stopped by shutdown" in (run.detail or ""))
        finally:
            if proc.poll() is None:
                proc.kill()
            await engine.dispose()
        report = await sync_once(settings_for(slapd, store))
        assert (10000 - users, 10050) == (report.created, report.read)
