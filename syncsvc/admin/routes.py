"""/admin/...: trigger syncs (202 with the run id), run history, guarded-run confirmation, status;
the admin page at /admin/ (:mod:`syncsvc.admin.page`).

Runs started here go on in the background; their reports are kept in memory for a while so a
dry run's diff (which writes no run record) can still be fetched by its id.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from aiohttp import web
from sqlalchemy import func, select

import syncsvc
from syncsvc.admin.page import add_page_routes
from syncsvc.domain import RunMode, RunStatus
from syncsvc.errors import Conflict, InvalidSyntax, InvalidValue, NotFound
from syncsvc.store import runs
from syncsvc.store.schema import GroupRow, UserRow
from syncsvc.sync import SyncDeps, SyncOptions, SyncReport, run_sync
from syncsvc.sync.scheduler import Scheduler

__all__ = ["ADMIN", "AdminState", "add_routes"]

log = structlog.get_logger(__name__)
KEEP_REPORTS = 50


@dataclass
class AdminState:
    deps: SyncDeps
    scheduler: Scheduler | None = None
    reports: OrderedDict[str, SyncReport | None] = field(default_factory=OrderedDict)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def keep(self, run_id: str, report: SyncReport | None) -> None:
        self.reports[run_id] = report
        self.reports.move_to_end(run_id)
        while len(self.reports) > KEEP_REPORTS:
            self.reports.popitem(last=False)


ADMIN = web.AppKey("admin", AdminState)


def _json(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status, dumps=lambda o: json.dumps(o, default=str))


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.body_exists:
        return {}
    try:
        body = await request.json()
    except RecursionError as exc:  # "[[[[..." deeper than the JSON parser's stack
        raise InvalidSyntax("the body is nested too deeply") from exc
    except ValueError as exc:
        raise InvalidSyntax(f"the body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise InvalidSyntax("the body must be a JSON object")
    return body


def _flag(body: dict[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise InvalidValue(f"{name} must be true or false")
    return value


def _start(state: AdminState, options: SyncOptions) -> str:
    """Run in the background; the lock refuses a concurrent run (then the report says so)."""
    if state.deps.lock.busy:
        raise Conflict("a sync is already running")
    run_id = str(uuid.uuid4())
    options = SyncOptions(mode=options.mode, dry_run=options.dry_run,
                          allow_deletions=options.allow_deletions, trigger="api", run_id=run_id,
                          user_name=options.user_name, user_dn=options.user_dn)
    state.keep(run_id, None)

    async def go() -> None:
        try:
            report = await run_sync(state.deps, options)
        except Exception as exc:  # SyncBusy from another replica, or a bug: visible in the run
            log.warning("admin.sync_not_run", run_id=run_id, error=str(exc))
            report = SyncReport(run_id=run_id, mode=options.mode, trigger="api",
                                dry_run=options.dry_run, status=RunStatus.FAILED, detail=str(exc))
        state.keep(run_id, report)
        if state.scheduler is not None:
            state.scheduler.record(report, datetime.now(UTC))

    task = asyncio.create_task(go())
    state.tasks.add(task)
    task.add_done_callback(state.tasks.discard)
    return run_id


def _accepted(run_id: str) -> web.Response:
    return _json({"id": run_id, "status": "running", "location": f"/admin/runs/{run_id}"}, 202)


async def trigger_sync(request: web.Request) -> web.Response:
    """POST /admin/sync {"mode": "full"|"incremental", "dry_run", "allow_deletions"} -> 202."""
    body = await _body(request)
    mode = str(body.get("mode", "full"))
    if mode not in (RunMode.FULL, RunMode.INCREMENTAL):
        raise InvalidValue("mode must be full or incremental")
    options = SyncOptions(mode=RunMode(mode), dry_run=_flag(body, "dry_run"),
                          allow_deletions=_flag(body, "allow_deletions"))
    return _accepted(_start(request.app[ADMIN], options))


async def sync_user(request: web.Request) -> web.Response:
    """POST /admin/sync/user {"uid": ...} or {"dn": ...}: re-read one user now -> 202."""
    body = await _body(request)
    uid, dn = body.get("uid"), body.get("dn")
    if bool(uid) == bool(dn) or not isinstance(uid or dn, str):
        raise InvalidValue('give exactly one of "uid" or "dn", as a string')
    options = SyncOptions(mode=RunMode.USER, user_name=uid, user_dn=dn)
    return _accepted(_start(request.app[ADMIN], options))


def _report_dict(report: SyncReport) -> dict[str, Any]:
    return {
        "id": report.run_id, "mode": report.mode.value, "method": report.method,
        "trigger": report.trigger, "status": report.status.value, "dry_run": report.dry_run,
        "counts": report.counts, "detail": report.detail,
        "problems": [{"dn": p.dn, "reason": p.reason} for p in report.problems[:1000]],
        "diff": [{"action": c.action, "type": c.kind.value, "dn": c.dn, "name": c.name}
                 for c in report.changes]
        + [{"action": "remove", "type": r.kind.value, "dn": r.dn, "name": r.name}
           for r in report.removals],
    }


async def list_runs(request: web.Request) -> web.Response:
    try:
        limit = max(1, min(int(request.query.get("limit", "20")), 200))
    except ValueError as exc:
        raise InvalidValue("limit must be an integer") from exc
    async with request.app[ADMIN].deps.engine.connect() as conn:
        records = await runs.list_runs(conn, limit)
    return _json({"runs": [r.as_dict() for r in records]})


async def get_run(request: web.Request) -> web.Response:
    """A run: running (kept in memory), a dry run's diff (memory only), or the stored record."""
    state = request.app[ADMIN]
    run_id = request.match_info["id"]
    report = state.reports.get(run_id)
    if run_id in state.reports and report is None:
        return _json({"id": run_id, "status": "running"})
    async with state.deps.engine.connect() as conn:
        record = await runs.get_run(conn, run_id)
    if record is None:
        if report is not None:  # a dry run, or one refused before it could be recorded
            return _json(_report_dict(report))
        raise NotFound(f"no run {run_id}")
    body = record.as_dict()
    if report is not None:
        body["diff"] = _report_dict(report)["diff"]
    return _json(body)


async def confirm_run(request: web.Request) -> web.Response:
    """POST /admin/runs/{id}/confirm: a guarded run becomes a full run allowed to remove."""
    state = request.app[ADMIN]
    async with state.deps.engine.connect() as conn:
        record = await runs.get_run(conn, request.match_info["id"])
    if record is None:
        raise NotFound(f"no run {request.match_info['id']}")
    if record.status != RunStatus.GUARDED:
        raise Conflict(f"run {record.id} is {record.status}, not guarded: nothing to confirm")
    options = SyncOptions(mode=RunMode.FULL, allow_deletions=True)
    return _accepted(_start(state, options))


async def status(request: web.Request) -> web.Response:
    state = request.app[ADMIN]
    engine = state.deps.engine
    async with engine.connect() as conn:
        users = await conn.scalar(select(func.count()).select_from(UserRow))
        active = await conn.scalar(select(func.count()).select_from(UserRow).where(UserRow.active))
        groups = await conn.scalar(select(func.count()).select_from(GroupRow))
        latest = await runs.list_runs(conn, 1)
        success = await runs.last_success(conn)
    now = datetime.now(UTC)
    sched = state.scheduler.state if state.scheduler is not None else None
    body = {
        "version": syncsvc.__version__,
        "running": state.deps.lock.busy,
        "last_run": latest[0].as_dict() if latest else None,
        "last_success": success.isoformat() if success else None,
        "lag_seconds": round((now - success).total_seconds()) if success else None,
        "next_run": ({"at": sched.next_at.isoformat(), "mode": sched.next_mode.value}
                     if sched and sched.next_at and sched.next_mode else None),
        "store": {"users": users, "active_users": active, "groups": groups,
                  "backend": engine.dialect.name},
    }
    return _json(body)


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/admin/sync", trigger_sync)
    r.add_post("/admin/sync/user", sync_user)
    r.add_get("/admin/runs", list_runs)
    r.add_get("/admin/runs/{id}", get_run)
    r.add_post("/admin/runs/{id}/confirm", confirm_run)
    r.add_get("/admin/status", status)
    add_page_routes(app)
