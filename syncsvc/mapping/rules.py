"""Compile a flavour preset plus ``[mapping]`` overrides into ready-to-run rules.

Config format (``[mapping.user]`` and ``[mapping.group]``; keys are target paths, see
:mod:`syncsvc.mapping.targets`)::

    [mapping.user]
    "title" = "title"                            # first value of one attribute
    "displayName" = ["displayName", "cn"]        # first attribute that has a value
    "emails[work]" = { from = "mail", transform = ["all", "lower"] }
    "name.formatted" = { template = "{givenName} {sn}" }
    "enterprise:costCenter" = { from = "departmentNumber" }
    "active" = { from = "nsAccountLock", transform = ["bool", "not"], default = true }
    "nickName" = false                           # remove the preset's rule

A table takes ``from`` (a name or a fallback list) or ``template`` (``{attr}`` fields take the
first value of each attribute; a missing one means no value), plus optional ``transform`` (a
name or a list, see :mod:`syncsvc.mapping.transforms`), ``default`` (used when there is no
value) and ``required`` (no value makes the entry a Problem). :func:`compile_mapping` reports
every problem at once, each prefixed with its key.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from syncsvc.errors import ConfigError
from syncsvc.mapping.presets import PRESETS
from syncsvc.mapping.targets import TARGETS, Slot, Target, resolve_target, suggest_target
from syncsvc.mapping.transforms import TEXT_STEP, Chain, Kind, TransformFailed, compile_chain

__all__ = ["CompiledMapping", "Extract", "Rule", "Step", "compile_mapping"]

Extract = Callable[[Mapping[str, tuple[Any, ...]]], Any]
"""A rule's compiled body: entry attributes -> value, list (multi) or None; may raise
:class:`~syncsvc.mapping.transforms.TransformFailed`."""

_RULE_KEYS: Final = ("from", "template", "transform", "default", "required")
# An attribute description without options (RFC 4512 descr) or a numeric OID.
_ATTRIBUTE: Final = re.compile(r"[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)*")
# Template fields: names only, since str.format reads "." and "[" as attribute access.
_FIELD: Final = re.compile(r"[A-Za-z][A-Za-z0-9-]*")


@dataclass(frozen=True, slots=True)
class Rule:
    """One compiled target rule: where it writes, what it reads, and the code that does it."""

    target: Target
    sources: tuple[str, ...]  # attribute names in fallback order (template: its fields)
    transforms: tuple[str, ...] = ()
    template: str | None = None
    default: Any = None
    required: bool = False
    multi: bool = False  # the value is a list (the 'all' transform)
    plain_text: bool = False  # first value of one attribute, as text: no transform to run
    extract: Extract = field(default=lambda _attrs: None, repr=False, compare=False)

    def describe_source(self) -> str:
        """Where the value should have come from, for "missing ..." problems."""
        if self.template is not None:
            return f"template {self.template!r}"
        return "/".join(self.sources)


@dataclass(frozen=True, slots=True)
class CompiledMapping:
    """Everything :func:`~syncsvc.mapping.map_user` / ``map_group`` need, checked and built once."""

    flavor: str
    user_rules: tuple[Rule, ...]
    group_rules: tuple[Rule, ...]
    user_attributes: tuple[str, ...]  # LDAP attributes to request for users
    group_attributes: tuple[str, ...]
    user_plan: tuple[Step, ...] = field(init=False, repr=False, compare=False)
    group_plan: tuple[Step, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "user_plan", tuple(map(_step, self.user_rules)))
        object.__setattr__(self, "group_plan", tuple(map(_step, self.group_rules)))

    @property
    def user_name_attribute(self) -> str:
        """The LDAP attribute userName comes from (uid, sAMAccountName...), to look a user up."""
        for rule in self.user_rules:
            if rule.target.path == "userName" and rule.template is None and rule.sources:
                return rule.sources[0]
        return "uid"


Step = tuple[str | None, bool, Extract, Slot, str, str, bool, bool, bool, Rule]
"""A rule flattened for the mapper's loop: (probe, plain, extract, slot, key, type, multi,
primary, required, rule). ``probe`` is the one source attribute when its absence alone means
"no value", so the mapper can skip the call; ``plain``: its first ``str`` value is the value."""


def _step(rule: Rule) -> Step:
    target = rule.target
    simple = rule.template is None and len(rule.sources) == 1 and rule.default is None
    probe = rule.sources[0].lower() if simple else None
    plain = simple and rule.plain_text
    return (
        probe,
        plain,
        rule.extract,
        target.slot,
        target.key,
        target.type,
        rule.multi,
        target.primary,
        rule.required,
        rule,
    )


def compile_mapping(flavor: str, overrides: Mapping[str, Any] | None = None) -> CompiledMapping:
    """The preset for ``flavor`` with the ``[mapping]`` table's overrides applied.

    Raises :class:`~syncsvc.errors.ConfigError` listing every problem (unknown target or
    transform, bad template, wrong types), each prefixed with its key, e.g.
    ``mapping.user.emails[work]: unknown transform 'lowr'``.
    """
    preset = PRESETS.get(flavor)
    if preset is None:
        choices = ", ".join(PRESETS)
        raise ConfigError([f"ldap.flavor: unknown flavour {flavor!r} (one of {choices})"])
    problems: list[str] = []
    sections: Mapping[str, Any] = {}
    if overrides is None:
        pass
    elif not isinstance(overrides, Mapping):
        problems.append("mapping: expected a table with [mapping.user] and [mapping.group]")
    else:
        sections = overrides
        problems += (
            f"mapping.{key}: unknown section (expected 'user' or 'group')"
            for key in sections
            if key not in TARGETS
        )
    rules = {}
    for section in TARGETS:
        table = sections.get(section, {})
        if not isinstance(table, Mapping):
            problems.append(f"mapping.{section}: expected a table, got {_type_name(table)}")
            table = {}
        rules[section] = _compile_section(section, preset[section], table, problems)
    if problems:
        raise ConfigError(problems)
    return CompiledMapping(
        flavor=flavor,
        user_rules=rules["user"],
        group_rules=rules["group"],
        user_attributes=_attributes(rules["user"]),
        group_attributes=_attributes(rules["group"]),
    )


def _compile_section(
    section: str, preset: Mapping[str, Any], overrides: Mapping[str, Any], problems: list[str]
) -> tuple[Rule, ...]:
    chosen: dict[str, tuple[str, Target, Any]] = {}  # canonical path -> (label, target, config)
    for key, config in preset.items():
        target = resolve_target(key, section)
        if target is None:  # a broken preset is a bug, but report it like any other key
            problems.append(f"preset.{section}.{key}: unknown target path")
            continue
        chosen[target.path] = (f"mapping.{section}.{key}", target, config)
    written: dict[str, str] = {}  # canonical path -> override key, to catch two spellings
    for key, config in overrides.items():
        label = f"mapping.{section}.{key}"
        target = resolve_target(str(key), section)
        if target is None:
            problems.append(f"{label}: unknown target path{suggest_target(str(key), section)}")
            continue
        if target.path in written:
            problems.append(f"{label}: same target as mapping.{section}.{written[target.path]}")
            continue
        written[target.path] = str(key)
        if config is False:
            if target.required:
                problems.append(f"{label}: {target.path} is required and cannot be removed")
            chosen.pop(target.path, None)
            continue
        chosen[target.path] = (label, target, config)
    order = {target.path: n for n, target in enumerate(TARGETS[section])}
    compiled = []
    for path in sorted(chosen, key=order.__getitem__):
        label, target, config = chosen[path]
        rule_problems: list[str] = []
        rule = _compile_rule(target, config, rule_problems)
        problems += (f"{label}: {problem}" for problem in rule_problems)
        if rule is not None:
            compiled.append(rule)
    return tuple(compiled)


def _compile_rule(target: Target, config: Any, problems: list[str]) -> Rule | None:
    if isinstance(config, str | list):
        config = {"from": config}
    elif not isinstance(config, Mapping):
        problems.append(
            "expected an attribute name, a list of names, a table or false, "
            f"got {_type_name(config)}"
        )
        return None
    problems += (
        f"unknown key {key!r} (expected one of {', '.join(_RULE_KEYS)})"
        for key in config
        if key not in _RULE_KEYS
    )
    transforms = _names(config.get("transform", []), "transform", problems)
    required = config.get("required", False)
    if not isinstance(required, bool):
        problems.append(f"'required' must be true or false, got {_type_name(required)}")
    required = target.required or required is True
    default = config.get("default")
    if default is not None and not _default_fits(default, target):
        want = "true or false" if target.kind is Kind.BOOL else "a non-empty string"
        problems.append(f"'default' must be {want}, got {_type_name(default)} {default!r}")
    has_from, has_template = "from" in config, "template" in config
    if has_from == has_template:
        problems.append("give exactly one of 'from' or 'template'")
        return None
    template: str | None = None
    if has_template:
        template = config["template"]
        sources = _template_fields(template, problems)
    else:
        sources = _names(config["from"], "from", problems)
        if config["from"] == []:
            problems.append("'from' names no attribute")
        problems += (
            f"bad attribute name {name!r}" for name in sources if not _ATTRIBUTE.fullmatch(name)
        )
    chain, chain_problems = compile_chain(
        transforms,
        start=Kind.TEXT if has_template else Kind.RAW,
        target=target.kind,
        multi_ok=target.multi,
        all_by_default=target.all_by_default,
    )
    problems += chain_problems
    if problems or chain is None:
        return None
    if default is not None and chain.multi:
        default = [default]
    extract = (
        _template_extract(template, sources, chain, default)
        if template is not None
        else _source_extract(sources, chain, default)
    )
    return Rule(
        target=target,
        sources=sources,
        transforms=transforms,
        template=template,
        default=default,
        required=required,
        multi=chain.multi,
        plain_text=chain.plain_text and template is None and len(sources) == 1,
        extract=extract,
    )


def _names(value: Any, key: str, problems: list[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    problems.append(f"'{key}' must be a string or a list of strings, got {_type_name(value)}")
    return ()


def _default_fits(default: Any, target: Target) -> bool:
    if target.kind is Kind.BOOL:
        return isinstance(default, bool)
    return isinstance(default, str) and default != ""


def _template_fields(template: Any, problems: list[str]) -> tuple[str, ...]:
    """Attribute names used by a template; only plain ``{name}`` fields are allowed.

    Attribute access (``{x.y}``), indexing (``{x[0]}``), conversions and format specs are
    refused here so that rendering with ``str.format_map`` can only look names up.
    """
    if not isinstance(template, str):
        problems.append(f"'template' must be a string, got {_type_name(template)}")
        return ()
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        problems.append(f"bad template {template!r}: {exc}")
        return ()
    fields: list[str] = []
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if not _FIELD.fullmatch(name):
            problems.append(
                f"bad template field {{{name}}}: use a plain attribute name like {{sn}}"
            )
        elif spec or conversion:
            problems.append(f"bad template field {{{name}}}: no format spec or conversion allowed")
        elif name not in fields:
            fields.append(name)
    return tuple(fields)


def _source_extract(sources: tuple[str, ...], chain: Chain, default: Any) -> Extract:
    run = chain.run
    keys = tuple((name.lower(), name) for name in sources)
    if len(keys) == 1:
        ((key, name),) = keys

        def extract_one(attributes: Mapping[str, tuple[Any, ...]]) -> Any:
            values = attributes.get(key)
            if not values:
                return default
            try:
                value = run(values)
            except TransformFailed as exc:
                raise exc.at(name) from None
            return default if value is None else value

        return extract_one

    def extract_first_present(attributes: Mapping[str, tuple[Any, ...]]) -> Any:
        for key, name in keys:
            values = attributes.get(key)
            if values:
                try:
                    value = run(values)
                except TransformFailed as exc:
                    raise exc.at(name) from None
                return default if value is None else value
        return default

    return extract_first_present


def _template_extract(
    template: str, fields: tuple[str, ...], chain: Chain, default: Any
) -> Extract:
    run = chain.run
    keys = tuple((name.lower(), name) for name in fields)

    def extract_template(attributes: Mapping[str, tuple[Any, ...]]) -> Any:
        values: dict[str, str] = {}
        for key, name in keys:
            found = attributes.get(key)
            if not found:
                return default
            value = found[0]
            if value.__class__ is not str:
                try:
                    value = value.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise TransformFailed(TEXT_STEP, value, str(exc), name) from None
            values[name] = value
        try:
            result = run((template.format_map(values),))
        except TransformFailed as exc:
            raise exc.at(f"template {template!r}") from None
        return default if result is None else result

    return extract_template


def _attributes(rules: tuple[Rule, ...]) -> tuple[str, ...]:
    seen: dict[str, str] = {}
    for rule in rules:
        for name in rule.sources:
            seen.setdefault(name.lower(), name)
    return tuple(sorted(seen.values(), key=str.lower))


def _type_name(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    names[list] = "a list"
    if isinstance(value, Mapping):
        return "a table"
    return names.get(
        type(value), type(value).__name__
    )
