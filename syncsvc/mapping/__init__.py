"""Declarative LDAP entry -> SCIM resource mapping: presets per flavour, TOML overrides, pure.

``compile_mapping(flavor, settings.mapping)`` once per run (it checks the whole config and
raises :class:`~syncsvc.errors.ConfigError` with every problem), then ``map_user`` /
``map_group`` per entry. Modules: :mod:`.targets` (path syntax), :mod:`.transforms` (named
transforms), :mod:`.presets` (rules per flavour), :mod:`.rules` (config format, compiler),
:mod:`.mapper` (entry -> record | Problem).
"""

from syncsvc.mapping.mapper import map_group, map_user
from syncsvc.mapping.presets import PRESETS
from syncsvc.mapping.rules import CompiledMapping, Rule, compile_mapping

__all__ = [
    "CompiledMapping",
    "PRESETS",
    "Rule",
    "compile_mapping",
    "map_group",
    "map_user",
]
