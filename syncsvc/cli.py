"""The `syncsvc` command line; the only reader of ``os.environ``.

Exit codes: 0 success, 1 failure, 2 bad usage or configuration, 3 the deletion guard held a sync.
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import io
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, TextIO, TypeVar, cast

import click

import syncsvc
from syncsvc.auth import TokenInfo, create_token, list_tokens, revoke_token
from syncsvc.domain import EntryKind, RunMode, RunStatus
from syncsvc.enrich import compile_enrichment
from syncsvc.errors import ConfigError, SyncSvcError
from syncsvc.logconfig import configure_logging
from syncsvc.mapping import compile_mapping
from syncsvc.service import config_dir, open_service, open_store
from syncsvc.settings import Settings, describe, find_config, load_settings
from syncsvc.store import current_revision, head_revision, runs, upgrade
from syncsvc.sync import SyncOptions, SyncReport, run_sync

__all__ = ["main"]

T = TypeVar("T")
EXIT_FAILED, EXIT_CONFIG, EXIT_GUARDED = 1, 2, 3


def _fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    click.echo(f"syncsvc: {message}", err=True)
    sys.exit(code)


def _run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(coro)
    except ConfigError as exc:
        _fail("; ".join(exc.problems), EXIT_CONFIG)
    except SyncSvcError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        # Ctrl-C: asyncio.run has cancelled the work (a sync stops at a page boundary).
        _fail("interrupted", 130)


class _Ctx:
    """Loads settings lazily, so that `--help` works with a broken config."""

    def __init__(self, config: str | None) -> None:
        self.config = config
        self._settings: Settings | None = None

    def settings(self) -> Settings:
        if self._settings is None:
            path = find_config(self.config, os.environ, Path.cwd())
            try:
                self._settings = load_settings(path, os.environ)
            except ConfigError as exc:
                for problem in exc.problems:
                    click.echo(f"syncsvc: config: {problem}", err=True)
                sys.exit(EXIT_CONFIG)
            configure_logging(self._settings.log, stream=cast(TextIO, _StderrNow()))
        return self._settings


class _StderrNow(io.TextIOBase):
    """``sys.stderr`` as it is at each write: the live progress display of ``sync`` swaps it
    for a proxy that prints log lines above itself instead of through it."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


pass_ctx = click.make_pass_decorator(_Ctx)

F = TypeVar("F", bound=Callable[..., Any])


def json_option(what: str) -> Callable[[F], F]:
    """``--json``: the same content as one JSON document on stdout, for scripts."""
    return click.option("--json", "as_json", is_flag=True,
                        help=f"Print {what} as JSON on stdout, for scripts.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config", metavar="FILE", envvar="SYNCSVC_CONFIG",
              help="TOML settings (default: ./syncsvc.toml, else the built-in demo); "
              "also $SYNCSVC_CONFIG.")
@click.version_option(syncsvc.__version__, "--version", prog_name="syncsvc")
@click.pass_context
def main(ctx: click.Context, config: str | None) -> None:
    """syncsvc: one company directory, in sync everywhere (LDAP in, SCIM 2.0 out).

    Exit codes: 0 success, 1 failure, 2 bad usage or configuration, 3 a sync held by the
    deletion guard. Errors are one line on stderr, starting with "syncsvc:".
    """
    ctx.obj = _Ctx(config)


@main.command("check-config")
@click.option("--show", is_flag=True, help="Print the effective settings (secrets masked).")
@json_option('{"ok", "source", "problems", "settings"} (settings with secrets masked)')
@pass_ctx
def check_config(obj: _Ctx, show: bool, as_json: bool) -> None:
    """Report every problem of the configuration at once; exit 2 if there is any."""
    path = find_config(obj.config, os.environ, Path.cwd())
    problems: list[str] = []
    settings: Settings | None = None
    try:
        settings = load_settings(path, os.environ)
    except ConfigError as exc:
        problems.extend(exc.problems)
    if settings is not None:
        try:
            compile_mapping(settings.ldap.flavor, settings.mapping)
        except ConfigError as exc:
            problems.extend(exc.problems)
        try:
            compile_enrichment(settings.enrich, base_dir=config_dir(settings))
        except ConfigError as exc:
            problems.extend(exc.problems)
    for problem in problems:
        click.echo(f"syncsvc: config: {problem}", err=True)
    if as_json:
        shown = describe(settings) if settings is not None and not problems else None
        click.echo(json.dumps({"ok": not problems, "source": str(path) if path else None,
                               "problems": problems, "settings": shown}, indent=2))
    if problems:
        sys.exit(EXIT_CONFIG)
    assert settings is not None
    if as_json:
        return
    if show:
        click.echo(json.dumps(describe(settings), indent=2))
    click.echo(f"config OK ({path or 'built-in demo'})")


@main.group()
def db() -> None:
    """The store's database schema (Alembic migrations)."""


@db.command("upgrade")
@json_option('{"revision", "head"}')
@pass_ctx
def db_upgrade(obj: _Ctx, as_json: bool) -> None:
    """Bring the store's schema to the latest revision and print it.

    Safe to run from several replicas at once: one upgrades, the others wait and find it done.
    """
    settings = obj.settings()

    async def go() -> str | None:
        async with open_store(settings) as engine:
            await upgrade(engine)
            return await current_revision(engine)

    revision = _run(go())
    if as_json:
        click.echo(json.dumps({"revision": revision, "head": head_revision()}))
    else:
        click.echo(f"schema at revision {revision}")


class _Counts:
    """Entries read and pages written per kind, as the pipeline reports them."""

    def __init__(self) -> None:
        self.entries: dict[EntryKind, int] = {}
        self.pages: dict[EntryKind, int] = {}

    def add(self, kind: EntryKind, entries: int) -> str:
        self.entries[kind] = self.entries.get(kind, 0) + entries
        self.pages[kind] = self.pages.get(kind, 0) + 1
        return self.line(kind)

    def line(self, kind: EntryKind) -> str:
        pages = self.pages.get(kind, 0)
        return (f"{kind.value.lower()}s: {self.entries.get(kind, 0)} entries read, "
                f"{pages} page{'' if pages == 1 else 's'} written")


class _TerminalProgress:
    """A live display on stderr for a person at a terminal (rich); gone when the run ends."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self._progress = Progress(SpinnerColumn(finished_text="[green]done"),
                                  TextColumn("{task.description}"),
                                  TextColumn("[cyan]{task.fields[detail]}"), TimeElapsedColumn(),
                                  console=Console(stderr=True), transient=True)
        self._counts = _Counts()
        self._tasks: dict[str, Any] = {}

    def __enter__(self) -> _TerminalProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def phase(self, name: str) -> None:
        for task in self._tasks.values():  # a new phase: what came before is done
            self._progress.update(task, total=1, completed=1)
        self._task(name)

    def advance(self, kind: EntryKind, entries: int) -> None:
        detail = self._counts.add(kind, entries).split(": ", 1)[1]
        self._progress.update(self._task(f"{kind.value.lower()}s"), detail=detail)

    def _task(self, name: str) -> Any:
        if name not in self._tasks:
            self._tasks[name] = self._progress.add_task(name, total=None, detail="")
        return self._tasks[name]


class _LineProgress:
    """Plain lines on stderr when it is not a terminal (a CI log, a pipe): each phase, the
    counts at most every ``every`` seconds, and the totals at the end."""

    def __init__(self, every: float = 5.0) -> None:
        self._counts = _Counts()
        self._every = every
        self._last = time.monotonic()

    def __enter__(self) -> _LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        for kind in self._counts.entries:
            self._say(self._counts.line(kind))

    def phase(self, name: str) -> None:
        self._say(name)

    def advance(self, kind: EntryKind, entries: int) -> None:
        line = self._counts.add(kind, entries)
        if time.monotonic() - self._last >= self._every:
            self._say(line)

    def _say(self, text: str) -> None:
        self._last = time.monotonic()
        click.echo(f"progress: {text}", err=True)


def _progress_display(mode: str) -> _TerminalProgress | _LineProgress | None:
    """``auto``: a live display on a terminal, plain lines otherwise."""
    if mode == "none":
        return None
    if mode == "auto" and sys.stderr.isatty():
        try:
            return _TerminalProgress()
        except ImportError:  # rich is a dependency, but a trimmed install may lack it
            pass
    return _LineProgress()


def _report_dict(report: SyncReport) -> dict[str, Any]:
    """What ``sync --json`` prints: the shape of ``GET /admin/runs/{id}``, plus the seconds."""
    return {
        "id": report.run_id, "mode": report.mode.value, "method": report.method,
        "trigger": report.trigger, "status": report.status.value, "dry_run": report.dry_run,
        "seconds": round(report.seconds, 3), "counts": report.counts, "detail": report.detail,
        "problems": [{"dn": p.dn, "reason": p.reason} for p in report.problems],
        "changes": [{"action": c.action, "kind": c.kind.value, "dn": c.dn, "name": c.name}
                    for c in report.changes],
        "removals": [{"kind": r.kind.value, "id": r.id, "dn": r.dn, "name": r.name}
                     for r in report.removals],
    }


def _print_plan(report: SyncReport, on_missing: str) -> None:
    """The diff of a dry run: one line per resource that would change."""
    for change in report.changes:
        click.echo(f"{change.action:<10} {change.kind.value:<5} {change.dn}  ({change.name})")
    for removal in report.removals:
        action = "delete" if removal.kind is EntryKind.GROUP else on_missing
        click.echo(f"{action:<10} {removal.kind.value:<5} {removal.dn}  ({removal.name})")


@main.command()
@click.option("--full", "mode", flag_value=RunMode.FULL.value, help="Read everything and sweep (default).")
@click.option("--incremental", "mode", flag_value=RunMode.INCREMENTAL.value,
              help="Read what changed (content sync, or modifyTimestamp/uSNChanged).")
@click.option("--dry-run", is_flag=True, help="Print the changes; write nothing.")
@click.option("--allow-deletions", is_flag=True, help="Confirm removals over the deletion guard.")
@click.option("--progress", "progress_mode", type=click.Choice(["auto", "lines", "none"]),
              default="auto", show_default=True,
              help="On stderr: auto is a live display on a terminal and plain lines otherwise.")
@json_option("the run (counts, problems, a dry run's changes)")
@pass_ctx
def sync(obj: _Ctx, mode: str | None, dry_run: bool, allow_deletions: bool,
         progress_mode: str, as_json: bool) -> None:
    """Run one sync and print its summary (exit 0 ok, 1 failed, 3 guarded)."""
    settings = obj.settings()

    async def go(progress: Any) -> SyncReport:
        async with open_service(settings) as service:
            options = SyncOptions(mode=RunMode(mode or RunMode.FULL.value), dry_run=dry_run,
                                  allow_deletions=allow_deletions, trigger="cli")
            if progress is not None:
                options = dataclasses.replace(options, progress=progress)
            return await run_sync(service.sync, options)

    display = _progress_display(progress_mode)
    if display is None:
        report = _run(go(None))
    else:
        with display:
            report = _run(go(display))
    if as_json:
        click.echo(json.dumps(_report_dict(report), indent=2, ensure_ascii=False))
    elif dry_run:
        _print_plan(report, settings.sync.on_missing)
    else:
        for problem in report.problems[:20]:
            click.echo(f"problem: {problem.dn}: {problem.reason}", err=True)
        if len(report.problems) > 20:
            click.echo(f"... and {len(report.problems) - 20} more (syncsvc runs show {report.run_id})",
                       err=True)
        if report.status is RunStatus.GUARDED:
            for removal in report.removals[:20]:
                click.echo(f"would remove: {removal.kind.value} {removal.dn}", err=True)
    if not as_json:
        click.echo(f"{report.summary()} [run {report.run_id}]")
    if report.status is RunStatus.GUARDED:
        sys.exit(EXIT_GUARDED)
    if report.status is RunStatus.FAILED:
        _fail(f"sync failed: {report.detail or 'see the logs'}")


@main.group(name="runs", invoke_without_command=True)
@click.pass_context
def runs_group(ctx: click.Context) -> None:
    """Run history: what each sync read, changed and could not map (default: list)."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(runs_list)


@runs_group.command("list")
@click.option("--limit", type=click.IntRange(1, 10_000), default=20, show_default=True,
              help="How many runs, newest first.")
@json_option("the runs (a list of run objects)")
@pass_ctx
def runs_list(obj: _Ctx, limit: int = 20, as_json: bool = False) -> None:
    """The latest runs, newest first."""
    settings = obj.settings()

    async def go() -> list[runs.RunRecord]:
        async with open_store(settings) as engine, engine.connect() as conn:
            return await runs.list_runs(conn, limit)

    records = _run(go())
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in records], indent=2))
        return
    for r in records:
        counts = " ".join(f"{k}={v}" for k, v in r.counts.items())
        click.echo(f"{r.id}  {r.started:%Y-%m-%d %H:%M:%S}  {r.mode:<11} {r.method:<11} "
                   f"{r.status:<8} {counts}")


@runs_group.command("show")
@click.argument("run_id")
@json_option("the run with its counts and problems")
@pass_ctx
def runs_show(obj: _Ctx, run_id: str, as_json: bool) -> None:
    """One run with its problems (RUN_ID may be a unique prefix)."""
    settings = obj.settings()

    async def go() -> runs.RunRecord | None:
        async with open_store(settings) as engine, engine.connect() as conn:
            return await runs.get_run(conn, run_id)

    record = _run(go())
    if record is None:
        _fail(f"no run {run_id!r} (or the prefix is not unique)")
    if as_json:
        click.echo(json.dumps(record.as_dict(), indent=2))
        return
    for key, value in record.as_dict().items():
        if key != "problems":
            click.echo(f"{key}: {value}")
    for problem in record.problems:
        click.echo(f"problem: {problem.dn}: {problem.reason}")


@main.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table",
              show_default=True, help="table for a terminal, json as GET /admin/quality, csv "
              "as section,name,metric,value rows.")
@click.option("--limit", type=click.IntRange(0, 100_000), default=20, show_default=True,
              help="Examples listed per issue, and lowest scores shown.")
@pass_ctx
def quality(obj: _Ctx, fmt: str, limit: int) -> None:
    """The directory-quality report: completeness, scores and issues of the synced directory."""
    from syncsvc.profiles.quality import quality_report, report_csv, report_table

    settings = obj.settings()

    async def go() -> dict[str, Any]:
        async with open_store(settings) as engine, engine.connect() as conn:
            return await quality_report(conn, limit=limit)

    report = _run(go())
    if fmt == "json":
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
    elif fmt == "csv":
        click.echo(report_csv(report), nl=False)
    else:
        click.echo(report_table(report), nl=False)


@main.group()
def token() -> None:
    """API tokens for the SCIM and admin APIs."""


@token.command("create")
@click.option("--name", required=True, help="A unique name, e.g. the client it is for.")
@click.option("--scopes", required=True, metavar="LIST",
              help="Comma-separated: scim:read, scim:write, metrics, admin.")
@pass_ctx
def token_create(obj: _Ctx, name: str, scopes: str) -> None:
    """Create a token and print it, once, alone on stdout (store it now: it is not kept)."""
    settings = obj.settings()

    async def go() -> str:
        async with open_store(settings) as engine, engine.begin() as conn:
            return await create_token(conn, name=name, scopes=scopes, now=datetime.now(UTC))

    secret = _run(go())
    click.echo(secret)
    click.echo(f"token {name!r} created; it is shown only this once", err=True)


@token.command("list")
@json_option("the tokens (never their secrets)")
@pass_ctx
def token_list(obj: _Ctx, as_json: bool) -> None:
    """Every token (never its secret): name, scopes, created, last used, revoked."""
    settings = obj.settings()

    async def go() -> list[TokenInfo]:
        async with open_store(settings) as engine, engine.connect() as conn:
            return await list_tokens(conn)

    tokens = _run(go())
    if as_json:
        click.echo(json.dumps([t.as_dict() for t in tokens], indent=2))
        return

    def when(value: datetime | None) -> str:
        return f"{value:%Y-%m-%d %H:%M:%S}" if value else "-"

    rows = [(t.name, ",".join(t.scopes), when(t.created), when(t.last_used), when(t.revoked))
            for t in tokens]
    header = ("NAME", "SCOPES", "CREATED", "LAST USED", "REVOKED")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    if not rows:
        click.echo("no tokens (syncsvc token create --name NAME --scopes LIST)", err=True)
        return
    for row in [header, *rows]:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


@token.command("revoke")
@click.argument("name")
@pass_ctx
def token_revoke(obj: _Ctx, name: str) -> None:
    """Revoke the token NAME; servers stop accepting it within 30 seconds."""
    settings = obj.settings()

    async def go() -> TokenInfo:
        async with open_store(settings) as engine, engine.begin() as conn:
            return await revoke_token(conn, name, datetime.now(UTC))

    info = _run(go())
    assert info.revoked is not None
    click.echo(f"revoked {name} (at {info.revoked:%Y-%m-%d %H:%M:%S} UTC)")


@main.group()
def targets() -> None:
    """Downstream SCIM targets ([[targets]]): status, push now, reconcile, resume."""


def _target_named(settings: Settings, name: str) -> Any:
    for target in settings.targets:
        if target.name == name:
            return target
    known = ", ".join(t.name for t in settings.targets) or "none is configured"
    _fail(f"no target {name!r} ({known})", EXIT_CONFIG)


def _when(value: str | None) -> str:
    return value[:19].replace("T", " ") if value else "-"


@targets.command("list")
@json_option("the targets")
@pass_ctx
def targets_list(obj: _Ctx, as_json: bool) -> None:
    """The configured targets (from the settings; the store is not read)."""
    settings = obj.settings()
    rows = [{"name": t.name, "url": t.url, "enabled": t.enabled, "auth": t.auth.kind,
             "update_method": t.update_method, "on_remove": t.on_remove} for t in settings.targets]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no targets configured ([[targets]] in the config)", err=True)
        return
    for r in rows:
        state = "enabled" if r["enabled"] else "disabled"
        click.echo(f"{r['name']}  {r['url']}  {state}  auth={r['auth']}  "
                   f"update={r['update_method']}  on_remove={r['on_remove']}")


@targets.command("status")
@click.argument("name", required=False)
@json_option("the statuses")
@pass_ctx
def targets_status(obj: _Ctx, name: str | None, as_json: bool) -> None:
    """Each target's queue depth, last success, failures and quarantine (or only NAME's)."""
    from syncsvc.admin.targets import target_statuses

    settings = obj.settings()
    chosen = [_target_named(settings, name)] if name else list(settings.targets)

    async def go() -> list[dict[str, Any]]:
        async with open_store(settings) as engine:
            return await target_statuses(engine, chosen)

    statuses = _run(go())
    if as_json:
        click.echo(json.dumps(statuses, indent=2))
        return
    if not statuses:
        click.echo("no targets configured ([[targets]] in the config)", err=True)
        return
    for s in statuses:
        health = (f"QUARANTINED ({s['quarantine_reason']})" if s["quarantined"]
                  else "disabled" if not s["enabled"] else "ok" if not s["consecutive_failures"]
                  else f"{s['consecutive_failures']} failures")
        click.echo(f"{s['name']}  queue={s['queue_depth']}  initial={'done' if s['initial_done'] else 'pending'}"
                   f"  last_success={_when(s['last_success'])}  refused={s['failed_resources']}"
                   f"  {health}")
        if s["last_error"]:
            click.echo(f"  last error: {s['last_error']}")


def _on_target(settings: Settings, name: str, action: Callable[[Any], Awaitable[Any]]) -> Any:
    """Run ``action(engine)`` for target ``name`` (every target has its state row first), with
    the CLI's one-line errors for a quarantined target, a bad config and any other failure."""
    from syncsvc.errors import TargetQuarantined
    from syncsvc.push import state

    async def go() -> Any:
        async with open_store(settings) as engine:
            async with engine.begin() as conn:
                await state.ensure_targets(conn, [t.name for t in settings.targets])
            return await action(engine)

    try:
        return asyncio.run(go())
    except TargetQuarantined as exc:
        _fail(f"target {name!r} is quarantined: {exc} (syncsvc targets resume {name})")
    except ConfigError as exc:
        _fail("; ".join(exc.problems), EXIT_CONFIG)
    except SyncSvcError as exc:
        _fail(str(exc))


@targets.command("push")
@click.argument("name")
@click.option("--allow-removals", is_flag=True,
              help="Confirm more removals than the target's deletion_guard.")
@json_option("the push report")
@pass_ctx
def targets_push(obj: _Ctx, name: str, allow_removals: bool, as_json: bool) -> None:
    """Push NAME now: the initial push if it never had one, then every pending change.

    Exit 0 when all went, 1 when the target failed or is quarantined, 3 when removals were held.
    """
    from syncsvc.push.worker import PushWorker

    settings = obj.settings()
    target = _target_named(settings, name)
    if not target.enabled:
        _fail(f"target {name!r} is disabled (enabled = false)")

    async def drain(engine: Any) -> Any:
        worker = PushWorker(engine, target)
        try:
            return await worker.drain(allow_removals=allow_removals)
        finally:
            await worker.aclose()

    report = _on_target(settings, name, drain)
    if as_json:
        click.echo(json.dumps(dataclasses.asdict(report), indent=2))
    else:
        click.echo(f"{report.target}: pushed={report.pushed} removed={report.removed} "
                   f"failed={report.failed} skipped={report.skipped} held={str(report.held).lower()}"
                   f" in {report.seconds:.1f}s")
        if report.error:
            click.echo(f"error: {report.error}", err=True)
        if report.held:
            click.echo("removals over the deletion guard were held; confirm with "
                       "--allow-removals", err=True)
    if report.error:
        sys.exit(EXIT_FAILED)
    if report.held:
        sys.exit(EXIT_GUARDED)


@targets.command("reconcile")
@click.argument("name")
@click.option("--dry-run", is_flag=True, help="Print the differences; change nothing.")
@json_option("the differences and what was done")
@pass_ctx
def targets_reconcile(obj: _Ctx, name: str, dry_run: bool, as_json: bool) -> None:
    """Compare NAME with the store (list the target) and repair the drift unless --dry-run."""
    from syncsvc.push.reconcile import reconcile

    settings = obj.settings()
    target = _target_named(settings, name)

    report = _on_target(settings, name,
                        lambda engine: reconcile(engine, target, dry_run=dry_run))
    body = report.as_dict()
    if as_json:
        click.echo(json.dumps(body, indent=2, default=str))
        return
    for action in ("create", "update", "remove", "link"):
        for entry in body[action]:
            what = f"{entry.get('kind', '')} {entry.get('name') or entry.get('id')}"
            extra = (", ".join(entry.get("fields") or ()) if action == "update"
                     else entry.get("action") or entry.get("by") or entry.get("remote_id") or "")
            click.echo(f"{action:<7} {what}" + (f"  ({extra})" if extra else ""))
    counts = " ".join(f"{a}={len(body[a])}" for a in ("create", "update", "remove", "link"))
    done = "dry run, nothing changed" if dry_run else ("applied" if body["applied"] else "not applied")
    click.echo(f"{name}: {counts} ({done})")
    result = body.get("result") or {}
    if result.get("error"):
        click.echo(f"error: {result['error']}", err=True)
        sys.exit(EXIT_FAILED)


@targets.command("resume")
@click.argument("name")
@pass_ctx
def targets_resume(obj: _Ctx, name: str) -> None:
    """Lift NAME's quarantine; a running server pushes to it again on its next poll."""
    from syncsvc.push import state

    settings = obj.settings()
    target = _target_named(settings, name)

    async def go() -> None:
        async with open_store(settings) as engine, engine.begin() as conn:
            await state.ensure_targets(conn, [target.name])
            await state.resume(conn, target.name)

    _run(go())
    click.echo(f"resumed {name}")


@main.command()
@pass_ctx
def serve(obj: _Ctx) -> None:
    """Serve SCIM, the admin API and page, profiles, /healthz, /readyz and /metrics, and run
    the scheduled syncs; SIGTERM or Ctrl-C stops it cleanly (exit 0)."""
    from syncsvc.service import serve_forever

    settings = obj.settings()
    try:
        _run(serve_forever(settings))
    except OSError as exc:
        if exc.errno not in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES):
            raise
        _fail(f"cannot listen on {settings.http.host}:{settings.http.port}: "
              f"{os.strerror(exc.errno)} ([http] host and port)")
