"""SCIM read benchmark: a synced store of N generated users behind the real server.

    .venv/bin/python bench/bench_scim.py --users 10000 --seconds 5

The directory comes from bench/gen_ldif.py through the LDIF source (no slapd needed), synced
into SQLite. The server runs in this process; bench/loadgen.py drives it from another process
with 32 connections. Each scenario is compared with a baseline measured in the same run: a
minimal aiohttp handler returning a fixed body of the same size.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from syncsvc.auth import create_token  # noqa: E402
from syncsvc.domain import RunMode  # noqa: E402
from syncsvc.http import create_app  # noqa: E402
from syncsvc.logconfig import configure_logging  # noqa: E402
from syncsvc.service import open_service  # noqa: E402
from syncsvc.settings import LdapSettings, LogSettings, Settings, StoreSettings  # noqa: E402
from syncsvc.sync import SyncOptions, run_sync  # noqa: E402


async def load(url: str, seconds: float, headers: list[str], method: str = "GET",
               body: str | None = None) -> dict[str, float]:
    cmd = [sys.executable, str(ROOT / "bench" / "loadgen.py"), url, "--seconds", str(seconds),
           "--method", method]
    for header in headers:
        cmd += ["--header", header]
    if body:
        cmd += ["--body", body]
    proc = await asyncio.create_subprocess_exec(*cmd, stdout=subprocess.PIPE)
    out, _ = await proc.communicate()
    return json.loads(out)


async def start(app: web.Application, port: int = 0) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]


def baseline_app(body: bytes) -> web.Application:
    async def fixed(_request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/scim+json")

    app = web.Application()
    app.router.add_get("/fixed", fixed)
    return app


async def main_async(users: int, seconds: float) -> dict[str, object]:
    configure_logging(LogSettings(level="warning", format="console"))
    with tempfile.TemporaryDirectory(prefix="syncsvc-bench-scim-") as tmp:
        ldif = Path(tmp) / "dir.ldif"
        subprocess.run([sys.executable, str(ROOT / "bench" / "gen_ldif.py"), "--users", str(users),
                        "--groups", str(max(1, users // 50)), "--with-operational", "-o", str(ldif)],
                       check=True)
        settings = Settings(ldap=LdapSettings(url=(f"ldif://{ldif}",), base_dn="dc=example,dc=com",
                                              page_size=1000),
                            store=StoreSettings(url=f"sqlite+aiosqlite:///{tmp}/bench.db"))
        async with open_service(settings) as service:
            report = await run_sync(service.sync, SyncOptions(mode=RunMode.FULL))
            async with service.engine.begin() as conn:
                token = await create_token(conn, name="bench", scopes="scim:read",
                                           now=datetime.now(UTC))
            runner, port = await start(create_app(service.engine, settings))
            auth = [f"Authorization: Bearer {token}"]
            base = f"http://127.0.0.1:{port}/scim/v2"
            scenarios = {
                "get_by_id": None,
                "filter_username_eq": None,
                "filter_co": f"{base}/Users?filter=displayName%20co%20%22an%22&count=10",
                "list_100_deep": f"{base}/Users?startIndex={users - 200}&count=100",
            }
            import aiohttp

            async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as s:
                async with s.get(f"{base}/Users?startIndex={users // 2}&count=1") as r:
                    some = (await r.json(content_type=None))["Resources"][0]
            scenarios["get_by_id"] = f"{base}/Users/{some['id']}"
            scenarios["filter_username_eq"] = (
                f'{base}/Users?filter=userName%20eq%20%22{some["userName"]}%22')
            results: dict[str, object] = {"users": users, "sync": report.summary()}
            for name, url in scenarios.items():
                async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as s:
                    async with s.get(url) as r:
                        sample = await r.read()
                        status = r.status
                base_runner, base_port = await start(baseline_app(sample))
                measured = await load(url, seconds, auth)
                baseline = await load(f"http://127.0.0.1:{base_port}/fixed", seconds, [])
                await base_runner.cleanup()
                results[name] = {"status": status, "bytes": len(sample), "syncsvc": measured,
                                 "baseline": baseline,
                                 "ratio_req_per_s": round(measured["req_per_s"] / baseline["req_per_s"], 2)}
            await runner.cleanup()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=5)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main_async(args.users, args.seconds)), indent=2))


if __name__ == "__main__":
    main()
