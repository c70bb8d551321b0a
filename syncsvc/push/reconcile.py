"""A full reconcile of one target: list what it has, compare with what we would push, fix drift.

The outbox makes pushes incremental; a reconcile catches what it cannot see: a change made
directly on the target, a remote resource deleted there, state lost on our side. It reads the
target's whole ``Users`` (and ``Groups`` when they are pushed) list and, for every resource in
scope:

- linked and present remotely: **update** when an attribute we send differs (members compared
  as sets of ids);
- not linked, or linked to a remote id the target no longer has: **link** to a remote copy whose
  ``externalId`` is our id (or that ``match_by`` finds), else **create**;

and for every remote resource we had linked whose resource is gone here or out of scope:
**remove** (``on_remove``). Remote resources we never pushed are left alone: they are not ours.

A dry run returns the same lists and writes nothing, here or there.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from syncsvc.errors import Conflict
from syncsvc.push.worker import ENDPOINT, DrainReport, PushWorker
from syncsvc.settings import TargetSettings
from syncsvc.store.schema import GROUPS, USERS

__all__ = ["ReconcileReport", "reconcile"]

_IDS_PAGE = 1000
_log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    """The diff (each entry a small dict: kind, id, name, remote_id, and for updates the
    differing ``fields``) and, unless a dry run, what applying it did."""

    target: str
    dry_run: bool
    create: list[dict[str, Any]] = field(default_factory=list)
    update: list[dict[str, Any]] = field(default_factory=list)
    remove: list[dict[str, Any]] = field(default_factory=list)
    link: list[dict[str, Any]] = field(default_factory=list)
    applied: bool = False
    result: DrainReport | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "target": self.target, "dry_run": self.dry_run, "applied": self.applied,
            "create": self.create, "update": self.update, "remove": self.remove,
            "link": self.link,
        }
        if self.result is not None:
            out["result"] = {"pushed": self.result.pushed, "removed": self.result.removed,
                             "failed": self.result.failed, "error": self.result.error}
        return out


def _norm(value: Any) -> Any:
    """Compare JSON values the way a SCIM server may echo them: key case and order aside."""
    if isinstance(value, Mapping):
        return {str(k).lower(): _norm(v) for k, v in value.items()
                if v not in (None, [], {}) and k != "$ref"}
    if isinstance(value, list):
        return sorted((_norm(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    return value


def _differing(ours: Mapping[str, Any], theirs: Mapping[str, Any]) -> list[str]:
    """Top-level attributes of ``ours`` the remote copy does not hold as we would send them."""
    lower = {str(k).lower(): v for k, v in theirs.items()}
    out = []
    for key, value in ours.items():
        if key == "schemas":
            continue
        if key == "members":
            mine = {m.get("value") for m in value or ()}
            have = {m.get("value") for m in lower.get("members") or () if isinstance(m, Mapping)}
            if mine != have:
                out.append(key)
            continue
        remote = lower.get(key.lower())
        if isinstance(value, Mapping) and isinstance(remote, Mapping):
            # An extension: compare only what we send (the target may add its own defaults).
            if _differing(value, remote):
                out.append(key)
        elif _norm(value) != _norm(remote):
            out.append(key)
    return out


def _name(body: Mapping[str, Any]) -> str:
    return str(body.get("userName") or body.get("displayName") or "")


async def _all_ids(engine: AsyncEngine, query: Any, table_id: Any) -> list[str]:
    ids: list[str] = []
    after = ""
    while True:
        async with engine.connect() as conn:
            page = list(await conn.scalars(query.where(table_id > after).limit(_IDS_PAGE)))
        if not page:
            return ids
        ids.extend(page)
        after = page[-1]


async def reconcile(
    engine: AsyncEngine,
    target: TargetSettings,
    *,
    dry_run: bool,
    log: Any = None,
    worker: PushWorker | None = None,
) -> ReconcileReport:
    """Compare ``target`` with our store and, unless ``dry_run``, repair it (module docstring).

    ``worker`` is the runner's worker for this target (the caller holds its
    :meth:`~PushWorker.exclusive`); without one a worker is made for this call, holding the
    target against other replicas' drains (:class:`Conflict` when one is running), and closed.
    """
    if worker is not None:
        return await _reconcile(engine, target, worker, dry_run=dry_run, log=log)
    worker = PushWorker(engine, target, log=log or _log)
    try:
        async with worker.exclusive() as mine:
            if not mine:
                raise Conflict(f"another replica is pushing to {target.name!r}; try again")
            return await _reconcile(engine, target, worker, dry_run=dry_run, log=log)
    finally:
        await worker.aclose()


async def _reconcile(
    engine: AsyncEngine, target: TargetSettings, worker: PushWorker, *, dry_run: bool, log: Any,
) -> ReconcileReport:
    logger = (log or _log).bind(target=target.name)
    scope = await worker.prepare()
    client = worker.client
    kinds = [("User", scope.users(), USERS.c.id)]
    if target.push_groups:
        kinds.append(("Group", scope.groups(), GROUPS.c.id))
    create: list[dict[str, Any]] = []
    update: list[dict[str, Any]] = []
    remove: list[dict[str, Any]] = []
    link: list[dict[str, Any]] = []
    to_push: list[tuple[str, str]] = []
    to_link: dict[tuple[str, str], str] = {}
    to_remove: list[tuple[str, str]] = []
    for kind, query, id_col in kinds:
        remote = {str(r["id"]): r async for r in client.list_all(ENDPOINT[kind])}
        by_external = {str(r.get("externalId")): rid for rid, r in remote.items()
                       if r.get("externalId")}
        key_attr = "userName" if kind == "User" else "displayName"
        by_name = {str(r.get(key_attr) or "").lower(): rid for rid, r in remote.items()}
        ours = await _all_ids(engine, query, id_col)
        in_scope = set(ours)
        for start in range(0, len(ours), _IDS_PAGE):
            payloads = await worker.payloads(kind, ours[start : start + _IDS_PAGE], scope)
            for rid, payload in payloads.items():
                entry = {"kind": kind, "id": rid, "name": _name(payload.body)}
                current = worker.links.get((kind, rid))
                remote_id = current.remote_id if current else None
                if remote_id and remote_id in remote:
                    fields = _differing(payload.body, remote[remote_id])
                    if fields or current is None or current.status != "ok":
                        update.append({**entry, "remote_id": remote_id, "fields": fields})
                        to_push.append((kind, rid))
                    continue
                found = by_external.get(rid)
                by = "externalId"
                if found is None and any(a.lower() in ("username", "displayname")
                                         for a in target.match_by):
                    found, by = by_name.get(_name(payload.body).lower()), key_attr
                if found is not None:
                    link.append({**entry, "remote_id": found, "by": by,
                                 "fields": _differing(payload.body, remote[found])})
                    to_link[(kind, rid)] = found
                    to_push.append((kind, rid))
                else:
                    create.append(entry)
                    to_push.append((kind, rid))
        for (k, rid), current in list(worker.links.items()):
            if k != kind or rid in in_scope or not current.remote_id:
                continue
            if current.status == "removed" and (kind == "Group" or target.on_remove == "delete"
                                                or current.remote_id not in remote):
                continue
            theirs = remote.get(current.remote_id)
            if theirs is None:
                continue  # already gone there
            if kind == "User" and target.on_remove == "deactivate" \
                    and theirs.get("active") is False:
                continue
            remove.append({"kind": kind, "id": rid, "name": _name(theirs),
                           "remote_id": current.remote_id, "action": (
                               "deactivate" if kind == "User"
                               and target.on_remove == "deactivate" else "delete")})
            to_remove.append((kind, rid))
    logger.info("push.reconcile_diff", dry_run=dry_run, create=len(create),
                update=len(update), remove=len(remove), link=len(link))
    if dry_run:
        return ReconcileReport(target=target.name, dry_run=True, create=create,
                               update=update, remove=remove, link=link)
    result = await worker.repair(scope, push=to_push, link=to_link, remove=to_remove)
    return ReconcileReport(target=target.name, dry_run=False, create=create, update=update,
                           remove=remove, link=link, applied=result.error is None,
                           result=result)

