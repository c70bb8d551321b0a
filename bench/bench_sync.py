"""Sync benchmark: a generated directory in a private slapd, synced into SQLite and PostgreSQL.

    .venv/bin/python bench/bench_sync.py --users 10000 --groups 500 --store both

Phases, per store, each sync in a fresh subprocess (so that its peak RSS is its own: the
``VmHWM`` the subprocess reads of itself at its end): a first full sync, a second full sync
with nothing changed (rows written must be 0), an incremental run by modifyTimestamp after 100
entries changed with ldapmodify, a change-feed priming run (RFC 4533 content sync without a
cookie: the whole directory), and a change-feed run after 100 more entries changed. Baselines,
measured in the same run against the same slapd: the bare ldap3 paged read of the same entries
with the same attributes (stock ldap3 decoding, a subprocess of its own), ``ldapsearch``
(ldap-utils, paged, output to /dev/null), and syncsvc's own LDAP source reading without mapping
or store (the read the pipeline sits on). Incremental runs are compared with a bare ldap3 read
of the same narrowed query (timestamp) or the same content-sync request with the same cookie.

Prints a readable summary on stderr and one JSON object on stdout (or --json FILE). Needs
slapd and ldap-utils (scripts/test installs them) and, for PostgreSQL, the server on
127.0.0.1:5432 (user postgres, trust) or $SYNCSVC_TEST_PG_URL; a throwaway database is made
for each run and dropped after it. The LDIF is generated once per (users, groups, seed) into
--data-dir and reused.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gen_ldif import cached_ldif  # bench/, the script's own folder, is on sys.path
from report import times

PAGED_OID = "1.2.840.113556.1.4.319"
PASSWORD_ENV = "BENCH_LDAP_PASSWORD"  # the service password reaches the phase subprocesses here
STORES = ("sqlite", "postgresql")

# -- subprocess plumbing ------------------------------------------------------------------------


def run_measured(cmd: list[str], *, env: dict[str, str] | None = None) -> tuple[str, float]:
    """Run *cmd*; return its stdout and CPU seconds (user + system, from wait4): the child's
    own, whatever else runs on the machine.

    Not its peak RSS from wait4: Linux carries the parent's high-water RSS into the child's
    ``ru_maxrss`` at fork and exec, so every child of a parent that once held 413 MiB (a 1M
    LDIF generated in-process, a million DNs) reported at least 413 MiB. A phase reports its
    own peak instead (:func:`own_peak_rss_mib`)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env)
    assert proc.stdout is not None
    out = proc.stdout.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} ... exited with {proc.returncode}")
    return out, round(usage.ru_utime + usage.ru_stime, 3)


def own_peak_rss_mib() -> float:
    """This process's peak RSS since it started (``VmHWM``: its own address space, which exec
    made new, so nothing of its parent's is in it)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError("no VmHWM in /proc/self/status")


# Runs a command (output to /dev/null) and prints its wall seconds, CPU seconds and peak RSS in
# KiB. The command is this helper's child: what it inherits at fork is the helper's own small
# high-water mark, not the bench's. Timed here, so the helper's start is not counted.
_MEASURE_CHILD = """
import resource, subprocess, sys, time
started = time.perf_counter()
code = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL)
wall = time.perf_counter() - started
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss)
sys.exit(code)
"""


def run_tool(cmd: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """Run a program that is not ours (output to /dev/null): wall s, CPU s, peak RSS MiB."""
    proc = subprocess.run([sys.executable, "-c", _MEASURE_CHILD, *cmd], env=env,
                          stdout=subprocess.PIPE, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} exited with {proc.returncode}")
    wall, cpu, rss_kib = proc.stdout.split()
    return float(wall), float(cpu), int(rss_kib) / 1024


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) process *pid* has used so far (slapd's share of a phase)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def child(*args: str) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), *args]


# -- the phases, run in subprocesses --------------------------------------------------------------


def _settings(spec: dict[str, Any]) -> Any:
    from syncsvc.settings import LdapSettings, LogSettings, Settings, StoreSettings, SyncSettings

    return Settings(
        ldap=LdapSettings(
            url=(spec["ldap_url"],),
            bind_dn=spec["bind_dn"],
            bind_password=os.environ[PASSWORD_ENV],
            base_dn=spec["base_dn"],
            page_size=spec["page_size"],
            change_feed=spec["change_feed"],
        ),
        store=StoreSettings(url=spec["store_url"]),
        sync=SyncSettings(batch_size=spec["page_size"]),
        log=LogSettings(level="warning", format="console"),
    )


def _quiet() -> None:
    from syncsvc.logconfig import configure_logging
    from syncsvc.settings import LogSettings

    configure_logging(LogSettings(level="warning", format="console"))


def _queries(deps: Any) -> dict[str, Any]:
    from syncsvc.ldap.queries import group_query, user_query

    return {
        "users": user_query(deps.ldap, deps.flavor, deps.user_attributes),
        "groups": group_query(deps.ldap, deps.flavor, deps.mapping.group_attributes),
    }


def _ldap3_connection(spec: dict[str, Any]) -> Any:
    import ldap3

    return ldap3.Connection(
        ldap3.Server(spec["ldap_url"], get_info=ldap3.NONE),
        spec["bind_dn"],
        os.environ[PASSWORD_ENV],
        auto_bind=True,
    )


def _ldap3_paged(spec: dict[str, Any], queries: list[Any]) -> int:
    """ldap3's own paged loop and response decoding: the bare read."""
    conn = _ldap3_connection(spec)
    count = 0
    for query in queries:
        cookie = None
        while True:
            conn.search(
                query.base,
                query.filter,
                attributes=list(query.attributes),
                paged_size=spec["page_size"],
                paged_cookie=cookie,
            )
            count += sum(1 for r in conn.response if r["type"] == "searchResEntry")
            cookie = conn.result["controls"][PAGED_OID]["value"]["cookie"]
            if not cookie:
                break
    conn.unbind()
    return count


def _ldap3_content_sync(
    spec: dict[str, Any], queries: list[Any], cookies: list[bytes | None]
) -> int:
    """The same RFC 4533 refreshOnly request the change feed sends, read by stock ldap3."""
    from ldap3 import DEREF_NEVER, SUBTREE

    from syncsvc.ldap.contentsync import sync_request_control

    conn = _ldap3_connection(spec)
    count = 0
    for query, cookie in zip(queries, cookies, strict=True):
        conn.search(
            query.base,
            query.filter,
            SUBTREE,
            dereference_aliases=DEREF_NEVER,
            attributes=list(query.attributes),
            controls=[sync_request_control(cookie)],
        )
        count += sum(1 for r in conn.response if r["type"] == "searchResEntry")
    conn.unbind()
    return count


async def _phase_source_read(spec: dict[str, Any]) -> dict[str, Any]:
    """syncsvc's LDAP source alone (fast BER reader, threads), no mapping, no store."""
    from syncsvc.service import open_service

    async with open_service(_settings(spec)) as service:
        queries = _queries(service.sync)
        started, cpu = time.perf_counter(), time.process_time()

        async def read(query: Any) -> int:
            return sum([len(page) async for page in service.sync.directory.search(query)])

        counts = await asyncio.gather(*(read(q) for q in queries.values()))
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    # The searches the sync sends, for the ldap3 and ldapsearch baselines to send the same.
    searches = {
        kind: {"base": q.base, "filter": q.filter, "attributes": list(q.attributes)}
        for kind, q in queries.items()
    }
    return {
        "seconds": round(seconds, 3),
        "cpu_s": round(cpu, 3),
        "entries": sum(counts),
        "queries": searches,
    }


async def _phase_incremental_baseline(spec: dict[str, Any]) -> dict[str, Any]:
    """What the next incremental run will read, read by stock ldap3 from the marks and cookies
    in the store. A process of its own: a cookie-less content sync collects the whole
    directory in ldap3's response list, and that peak must not count as the run's."""
    from syncsvc.ldap.queries import changed_since
    from syncsvc.service import open_service
    from syncsvc.store import state
    from syncsvc.sync.pipeline import _since

    async with open_service(_settings(spec)) as service:
        deps = service.sync
        queries = _queries(deps)
        async with service.engine.connect() as conn:
            # The state keys the engine uses: "users.mark", "groups.cookie", ...
            marks = {kind: await state.get_state(conn, f"{kind}.mark") for kind in queries}
            cookies = {kind: await state.get_state(conn, f"{kind}.cookie") for kind in queries}
    started, cpu = time.perf_counter(), time.process_time()
    if spec["change_feed"] == "timestamp":
        narrowed = [
            changed_since(q, deps.flavor, _since(marks[k], deps.flavor, deps.ldap.incremental_overlap))
            for k, q in queries.items()
            if marks[k]
        ]
        count = _ldap3_paged(spec, narrowed)
    else:
        count = _ldap3_content_sync(
            spec,
            list(queries.values()),
            [bytes.fromhex(c) if c else None for c in cookies.values()],
        )
    return {
        "seconds": round(time.perf_counter() - started, 4),
        "cpu_s": round(time.process_time() - cpu, 4),
        "entries": count,
    }


async def _phase_sync(spec: dict[str, Any]) -> dict[str, Any]:
    from syncsvc.domain import RunMode
    from syncsvc.service import open_service
    from syncsvc.sync import SyncOptions, run_sync

    mode = RunMode(spec["mode"])
    async with open_service(_settings(spec)) as service:
        started, cpu = time.perf_counter(), time.process_time()
        report = await run_sync(service.sync, SyncOptions(mode=mode, trigger="bench"))
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    counts = report.counts
    return {
        "seconds": round(seconds, 3),
        "cpu_s": round(cpu, 3),
        "status": report.status.value,
        "method": report.method,
        "mode": report.mode.value,
        "detail": report.detail,
        **counts,
        "rows_written": sum(counts[k] for k in ("created", "updated", "deactivated", "deleted")),
        "entries_per_s": round(report.read / seconds) if seconds else None,
    }


def _phase_bare(spec: dict[str, Any]) -> dict[str, Any]:
    from syncsvc.ldap.queries import SearchQuery
    from syncsvc.settings import LdapSettings  # noqa: F401  (same import cost as the others)

    queries = [
        SearchQuery(base=q["base"], filter=q["filter"], attributes=tuple(q["attributes"]))
        for q in spec["queries"].values()
    ]
    started, cpu = time.perf_counter(), time.process_time()
    count = _ldap3_paged(spec, queries)
    return {
        "seconds": round(time.perf_counter() - started, 3),
        "cpu_s": round(time.process_time() - cpu, 3),
        "entries": count,
    }


def phase_main(name: str, spec_json: str) -> None:
    _quiet()
    spec = json.loads(spec_json)
    if name == "bare":
        result = _phase_bare(spec)
    elif name == "source":
        result = asyncio.run(_phase_source_read(spec))
    elif name == "incremental_baseline":
        result = asyncio.run(_phase_incremental_baseline(spec))
    else:
        result = asyncio.run(_phase_sync(spec))
    print(json.dumps({**result, "peak_rss_mib": own_peak_rss_mib()}))


# -- the parent: data, slapd, baselines, phases, report -----------------------------------------


def user_dns(ldif: Path) -> list[str]:
    with ldif.open(encoding="utf-8") as lines:
        return [line[4:].rstrip("\n") for line in lines if line.startswith("dn: uid=")]


def change_entries(slapd: Any, dns: list[str], count: int, label: str) -> float:
    """Change the title of *count* users spread over the directory, in one ldapmodify."""
    step = max(1, len(dns) // count)
    chosen = dns[::step][:count]
    ldif = "".join(
        f"dn: {dn}\nchangetype: modify\nreplace: title\ntitle: Bench {label} {i}\n\n"
        for i, dn in enumerate(chosen)
    )
    started = time.perf_counter()
    slapd.modify(ldif)
    return time.perf_counter() - started


def ldapsearch(slapd: Any, queries: dict[str, Any], page_size: int) -> dict[str, float]:
    """ldap-utils' ldapsearch of the same queries, paged, to /dev/null: the directory's limit."""
    from tests.support.slapd import find_tool

    total, rss, cpu, slapd_before = 0.0, 0.0, 0.0, process_cpu(slapd.pid)
    for query in queries.values():
        cmd = [
            find_tool("ldapsearch") or "ldapsearch",
            "-x",
            "-LLL",
            "-H",
            slapd.url,
            "-D",
            slapd.service_dn,
            "-y",
            str(slapd.workdir / "service.pw"),
            "-b",
            query["base"],
            "-E",
            f"pr={page_size}/noprompt",
            query["filter"],
            *query["attributes"],
        ]
        wall, used, peak = run_tool(cmd, env={**os.environ, "LDAPNOINIT": "1"})
        total, cpu, rss = total + wall, cpu + used, max(rss, peak)
    return {
        "seconds": round(total, 3),
        "cpu_s": round(cpu, 3),
        "peak_rss_mib": round(rss, 1),
        "slapd_cpu_s": round(process_cpu(slapd.pid) - slapd_before, 3),
    }


@contextmanager
def roomy_slapd_config(entries: int) -> Iterator[None]:
    """deploy/slapd's templates with an mdb map size for *entries* (the shipped 1 GiB holds
    about 400k of these entries; the map is sparse, so a large one costs nothing)."""
    import shutil

    from tests.support import slapd as slapd_module

    size = max(1 << 30, entries * 8192)
    original = slapd_module.SLAPD_CONFIG_DIR
    with tempfile.TemporaryDirectory(prefix="syncsvc-bench-slapd-config-") as tmp:
        copy = Path(tmp) / "slapd"
        shutil.copytree(original, copy)
        template = copy / "config.ldif.template"
        text = template.read_text()
        if "olcDbMaxSize: 1073741824" not in text:
            raise SystemExit("deploy/slapd/config.ldif.template changed: update roomy_slapd_config")
        template.write_text(text.replace("olcDbMaxSize: 1073741824", f"olcDbMaxSize: {size}"))
        slapd_module.SLAPD_CONFIG_DIR = copy  # read when Slapd.create renders the config
        timeout = slapd_module._TOOL_TIMEOUT
        # slapadd of 1M entries takes minutes, far over the harness's 120 s per tool.
        slapd_module._TOOL_TIMEOUT = max(timeout, entries / 1000.0)
        try:
            yield
        finally:
            slapd_module.SLAPD_CONFIG_DIR = original
            slapd_module._TOOL_TIMEOUT = timeout


@contextmanager
def store_url(store: str, work: Path) -> Iterator[str]:
    if store == "sqlite":
        db = work / "bench.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        yield f"sqlite+aiosqlite:///{db}"
    else:
        from tests.support import postgres

        with postgres.fresh_database(postgres.pg_admin_url()) as url:
            yield url


def ratio(value: float, base: float) -> float | None:
    return round(value / base, 2) if base else None


def bench(args: argparse.Namespace) -> dict[str, Any]:
    from tests.support.slapd import Slapd

    stores = STORES if args.store == "both" else (args.store,)
    ldif = cached_ldif(Path(args.data_dir), args.users, args.groups, args.seed)
    os.environ.setdefault("SYNCSVC_TEST_SLAPD_DEBUG", "0")  # no per-operation log while measuring
    out: dict[str, Any] = {
        "users": args.users,
        "groups": args.groups,
        "seed": args.seed,
        "page_size": args.page_size,
        "changes": args.changes,
        "load_before": os.getloadavg(),
        "python": platform.python_version(),
    }
    with tempfile.TemporaryDirectory(prefix="syncsvc-bench-sync-") as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        with (
            roomy_slapd_config(args.users + args.groups),
            Slapd.create(work / "slapd", ldif) as slapd,
        ):
            out["slapadd_s"] = round(time.perf_counter() - started, 1)
            # slapadd leaves the directory's database as dirty pages (GBs at 1M entries): written
            # back while the first phases ran, they slowed the 1M source read by about 30%.
            started = time.perf_counter()
            os.sync()
            out["writeback_s"] = round(time.perf_counter() - started, 1)
            pw_file = slapd.workdir / "service.pw"
            pw_file.touch(mode=0o600)
            pw_file.write_text(slapd.service_password)  # no newline: ldapsearch -y reads it all
            env = {**os.environ, PASSWORD_ENV: slapd.service_password}
            spec: dict[str, Any] = {
                "ldap_url": slapd.url,
                "bind_dn": slapd.service_dn,
                "base_dn": slapd.base_dn,
                "page_size": args.page_size,
                "change_feed": "timestamp",
                "store_url": f"sqlite+aiosqlite:///{work / 'queries.db'}",
            }

            def phase(
                name: str, profile_as: str | None = None, **extra: Any
            ) -> tuple[dict[str, Any], float]:
                cmd = child("--phase", name, json.dumps({**spec, **extra}))
                if args.profile and profile_as:
                    args.profile.mkdir(parents=True, exist_ok=True)
                    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
                    cmd = [
                        spy,
                        "record",
                        "--format",
                        "raw",
                        "--nonblocking",
                        "-o",
                        str(args.profile / f"{profile_as}.txt"),
                        "--",
                        *cmd,
                    ]
                slapd_before = process_cpu(slapd.pid)
                text, cpu = run_measured(cmd, env=env)
                # The phase prints one JSON line; py-spy (--profile) may print its own lines.
                result = json.loads(
                    next(line for line in text.splitlines() if line.startswith("{"))
                )
                # cpu_s is the phase's own (process_time around the work, imports excluded);
                # process_cpu_s is the whole subprocess, interpreter start included.
                result.update(
                    process_cpu_s=cpu, slapd_cpu_s=round(process_cpu(slapd.pid) - slapd_before, 3)
                )
                return result, result.pop("peak_rss_mib")

            source, source_rss = phase("source")
            queries = spec["queries"] = source.pop("queries")
            if args.no_ldap3_read:  # stock ldap3 is the slowest part of a 1M run
                bare, bare_rss = (
                    {
                        "seconds": 0.0,
                        "cpu_s": 0.0,
                        "entries": source["entries"],
                        "skipped": True,
                        "slapd_cpu_s": 0.0,
                    },
                    0.0,
                )
            else:
                bare, bare_rss = phase("bare")
            ls = (
                ldapsearch(slapd, queries, args.page_size)
                if not args.no_ldapsearch
                else {"seconds": 0.0, "cpu_s": 0.0, "peak_rss_mib": 0.0, "slapd_cpu_s": 0.0,
                      "skipped": True}
            )
            entries = bare["entries"]
            out["entries"] = entries
            out["baselines"] = {
                "ldap3_paged_read": {**bare, "peak_rss_mib": bare_rss},
                "ldapsearch": ls,
                "syncsvc_source_read": {**source, "peak_rss_mib": source_rss},
            }
            for baseline in out["baselines"].values():
                baseline["us_per_entry"] = round(baseline["seconds"] / entries * 1e6, 1)
                baseline["cpu_us_per_entry"] = round(baseline["cpu_s"] / entries * 1e6, 1)
            save(args, out)
            dns = user_dns(ldif)
            round_no = 0
            for store in stores:
                with store_url(store, work) as url:
                    results: dict[str, Any] = {}

                    def sync(
                        label: str,
                        mode: str,
                        feed: str,
                        store: str = store,
                        url: str = url,
                        results: dict[str, Any] = results,
                    ) -> None:
                        baseline = None
                        if mode == "incremental":
                            baseline, baseline_rss = phase(
                                "incremental_baseline", store_url=url, change_feed=feed
                            )
                            baseline["peak_rss_mib"] = baseline_rss
                        result, rss = phase(
                            "sync", f"{store}-{label}", store_url=url, mode=mode, change_feed=feed
                        )
                        result["peak_rss_mib"] = rss
                        if baseline is not None:
                            result["baseline_ldap3"] = baseline
                        read = result["read"]
                        result["us_per_entry"] = (
                            round(result["seconds"] / read * 1e6, 1) if read else None
                        )
                        result["cpu_us_per_entry"] = (
                            round(result["cpu_s"] / read * 1e6, 1) if read else None
                        )
                        results[label] = result
                        out[store] = results
                        save(args, out)  # a long run killed half-way keeps what it measured

                    sync("full", "full", "timestamp")
                    sync("noop_full", "full", "timestamp")
                    round_no += 1
                    changed_s = change_entries(slapd, dns, args.changes, f"r{round_no}")
                    sync("incremental_timestamp", "incremental", "timestamp")
                    if not args.no_change_feed:
                        sync("change_feed_prime", "incremental", "syncrepl")
                        round_no += 1
                        change_entries(slapd, dns, args.changes, f"r{round_no}")
                        sync("change_feed", "incremental", "syncrepl")
                    results["ldapmodify_s"] = round(changed_s, 3)
                    out[store] = results
    add_ratios(out)
    out["load_after"] = os.getloadavg()
    return out


def save(args: argparse.Namespace, out: dict[str, Any]) -> None:
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")


def add_ratios(out: dict[str, Any]) -> None:
    base = out["baselines"]
    bare_s = base["ldap3_paged_read"]["seconds"]
    bare_cpu = base["ldap3_paged_read"]["cpu_s"]
    for name in ("ldapsearch", "syncsvc_source_read"):
        base[name]["ratio_to_ldap3_read"] = ratio(base[name]["seconds"], bare_s)
        base[name]["cpu_ratio_to_ldap3_read"] = ratio(base[name]["cpu_s"], bare_cpu)
    for store in STORES:
        results = out.get(store)
        if not results:
            continue
        for name in ("full", "noop_full", "change_feed_prime"):
            run = results.get(name)
            if run:
                run["ratio_to_ldap3_read"] = ratio(run["seconds"], bare_s)
                run["ratio_to_ldapsearch"] = ratio(run["seconds"], base["ldapsearch"]["seconds"])
                run["ratio_to_source_read"] = ratio(
                    run["seconds"], base["syncsvc_source_read"]["seconds"]
                )
                run["cpu_ratio_to_ldap3_read"] = ratio(run["cpu_s"], bare_cpu)
                run["cpu_ratio_to_source_read"] = ratio(
                    run["cpu_s"], base["syncsvc_source_read"]["cpu_s"]
                )
        for run in results.values():
            if isinstance(run, dict) and "baseline_ldap3" in run:
                run["ratio_to_baseline_ldap3"] = ratio(
                    run["seconds"], run["baseline_ldap3"]["seconds"]
                )
                run["cpu_ratio_to_baseline_ldap3"] = ratio(
                    run["cpu_s"], run["baseline_ldap3"]["cpu_s"]
                )


def summary(out: dict[str, Any]) -> str:
    base = out["baselines"]
    lines = [
        (
            f"sync benchmark: {out['users']} users + {out['groups']} groups = "
            f"{out['entries']} entries, page size {out['page_size']}, "
            f"load {out['load_before'][0]:.2f} -> {out['load_after'][0]:.2f}"
        ),
        (
            f"  {'':24s} {'wall s':>8s} {'cpu s':>8s} {'slapd cpu':>9s} {'read':>7s} "
            f"{'written':>7s} {'rss MiB':>7s} {'us/entry':>8s}  ratios (wall; cpu)"
        ),
    ]
    labels = {
        "ldap3_paged_read": "baseline ldap3 read",
        "ldapsearch": "baseline ldapsearch",
        "syncsvc_source_read": "syncsvc LDAP source only",
    }
    for name, label in labels.items():
        b = base[name]
        text = (
            f"  {label:24s} {b['seconds']:8.3f} {b['cpu_s']:8.3f} {b.get('slapd_cpu_s', 0):9.3f} "
            f"{out['entries']:7d} {'':7s} {b['peak_rss_mib']:7.1f} {b['us_per_entry']:8.1f}"
        )
        if "ratio_to_ldap3_read" in b:
            text += (f"  {times(b['ratio_to_ldap3_read'])} of ldap3; "
                     f"cpu {times(b['cpu_ratio_to_ldap3_read'])}")
        lines.append(text)
    for store in STORES:
        results = out.get(store)
        if not results:
            continue
        lines.append(f"  {store}:")
        for name, run in results.items():
            if not isinstance(run, dict):
                continue
            per = (
                f"{run['us_per_entry']:8.1f}" if run["us_per_entry"] is not None else " " * 7 + "-"
            )
            text = (
                f"    {name:22s} {run['seconds']:8.3f} {run['cpu_s']:8.3f} "
                f"{run['slapd_cpu_s']:9.3f} "
                f"{run['read']:7d} {run['rows_written']:7d} {run['peak_rss_mib']:7.1f} {per}  "
                f"{run['status']}/{run['method']}"
            )
            if "ratio_to_ldap3_read" in run:
                text += (
                    f"  {times(run['ratio_to_ldap3_read'])} of ldap3 read, "
                    f"{times(run['ratio_to_ldapsearch'])} of ldapsearch, "
                    f"{times(run['ratio_to_source_read'])} of source read; "
                    f"cpu {times(run['cpu_ratio_to_ldap3_read'])} of ldap3"
                )
            if "baseline_ldap3" in run:
                b = run["baseline_ldap3"]
                text += (
                    f"  baseline ldap3 {b['seconds']:.3f} s for {b['entries']} entries "
                    f"({times(run['ratio_to_baseline_ldap3'])})"
                )
            lines.append(text)
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--phase":
        phase_main(sys.argv[2], sys.argv[3])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--groups", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--store", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument(
        "--changes",
        type=int,
        default=100,
        help="entries changed before each incremental / change-feed run (default 100)",
    )
    parser.add_argument(
        "--data-dir",
        default="/tmp/bench-data",
        help="where generated LDIF files are kept and reused",
    )
    parser.add_argument("--no-ldapsearch", action="store_true", help="skip the ldapsearch baseline")
    parser.add_argument(
        "--no-ldap3-read",
        action="store_true",
        help="skip the stock ldap3 baseline (for 1M: it is the slowest part)",
    )
    parser.add_argument(
        "--no-change-feed", action="store_true", help="skip the content-sync (RFC 4533) runs"
    )
    parser.add_argument("--json", type=Path, help="write the JSON here instead of stdout")
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="DIR",
        help="run each sync under py-spy, stacks into DIR/<store>-<phase>.txt "
        "(read with bench/profile_top.py); a profiled run's figures are not results",
    )
    args = parser.parse_args()
    out = bench(args)
    text = json.dumps(out, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    else:
        print(text)
    print(summary(out), file=sys.stderr)


if __name__ == "__main__":
    main()
