"""Validate coerced settings and normalise the values that depend on where the file lives.

Each ``_check_<section>`` returns the (possibly rewritten) section and appends problems; keys
that already failed coercion are skipped so one mistake is reported once. Rewrites:

- a relative ``ldif://`` path, ``ldap.ca_file`` or SQLite database path becomes absolute,
  relative to ``base_dir`` (the config file's folder);
- ``postgresql://`` (and ``postgres://``) becomes ``postgresql+asyncpg://`` and ``sqlite://``
  becomes ``sqlite+aiosqlite://``: the store is async-only, and users paste plain URLs;
- a target's ``url`` loses its trailing ``/`` and its relative ``ca_file`` becomes absolute.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

from croniter import croniter
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from syncsvc._settings_load import problem
from syncsvc.errors import InvalidFilter
from syncsvc.redact import mask_url_password

# The SCIM filter grammar depends on nothing but syncsvc.errors; checking a target's
# users_filter here (not at first push) lets check-config report it with the rest.
from syncsvc.scim._filterparse import parse as parse_scim_filter

if TYPE_CHECKING:
    from syncsvc.settings import (
        HttpSettings,
        LdapSettings,
        ProfilesSettings,
        ScimSettings,
        Settings,
        StoreSettings,
        SyncSettings,
        TargetAuthSettings,
        TargetSettings,
    )

__all__ = ["check"]

ASYNC_DRIVERS: Final = ("sqlite+aiosqlite", "postgresql+asyncpg")
_DRIVER_REWRITES: Final = {
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
}
_LDIF_PREFIX: Final = "ldif://"
_URL_FORMS: Final = "ldap://host[:port], ldaps://host[:port] or ldif://path"
MAX_PAGE_SIZE: Final = 10_000
TARGET_NAME: Final = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


class _Ctx:
    """What every check needs: where relative paths start, origins, keys to skip, problems."""

    def __init__(self, base_dir: Path, origins: Mapping[str, str], failed: frozenset[str]) -> None:
        self.base_dir = base_dir
        self.origins = origins
        self.failed = failed
        self.problems: list[str] = []

    def report(self, key: str, message: str) -> None:
        self.problems.append(problem(key, message, self.origins.get(key)))

    def ok(self, key: str) -> bool:
        """Whether ``key`` coerced fine and so deserves validation."""
        return key not in self.failed


def _check_range(
    ctx: _Ctx, key: str, value: float, what: str, *, low: float | None = None,
    high: float | None = None, low_open: bool = False,
) -> None:
    """Report ``key`` unless ``low <= value <= high`` (``low < value`` when ``low_open``)."""
    if not ctx.ok(key):
        return
    too_low = low is not None and (value <= low if low_open else value < low)
    if math.isnan(value) or too_low or (high is not None and value > high):
        ctx.report(key, f"must be {what}, got {value!r}")


def _check_ldap_url(ctx: _Ctx, url: str) -> tuple[str, str | None]:
    """Return the normalised URL and its scheme, or report it and return scheme None."""
    if url.lower().startswith(_LDIF_PREFIX):
        path = ctx.base_dir / url[len(_LDIF_PREFIX):]  # ldif:///abs keeps its absolute path
        if not url[len(_LDIF_PREFIX):]:
            ctx.report("ldap.url", f"{url!r} names no file; expected {_URL_FORMS}")
            return url, None
        if not path.is_file():
            ctx.report("ldap.url", f"LDIF file {path} does not exist (from {url!r})")
            return url, None
        return _LDIF_PREFIX + str(path), "ldif"
    shown = mask_url_password(url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        ctx.report("ldap.url", f"{shown!r} has a bad port (expected 1-65535)")
        return url, None
    scheme = parts.scheme.lower()
    if scheme not in ("ldap", "ldaps") or not parts.hostname:
        ctx.report("ldap.url", f"{shown!r} is not one of {_URL_FORMS}")
        return url, None
    if parts.username is not None or parts.password is not None:
        ctx.report("ldap.url", f"{shown!r}: put credentials in bind_dn/bind_password, not the URL")
        return url, None
    if port is not None and not 1 <= port <= 65535:
        ctx.report("ldap.url", f"{shown!r} has a bad port (expected 1-65535)")
        return url, None
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        ctx.report("ldap.url", f"{shown!r}: no DN, attributes or filter part allowed; "
                   f"expected {_URL_FORMS}")
        return url, None
    return url, scheme


def _check_ldap(ctx: _Ctx, ldap: LdapSettings) -> LdapSettings:
    urls: list[str] = []
    schemes: set[str] = set()
    if ctx.ok("ldap.url"):
        if not ldap.url:
            ctx.report("ldap.url", f"no directory configured; give one or more of {_URL_FORMS}")
        for url in ldap.url:
            normalised, scheme = _check_ldap_url(ctx, url)
            urls.append(normalised)
            if scheme:
                schemes.add(scheme)
    if ldap.start_tls and "ldaps" in schemes and ctx.ok("ldap.start_tls"):
        ctx.report("ldap.start_tls", "cannot be used with ldaps:// URLs (TLS is already on)")
    if schemes & {"ldap", "ldaps"} and not ldap.base_dn.strip() and ctx.ok("ldap.base_dn"):
        ctx.report("ldap.base_dn", "required when reading from an ldap:// or ldaps:// server")
    ca_file = ldap.ca_file
    if ca_file and ctx.ok("ldap.ca_file"):
        path = ctx.base_dir / ca_file
        try:
            with path.open("rb"):
                pass
        except OSError as exc:
            ctx.report("ldap.ca_file", f"cannot read {path}: {exc.strerror}")
        ca_file = str(path)
    for key, timeout in (("ldap.connect_timeout", ldap.connect_timeout),
                         ("ldap.read_timeout", ldap.read_timeout)):
        _check_range(ctx, key, timeout, "> 0 seconds", low=0, low_open=True)
    _check_range(ctx, "ldap.page_size", ldap.page_size, f"1..{MAX_PAGE_SIZE}",
                 low=1, high=MAX_PAGE_SIZE)
    _check_range(ctx, "ldap.incremental_overlap", ldap.incremental_overlap, ">= 0", low=0)
    return dataclasses.replace(
        ldap, url=tuple(urls) if ctx.ok("ldap.url") else ldap.url, ca_file=ca_file)


def _check_store(ctx: _Ctx, store: StoreSettings) -> StoreSettings:
    if not ctx.ok("store.url"):
        return store
    shown = mask_url_password(store.url)
    try:
        url = make_url(store.url)
    except (ArgumentError, ValueError):
        ctx.report("store.url", f"{shown!r} is not a SQLAlchemy URL (driver://...)")
        return store
    text = store.url
    driver = _DRIVER_REWRITES.get(url.drivername.lower())
    if driver:
        # Swap the scheme in the text: rendering the URL object would re-quote the rest.
        text = driver + text[text.index(":"):]
        url = url.set(drivername=driver)
    if url.drivername not in ASYNC_DRIVERS:
        ctx.report("store.url", f"driver {url.drivername!r} is not supported; use "
                   + " or ".join(ASYNC_DRIVERS))
        return store
    db = url.database
    if (url.drivername.startswith("sqlite") and db and db != ":memory:"
            and not db.startswith("file:") and not Path(db).is_absolute()):
        text = url.set(database=str(ctx.base_dir / db)).render_as_string(hide_password=False)
    return store if text == store.url else dataclasses.replace(store, url=text)


def _check_http(ctx: _Ctx, http: HttpSettings) -> None:
    if ctx.ok("http.host") and not http.host.strip():
        ctx.report("http.host", "must not be empty")
    _check_range(ctx, "http.port", http.port, "1..65535", low=1, high=65535)


def _check_sync(ctx: _Ctx, sync: SyncSettings) -> None:
    _check_range(ctx, "sync.guard_max_deletions", sync.guard_max_deletions, ">= 0", low=0)
    _check_range(ctx, "sync.guard_max_fraction", sync.guard_max_fraction, "between 0 and 1",
                 low=0, high=1)
    _check_range(ctx, "sync.batch_size", sync.batch_size, ">= 1", low=1)


def _check_scim(ctx: _Ctx, scim: ScimSettings, profiles: ProfilesSettings) -> None:
    # A zero or negative limit would not fail loudly: every list empty, every body 413, every
    # filter tooMany. Refuse it here, naming the key.
    _check_range(ctx, "scim.default_page_size", scim.default_page_size, ">= 1", low=1)
    _check_range(ctx, "scim.max_results", scim.max_results, ">= 1", low=1)
    _check_range(ctx, "scim.max_filter_results", scim.max_filter_results, ">= 0 (0: no limit)",
                 low=0)
    _check_range(ctx, "scim.bulk_max_operations", scim.bulk_max_operations, ">= 1", low=1)
    _check_range(ctx, "scim.bulk_max_payload", scim.bulk_max_payload, ">= 1024 (bytes)", low=1024)
    _check_range(ctx, "scim.max_request_bytes", scim.max_request_bytes, ">= 1024 (bytes)",
                 low=1024)
    _check_range(ctx, "scim.response_cache_bytes", scim.response_cache_bytes,
                 ">= 0 (bytes; 0: no cache)", low=0)
    _check_range(ctx, "scim.rendered_cache_bytes", scim.rendered_cache_bytes,
                 ">= 0 (bytes; 0: no cache)", low=0)
    _check_range(ctx, "profiles.public_max_age", profiles.public_max_age, ">= 0 (seconds)", low=0)


def _check_http_url(ctx: _Ctx, key: str, url: str, what: str) -> str:
    """An http(s) URL with a host and no credentials; returned without its trailing ``/``."""
    if not ctx.ok(key):
        return url
    shown = mask_url_password(url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        ctx.report(key, f"{shown!r} has a bad port (expected 1-65535)")
        return url
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        ctx.report(key, f"{shown!r} is not an http:// or https:// URL ({what})")
    elif parts.username is not None or parts.password is not None:
        ctx.report(key, f"{shown!r}: put credentials in the auth table, not the URL")
    elif port is not None and not 1 <= port <= 65535:
        ctx.report(key, f"{shown!r} has a bad port (expected 1-65535)")
    elif parts.query or parts.fragment:
        ctx.report(key, f"{shown!r}: no query or fragment allowed ({what})")
    return url.rstrip("/")


def _check_target_auth(ctx: _Ctx, key: str, auth: TargetAuthSettings) -> TargetAuthSettings:
    if not ctx.ok(f"{key}.kind"):
        return auth
    needed: dict[str, tuple[str, ...]] = {
        "bearer": ("token",), "basic": ("username", "password"),
        "oauth2": ("token_url", "client_id", "client_secret"), "none": ()}
    for name in needed[auth.kind]:
        if not getattr(auth, name) and ctx.ok(f"{key}.{name}"):
            hint = " (or token_file)" if name == "token" else (
                f" (or {name}_file)" if name in ("password", "client_secret") else "")
            ctx.report(f"{key}.{name}", f"required for auth kind {auth.kind!r}{hint}")
    if auth.kind == "oauth2" and auth.token_url:
        return dataclasses.replace(auth, token_url=_check_http_url(
            ctx, f"{key}.token_url", auth.token_url, "the OAuth2 token endpoint"))
    return auth


def _check_target(ctx: _Ctx, key: str, target: TargetSettings) -> TargetSettings:
    if ctx.ok(f"{key}.name") and not TARGET_NAME.fullmatch(target.name):
        ctx.report(f"{key}.name", f"{target.name!r} must be 1-63 of a-z, 0-9 and '-', "
                   "not starting or ending with '-'")
    url = target.url
    if ctx.ok(f"{key}.url"):
        url = _check_http_url(ctx, f"{key}.url", target.url, "the target's SCIM base URL")
    auth = _check_target_auth(ctx, f"{key}.auth", target.auth)
    if target.users_filter.strip() and ctx.ok(f"{key}.users_filter"):
        try:
            parse_scim_filter(target.users_filter)
        except InvalidFilter as exc:
            ctx.report(f"{key}.users_filter", f"not a SCIM filter: {exc.detail}")
    for name in ("groups", "attributes", "drop", "match_by"):
        if ctx.ok(f"{key}.{name}") and any(not item.strip() for item in getattr(target, name)):
            ctx.report(f"{key}.{name}", "must not contain empty names")
    if ctx.ok(f"{key}.match_by"):
        for attr in (a for a in target.match_by if a.strip()):
            try:  # an attribute path is what "<path> pr" needs to parse
                parse_scim_filter(f"{attr} pr")
            except InvalidFilter:
                ctx.report(f"{key}.match_by", f"{attr!r} is not a SCIM attribute path")
    if ctx.ok(f"{key}.rename") and any(
            not a.strip() or not b.strip() for a, b in target.rename.items()):
        ctx.report(f"{key}.rename", "paths must not be empty")
    _check_range(ctx, f"{key}.deletion_guard", target.deletion_guard, ">= 0", low=0)
    _check_range(ctx, f"{key}.member_batch", target.member_batch, "1..10000", low=1, high=10_000)
    _check_range(ctx, f"{key}.rate_limit", target.rate_limit, ">= 0 (0: unlimited)", low=0)
    _check_range(ctx, f"{key}.concurrency", target.concurrency, "1..64", low=1, high=64)
    _check_range(ctx, f"{key}.timeout", target.timeout, "> 0 seconds", low=0, low_open=True)
    _check_range(ctx, f"{key}.max_retries", target.max_retries, "0..100", low=0, high=100)
    _check_range(ctx, f"{key}.quarantine_after", target.quarantine_after, ">= 1", low=1)
    if target.rate_limit == math.inf and ctx.ok(f"{key}.rate_limit"):
        ctx.report(f"{key}.rate_limit", "must be a finite number (0: unlimited)")
    cron = target.reconcile_cron.strip()
    if cron and ctx.ok(f"{key}.reconcile_cron") and not croniter.is_valid(cron):
        ctx.report(f"{key}.reconcile_cron", f"{cron!r} is not a cron expression (5 fields, UTC)")
    ca_file = target.ca_file
    if ca_file and ctx.ok(f"{key}.ca_file"):
        path = ctx.base_dir / ca_file
        try:
            with path.open("rb"):
                pass
        except OSError as exc:
            ctx.report(f"{key}.ca_file", f"cannot read {path}: {exc.strerror}")
        ca_file = str(path)
    return dataclasses.replace(target, url=url, auth=auth, ca_file=ca_file)


def _check_targets(ctx: _Ctx, targets: tuple[TargetSettings, ...]) -> tuple[TargetSettings, ...]:
    checked = tuple(_check_target(ctx, f"targets[{i}]", t) for i, t in enumerate(targets))
    seen: dict[str, int] = {}
    for index, target in enumerate(targets):
        if target.name in seen and target.name:
            ctx.report(f"targets[{index}].name",
                       f"{target.name!r} is already the name of targets[{seen[target.name]}]")
        seen.setdefault(target.name, index)
    return checked


def check(
    settings: Settings, *, base_dir: Path, origins: Mapping[str, str], failed: frozenset[str]
) -> tuple[Settings, list[str]]:
    """Validate every section; return the normalised settings and the problems found."""
    ctx = _Ctx(base_dir, origins, failed)
    ldap = _check_ldap(ctx, settings.ldap)
    store = _check_store(ctx, settings.store)
    _check_http(ctx, settings.http)
    _check_sync(ctx, settings.sync)
    _check_scim(ctx, settings.scim, settings.profiles)
    targets = _check_targets(ctx, settings.targets)
    return dataclasses.replace(settings, ldap=ldap, store=store, targets=targets), ctx.problems
