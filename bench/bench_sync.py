"""Sync benchmark: a generated directory in a private slapd, synced into SQLite and PostgreSQL.

    .venv/bin/python bench/bench_sync.py --users 10000 --groups 500

Prints one JSON object: the bare ldap3 paged read of the same entries (the floor the pipeline
sits on), then per store a first full sync and a no-op full sync, with seconds, entries/s and
the ratio to the bare read measured in the same run. Needs slapd (scripts/test installs it) and,
for PostgreSQL, the server on 127.0.0.1:5432 or SYNCSVC_TEST_PG_URL.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import ldap3  # noqa: E402

from syncsvc.domain import RunMode  # noqa: E402
from syncsvc.service import open_service  # noqa: E402
from syncsvc.settings import LdapSettings, Settings, StoreSettings, SyncSettings  # noqa: E402
from syncsvc.sync import SyncOptions, run_sync  # noqa: E402
from tests.support import postgres  # noqa: E402
from tests.support.slapd import Slapd  # noqa: E402

PAGED_OID = "1.2.840.113556.1.4.319"


def bare_read(slapd: Slapd, page_size: int) -> tuple[float, int]:
    """ldap3's own paged loop over users and groups with every attribute: the baseline."""
    started = time.perf_counter()
    conn = ldap3.Connection(ldap3.Server(slapd.url, get_info=ldap3.NONE), slapd.service_dn,
                            slapd.service_password, auto_bind=True)
    count = 0
    for flt in ("(objectClass=inetOrgPerson)",
                "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=posixGroup))"):
        cookie = None
        while True:
            conn.search(slapd.base_dn, flt, attributes=["*", "entryUUID", "modifyTimestamp"],
                        paged_size=page_size, paged_cookie=cookie)
            count += len(conn.response)
            cookie = conn.result["controls"][PAGED_OID]["value"]["cookie"]
            if not cookie:
                break
    conn.unbind()
    return time.perf_counter() - started, count


async def timed_sync(settings: Settings) -> dict[str, float | int | str]:
    async with open_service(settings) as service:
        started = time.perf_counter()
        report = await run_sync(service.sync, SyncOptions(mode=RunMode.FULL, trigger="bench"))
        seconds = time.perf_counter() - started
    return {"seconds": round(seconds, 3), "entries_per_s": round(report.read / seconds),
            "status": report.status.value, "read": report.read, "created": report.created,
            "updated": report.updated, "unchanged": report.unchanged}


async def bench_store(slapd: Slapd, store_url: str, page_size: int) -> dict[str, object]:
    settings = Settings(
        ldap=LdapSettings(url=(slapd.url,), bind_dn=slapd.service_dn,
                          bind_password=slapd.service_password, base_dn=slapd.base_dn,
                          page_size=page_size),
        store=StoreSettings(url=store_url),
        sync=SyncSettings(batch_size=page_size),
    )
    first = await timed_sync(settings)
    noop = await timed_sync(settings)
    return {"first_full": first, "noop_full": noop}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--groups", type=int, default=500)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--stores", default="sqlite,postgresql")
    args = parser.parse_args()
    logging_quiet()
    with tempfile.TemporaryDirectory(prefix="syncsvc-bench-") as tmp:
        work = Path(tmp)
        ldif = work / "seed.ldif"
        subprocess.run([sys.executable, str(ROOT / "bench" / "gen_ldif.py"), "--users",
                        str(args.users), "--groups", str(args.groups), "-o", str(ldif)], check=True)
        with Slapd.create(work / "slapd", ldif) as slapd:
            bare_s, entries = bare_read(slapd, args.page_size)
            out: dict[str, object] = {"users": args.users, "groups": args.groups,
                                      "entries": entries, "bare_ldap3_read_s": round(bare_s, 3)}
            for store in args.stores.split(","):
                if store == "sqlite":
                    url = f"sqlite+aiosqlite:///{work / 'bench.db'}"
                    out["sqlite"] = asyncio.run(bench_store(slapd, url, args.page_size))
                else:
                    with postgres.fresh_database(postgres.pg_admin_url()) as url:
                        out["postgresql"] = asyncio.run(bench_store(slapd, url, args.page_size))
            for store in ("sqlite", "postgresql"):
                result = out.get(store)
                if isinstance(result, dict):
                    for run in result.values():
                        run["ratio_to_bare_read"] = round(run["seconds"] / bare_s, 2)
            out["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(out, indent=2))


def logging_quiet() -> None:
    from syncsvc.logconfig import configure_logging
    from syncsvc.settings import LogSettings

    configure_logging(LogSettings(level="warning", format="console"))


if __name__ == "__main__":
    main()
