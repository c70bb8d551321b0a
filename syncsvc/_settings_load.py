"""Turn a TOML file and environment variables into settings dataclasses, collecting problems.

Generic over the dataclasses of :mod:`syncsvc.settings`: a top-level field whose type is a
dataclass is a *section* (``[ldap]``, ``SYNCSVC_LDAP__<KEY>``); a top-level ``dict`` field is a
free-form table (``[mapping]``, checked elsewhere); any other top-level field (``source``) cannot be
set from outside. Section fields are coerced by their annotation. Nothing here raises for bad
input: every problem is appended to a list so that the caller can report all of them at once.
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
    origin = f"in {path}"
    layer = Layer()
    for name, content in data.items():
        if name in sections or name in tables:
            if not isinstance(content, dict):
                problems.append(problem(name, "expected a table ([" + name + "])", origin))
            elif name in tables:
                layer.tables[name] = dict(content)
            else:
                layer.sections[name] = {
                    key: Raw(value, origin, textual=False) for key, value in content.items()}
        elif isinstance(content, dict):
            hint = _suggest(name, [*sections, *tables])
            problems.append(f"unknown section [{name}]{hint} [{origin}]")
        else:
            hint = _suggest(name, [*sections, *tables])
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
    layer = Layer()
    for name in sorted(env):
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, _, key = name[len(ENV_PREFIX):].partition("__")
        section, key = section.lower(), key.lower()
        if section in tables and key:
            layer.tables.setdefault(section, {})[key] = _env_table_value(env[name])
        elif section in sections and key:
            layer.sections.setdefault(section, {})[key] = Raw(env[name], f"from {name}", True)
        elif section in sections or section in tables:
            problems.append(f"{name}: no key after {ENV_PREFIX}{section.upper()}__")
        else:
            hint = _suggest(section, [*sections, *tables])
            problems.append(f"{name}: unknown section {section}{hint}")
    return layer


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
    resolved: dict[str, dict[str, Raw]] = {}
    for section, values in layer.sections.items():
        cls = sections[section]
        names = [f.name for f in dataclasses.fields(cls)]
        secrets = _secret_names(cls)
        candidates = [*names, *(s + _FILE_SUFFIX for s in sorted(secrets))]
        out: dict[str, Raw] = {}
        for key, raw in values.items():
            dotted = f"{section}.{key}"
            base = key.removesuffix(_FILE_SUFFIX)
            if key in names:
                out[key] = raw
            elif key.endswith(_FILE_SUFFIX) and base in secrets:
                if base in values:
                    problems.append(
                        problem(dotted, f"give either {section}.{base} or {dotted}, not both",
                                raw.origin))
                    continue
                content = _read_secret_file(dotted, raw, base_dir, problems)
                if content is not None:
                    out[base] = content
            else:
                problems.append(f"unknown key {dotted}{_suggest(key, candidates)} [{raw.origin}]")
        resolved[section] = out
    return resolved


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
        if isinstance(value, str):
            return tuple(part for part in _LIST_SEPARATORS.split(value.strip()) if part)
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return tuple(value)
        raise _Invalid(f"expected a list of strings (or one string), got {_show(value)}")
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
    for layer in layers:
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
    return Built(dataclasses.replace(base, **changes), origins, frozenset(failed))
