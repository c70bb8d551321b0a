"""/admin/targets...: the downstream SCIM targets (``[[targets]]``) and their push state.

``GET /admin/targets`` lists every configured target with its state (queue depth, last
success, failures, quarantine); ``GET /admin/targets/{name}`` adds its settings (never a secret)
and the resources it refused. ``POST .../push`` drains it now, ``POST .../reconcile`` compares
and repairs it (``?dry_run=true``: only the diff), ``POST .../resume`` lifts a quarantine.
Status and resume read and write the store, so they work in any replica; push and reconcile
need the push runner of this process (:data:`syncsvc.push.PUSH_RUNNER`, set by ``serve``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from syncsvc.errors import Conflict, InvalidSyntax, InvalidValue, NotFound, TargetQuarantined
from syncsvc.push import PUSH_RUNNER, state
from syncsvc.push.state import TargetState
from syncsvc.settings import TargetSettings
from syncsvc.store.schema import OUTBOX

__all__ = ["TARGETS", "TARGETS_ENGINE", "add_target_routes", "target_statuses"]

TARGETS = web.AppKey("push_target_settings", tuple)
"""The configured targets (``Settings.targets``)."""

TARGETS_ENGINE = web.AppKey("push_targets_engine", AsyncEngine)

# Settings shown in the detail view; auth shows only its kind (the rest may be secret).
_SHOWN = ("url", "enabled", "users_filter", "groups", "push_groups", "attributes", "rename",
          "drop", "profile_extension", "match_by", "on_remove", "deletion_guard",
          "update_method", "member_batch", "use_bulk", "rate_limit", "concurrency", "timeout",
          "verify_tls", "max_retries", "quarantine_after", "reconcile_cron")


def _json(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status, dumps=lambda o: json.dumps(o, default=str))


async def target_statuses(
    engine: AsyncEngine, targets: Sequence[TargetSettings]
) -> list[dict[str, Any]]:
    """Each configured target with its stored state; one that never ran has an empty state
    (all of the outbox is its queue). Shared by the admin API and ``syncsvc targets status``."""
    async with engine.connect() as conn:
        stored = {s.name: s for s in await state.list_targets(conn)}
        total = int(await conn.scalar(select(func.count()).select_from(OUTBOX)) or 0)
    out = []
    for target in targets:
        current = stored.get(target.name) or TargetState(
            name=target.name, last_seq=0, initial_done=False, last_success=None,
            last_attempt=None, consecutive_failures=0, quarantined=False,
            quarantine_reason=None, last_error=None, queue_depth=total)
        out.append({"url": target.url, "enabled": target.enabled, **current.as_dict()})
    return out


def _configured(request: web.Request) -> Mapping[str, TargetSettings]:
    return {t.name: t for t in request.app[TARGETS]}


def _target(request: web.Request) -> TargetSettings:
    name = request.match_info["name"]
    target = _configured(request).get(name)
    if target is None:
        raise NotFound(f"no target {name!r} is configured")
    return target


def _runner(request: web.Request) -> Any:
    runner = request.app.get(PUSH_RUNNER)
    if runner is None:
        raise Conflict("push is not running in this process (syncsvc serve starts it when a "
                       "target is configured)")
    return runner


def _flag(request: web.Request, body: Mapping[str, Any], name: str) -> bool:
    """A boolean from the query string (``?dry_run=true``) or the JSON body."""
    if name in request.query:
        text = request.query[name].strip().lower()
        if text not in ("true", "false", "1", "0"):
            raise InvalidValue(f"{name} must be true or false")
        return text in ("true", "1")
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise InvalidValue(f"{name} must be true or false")
    return value


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.body_exists:
        return {}
    try:
        body = await request.json()
    except ValueError as exc:
        raise InvalidSyntax(f"the body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise InvalidSyntax("the body must be a JSON object")
    return body


async def list_targets(request: web.Request) -> web.Response:
    """GET /admin/targets: every configured target and where it stands."""
    statuses = await target_statuses(request.app[TARGETS_ENGINE], request.app[TARGETS])
    return _json({"targets": statuses, "running": PUSH_RUNNER in request.app})


async def get_target(request: web.Request) -> web.Response:
    """GET /admin/targets/{name}: status, settings (no secrets) and refused resources."""
    target = _target(request)
    engine = request.app[TARGETS_ENGINE]
    (status,) = await target_statuses(engine, [target])
    async with engine.connect() as conn:
        failures = await state.failures(conn, target.name)
    settings = {key: getattr(target, key) for key in _SHOWN}
    settings["auth"] = {"kind": target.auth.kind}
    return _json({**status, "settings": settings,
                  "failures": [f.as_dict() for f in failures]})


async def push_target(request: web.Request) -> web.Response:
    """POST /admin/targets/{name}/push[?allow_removals=true]: drain now, answer the report."""
    target = _target(request)
    allow = _flag(request, await _body(request), "allow_removals")
    try:
        report = await _runner(request).push_now(target.name, allow_removals=allow)
    except TargetQuarantined as exc:
        raise Conflict(f"target {target.name!r} is quarantined: {exc}; resume it first") from exc
    return _json(asdict(report))


async def reconcile_target(request: web.Request) -> web.Response:
    """POST /admin/targets/{name}/reconcile[?dry_run=true]: the diff, applied unless a dry run."""
    target = _target(request)
    dry_run = _flag(request, await _body(request), "dry_run")
    try:
        report = await _runner(request).reconcile(target.name, dry_run)
    except TargetQuarantined as exc:
        raise Conflict(f"target {target.name!r} is quarantined: {exc}; resume it first") from exc
    return _json(report.as_dict())


async def resume_target(request: web.Request) -> web.Response:
    """POST /admin/targets/{name}/resume: lift the quarantine; the next drain pushes again."""
    target = _target(request)
    engine = request.app[TARGETS_ENGINE]
    async with engine.begin() as conn:
        await state.ensure_targets(conn, [target.name])
        await state.resume(conn, target.name)
    runner = request.app.get(PUSH_RUNNER)
    if runner is not None:
        runner.wake()
    (status,) = await target_statuses(engine, [target])
    return _json(status)


def add_target_routes(
    app: web.Application, engine: AsyncEngine, targets: Sequence[TargetSettings]
) -> None:
    """Register the /admin/targets routes (the auth middleware requires the admin scope)."""
    app[TARGETS] = tuple(targets)
    app[TARGETS_ENGINE] = engine
    r = app.router
    r.add_get("/admin/targets", list_targets)
    r.add_get("/admin/targets/{name}", get_target)
    r.add_post("/admin/targets/{name}/push", push_target)
    r.add_post("/admin/targets/{name}/reconcile", reconcile_target)
    r.add_post("/admin/targets/{name}/resume", resume_target)
