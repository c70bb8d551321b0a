"""The [enrich] table: loading, checking (every problem at once), compiling."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from syncsvc.domain import LdapEntry, UserRecord
from syncsvc.enrich import Enrichment, NoEnrichment, compile_enrichment
from syncsvc.errors import ConfigError
from syncsvc.settings import describe, load_settings

TOML = '''
[ldap]
url = "ldap://localhost"
base_dn = "dc=example,dc=com"

[enrich]
phone_region = "de"

[[enrich.rules]]
kind = "default"
target = "preferredLanguage"
value = "en"

[[enrich.rules]]
kind = "template"
target = "displayName"
template = "{{ user.name.givenName }} {{ user.name.familyName }}"

[[enrich.rules]]
kind = "lookup"
file = "hr.csv"
attribute = "employeeNumber"
column = "employee_id"
set = { "enterprise:costCenter" = "cost_center" }
'''


def problems_of(table: dict[str, Any], base_dir: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        compile_enrichment(table, base_dir=base_dir)
    return list(caught.value.problems)


class TestLoading:
    def test_rules_load_from_toml_and_compile(self, tmp_path: Path) -> None:
        """[[enrich.rules]] tables load as a free-form table; lookup files are relative to the config."""
        (tmp_path / "hr.csv").write_text("employee_id,cost_center\n1,CC\n")
        config = tmp_path / "syncsvc.toml"
        config.write_text(TOML)
        settings = load_settings(config, {}, cwd=tmp_path)
        assert 3 == len(settings.enrich["rules"])
        enricher = compile_enrichment(settings.enrich, base_dir=tmp_path)
        assert isinstance(enricher, Enrichment)
        assert ("employeeNumber",) == enricher.attributes
        assert "enrich" in describe(settings)

    def test_environment_overrides_a_key(self, tmp_path: Path) -> None:
        """SYNCSVC_ENRICH__PHONE_REGION replaces the file's value; rules can come as inline TOML."""
        (tmp_path / "hr.csv").write_text("employee_id,cost_center\n1,CC\n")
        config = tmp_path / "syncsvc.toml"
        config.write_text(TOML)
        env = {"SYNCSVC_ENRICH__PHONE_REGION": "FR",
               "SYNCSVC_ENRICH__RULES": '[{kind = "email"}]'}
        settings = load_settings(config, env, cwd=tmp_path)
        assert ("FR", [{"kind": "email"}]) == (settings.enrich["phone_region"], settings.enrich["rules"])
        compile_enrichment(settings.enrich, base_dir=tmp_path)

    def test_no_rules_is_no_enrichment(self, tmp_path: Path) -> None:
        """Without [enrich] the record passes through untouched."""
        enricher = compile_enrichment({}, base_dir=tmp_path)
        assert isinstance(enricher, NoEnrichment)
        record = UserRecord(anchor="a", dn="uid=a", user_name="a", resource={"userName": "a"})
        assert record is enricher(record, LdapEntry("uid=a", "a", {})).record


class TestProblems:
    def test_every_problem_is_reported_at_once_with_its_key(self, tmp_path: Path) -> None:
        """One ConfigError lists each broken rule, prefixed with its position and kind."""
        table = {
            "phone_region": "XX",
            "colour": "blue",
            "rules": [
                {"kind": "defualt", "target": "title", "value": "x"},
                {"kind": "default", "target": "titel", "value": "x"},
                {"kind": "default", "target": "active", "value": "yes"},
                {"kind": "template", "target": "displayName", "template": "{{ user.x "},
                {"kind": "template", "target": "userName", "template": "{{ ldap.uid }}"},
                {"kind": "phone", "region": "ZZ", "on_invalid": "drop"},
                {"kind": "lookup", "file": "missing.csv", "attribute": "employeeNumber",
                 "set": {"enterprise:costCenter": "cc"}},
                {"kind": "title_case"},
                {"kind": "email", "extra": 1},
                "not a table",
            ],
        }
        problems = problems_of(table, tmp_path)
        expected = [
            "enrich.colour: unknown key",
            "enrich.phone_region: unknown region 'XX'",
            "enrich.rules[0]: 'kind' must be one of",
            "enrich.rules[1] (default): 'target': unknown SCIM path 'titel' (did you mean 'title'?)",
            "enrich.rules[2] (default): 'value' must be true or false for active",
            "enrich.rules[3] (template): bad template (line 1)",
            "enrich.rules[4] (template): 'target': userName cannot be set by enrichment",
            "enrich.rules[5] (phone): 'region': unknown region 'ZZ'",
            "enrich.rules[5] (phone): 'on_invalid' must be one of 'problem', 'keep', got 'drop'",
            "enrich.rules[6] (lookup): lookup file",
            "enrich.rules[7] (title_case): 'targets' is required",
            "enrich.rules[8] (email): unknown key 'extra'",
            "enrich.rules[9]: expected a table",
        ]
        assert len(expected) == len(problems), "\n".join(problems)
        for want, got in zip(expected, problems):
            assert got.startswith(want), (want, got)

    def test_lookup_columns_are_checked_against_the_file(self, tmp_path: Path) -> None:
        """A set column the file does not have is a config problem naming the columns it has."""
        (tmp_path / "hr.csv").write_text("employee_id,office\n1,Berlin\n")
        problems = problems_of({"rules": [{
            "kind": "lookup", "file": "hr.csv", "attribute": "employeeNumber",
            "column": "employee_id", "set": {"enterprise:costCenter": "cost_center"}}]}, tmp_path)
        expected = (f"enrich.rules[0] (lookup): lookup file {tmp_path / 'hr.csv'}: "
                    "no column 'cost_center' (it has 'employee_id', 'office')")
        assert [expected] == problems

    def test_lookup_needs_exactly_one_key_source(self, tmp_path: Path) -> None:
        """attribute (LDAP) or path (SCIM), not both, not neither."""
        problems = problems_of({"rules": [{
            "kind": "lookup", "file": "hr.csv", "set": {"title": "t"}}]}, tmp_path)
        assert any("give exactly one of 'attribute'" in p for p in problems)

    def test_a_boolean_target_only_takes_a_default(self, tmp_path: Path) -> None:
        """A template cannot render 'active'."""
        problems = problems_of({"rules": [{
            "kind": "template", "target": "active", "template": "true"}]}, tmp_path)
        assert ["enrich.rules[0] (template): active is true/false: only a 'default' rule can set it"] == problems
