"""SCIM benchmark: a synced store of N generated users behind the real server, under load.

    .venv/bin/python bench/bench_scim.py --users 10000 --seconds 5

The directory comes from bench/gen_ldif.py through the LDIF source (no slapd needed), synced
into SQLite (or a throwaway PostgreSQL database with --store postgresql). The server runs in
this process; bench/loadgen.py drives it from another process with 32 connections. Scenarios:
GET by id, ``filter=userName eq``, a ``co`` filter, a list page of 100 deep in the set by
startIndex and by cursor (RFC 9865: a first call with ``cursor=`` empty, nextCursor followed to
the middle of the set), PATCH of a profile field and POST of a new user (each request a distinct
userName). Each is compared with a baseline measured in the same run: a minimal aiohttp handler
answering the same method with the same status and a fixed body of the same size.

Prints a readable summary on stderr and one JSON object on stdout (or --json FILE).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gen_ldif import cached_ldif  # bench/, the script's own folder, is on sys.path

from syncsvc.auth import create_token
from syncsvc.domain import RunMode
from syncsvc.http import create_app
from syncsvc.logconfig import configure_logging
from syncsvc.scim.state import SCIM
from syncsvc.service import open_service
from syncsvc.settings import LdapSettings, LogSettings, Settings, StoreSettings
from syncsvc.sync import SyncOptions, run_sync

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
PROFILE = "urn:syncsvc:params:scim:schemas:extension:profile:2.0:User"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
SCIM_JSON = "application/scim+json"
READS = ("get_by_id", "filter_username_eq", "filter_co", "list_100_index", "list_100_cursor")
# The same reads from a server whose response cache is off (scim.response_cache_bytes = 0):
# every request queries the store, as every read does once a commit has emptied that cache.
# Users' renderings are still kept by their keys (scim.rendered_cache_bytes): a user that did
# not change is not rendered again.
UNCACHED = tuple(f"{name}_nocache" for name in READS)
ALL = (*READS, *UNCACHED, "patch_profile", "post_user")
# The targets: share of the minimal handler's req/s, per scenario; p99 for reads.
_RATIO = {"get_by_id": 0.5, "filter_username_eq": 0.5, "list_100_index": 0.3, "list_100_cursor": 0.3}
TARGET_RATIO = {**_RATIO, **{f"{name}_nocache": ratio for name, ratio in _RATIO.items()}}
TARGET_P99_MS = 50.0


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    url: str
    method: str = "GET"
    body: str | None = None  # may hold {n}: loadgen puts a counter there
    urls: tuple[str, ...] = ()  # several: loadgen takes them in turn (url is the first)


async def load(
    scenario: Scenario, url: str | Path, seconds: float, connections: int, headers: list[str]
) -> dict[str, Any]:
    """loadgen against *url*, or against the URLs in the file *url*."""
    target = ["--url-file", str(url)] if isinstance(url, Path) else [url]
    cmd = [
        sys.executable,
        str(ROOT / "bench" / "loadgen.py"),
        *target,
        "--seconds",
        str(seconds),
        "--connections",
        str(connections),
        "--method",
        scenario.method,
    ]
    for header in headers:
        cmd += ["--header", header]
    if scenario.body is not None:
        cmd += ["--body", scenario.body, "--header", f"Content-Type: {SCIM_JSON}"]
    proc = await asyncio.create_subprocess_exec(*cmd, stdout=subprocess.PIPE)
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"loadgen exited with {proc.returncode}")
    result: dict[str, Any] = json.loads(out)
    return result


async def measure_cpu(run: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    """*run*'s figures plus the server's CPU per request: this process's CPU time (the event
    loop and, on SQLite, aiosqlite's thread; loadgen runs in its own process) over the
    requests served. It holds on a loaded machine, where req/s follow the load."""
    before = time.process_time()
    result = await run
    cpu = time.process_time() - before
    result["server_cpu_us_per_req"] = (
        round(cpu / result["requests"] * 1e6, 1) if result["requests"] else None
    )
    return result


async def start(app: web.Application) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]


def baseline_app(body: bytes, status: int) -> web.Application:
    """The minimal handler: any method, the request body read, a fixed body of the same size."""

    async def fixed(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=body, status=status, content_type=SCIM_JSON)

    app = web.Application()
    app.router.add_route("*", "/fixed", fixed)
    return app


@asynccontextmanager
async def store_url(store: str, tmp: Path) -> AsyncIterator[str]:
    if store == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp}/bench.db"
        return
    from tests.support import postgres

    admin = await asyncio.to_thread(postgres.pg_admin_url)
    name = await postgres.create_database(admin)
    try:
        yield postgres.sqlalchemy_url(admin, name)
    finally:
        await postgres.drop_database(admin, name)


async def scenarios(
    session: aiohttp.ClientSession, base: str, users: int, wanted: tuple[str, ...],
    uncached_base: str,
) -> list[Scenario]:
    """The scenario URLs, from the store's own data: a user in the middle of the set, a cursor
    reached by following nextCursor from the first page."""
    first = max(1, users // 2 - 500)
    async with session.get(f"{base}/Users?startIndex={first}&count=1000") as r:
        middle = (await r.json(content_type=None))["Resources"]
    some = middle[0]
    # GET by id and PATCH go round 1000 users in the middle of the set: no single hot row,
    # and concurrent PATCHes do not race for one resource.
    by_id = tuple(f"{base}/Users/{u['id']}" for u in middle)
    writes = tuple(f"{base}/Users/{u['id']}" for u in middle[1:])
    tag = uuid.uuid4().hex[:8]
    out = {
        "get_by_id": Scenario("get_by_id", by_id[0], urls=by_id),
        "filter_username_eq": Scenario(
            "filter_username_eq", f"{base}/Users?filter=userName%20eq%20%22{some['userName']}%22"
        ),
        "filter_co": Scenario(
            "filter_co", f"{base}/Users?filter=displayName%20co%20%22an%22&count=10"
        ),
        "list_100_index": Scenario(
            "list_100_index", f"{base}/Users?startIndex={users // 2}&count=100"
        ),
        "patch_profile": Scenario(
            "patch_profile",
            writes[0],
            "PATCH",
            urls=writes,
            body=json.dumps(
                {
                    "schemas": [PATCH_OP],
                    "Operations": [
                        {"op": "add", "path": PROFILE, "value": {"headline": "Headline number {n}"}}
                    ],
                }
            ),
        ),
        "post_user": Scenario(
            "post_user",
            f"{base}/Users",
            "POST",
            json.dumps(
                {
                    "schemas": [USER],
                    "userName": f"bench-{tag}-{{n}}",
                    "name": {"givenName": "Bench", "familyName": "User {n}"},
                    "displayName": "Bench User {n}",
                    "emails": [{"value": f"bench-{tag}-{{n}}@example.com", "primary": True}],
                }
            ),
        ),
    }
    if "list_100_cursor" in wanted or "list_100_cursor_nocache" in wanted:
        # Walk by 1000 (the server's max) to the middle; the cursor is a keyset, not bound to count.
        cursor, seen = "", 0
        while seen < users // 2:
            async with session.get(f"{base}/Users?cursor={cursor}&count=1000") as r:
                page = await r.json(content_type=None)
            seen += len(page["Resources"])
            cursor = page.get("nextCursor", "")
            if not cursor:
                break
        out["list_100_cursor"] = Scenario(
            "list_100_cursor", f"{base}/Users?cursor={cursor}&count=100"
        )
    for name in READS:
        if name in out:
            cached = out[name]
            out[f"{name}_nocache"] = dataclasses.replace(
                cached,
                name=f"{name}_nocache",
                url=cached.url.replace(base, uncached_base, 1),
                urls=tuple(u.replace(base, uncached_base, 1) for u in cached.urls),
            )
    return [out[name] for name in wanted]


async def warm(session: aiohttp.ClientSession, scenario: Scenario) -> None:
    """One pass over a cached read scenario's URLs before it is measured: its figures are
    those of a client polling the same resources (the steady state); the _nocache
    scenarios read the store on every request."""
    for url in scenario.urls or (scenario.url,):
        async with session.get(url) as r:
            await r.read()


async def sample(session: aiohttp.ClientSession, scenario: Scenario) -> tuple[int, bytes]:
    """One real request (for PATCH and POST a real write): the status and body to mirror."""
    data = None
    if scenario.body is not None:
        data = scenario.body.replace("{n}", "sample").encode()
    async with session.request(
        scenario.method, scenario.url, data=data, headers={"Content-Type": SCIM_JSON}
    ) as r:
        return r.status, await r.read()


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    configure_logging(LogSettings(level="warning", format="console"))
    users, wanted = args.users, tuple(args.scenarios.split(","))
    unknown = set(wanted) - set(ALL)
    if unknown:
        raise SystemExit(f"unknown scenarios: {', '.join(sorted(unknown))}")
    groups = args.groups if args.groups is not None else max(1, users // 20)
    ldif = cached_ldif(Path(args.data_dir), users, groups, args.seed)
    results: dict[str, Any] = {
        "users": users,
        "groups": groups,
        "store": args.store,
        "seconds_per_run": args.seconds,
        "connections": args.connections,
        "load_before": os.getloadavg(),
        "python": platform.python_version(),
    }
    with tempfile.TemporaryDirectory(prefix="syncsvc-bench-scim-") as tmp:
        async with store_url(args.store, Path(tmp)) as url:
            settings = Settings(
                ldap=LdapSettings(
                    url=(f"ldif://{ldif}",), base_dn="dc=example,dc=com", page_size=1000
                ),
                store=StoreSettings(url=url),
                log=LogSettings(level="warning", format="console"),
            )
            async with open_service(settings) as service:
                started = time.perf_counter()
                report = await run_sync(
                    service.sync, SyncOptions(mode=RunMode.FULL, trigger="bench")
                )
                results["sync"] = {
                    "summary": report.summary(),
                    "seconds": round(time.perf_counter() - started, 1),
                }
                async with service.engine.begin() as conn:
                    token = await create_token(
                        conn,
                        name=f"bench{uuid.uuid4().hex[:8]}",
                        scopes="scim:read,scim:write",
                        now=datetime.now(UTC),
                    )
                app = create_app(service.engine, settings)
                runner, port = await start(app)
                cache = app[SCIM].cache
                no_cache = dataclasses.replace(
                    settings, scim=dataclasses.replace(settings.scim, response_cache_bytes=0)
                )
                uncached_runner, uncached_port = await start(create_app(service.engine, no_cache))
                auth = [f"Authorization: Bearer {token}"]
                base = f"http://127.0.0.1:{port}/scim/v2"
                try:
                    async with aiohttp.ClientSession(
                        headers={"Authorization": f"Bearer {token}"}
                    ) as s:
                        chosen = await scenarios(
                            s, base, users, wanted, f"http://127.0.0.1:{uncached_port}/scim/v2"
                        )
                    for scenario in chosen:
                        async with aiohttp.ClientSession(
                            headers={"Authorization": f"Bearer {token}"}
                        ) as s:
                            status, body = await sample(s, scenario)
                            if scenario.name in READS:
                                await warm(s, scenario)
                        if status >= 400:
                            raise SystemExit(f"{scenario.name}: {status} {body[:300]!r}")
                        base_runner, base_port = await start(baseline_app(body, status))
                        try:
                            target: str | Path = scenario.url
                            if scenario.urls:
                                target = Path(tmp) / f"{scenario.name}.urls"
                                target.write_text("\n".join(scenario.urls) + "\n")
                            profiler = await start_profiler(
                                args.profile, scenario.name, args.seconds
                            )
                            hits, misses = cache.hits, cache.misses
                            measured = await measure_cpu(
                                load(scenario, target, args.seconds, args.connections, auth)
                            )
                            measured["cache_hits"] = cache.hits - hits
                            measured["cache_misses"] = cache.misses - misses
                            if profiler is not None:
                                await profiler.wait()
                            baseline = await measure_cpu(
                                load(
                                    scenario,
                                    f"http://127.0.0.1:{base_port}/fixed",
                                    args.seconds,
                                    args.connections,
                                    [],
                                )
                            )
                        finally:
                            await base_runner.cleanup()
                        results[scenario.name] = judge(scenario, status, body, measured, baseline)
                finally:
                    await runner.cleanup()
                    await uncached_runner.cleanup()
    results["load_after"] = os.getloadavg()
    return results


async def start_profiler(
    directory: Path | None, name: str, seconds: float
) -> asyncio.subprocess.Process | None:
    """py-spy sampling this process (the server) while loadgen runs; raw collapsed stacks for
    bench/profile_top.py. Sampling costs throughput: a profiled run's figures are not results."""
    if directory is None:
        return None
    directory.mkdir(parents=True, exist_ok=True)
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    return await asyncio.create_subprocess_exec(
        spy,
        "record",
        "--pid",
        str(os.getpid()),
        "--duration",
        str(max(1, int(seconds))),
        "--format",
        "raw",
        "--nonblocking",
        "-o",
        str(directory / f"{name}.txt"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def judge(
    scenario: Scenario, status: int, body: bytes, measured: dict[str, Any], baseline: dict[str, Any]
) -> dict[str, Any]:
    ratio = (
        round(measured["req_per_s"] / baseline["req_per_s"], 2) if baseline["req_per_s"] else None
    )
    cpu, base_cpu = measured.get("server_cpu_us_per_req"), baseline.get("server_cpu_us_per_req")
    out: dict[str, Any] = {
        "cpu_ratio": round(base_cpu / cpu, 2) if cpu and base_cpu else None,
        "method": scenario.method,
        "status": status,
        "bytes": len(body),
        "syncsvc": measured,
        "baseline": baseline,
        "ratio_req_per_s": ratio,
    }
    targets: dict[str, Any] = {"zero_errors": measured["errors"] == 0}
    if scenario.name in TARGET_RATIO:
        targets[f"ratio>={TARGET_RATIO[scenario.name]}"] = (
            ratio is not None and ratio >= TARGET_RATIO[scenario.name]
        )
    if scenario.name in (*READS, *UNCACHED) and measured["p99_ms"] is not None:
        targets[f"p99<={TARGET_P99_MS:g}ms"] = measured["p99_ms"] <= TARGET_P99_MS
    out["targets"] = targets
    return out


def summary(results: dict[str, Any]) -> str:
    lines = [
        (
            f"SCIM benchmark: {results['users']} users, {results['store']}, "
            f"{results['connections']} connections, {results['seconds_per_run']} s per run, "
            f"load {results['load_before'][0]:.2f} -> {results['load_after'][0]:.2f}"
        ),
        f"  sync: {results['sync']['summary']}",
        (
            f"  {'scenario':20s} {'req/s':>8s} {'p50 ms':>8s} {'p99 ms':>8s} {'errors':>6s} | "
            f"{'base r/s':>8s} {'p50':>6s} {'p99':>6s} | ratio  cpu us/req (base, ratio)  "
            "hits  bytes  targets"
        ),
    ]
    for name in ALL:
        r = results.get(name)
        if not r:
            continue
        m, b = r["syncsvc"], r["baseline"]
        verdict = ", ".join(f"{k} {'met' if v else 'MISSED'}" for k, v in r["targets"].items())
        lines.append(
            f"  {name:20s} {m['req_per_s']:8.1f} {m['p50_ms']:8.2f} {m['p99_ms']:8.2f} "
            f"{m['errors']:6d} | {b['req_per_s']:8.1f} {b['p50_ms']:6.2f} {b['p99_ms']:6.2f} | "
            f"{r['ratio_req_per_s']:5.2f} {m.get('server_cpu_us_per_req') or 0:8.0f} "
            f"({b.get('server_cpu_us_per_req') or 0:4.0f}, x{r.get('cpu_ratio') or 0:.2f})  "
            f"{m.get('cache_hits', 0) / max(1, m['requests']):4.0%} {r['bytes']:6d}  {verdict}"
        )
        if m.get("first_error"):
            lines.append(f"    first error: {m['first_error']}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--groups", type=int, default=None, help="default: users / 20")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--seconds", type=float, default=5, help="per run (each scenario and each baseline)"
    )
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument(
        "--scenarios", default=",".join(ALL), help=f"comma-separated subset of {','.join(ALL)}"
    )
    parser.add_argument(
        "--data-dir",
        default="/tmp/bench-data",
        help="where generated LDIF files are kept and reused",
    )
    parser.add_argument("--json", type=Path, help="write the JSON here instead of stdout")
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="DIR",
        help="also sample the server with py-spy during each scenario, into "
        "DIR/<scenario>.txt (read with bench/profile_top.py); slows the server",
    )
    args = parser.parse_args()
    results = asyncio.run(main_async(args))
    text = json.dumps(results, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    else:
        print(text)
    print(summary(results), file=sys.stderr)


if __name__ == "__main__":
    main()
