"""Check the ``[enrich]`` table and build the configured :class:`~syncsvc.enrich.Enrichment`.

Every problem is collected and raised at once as a :class:`~syncsvc.errors.ConfigError`, each
prefixed with its key (``enrich.rules[2] (phone): unknown region 'XX'``), like
:func:`syncsvc.mapping.compile_mapping`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

import phonenumbers

from syncsvc.enrich._base import Enricher, Enrichment, EnrichmentError, NoEnrichment, Rule
from syncsvc.enrich._paths import PathSetter, resolve_path
from syncsvc.enrich.defaults import DefaultRule
from syncsvc.enrich.department import DEFAULT_SKIP, DepartmentFromDnRule
from syncsvc.enrich.lookup import LookupRule, LookupTable
from syncsvc.enrich.normalize import EmailRule, PhoneRule, TitleCaseRule, WhitespaceRule
from syncsvc.enrich.templates import TemplateRule, compile_template
from syncsvc.errors import ConfigError
from syncsvc.mapping.rules import _ATTRIBUTE  # one definition of an LDAP attribute name
from syncsvc.settings import EnrichSettings

__all__ = ["KINDS", "compile_enrichment", "parse_enrich_settings"]

_TOP_KEYS: Final = ("phone_region", "attributes", "rules")

# Targets the whitespace rule touches when the rule names none: the free-text attributes.
_WHITESPACE_DEFAULT: Final = (
    "displayName", "nickName", "title", "name.formatted", "name.givenName", "name.familyName",
    "name.middleName", "enterprise:department", "enterprise:division", "enterprise:organization",
)


class _Ctx:
    """What one rule's compiler needs: its table, the shared tables, and a problem list."""

    def __init__(self, table: Mapping[str, Any], settings: EnrichSettings, base_dir: Path,
                 tables: dict[tuple[Path, str, str, bool], LookupTable],
                 attributes: dict[str, str]) -> None:
        self.table = table
        self.settings = settings
        self.base_dir = base_dir
        self.tables = tables
        self.attributes = attributes
        self.problems: list[str] = []

    def text(self, key: str, *, default: str | None = None, required: bool = False) -> str:
        value = self.table.get(key, default)
        if value is None:
            if required:
                self.problems.append(f"'{key}' is required")
            return ""
        if not isinstance(value, str) or (required and not value.strip()):
            self.problems.append(f"'{key}' must be a non-empty string, got {_show(value)}")
            return ""
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.table.get(key, default)
        if not isinstance(value, bool):
            self.problems.append(f"'{key}' must be true or false, got {_show(value)}")
            return default
        return value

    def choice(self, key: str, choices: tuple[str, ...]) -> Any:
        value = self.table.get(key, choices[0])
        if value not in choices:
            self.problems.append(f"'{key}' must be one of {', '.join(map(repr, choices))}, "
                                 f"got {_show(value)}")
            return choices[0]
        return value

    def strings(self, key: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        value = self.table.get(key, list(default))
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.problems.append(f"'{key}' must be a list of strings, got {_show(value)}")
            return ()
        return tuple(value)

    def target(self, key: str = "target", default: str | None = None) -> PathSetter | None:
        if key not in self.table and default is not None:
            return resolve_path(default, self.problems, what=key)
        return resolve_path(self.table.get(key), self.problems, what=key)

    def targets(self, key: str, default: tuple[str, ...] = ()) -> tuple[PathSetter, ...]:
        names = self.strings(key, default)
        if not names:
            self.problems.append(f"'{key}' names no attribute")
        found = (resolve_path(name, self.problems, what=key) for name in names)
        return tuple(setter for setter in found if setter is not None)

    def attribute(self, name: str, key: str) -> str:
        if not _ATTRIBUTE.fullmatch(name):
            self.problems.append(f"'{key}': bad LDAP attribute name {name!r}")
        self.attributes.setdefault(name.lower(), name)
        return name


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "a table"
    return repr(value)


def _default(ctx: _Ctx) -> Rule | None:
    target = ctx.target()
    value = ctx.table.get("value")
    if target is None:
        return None
    if target.is_bool:
        if not isinstance(value, bool):
            ctx.problems.append(f"'value' must be true or false for {target.path}, "
                                f"got {_show(value)}")
            return None
    elif not isinstance(value, str) or not value.strip():
        ctx.problems.append(f"'value' must be a non-empty string, got {_show(value)}")
        return None
    return DefaultRule(target, value)


def _text_target(ctx: _Ctx, target: PathSetter | None) -> PathSetter | None:
    if target is not None and target.is_bool:
        ctx.problems.append(f"{target.path} is true/false: only a 'default' rule can set it")
        return None
    return target


def _template(ctx: _Ctx) -> Rule | None:
    target = _text_target(ctx, ctx.target())
    source = ctx.text("template", required=True)
    overwrite = ctx.flag("overwrite", True)
    on_undefined = ctx.choice("on_undefined", ("problem", "skip"))
    if not source:
        return None
    compiled, names = compile_template(source, ctx.problems)
    for name in names:
        ctx.attribute(name, "template")
    if target is None or compiled is None:
        return None
    return TemplateRule(target, compiled, source, overwrite=overwrite, on_undefined=on_undefined)


def _email(ctx: _Ctx) -> Rule | None:
    return EmailRule()


def _region(ctx: _Ctx, value: str, key: str) -> str:
    if value and value.upper() not in phonenumbers.SUPPORTED_REGIONS:
        ctx.problems.append(f"'{key}': unknown region {value!r} (an ISO 3166 alpha-2 code "
                            "such as 'US' or 'DE')")
    return value.upper()


def _phone(ctx: _Ctx) -> Rule | None:
    region = _region(ctx, ctx.text("region", default=ctx.settings.phone_region), "region")
    types = ctx.strings("types")
    on_invalid = ctx.choice("on_invalid", ("problem", "keep"))
    return PhoneRule(region, types, on_invalid)


def _whitespace(ctx: _Ctx) -> Rule | None:
    return WhitespaceRule(ctx.targets("targets", _WHITESPACE_DEFAULT))


def _title_case(ctx: _Ctx) -> Rule | None:
    if "targets" not in ctx.table:
        ctx.problems.append("'targets' is required (the attributes to title-case)")
        return None
    return TitleCaseRule(ctx.targets("targets"), ctx.strings("keep"))


def _lookup(ctx: _Ctx) -> Rule | None:
    file = ctx.text("file", required=True)
    has_attribute, has_path = "attribute" in ctx.table, "path" in ctx.table
    key: str | PathSetter | None = None
    if has_attribute == has_path:
        ctx.problems.append("give exactly one of 'attribute' (LDAP) or 'path' (SCIM) for the key")
    elif has_attribute:
        key = ctx.attribute(ctx.text("attribute", required=True), "attribute")
    else:
        key = ctx.target("path")
    default_column = key if isinstance(key, str) else (key.target.key if key else "")
    column = ctx.text("column", default=default_column, required=True)
    delimiter = ctx.text("delimiter", default=",")
    if len(delimiter) != 1:
        ctx.problems.append(f"'delimiter' must be one character, got {delimiter!r}")
    ignore_case = ctx.flag("ignore_case", False)
    overwrite = ctx.flag("overwrite", True)
    raw_sets = ctx.table.get("set")
    sets: list[tuple[PathSetter, str]] = []
    if not isinstance(raw_sets, Mapping) or not raw_sets:
        ctx.problems.append("'set' must be a table of SCIM path = \"column\", "
                            "e.g. { \"enterprise:costCenter\" = \"cost_center\" }")
    else:
        for path, col in raw_sets.items():
            setter = _text_target(ctx, resolve_path(path, ctx.problems, what=f"set.{path}"))
            if not isinstance(col, str) or not col:
                ctx.problems.append(f"'set.{path}' must name a column, got {_show(col)}")
            elif setter is not None:
                sets.append((setter, col))
    if not file or key is None or not column or ctx.problems:
        return None
    path = Path(file)
    path = path if path.is_absolute() else ctx.base_dir / path
    ident = (path, column, delimiter, ignore_case)
    table = ctx.tables.get(ident)
    if table is None:
        table = ctx.tables[ident] = LookupTable(path, column, delimiter=delimiter,
                                                ignore_case=ignore_case)
        try:
            table.refresh()
        except EnrichmentError as exc:
            ctx.problems.append(str(exc))
            return None
    missing = [col for _setter, col in sets if col not in table.columns]
    if missing:
        ctx.problems.append(f"lookup file {path}: no column {', '.join(map(repr, missing))} "
                            f"(it has {', '.join(map(repr, table.columns))})")
        return None
    return LookupRule(table, key, tuple(sets), overwrite=overwrite)


def _department(ctx: _Ctx) -> Rule | None:
    target = _text_target(ctx, ctx.target(default="enterprise:department"))
    skip = ctx.strings("skip", DEFAULT_SKIP)
    level = ctx.choice("level", ("nearest", "top"))
    return None if target is None else DepartmentFromDnRule(target, skip=skip, level=level)


_Compiler = Callable[[_Ctx], Rule | None]

KINDS: Final[Mapping[str, tuple[_Compiler, tuple[str, ...]]]] = {
    "default": (_default, ("target", "value")),
    "template": (_template, ("target", "template", "overwrite", "on_undefined")),
    "email": (_email, ()),
    "phone": (_phone, ("region", "types", "on_invalid")),
    "whitespace": (_whitespace, ("targets",)),
    "title_case": (_title_case, ("targets", "keep")),
    "lookup": (_lookup, ("file", "attribute", "path", "column", "set", "delimiter",
                         "ignore_case", "overwrite")),
    "department_from_dn": (_department, ("target", "skip", "level")),
}
"""Rule kinds: the compiler of each and the keys its table may have (besides ``kind``)."""


def parse_enrich_settings(table: Mapping[str, Any] | None, problems: list[str]) -> EnrichSettings:
    """The ``[enrich]`` table as :class:`~syncsvc.settings.EnrichSettings`; shape problems appended."""
    if not table:
        return EnrichSettings()
    if not isinstance(table, Mapping):
        problems.append("enrich: expected a table ([enrich])")
        return EnrichSettings()
    problems += (f"enrich.{key}: unknown key (expected one of {', '.join(_TOP_KEYS)})"
                 for key in table if key not in _TOP_KEYS)
    region = table.get("phone_region", "")
    if not isinstance(region, str):
        problems.append(f"enrich.phone_region: expected a string, got {_show(region)}")
        region = ""
    elif region and region.upper() not in phonenumbers.SUPPORTED_REGIONS:
        problems.append(f"enrich.phone_region: unknown region {region!r} (an ISO 3166 alpha-2 "
                        "code such as 'US' or 'DE')")
    attributes = table.get("attributes", [])
    if isinstance(attributes, str):
        attributes = [attributes]
    if not isinstance(attributes, list) or not all(isinstance(a, str) for a in attributes):
        problems.append(f"enrich.attributes: expected a list of LDAP attribute names, "
                        f"got {_show(attributes)}")
        attributes = []
    problems += (f"enrich.attributes: bad LDAP attribute name {name!r}"
                 for name in attributes if not _ATTRIBUTE.fullmatch(name))
    rules = table.get("rules", [])
    if isinstance(rules, Mapping):
        rules = [rules]
    if not isinstance(rules, list):
        problems.append("enrich.rules: expected a list of tables ([[enrich.rules]])")
        rules = []
    return EnrichSettings(phone_region=region.upper(), attributes=tuple(attributes),
                          rules=tuple(rules))


def compile_enrichment(table: Mapping[str, Any] | None, *, base_dir: Path) -> Enricher:
    """Build the enricher the ``[enrich]`` table describes; :class:`NoEnrichment` without rules.

    Lookup files (relative to ``base_dir``, the config file's folder) are read here, so a
    missing file or column is a config problem.

    Raises:
        ConfigError: listing every problem, each prefixed with its key.
    """
    problems: list[str] = []
    settings = parse_enrich_settings(table, problems)
    attributes = {name.lower(): name for name in settings.attributes}
    tables: dict[tuple[Path, str, str, bool], LookupTable] = {}
    rules: list[Rule] = []
    for n, raw in enumerate(settings.rules):
        label = f"enrich.rules[{n}]"
        if not isinstance(raw, Mapping):
            problems.append(f"{label}: expected a table, got {_show(raw)}")
            continue
        kind = raw.get("kind")
        entry = KINDS.get(kind) if isinstance(kind, str) else None
        if entry is None:
            problems.append(f"{label}: 'kind' must be one of {', '.join(KINDS)}, got {_show(kind)}")
            continue
        label = f"{label} ({kind})"
        compiler, keys = entry
        ctx = _Ctx(raw, settings, base_dir, tables, attributes)
        ctx.problems += (f"unknown key {key!r} (expected {', '.join(('kind',) + keys)})"
                         for key in raw if key != "kind" and key not in keys)
        rule = compiler(ctx)
        problems += (f"{label}: {problem}" for problem in ctx.problems)
        if rule is not None and not ctx.problems:
            rules.append(rule)
    if problems:
        raise ConfigError(problems)
    if not rules:
        return NoEnrichment()
    return Enrichment(rules=tuple(rules),
                      attributes=tuple(sorted(attributes.values(), key=str.lower)),
                      sources=tuple(tables.values()))
