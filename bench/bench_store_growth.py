#!/usr/bin/env python3
"""What bounds a large first load on SQLite: its B-trees keyed by directory values.

    .venv/bin/python bench/bench_store_growth.py --users 1000000

The users of the generated directory (their DNs, uids and entryUUIDs, read from the same LDIF
file bench_sync.py loads into slapd) are inserted into SQLite as a first load writes them: the
store's own ``scim_user`` table (the columns and indexes of the schema, less those a first load
defers, :data:`syncsvc.store.loadindexes.DEFERRABLE`), through the store's engine and its
pragmas, one transaction a page of 1000, each followed by a WAL checkpoint. No LDAP, mapping
or Python work of the pipeline: only SQLite's.

The baseline, measured in the same run: the same rows into the same table without the three
indexes keyed by directory values in no order (unique entryUUID, unique userName, DN). Each
slice of 100k users prints its cost per user, insert and checkpoint, and the ratio to the
baseline's. A 100k first load costs what the first slice costs; a 1M one, the average of all
ten: the last column is that growth (the issue's target: within x1.2).

Prints a readable summary on stderr and one JSON object on stdout (or --json FILE).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gen_ldif import cached_ldif  # bench/, the script's own folder, is on sys.path
from sqlalchemy import MetaData, UniqueConstraint, insert

from syncsvc.domain import normalize_dn
from syncsvc.ldap.ldif import read_ldif_records
from syncsvc.settings import StoreSettings
from syncsvc.store import create_engine
from syncsvc.store.ids import new_id
from syncsvc.store.loadindexes import DEFERRABLE
from syncsvc.store.schema import USERS

RANDOM_KEYED = ("anchor", "user_name_lower", "dn_norm")
VARIANTS = {"store": (), "baseline": RANDOM_KEYED}


def directory_users(ldif: Path, count: int) -> list[tuple[str, str, str]]:
    """(dn, uid, entryUUID) of the first ``count`` user entries, in the file's (slapd's) order;
    read once, for both variants."""
    found: list[tuple[str, str, str]] = []
    with ldif.open(encoding="utf-8") as lines:
        for record in read_ldif_records(lines):
            if record.dn.startswith("uid="):
                values = record.attributes
                found.append((record.dn, values["uid"][0].decode(),
                              values["entryUUID"][0].decode()))
                if len(found) == count:
                    break
    return found


def user_table(without: tuple[str, ...]) -> Any:
    """scim_user as a first load writes it, less the indexes on the columns ``without``."""
    table = USERS.to_metadata(MetaData())
    deferred = {index.name for index in DEFERRABLE}
    table.indexes = {
        index for index in table.indexes
        if index.name not in deferred and not set(index.columns.keys()) & set(without)
    }  # fmt: skip
    table.constraints = {
        c for c in table.constraints
        if not (isinstance(c, UniqueConstraint) and set(c.columns.keys()) & set(without))
    }  # fmt: skip
    for name in without:  # unique=True / index=True on the column itself
        table.c[name].unique = table.c[name].index = False
    return table


def row(dn: str, uid: str, anchor: str, now: datetime) -> dict[str, Any]:
    resource = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": uid,
        "name": {"formatted": uid.replace(".", " ").title()}, "displayName": uid,
        "emails": [{"value": f"{uid}@example.com", "type": "work", "primary": True}],
        "title": "Senior Software Engineer", "active": True, "externalId": anchor,
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "employeeNumber": anchor[:8], "department": dn.split(",")[1][3:],
            "manager": {"value": anchor}},
    }  # fmt: skip
    return {
        "id": new_id(), "origin": "ldap", "anchor": anchor, "dn": dn, "dn_norm": normalize_dn(dn),
        "user_name": uid, "user_name_lower": uid.lower(), "external_id": anchor,
        "display_name": uid, "primary_email": f"{uid}@example.com", "active": True,
        "resource": resource, "content_hash": "0" * 64, "version": 1, "created": now,
        "last_modified": now,
    }  # fmt: skip


async def indexed_columns(conn: Any) -> list[list[str]]:
    """The column lists of scim_user's indexes as SQLite holds them (unique constraints too)."""
    found = []
    for index in (await conn.exec_driver_sql("SELECT name FROM pragma_index_list('scim_user')")).all():
        info = await conn.exec_driver_sql("SELECT name FROM pragma_index_info(?)", (index[0],))
        found.append([column[0] for column in info])
    return sorted(found)


async def load(
    users: list[tuple[str, str, str]], db: Path, without: tuple[str, ...], args: argparse.Namespace
) -> tuple[list[dict[str, float]], list[list[str]]]:
    """Insert the users page by page; per slice: seconds inserting, seconds checkpointing. With
    the indexes the table had."""
    engine = create_engine(StoreSettings(url=f"sqlite+aiosqlite:///{db}"))
    table = user_table(without)
    async with engine.begin() as conn:
        await conn.run_sync(table.metadata.create_all)
        indexed = await indexed_columns(conn)
    slices: list[dict[str, float]] = []
    inserting = checkpointing = 0.0
    page: list[dict[str, Any]] = []
    done = 0
    now = datetime.now(UTC)

    async def write() -> None:
        nonlocal inserting, checkpointing
        started = time.perf_counter()
        async with engine.begin() as conn:
            await conn.execute(insert(table), page)
        written = time.perf_counter()
        async with engine.connect() as conn:
            await conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
        inserting += written - started
        checkpointing += time.perf_counter() - written

    try:
        for dn, uid, anchor in users:
            page.append(row(dn, uid, anchor, now))
            if len(page) == args.page_size:
                await write()
                done += len(page)
                page = []
                if done % args.slice == 0:
                    slices.append({"users": done, "insert_s": inserting,
                                   "checkpoint_s": checkpointing})
                    inserting = checkpointing = 0.0
                    print(f"  {done} users", file=sys.stderr, flush=True)
    finally:
        await engine.dispose()
    return slices, indexed


def per_user_us(part: dict[str, float], size: int) -> float:
    return (part["insert_s"] + part["checkpoint_s"]) / size * 1e6


def bench(args: argparse.Namespace) -> dict[str, Any]:
    users = directory_users(cached_ldif(Path(args.data_dir), args.users, args.groups, args.seed),
                            args.users)
    out: dict[str, Any] = {"users": args.users, "page_size": args.page_size, "slice": args.slice}
    with tempfile.TemporaryDirectory(prefix="syncsvc-bench-growth-") as tmp:
        for name, without in VARIANTS.items():
            print(f"{name}: without {list(without) or 'nothing'}", file=sys.stderr, flush=True)
            slices, indexed = asyncio.run(load(users, Path(tmp) / f"{name}.db", without, args))
            for part in slices:
                part["us_per_user"] = round(per_user_us(part, args.slice), 1)
                part["insert_s"] = round(part["insert_s"], 3)
                part["checkpoint_s"] = round(part["checkpoint_s"], 3)
            average = sum(p["us_per_user"] for p in slices) / len(slices)
            out[name] = {"without_indexes_on": list(without), "indexes": indexed, "slices": slices,
                         "us_per_user": round(average, 1),
                         "growth": round(average / slices[0]["us_per_user"], 2)}
    for base, part in zip(out["baseline"]["slices"], out["store"]["slices"], strict=True):
        part["ratio_to_baseline"] = round(part["us_per_user"] / base["us_per_user"], 2)
    return out


def summary(out: dict[str, Any]) -> str:
    lines = [f"SQLite first-load inserts, {out['users']} users, pages of {out['page_size']}",
             (f"  {'users':>9s} {'store us':>9s} {'insert':>8s} {'ckpt':>8s} "
              f"{'baseline us':>11s}  ratio")]
    for part, base in zip(out["store"]["slices"], out["baseline"]["slices"], strict=True):
        lines.append(f"  {part['users']:9d} {part['us_per_user']:9.1f} {part['insert_s']:8.2f} "
                     f"{part['checkpoint_s']:8.2f} {base['us_per_user']:11.1f}  "
                     f"x{part['ratio_to_baseline']}")
    for name in VARIANTS:
        lines.append(f"  {name}: {out[name]['us_per_user']} us a user over all; the whole load "
                     f"against its first slice x{out[name]['growth']}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--groups", type=int, help="of the LDIF generated (default: users / 20)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--slice", type=int, default=100_000, help="users a printed slice holds")
    parser.add_argument("--data-dir", default="/tmp/bench-data",
                        help="where generated LDIF files are kept and reused")
    parser.add_argument("--json", type=Path, help="write the JSON here instead of stdout")
    args = parser.parse_args()
    args.groups = args.groups if args.groups is not None else args.users // 20
    if args.users % args.slice or args.slice % args.page_size:
        parser.error("--users must be a multiple of --slice, --slice of --page-size")
    out = bench(args)
    print(summary(out), file=sys.stderr)
    text = json.dumps(out, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    else:
        print(text)


if __name__ == "__main__":
    main()
