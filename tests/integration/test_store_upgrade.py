"""Schema upgrades as replicas run them: at the same moment, on one fresh database."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from syncsvc.settings import StoreSettings
from syncsvc.store import create_engine, current_revision, head_revision, upgrade
from tests.integration.test_cli import clean_env
from tests.support import postgres


async def _upgrade_together(url: str, n: int) -> list[str | None]:
    """``n`` engines (pools of their own, as replicas have) upgrade at once; their revisions."""
    engines = [create_engine(StoreSettings(url=url)) for _ in range(n)]
    try:
        await asyncio.gather(*(upgrade(e) for e in engines))
        return [await current_revision(e) for e in engines]
    finally:
        for engine in engines:
            await engine.dispose()


class TestConcurrentUpgrade:
    async def test_four_engines_on_a_fresh_postgresql_end_at_head(self, pg_admin_url: str) -> None:
        """Four upgrades at once on an empty database: no error, every one sees head."""
        with postgres.fresh_database(pg_admin_url) as url:
            assert [head_revision()] * 4 == await _upgrade_together(url, 4)

    async def test_four_engines_on_a_fresh_sqlite_file_end_at_head(self, tmp_path: Path) -> None:
        """The same on SQLite (a file lock beside the database)."""
        url = f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
        assert [head_revision()] * 4 == await _upgrade_together(url, 4)

    def test_two_db_upgrade_processes_on_a_fresh_postgresql(
        self, pg_admin_url: str, tmp_path: Path
    ) -> None:
        """Two `syncsvc db upgrade` started together (two replicas booting): both exit 0 at head."""
        with postgres.fresh_database(pg_admin_url) as url:
            env = {**clean_env(), "SYNCSVC_STORE__URL": url}
            procs = [subprocess.Popen([sys.executable, "-m", "syncsvc", "db", "upgrade"],
                                      cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True) for _ in range(2)]
            outputs = [p.communicate(timeout=120) for p in procs]
        for proc, (out, err) in zip(procs, outputs):
            expected = (0, f"schema at revision {head_revision()}")
            assert expected == (proc.returncode, out.strip()), err
