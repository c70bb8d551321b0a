"""Turn a TOML file and environment variables into settings dataclasses, collecting problems.

Generic over the dataclasses of :mod:`syncsvc.settings`: a top-level field whose type is a
dataclass is a *section* (``[ldap]``, ``SYNCSVC_LDAP__<KEY>``); a top-level ``dict`` field is a
free-form table (``[mapping]``, checked elsewhere); a top-level ``tuple[<dataclass>, ...]``
field is an *array of tables* (``[[targets]]``, ``SYNCSVC_TARGETS__<n>__<KEY>`` with ``n``
counting from 0, ``SYNCSVC_TARGETS__<n>__AUTH__<KEY>`` for a nested table); any other top-level
field (``source``) cannot be set from outside. Section fields are coerced by their annotation.
Nothing here raises for bad input: every problem is appended to a list so that the caller can
report all of them at once.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import tomllib
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

from syncsvc.errors import ConfigError

__all__ = [
    "ENV_PREFIX",
    "Built",
    "Layer",
    "Raw",
    "build",
    "env_layer",
    "file_layer",
    "problem",
    "read_toml",
]

ENV_PREFIX: Final = "SYNCSVC_"
_FILE_SUFFIX: Final = "_file"
_TRUE: Final = frozenset({"true", "1", "yes", "on"})
_FALSE: Final = frozenset({"false", "0", "no", "off"})
_LIST_SEPARATORS: Final = re.compile(r"[,\s]+")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Raw:
    """One value as given, before coercion, with where it came from."""

    value: object
    origin: str  # "in /etc/syncsvc.toml", "from SYNCSVC_LDAP__URL"
    textual: bool  # True when the value is text to be parsed (env var, secret file)


@dataclass(slots=True)
class Layer:
    """Everything one source (the file, or the environment) sets, keyed by section then key."""

    sections: dict[str, dict[str, Raw]] = field(default_factory=dict)
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)  # free-form, e.g. mapping
    # Arrays of tables ([[targets]]): name -> index -> key -> Raw, or a nested table's
    # key -> {subkey -> Raw} ([targets.auth]).
    lists: dict[str, dict[int, dict[str, Any]]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Built(typing.Generic[T]):
    """The result of :func:`build`: settings plus what validation needs to know."""

    settings: T
    origins: dict[str, str]  # dotted key -> origin, for keys set from outside
    failed: frozenset[str]  # dotted keys whose value could not be coerced (default kept)


def problem(key: str, message: str, origin: str | None = None) -> str:
    """Format one problem the same way everywhere: ``ldap.page_size: message [origin]``."""
    return f"{key}: {message} [{origin}]" if origin else f"{key}: {message}"


def _suggest(word: str, candidates: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def _kinds(root: type[Any]) -> tuple[dict[str, type[Any]], set[str]]:
    """Split the root dataclass's fields into sections (name -> class) and free-form tables."""
    hints = typing.get_type_hints(root)
    sections: dict[str, type[Any]] = {}
    tables: set[str] = set()
    for f in dataclasses.fields(root):
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint) and isinstance(hint, type):
            sections[f.name] = hint
        elif typing.get_origin(hint) is dict:
            tables.add(f.name)
    return sections, tables


def _item_class(hint: Any) -> type[Any] | None:
    """The dataclass ``X`` of a ``tuple[X, ...]`` annotation, else None."""
    args = typing.get_args(hint)
    if (typing.get_origin(hint) is tuple and len(args) == 2 and args[1] is Ellipsis
            and dataclasses.is_dataclass(args[0]) and isinstance(args[0], type)):
        return args[0]
    return None


def _lists(root: type[Any]) -> dict[str, type[Any]]:
    """The root's arrays of tables: field name -> the dataclass of one item."""
    hints = typing.get_type_hints(root)
    found = {f.name: _item_class(hints[f.name]) for f in dataclasses.fields(root)}
    return {name: cls for name, cls in found.items() if cls is not None}


def _nested(cls: type[Any]) -> dict[str, type[Any]]:
    """Fields of an item class that are tables themselves (``auth`` of a target)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)
            if dataclasses.is_dataclass(hints[f.name]) and isinstance(hints[f.name], type)}


def _secret_names(section: type[Any]) -> set[str]:
    return {f.name for f in dataclasses.fields(section) if f.metadata.get("secret")}


def read_toml(path: Path) -> dict[str, Any]:
    """Parse the config file; a missing, unreadable or malformed file is fatal on its own."""
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read the config file: {exc.strerror}"]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from exc


def file_layer(root: type[Any], data: Mapping[str, Any], path: Path, problems: list[str]) -> Layer:
    """Sort a parsed TOML document into a :class:`Layer`, reporting unknown sections and keys."""
    sections, tables = _kinds(root)
    lists = _lists(root)
    origin = f"in {path}"
    layer = Layer()
    for name, content in data.items():
        if name in lists:
            if not isinstance(content, list) or not all(isinstance(i, dict) for i in content):
                problems.append(problem(name, f"expected an array of tables ([[{name}]])", origin))
                continue
            nested = _nested(lists[name])
            layer.lists[name] = {
                index: {key: ({sub: Raw(v, origin, textual=False) for sub, v in value.items()}
                              if key in nested and isinstance(value, dict)
                              else Raw(value, origin, textual=False))
                        for key, value in item.items()}
                for index, item in enumerate(content)}
        elif name in sections or name in tables:
            if not isinstance(content, dict):
                problems.append(problem(name, "expected a table ([" + name + "])", origin))
            elif name in tables:
                layer.tables[name] = dict(content)
            else:
                layer.sections[name] = {
                    key: Raw(value, origin, textual=False) for key, value in content.items()}
        elif isinstance(content, dict):
            hint = _suggest(name, [*sections, *tables, *lists])
            problems.append(f"unknown section [{name}]{hint} [{origin}]")
        else:
            hint = _suggest(name, [*sections, *tables, *lists])
            problems.append(f"unknown top-level key {name}{hint} [{origin}]")
    return layer


def _env_table_value(text: str) -> object:
    """A free-form table entry from the environment: a TOML value if it parses, else the text."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def env_layer(root: type[Any], env: Mapping[str, str], problems: list[str]) -> Layer:
    """Collect ``SYNCSVC_<SECTION>__<KEY>`` variables (section and key are case-insensitive).

    Variables with the prefix but no ``__`` (``SYNCSVC_CONFIG``, test knobs) are not settings
    and are ignored. For a free-form table (``SYNCSVC_MAPPING__<KEY>``) the value is read as a
    TOML value when it parses (``'["a", "b"]'``, ``'{ x = 1 }'``) and as plain text otherwise.
    """
    sections, tables = _kinds(root)
    lists = _lists(root)
    layer = Layer()
    for name in sorted(env):
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, _, key = name[len(ENV_PREFIX):].partition("__")
        section, key = section.lower(), key.lower()
        if section in lists:
            _env_item(layer, section, key, Raw(env[name], f"from {name}", True), name, problems)
        elif section in tables and key:
            layer.tables.setdefault(section, {})[key] = _env_table_value(env[name])
        elif section in sections and key:
            layer.sections.setdefault(section, {})[key] = Raw(env[name], f"from {name}", True)
        elif section in sections or section in tables:
            problems.append(f"{name}: no key after {ENV_PREFIX}{section.upper()}__")
        else:
            hint = _suggest(section, [*sections, *tables, *lists])
            problems.append(f"{name}: unknown section {section}{hint}")
    return layer


def _env_item(layer: Layer, section: str, key: str, raw: Raw, name: str,
              problems: list[str]) -> None:
    """``SYNCSVC_TARGETS__<n>__<KEY>`` or ``..._<n>__<TABLE>__<KEY>`` into ``layer.lists``."""
    parts = key.split("__")
    if len(parts) not in (2, 3) or not parts[0].isdigit() or not all(parts[1:]):
        problems.append(f"{name}: expected {ENV_PREFIX}{section.upper()}__<n>__<KEY> "
                        f"(n counts the [[{section}]] tables from 0)")
        return
    item = layer.lists.setdefault(section, {}).setdefault(int(parts[0]), {})
    if len(parts) == 2:
        item[parts[1]] = raw
    else:
        sub = item.setdefault(parts[1], {})
        if isinstance(sub, dict):
            sub[parts[2]] = raw


def _read_secret_file(key: str, raw: Raw, base_dir: Path, problems: list[str]) -> Raw | None:
    """The content of a ``*_file`` secret, minus ONE trailing newline; the content never leaks."""
    if not isinstance(raw.value, str) or not raw.value:
        problems.append(problem(key, "expected a file path (a string)", raw.origin))
        return None
    path = base_dir / raw.value  # an absolute value replaces base_dir
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        problems.append(problem(key, f"cannot read {path}: {exc.strerror}", raw.origin))
        return None
    except UnicodeDecodeError:
        problems.append(problem(key, f"{path} is not UTF-8 text", raw.origin))
        return None
    text = text.removesuffix("\n").removesuffix("\r") if text.endswith("\n") else text
    return Raw(text, raw.origin, textual=True)


def resolve_keys(
    root: type[Any], layer: Layer, base_dir: Path, problems: list[str]
) -> dict[str, dict[str, Raw]]:
    """Check one layer's keys against the fields and replace each ``x_file`` by ``x``'s value.

    Giving both ``x`` and ``x_file`` in the same layer is a problem. Across layers the later one
    wins as usual, so ``SYNCSVC_LDAP__BIND_PASSWORD_FILE`` overrides ``bind_password`` in the file.
    """
    sections, _ = _kinds(root)
    return {section: _resolve_values(sections[section], values, section, base_dir, problems)
            for section, values in layer.sections.items()}


def _resolve_values(
    cls: type[Any], values: Mapping[str, Raw], prefix: str, base_dir: Path, problems: list[str]
) -> dict[str, Raw]:
    """One table's keys checked against ``cls``, each ``x_file`` replaced by ``x``'s value."""
    names = [f.name for f in dataclasses.fields(cls)]
    secrets = _secret_names(cls)
    candidates = [*names, *(s + _FILE_SUFFIX for s in sorted(secrets))]
    out: dict[str, Raw] = {}
    for key, raw in values.items():
        dotted = f"{prefix}.{key}"
        base = key.removesuffix(_FILE_SUFFIX)
        if key in names:
            out[key] = raw
        elif key.endswith(_FILE_SUFFIX) and base in secrets:
            if base in values:
                problems.append(
                    problem(dotted, f"give either {prefix}.{base} or {dotted}, not both",
                            raw.origin))
                continue
            content = _read_secret_file(dotted, raw, base_dir, problems)
            if content is not None:
                out[base] = content
        else:
            problems.append(f"unknown key {dotted}{_suggest(key, candidates)} [{raw.origin}]")
    return out


def _resolve_item(
    cls: type[Any], item: Mapping[str, Any], prefix: str, base_dir: Path, problems: list[str]
) -> dict[str, Any]:
    """One table of an array: its own keys, and each nested table (``auth``) resolved alone."""
    nested = _nested(cls)
    flat = {k: v for k, v in item.items() if k not in nested and isinstance(v, Raw)}
    for key, value in item.items():
        if key not in nested and not isinstance(value, Raw):  # SYNCSVC_TARGETS__0__URL__X
            origins = {raw.origin for raw in value.values()}
            problems.append(f"{prefix}.{key} is not a table [{', '.join(sorted(origins))}]")
    out: dict[str, Any] = _resolve_values(cls, flat, prefix, base_dir, problems)
    for key, sub_cls in nested.items():
        if key not in item:
            continue
        value = item[key]
        if isinstance(value, Raw):
            problems.append(problem(f"{prefix}.{key}", f"expected a table ([{prefix}.{key}])",
                                    value.origin))
            continue
        out[key] = _resolve_values(sub_cls, value, f"{prefix}.{key}", base_dir, problems)
    return out


def _resolve_lists(
    root: type[Any], layer: Layer, base_dir: Path, problems: list[str]
) -> dict[str, dict[int, dict[str, Any]]]:
    lists = _lists(root)
    return {name: {index: _resolve_item(lists[name], item, f"{name}[{index}]", base_dir, problems)
                   for index, item in items.items()}
            for name, items in layer.lists.items()}


class _Invalid(Exception):
    """A value does not fit its annotation; the message says what was expected."""


def _show(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def _coerce(value: object, hint: Any, textual: bool) -> object:
    """Coerce one raw value to ``hint``; raise :class:`_Invalid` with an 'expected ...' message."""
    origin = typing.get_origin(hint)
    if origin is Literal:
        allowed = typing.get_args(hint)
        if isinstance(value, str):
            for choice in allowed:
                if value.strip().lower() == str(choice).lower():
                    return choice
        raise _Invalid(f"expected one of {', '.join(map(repr, allowed))}, got {_show(value)}")
    if origin is tuple and typing.get_args(hint) == (str, ...):
        if textual and isinstance(value, str) and value.lstrip().startswith("["):
            value = _env_table_value(value)  # a TOML array: items may hold spaces or commas
        if isinstance(value, str):
            return tuple(part for part in _LIST_SEPARATORS.split(value.strip()) if part)
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return tuple(value)
        raise _Invalid(f"expected a list of strings (or one string), got {_show(value)}")
    if origin is dict and typing.get_args(hint) == (str, str):
        if textual and isinstance(value, str):
            value = _env_table_value(value)  # '{ title = "jobTitle" }'
        if isinstance(value, dict) and all(
                isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            return dict(value)
        raise _Invalid(f"expected a table of strings (e.g. {{ a = \"b\" }}), got {_show(value)}")
    if hint is bool:
        if isinstance(value, bool):
            return value
        if textual and isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise _Invalid(f"expected true or false, got {_show(value)}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if textual and isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise _Invalid(f"expected an integer, got {_show(value)}")
    if hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if textual and isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
        raise _Invalid(f"expected a number, got {_show(value)}")
    if hint is str or hint is Path:
        if isinstance(value, str):
            return Path(value) if hint is Path else value
        raise _Invalid(f"expected a string, got {_show(value)}")
    raise TypeError(f"settings field annotated {hint!r}: no coercion rule")  # a bug, not input


def _coerce_section(
    cls: type[Any], current: Any, values: Mapping[str, Raw], section: str, problems: list[str],
    origins: dict[str, str], failed: set[str],
) -> Any:
    hints = typing.get_type_hints(cls)
    changes: dict[str, object] = {}
    for f in dataclasses.fields(cls):
        if f.name not in values:
            continue
        raw, dotted = values[f.name], f"{section}.{f.name}"
        origins[dotted] = raw.origin
        try:
            changes[f.name] = _coerce(raw.value, hints[f.name], raw.textual)
        except _Invalid as exc:
            message = str(exc)
            if f.metadata.get("secret"):  # never echo a secret, even a mistyped one
                message = message.rsplit(", got ", 1)[0] + f", got a {type(raw.value).__name__}"
            problems.append(problem(dotted, message, raw.origin))
            failed.add(dotted)
    return dataclasses.replace(current, **changes)


def _coerce_item(
    cls: type[Any], values: Mapping[str, Any], prefix: str, problems: list[str],
    origins: dict[str, str], failed: set[str],
) -> Any:
    """One table of an array of tables; a missing required key is reported, "" stands in."""
    hints = typing.get_type_hints(cls)
    nested = _nested(cls)
    kwargs: dict[str, object] = {}
    for f in dataclasses.fields(cls):
        dotted = f"{prefix}.{f.name}"
        if f.name in nested:
            sub = values.get(f.name, {})
            kwargs[f.name] = _coerce_section(
                nested[f.name], nested[f.name](), sub, dotted, problems, origins, failed)
        elif f.name in values:
            raw = values[f.name]
            origins[dotted] = raw.origin
            try:
                kwargs[f.name] = _coerce(raw.value, hints[f.name], raw.textual)
            except _Invalid as exc:
                message = str(exc)
                if f.metadata.get("secret"):
                    message = message.rsplit(", got ", 1)[0] + f", got a {type(raw.value).__name__}"
                problems.append(problem(dotted, message, raw.origin))
                failed.add(dotted)
        if f.name not in kwargs and f.default is dataclasses.MISSING \
                and f.default_factory is dataclasses.MISSING:
            if f.name not in values:
                problems.append(problem(dotted, "required", origins.get(prefix)))
            failed.add(dotted)
            kwargs[f.name] = ""  # required fields of items are strings (name, url)
    return cls(**kwargs)


def _coerce_lists(
    root: type[Any], merged: Mapping[str, dict[int, dict[str, Any]]], problems: list[str],
    origins: dict[str, str], failed: set[str],
) -> dict[str, tuple[Any, ...]]:
    """Every array of tables, in index order; indexes must run 0, 1, 2... with no gap."""
    lists = _lists(root)
    out: dict[str, tuple[Any, ...]] = {}
    for name, items in merged.items():
        expected = list(range(len(items)))
        if sorted(items) != expected:
            missing = min(set(range(max(items) + 1)) - set(items))
            problems.append(problem(
                name, f"no [[{name}]] table number {missing} (counting from 0), but "
                f"{ENV_PREFIX}{name.upper()}__{max(items)}__... is set: indexes must have no gap"))
            continue
        built = []
        for index in expected:
            item = items[index]
            prefix = f"{name}[{index}]"
            first = next((v for v in item.values() if isinstance(v, Raw)), None)
            if first is not None:
                origins.setdefault(prefix, first.origin)
            built.append(_coerce_item(lists[name], item, prefix, problems, origins, failed))
        out[name] = tuple(built)
    return out


def build(
    base: T, layers: Sequence[Layer], base_dir: Path, problems: list[str]
) -> Built[T]:
    """Apply ``layers`` (earliest first, later wins) on top of ``base``, a settings instance.

    Relative ``*_file`` paths are resolved against ``base_dir``. A value that cannot be coerced
    is reported and the base value kept, so the caller can still validate everything else.
    """
    root = type(base)
    sections, tables = _kinds(root)
    merged: dict[str, dict[str, Raw]] = {}
    merged_tables: dict[str, dict[str, Any]] = {}
    merged_lists: dict[str, dict[int, dict[str, Any]]] = {}
    for layer in layers:
        for name, items in _resolve_lists(root, layer, base_dir, problems).items():
            for index, item in items.items():
                into = merged_lists.setdefault(name, {}).setdefault(index, {})
                for key, value in item.items():
                    if isinstance(value, dict):  # a nested table merges key by key
                        into.setdefault(key, {}).update(value)
                    else:
                        into[key] = value
        for section, values in resolve_keys(root, layer, base_dir, problems).items():
            merged.setdefault(section, {}).update(values)
        for table, content in layer.tables.items():
            merged_tables.setdefault(table, {}).update(content)
    origins: dict[str, str] = {}
    failed: set[str] = set()
    changes: dict[str, object] = {}
    for section, cls in sections.items():
        if section in merged:
            changes[section] = _coerce_section(
                cls, getattr(base, section), merged[section], section, problems, origins, failed)
    for table in tables:
        if table in merged_tables:
            changes[table] = {**getattr(base, table), **merged_tables[table]}
    # An array of tables from the file replaces the default (empty) one as a whole.
    changes.update(_coerce_lists(root, merged_lists, problems, origins, failed))
    return Built(dataclasses.replace(base, **changes), origins, frozenset(failed))
