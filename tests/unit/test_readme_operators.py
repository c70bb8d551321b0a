"""The README's operator sections hold: every setting is documented, the examples load."""

from __future__ import annotations

import dataclasses
import re
import typing
from pathlib import Path

import pytest

from syncsvc.mapping import compile_mapping
from syncsvc.settings import Settings, load_settings

README = Path(__file__).parents[2] / "README.md"


def _section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"### {title}\n")
    end = text.find("\n### ", start + 1)
    return text[start:end]


def _keys(cls: type, prefix: str = "") -> list[str]:
    """Dotted names of every setting, e.g. ``ldap.page_size``, ``targets.auth.token``."""
    hints = typing.get_type_hints(cls)
    keys: list[str] = []
    for f in dataclasses.fields(cls):
        kind = hints[f.name]
        inner = typing.get_args(kind)[0] if typing.get_origin(kind) is tuple else kind
        if f.name == "source":
            continue  # where the settings came from, not a key
        if dataclasses.is_dataclass(inner):
            keys.extend(_keys(inner, f"{prefix}{f.name}."))  # type: ignore[arg-type]
        else:
            keys.append(f"{prefix}{f.name}")
    return keys


class TestConfigurationReference:
    def test_every_key_is_in_the_reference(self) -> None:
        """Each key of every section appears, in backquotes, in "Configuration reference"."""
        reference = _section("Configuration reference")
        missing = []
        for key in _keys(Settings):
            section, _, name = key.rpartition(".")
            if not section:
                continue  # mapping, enrich: free-form tables, checked below
            if f"[{section}" not in reference or f"`{name}`" not in reference:
                missing.append(key)
        assert [] == missing
        for table in ("mapping", "enrich"):  # free-form tables, documented by name
            assert f"[{table}" in reference


def _examples() -> list[str]:
    return re.findall(r"```toml\n(.*?)```", _section("Directory examples"), re.S)


class TestDirectoryExamples:
    def test_there_is_one_per_flavour(self) -> None:
        """OpenLDAP, Active Directory and FreeIPA."""
        flavors = [re.findall(r'flavor = "(\w+)"', e) for e in _examples()]
        assert [["openldap"], ["ad"], ["freeipa"]] == flavors

    @pytest.mark.parametrize("index", [0, 1, 2], ids=["openldap", "ad", "freeipa"])
    def test_example_loads_and_its_mapping_compiles(self, index: int, tmp_path: Path) -> None:
        """With its secret and CA files in place, the example is a valid configuration."""
        text = _examples()[index]
        for path in set(re.findall(r'"(/(?:run|etc)/[^"]+)"', text)):
            local = tmp_path / Path(path).name
            local.write_text("x\n")
            text = text.replace(f'"{path}"', f'"{local}"')
        config = tmp_path / "syncsvc.toml"
        config.write_text(text)
        settings = load_settings(config, {})
        compile_mapping(settings.ldap.flavor, settings.mapping)
