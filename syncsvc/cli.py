"""The `syncsvc` command line; the only reader of ``os.environ``.

Exit codes: 0 success, 1 failure, 2 bad usage or configuration, 3 the deletion guard held a sync.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from syncsvc.auth import TokenInfo, create_token, list_tokens, revoke_token
from syncsvc.domain import EntryKind, RunMode, RunStatus
from syncsvc.enrich import compile_enrichment
from syncsvc.errors import ConfigError, SyncSvcError
from syncsvc.logconfig import configure_logging
from syncsvc.mapping import compile_mapping
from syncsvc.settings import Settings, describe, find_config, load_settings
from syncsvc.store import current_revision, runs, upgrade
from syncsvc.service import config_dir, open_service, open_store
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
            configure_logging(self._settings.log)
        return self._settings


pass_ctx = click.make_pass_decorator(_Ctx)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config", metavar="FILE", envvar="SYNCSVC_CONFIG",
              help="TOML settings (default: ./syncsvc.toml, else the built-in demo).")
@click.pass_context
def main(ctx: click.Context, config: str | None) -> None:
    """syncsvc: one company directory, in sync everywhere (LDAP in, SCIM 2.0 out)."""
    ctx.obj = _Ctx(config)


@main.command("check-config")
@click.option("--show", is_flag=True, help="Print the effective settings (secrets masked).")
@pass_ctx
def check_config(obj: _Ctx, show: bool) -> None:
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
    if problems:
        sys.exit(EXIT_CONFIG)
    assert settings is not None
    if show:
        click.echo(json.dumps(describe(settings), indent=2))
    click.echo(f"config OK ({path or 'built-in demo'})")


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@pass_ctx
def db_upgrade(obj: _Ctx) -> None:
    """Bring the store's schema to the latest revision."""
    settings = obj.settings()

    async def go() -> str | None:
        async with open_store(settings) as engine:
            await upgrade(engine)
            return await current_revision(engine)

    click.echo(f"schema at revision {_run(go())}")


class _TerminalProgress:
    """A rich progress display on stderr when it is a terminal, silence otherwise."""

    def __init__(self) -> None:
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self._progress = Progress(SpinnerColumn(), TextColumn("{task.description}"),
                                  TextColumn("{task.completed} entries"), TimeElapsedColumn(),
                                  transient=True)
        self._tasks: dict[str, Any] = {}

    def __enter__(self) -> _TerminalProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def phase(self, name: str) -> None:
        self._task(name)

    def advance(self, kind: EntryKind, entries: int) -> None:
        self._progress.advance(self._task(f"reading {kind.value.lower()}s"), entries)

    def _task(self, name: str) -> Any:
        if name not in self._tasks:
            self._tasks[name] = self._progress.add_task(name, total=None)
        return self._tasks[name]


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
@pass_ctx
def sync(obj: _Ctx, mode: str | None, dry_run: bool, allow_deletions: bool) -> None:
    """Run one sync and print its summary (exit 0 ok, 1 failed, 3 guarded)."""
    settings = obj.settings()

    async def go(progress: Any) -> SyncReport:
        async with open_service(settings) as service:
            options = SyncOptions(mode=RunMode(mode or RunMode.FULL.value), dry_run=dry_run,
                                  allow_deletions=allow_deletions, trigger="cli", progress=progress)
            return await run_sync(service.sync, options)

    if sys.stderr.isatty():
        with _TerminalProgress() as progress:
            report = _run(go(progress))
    else:
        report = _run(go(SyncOptions().progress))
    if dry_run:
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
    click.echo(f"{report.summary()} [run {report.run_id}]")
    if report.status is RunStatus.GUARDED:
        sys.exit(EXIT_GUARDED)
    if report.status is RunStatus.FAILED:
        sys.exit(EXIT_FAILED)


@main.group(name="runs", invoke_without_command=True)
@click.pass_context
def runs_group(ctx: click.Context) -> None:
    """Run history (default: list)."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(runs_list)


@runs_group.command("list")
@click.option("--limit", default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True)
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
@click.option("--json", "as_json", is_flag=True)
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
              help="Comma-separated: scim:read, scim:write, admin.")
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
@click.option("--json", "as_json", is_flag=True)
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


@main.command()
@pass_ctx
def serve(obj: _Ctx) -> None:
    """Run the HTTP server (health probes for now) and keep the store in sync."""
    from syncsvc.service import serve_forever

    settings = obj.settings()
    _run(serve_forever(settings))
