"""Typed, frozen settings: one object, read once, passed down.

Sources, later wins: built-in defaults < the TOML file < ``SYNCSVC_<SECTION>__<KEY>``
environment variables (``SYNCSVC_TARGETS__<n>__<KEY>`` for the ``[[targets]]`` array, ``n``
counting its tables from 0). Every secret key ``x`` may instead be given as ``x_file`` (a path whose
content, stripped of the trailing newline, is the value). :func:`load_settings` reports every
problem at once as a :class:`~syncsvc.errors.ConfigError`.

Relative paths (``ldif://`` URLs, the SQLite database in ``store.url``, ``ldap.ca_file``,
``*_file`` secrets) are relative to the config file's folder, whichever source gave them; with no
config file, to the working folder.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from syncsvc import _settings_check, _settings_load
from syncsvc.errors import ConfigError
from syncsvc.redact import MASK, mask_url_password, redact_tree

__all__ = [
    "CONFIG_ENV",
    "CONFIG_NAME",
    "DEMO_LDIF",
    "EnrichSettings",
    "HttpSettings",
    "LdapSettings",
    "LogSettings",
    "ProfilesSettings",
    "ScheduleSettings",
    "ScimSettings",
    "Settings",
    "StoreSettings",
    "SyncSettings",
    "TargetAuthSettings",
    "TargetSettings",
    "demo_settings",
    "describe",
    "find_config",
    "load_settings",
]

DEMO_LDIF = Path(__file__).parent / "demo" / "directory.ldif"
"""The bundled demo directory, read through the same pipeline as a live server."""

CONFIG_ENV = "SYNCSVC_CONFIG"
"""The environment variable naming the config file (``--config`` wins over it)."""

CONFIG_NAME = "syncsvc.toml"
"""The config file picked up from the working folder when nothing else names one."""

Flavor = Literal["openldap", "389ds", "freeipa", "ad"]


@dataclass(frozen=True, slots=True, kw_only=True)
class LdapSettings:
    """Where and how to read the directory."""

    # Several URLs give failover, tried in order. ldap://, ldaps://, or ldif:///path/file.ldif
    # (a file read through the same pipeline; the built-in demo uses this).
    url: tuple[str, ...] = ()
    bind_dn: str = ""  # empty: anonymous bind
    bind_password: str = field(default="", repr=False, metadata={"secret": True})
    base_dn: str = ""
    user_base: str = ""  # default: base_dn
    group_base: str = ""  # default: base_dn
    user_filter: str = ""  # default: from the flavour preset
    group_filter: str = ""  # default: from the flavour preset
    flavor: Flavor = "openldap"
    anchor_attribute: str = ""  # default: entryUUID, objectGUID on AD
    start_tls: bool = False
    tls_verify: bool = True
    ca_file: str = ""
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    page_size: int = 500
    # auto: RFC 4533 content sync where the server offers it, else the timestamp query.
    change_feed: Literal["auto", "syncrepl", "timestamp"] = "auto"
    incremental_overlap: int = 60  # seconds re-read before the high-water mark


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreSettings:
    url: str = field(default="sqlite+aiosqlite:///syncsvc.db", repr=False, metadata={"secret": True})
    echo: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpSettings:
    host: str = "127.0.0.1"
    port: int = 8080


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncSettings:
    on_missing: Literal["deactivate", "delete"] = "deactivate"
    guard_max_deletions: int = 500
    guard_max_fraction: float = 0.05
    batch_size: int = 500  # rows per store transaction


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleSettings:
    """The syncs `serve` runs by itself."""

    enabled: bool = True
    incremental_interval: int = 300  # seconds between incremental (or change-feed) runs; 0: none
    full_cron: str = "0 2 * * *"  # full runs, cron syntax in UTC (nightly); "": none
    jitter: int = 30  # up to this many seconds added to each run, so replicas do not align
    max_backoff: int = 3600  # after failures the wait doubles up to this many seconds


@dataclass(frozen=True, slots=True, kw_only=True)
class LogSettings:
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"  # auto: console on a terminal


@dataclass(frozen=True, slots=True, kw_only=True)
class ScimSettings:
    """The SCIM endpoint's limits, announced in /ServiceProviderConfig."""

    # Public base of the service, for meta.location (behind a proxy); default: from the request.
    base_url: str = ""
    default_page_size: int = 100
    max_results: int = 1000  # count above this is lowered to it (RFC 7644 §3.4.2.4)
    # A filter matching more than this many resources is refused with tooMany; 0: no limit.
    max_filter_results: int = 0
    bulk_max_operations: int = 1000
    bulk_max_payload: int = 1_048_576  # bytes
    max_request_bytes: int = 1_048_576  # any other request body
    # Rendered GET answers kept until the store changes (syncsvc.scim.cache); 0: no cache.
    response_cache_bytes: int = 64 * 1_048_576
    # Each User's default rendering, by every input it depends on (syncsvc.scim.rendered); 0: off.
    rendered_cache_bytes: int = 64 * 1_048_576


@dataclass(frozen=True, slots=True, kw_only=True)
class ProfilesSettings:
    """Business cards, e-mail signatures and public profile pages (``syncsvc.profiles``)."""

    # Public base of the service for profile links and QR codes (behind a proxy), e.g.
    # "https://people.example.com"; default: from the request.
    public_base_url: str = ""
    # What the public page /p/{slug} (and its vCard) may show; nothing else ever goes out there.
    # Names: displayName, name, title, department, organization, emails, phoneNumbers, photo,
    # headline, bio, skills, languages, interests, socialLinks, pronouns, location, office.
    public_fields: tuple[str, ...] = (
        "displayName", "title", "department", "organization", "photo", "headline", "bio",
        "skills", "languages", "pronouns", "location", "socialLinks",
    )
    # Jinja2 templates (sandboxed) for signature.html / signature.txt; "": the built-in ones.
    # A relative path is taken from the config file's folder.
    signature_template: str = ""
    signature_text_template: str = ""
    signature_qr: bool = True  # offer the QR code to the signature template
    signature_link: bool = True  # offer the public profile link to the signature template
    public_max_age: int = 300  # Cache-Control max-age of the public page, seconds


@dataclass(frozen=True, slots=True, kw_only=True)
class EnrichSettings:
    """The ``[enrich]`` table, typed: profile enrichment rules applied after mapping.

    ``Settings.enrich`` holds the table as written (a free-form table like ``mapping``: the
    generic loader has no coercion for a list of tables); :func:`syncsvc.enrich.compile_enrichment`
    turns it into this and then into rules, reporting every problem (check-config calls it).
    """

    phone_region: str = ""  # default region (ISO 3166 alpha-2) for national phone numbers
    attributes: tuple[str, ...] = ()  # extra LDAP attributes for templates (ldap.X is detected)
    rules: tuple[dict[str, Any], ...] = ()  # [[enrich.rules]] tables, applied in order


@dataclass(frozen=True, slots=True, kw_only=True)
class TargetAuthSettings:
    """How syncsvc authenticates to one downstream SCIM target (``[targets.auth]``)."""

    kind: Literal["bearer", "basic", "oauth2", "none"] = "bearer"
    token: str = field(default="", repr=False, metadata={"secret": True})  # bearer
    username: str = ""  # basic
    password: str = field(default="", repr=False, metadata={"secret": True})  # basic
    token_url: str = ""  # oauth2 client credentials (RFC 6749 §4.4)
    client_id: str = ""
    client_secret: str = field(default="", repr=False, metadata={"secret": True})
    scope: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class TargetSettings:
    """One downstream SCIM service syncsvc pushes to (``[[targets]]``, see syncsvc.push)."""

    name: str  # [a-z0-9-]+, unique: names the target in state, metrics, the CLI and the API
    url: str  # the SCIM base URL, e.g. https://api.example.com/scim/v2
    auth: TargetAuthSettings = field(default_factory=TargetAuthSettings)
    enabled: bool = True
    users_filter: str = ""  # a SCIM filter over our store: which users go; "": all
    groups: tuple[str, ...] = ()  # only members of these groups (displayName); (): no limit
    push_groups: bool = True
    attributes: tuple[str, ...] = ()  # allow-list of attribute paths; (): all
    rename: dict[str, str] = field(default_factory=dict)  # our path -> the target's path
    drop: tuple[str, ...] = ()  # paths never sent
    profile_extension: bool = False  # also send the profile extension
    match_by: tuple[str, ...] = ("externalId", "userName")  # first contact: match before create
    on_remove: Literal["deactivate", "delete"] = "deactivate"  # out of scope or deleted here
    deletion_guard: int = 50  # more removals than this in one drain are held, as in a sync
    update_method: Literal["patch", "put"] = "put"
    member_batch: int = 100  # members per PATCH operation
    use_bulk: bool = False  # only when the target announces bulk.supported
    rate_limit: float = 0.0  # requests per second; 0: unlimited
    concurrency: int = 4
    timeout: float = 30.0  # seconds per request
    verify_tls: bool = True
    ca_file: str = ""
    max_retries: int = 5
    quarantine_after: int = 20  # consecutive failed attempts before the target is quarantined
    reconcile_cron: str = ""  # cron (UTC) for a full reconcile; "": only on demand


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    ldap: LdapSettings = field(default_factory=LdapSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    sync: SyncSettings = field(default_factory=SyncSettings)
    log: LogSettings = field(default_factory=LogSettings)
    scim: ScimSettings = field(default_factory=ScimSettings)
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    profiles: ProfilesSettings = field(default_factory=ProfilesSettings)
    # Mapping overrides, validated by syncsvc.mapping.compile_mapping (check-config calls it).
    mapping: dict[str, Any] = field(default_factory=dict)
    # [enrich] rules (see EnrichSettings), validated by syncsvc.enrich.compile_enrichment.
    enrich: dict[str, Any] = field(default_factory=dict)
    # [[targets]]: downstream SCIM services to push to; none by default (nothing is captured).
    targets: tuple[TargetSettings, ...] = ()
    source: Path | None = None  # the file the settings came from, None for the demo


def find_config(cli_path: str | None, env: Mapping[str, str], cwd: Path) -> Path | None:
    """Which config file to read: ``--config``, else ``SYNCSVC_CONFIG``, else ``./syncsvc.toml``.

    A path given explicitly is returned even if it does not exist, so that loading it reports
    the mistake; ``./syncsvc.toml`` is used only if it is a file. ``None`` means the built-in
    demo. Relative paths are taken from ``cwd``.
    """
    for given in (cli_path, env.get(CONFIG_ENV)):
        if given:
            return cwd / given
    local = cwd / CONFIG_NAME
    return local if local.is_file() else None


def demo_settings(cwd: Path) -> Settings:
    """The built-in demo: the bundled LDIF directory and SQLite ``syncsvc.db`` in ``cwd``."""
    return Settings(
        ldap=LdapSettings(url=("ldif://" + str(DEMO_LDIF),)),
        store=StoreSettings(url=f"sqlite+aiosqlite:///{cwd.absolute() / 'syncsvc.db'}"),
    )


def load_settings(
    path: Path | None, env: Mapping[str, str], *, cwd: Path | None = None
) -> Settings:
    """Read the settings: defaults < the TOML file at ``path`` < ``SYNCSVC_<SECTION>__<KEY>``.

    With ``path`` None the defaults are :func:`demo_settings` (``cwd``, by default the working
    folder) and only the environment applies. Secrets may come from ``<key>_file``. Values are
    coerced by their annotation (env text: ``true/false/1/0/yes/no``, numbers, lists split on
    commas or spaces) and validated; relative paths are resolved against the config file's
    folder; ``postgresql://`` and ``sqlite://`` store URLs get their async driver.

    Raises:
        ConfigError: listing every problem found, each naming its dotted key and its source.
    """
    where = (cwd or Path.cwd()).absolute()
    problems: list[str] = []
    layers: list[_settings_load.Layer] = []
    if path is None:
        base, base_dir = demo_settings(where), where
    else:
        base, base_dir = Settings(), (where / path).parent
        data = _settings_load.read_toml(where / path)
        layers.append(_settings_load.file_layer(Settings, data, path, problems))
    layers.append(_settings_load.env_layer(Settings, env, problems))
    built = _settings_load.build(base, layers, base_dir, problems)
    checked, found = _settings_check.check(
        built.settings, base_dir=base_dir, origins=built.origins, failed=built.failed)
    problems.extend(found)
    if problems:
        raise ConfigError(problems)
    return dataclasses.replace(checked, source=path)


def _shown(value: Any, secret: bool) -> Any:
    if secret and value:
        # A secret URL (store.url) stays useful with only its password hidden.
        return mask_url_password(value) if isinstance(value, str) and "://" in value else MASK
    if isinstance(value, tuple):
        return list(value)
    return str(value) if isinstance(value, Path) else value


def _described(obj: Any) -> dict[str, Any]:
    """One settings dataclass (a section, a target, its auth) as plain data, secrets masked."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            out[f.name] = _described(value)
        elif isinstance(value, tuple) and value and dataclasses.is_dataclass(value[0]):
            out[f.name] = [_described(item) for item in value]
        elif isinstance(value, dict):
            out[f.name] = redact_tree(value)
        else:
            out[f.name] = _shown(value, bool(f.metadata.get("secret")))
    return out


def describe(settings: Settings) -> dict[str, Any]:
    """The effective settings as plain nested data, safe to print or log.

    Every secret becomes ``"***"`` (an unset, empty secret stays ``""`` so that a missing
    password is visible); a secret URL keeps its shape with the password masked; ``mapping``
    entries with secret-like names are masked too; ``targets`` is a list of tables, each with
    its ``auth`` secrets masked. Used by ``check-config --show``.
    """
    return _described(settings)
