"""Each enrichment rule on its own: pure callables, resource + entry in, an Update out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from syncsvc.domain import LdapEntry, Problem, UserRecord
from syncsvc.enrich import Enrichment, RuleFailed, Update
from syncsvc.enrich._paths import PathSetter, resolve_path
from syncsvc.enrich.defaults import DefaultRule
from syncsvc.enrich.department import DepartmentFromDnRule, ou_values
from syncsvc.enrich.lookup import LookupRule, LookupTable
from syncsvc.enrich.normalize import (
    EmailRule,
    PhoneRule,
    TitleCaseRule,
    WhitespaceRule,
    collapse_whitespace,
    title_case,
    to_e164,
)
from syncsvc.enrich.templates import TemplateRule, compile_template
from syncsvc.mapping import compile_mapping, map_user
from syncsvc.mapping.targets import CORE_USER, ENTERPRISE_USER

DN = "uid=ada,ou=Engineering,ou=People,dc=example,dc=com"
MAPPING = compile_mapping("openldap")


def entry(dn: str = DN, **attrs: Any) -> LdapEntry:
    values = {k.lower(): tuple(v) if isinstance(v, list) else (v,) for k, v in attrs.items()}
    values.setdefault("uid", ("ada",))
    return LdapEntry(dn=dn, anchor="anchor-" + dn, attributes=values)


def mapped(e: LdapEntry) -> UserRecord:
    record = map_user(e, MAPPING)
    assert isinstance(record, UserRecord)
    return record


def path(key: str) -> PathSetter:
    problems: list[str] = []
    setter = resolve_path(key, problems)
    assert setter is not None, problems
    return setter


def apply(rule: Any, e: LdapEntry) -> tuple[dict[str, Any], tuple[Problem, ...]]:
    """The resource after ``rule`` alone, through the chain, and its problems."""
    out = Enrichment(rules=(rule,))(mapped(e), e)
    return dict(out.record.resource), out.problems


def template(target: str, source: str, **kwargs: Any) -> TemplateRule:
    problems: list[str] = []
    compiled, _names = compile_template(source, problems)
    assert not problems
    return TemplateRule(path(target), compiled, source, **kwargs)


class TestPaths:
    def test_an_enterprise_value_adds_the_extension_schema(self) -> None:
        """Setting enterprise:department on a core-only user lists the extension in schemas."""
        resource: dict[str, Any] = {"schemas": [CORE_USER], "userName": "a"}
        path("enterprise:department").set(resource, "R&D")
        assert [CORE_USER, ENTERPRISE_USER] == resource["schemas"]
        assert {"department": "R&D"} == resource[ENTERPRISE_USER]

    def test_a_typed_value_replaces_its_item_or_is_appended(self) -> None:
        """phoneNumbers[mobile] changes the mobile item and leaves the work one alone."""
        resource: dict[str, Any] = {"phoneNumbers": [{"value": "1", "type": "work"}]}
        path("phoneNumbers[mobile]").set(resource, "2")
        path("phoneNumbers[work]").set(resource, "3")
        assert [{"value": "3", "type": "work"}, {"value": "2", "type": "mobile"}] == resource["phoneNumbers"]

    def test_a_first_work_email_is_primary(self) -> None:
        """emails[work] added to a user without e-mails is the primary one."""
        resource: dict[str, Any] = {}
        path("emails[work]").set(resource, "a@example.com")
        assert [{"value": "a@example.com", "type": "work", "primary": True}] == resource["emails"]

    @pytest.mark.parametrize("key", ["userName", "externalId", "enterprise:manager", "nope"])
    def test_identity_and_record_targets_are_refused(self, key: str) -> None:
        """userName, externalId and the manager DN belong to the mapping; typos are named."""
        problems: list[str] = []
        assert resolve_path(key, problems) is None
        assert 1 == len(problems)


class TestDefault:
    def test_fills_an_absent_value(self) -> None:
        """No preferredLanguage in the directory: the default is set."""
        resource, _ = apply(DefaultRule(path("preferredLanguage"), "en"), entry())
        assert "en" == resource["preferredLanguage"]

    def test_never_overwrites_a_value(self) -> None:
        """A preferredLanguage from the directory stays."""
        resource, _ = apply(DefaultRule(path("preferredLanguage"), "en"),
                            entry(preferredLanguage="de"))
        assert "de" == resource["preferredLanguage"]

    def test_a_blank_value_counts_as_absent(self) -> None:
        """A title of spaces is no title."""
        rule = DefaultRule(path("title"), "Staff")
        assert Update(sets=((path("title"), "Staff"),)) == rule({"title": "  "}, entry())


class TestTemplate:
    def test_display_name_from_given_and_family_names(self) -> None:
        """The resource's fields are available as ``user``."""
        rule = template("displayName", "{{ user.name.givenName }} {{ user.name.familyName }}")
        resource, problems = apply(rule, entry(givenName="Ada", sn="Lovelace", displayName="x"))
        assert ("Ada Lovelace", ()) == (resource["displayName"], problems)

    def test_profile_url_from_user_name_and_ldap_attributes(self) -> None:
        """LDAP attributes are available as ``ldap`` (case-insensitive names)."""
        rule = template("profileUrl",
                        "https://people.example.com/{{ user.userName }}?n={{ ldap.employeeNumber }}")
        resource, _ = apply(rule, entry(employeeNumber="1001"))
        assert "https://people.example.com/ada?n=1001" == resource["profileUrl"]

    def test_undefined_name_is_a_problem_and_changes_nothing(self) -> None:
        """StrictUndefined: a missing givenName is reported with the template, not rendered as ''."""
        rule = template("displayName", "{{ user.name.givenName }} {{ user.name.familyName }}")
        resource, problems = apply(rule, entry(sn="Lovelace", displayName="Countess"))
        assert "Countess" == resource["displayName"]
        assert 1 == len(problems)
        assert DN == problems[0].dn
        assert "givenName" in problems[0].reason and "template displayName" in problems[0].reason

    def test_undefined_can_be_skipped_quietly(self) -> None:
        """on_undefined = "skip": no change, no problem."""
        rule = template("displayName", "{{ user.nickName }}", on_undefined="skip")
        assert Update() == rule({"userName": "a"}, entry())

    def test_the_default_filter_handles_absent_values(self) -> None:
        """Jinja's default filter works under StrictUndefined."""
        rule = template("title", "{{ user.title | default('Staff') }}")
        assert "Staff" == apply(rule, entry())[0]["title"]

    def test_overwrite_false_only_fills_gaps(self) -> None:
        """overwrite = false keeps a value the directory gave."""
        rule = template("displayName", "{{ user.userName }}", overwrite=False)
        assert "Countess" == apply(rule, entry(displayName="Countess"))[0]["displayName"]

    def test_the_sandbox_refuses_internals(self) -> None:
        """Attribute access to Python internals is refused and reported, not executed."""
        rule = template("title", "{{ user.__class__.__mro__ }}")
        with pytest.raises(RuleFailed):
            rule({"userName": "a"}, entry())

    def test_the_sandbox_refuses_mutation(self) -> None:
        """The immutable sandbox refuses list.append on a value passed in."""
        rule = template("title", "{{ user.emails.append(1) }}")
        with pytest.raises(RuleFailed, match="sandbox"):
            rule({"emails": []}, entry())

    def test_syntax_errors_are_found_at_compile_time(self) -> None:
        """A broken template is a config problem naming its line."""
        problems: list[str] = []
        assert (None, ()) == compile_template("{{ user.userName ", problems)
        assert "bad template (line 1)" in problems[0]

    def test_referenced_ldap_attributes_are_detected(self) -> None:
        """ldap.X and ldap_all['Y'] are attributes the pipeline must ask the directory for."""
        _, names = compile_template("{{ ldap.employeeNumber }} {{ ldap_all['roomNumber'] | join(',') }}", [])
        assert ("employeeNumber", "roomNumber") == names

    def test_binary_attributes_are_not_text(self) -> None:
        """jpegPhoto is left out of ``ldap``: a template cannot paste binary into the body."""
        rule = template("title", "{{ ldap.jpegPhoto | default('none') }}")
        assert "none" == apply(rule, entry(jpegPhoto=b"\xff\xd8\xff\xe0"))[0]["title"]


class TestEmail:
    def test_lower_cases_and_trims_every_address(self) -> None:
        """Mixed-case addresses become lower-case; type and primary are kept."""
        resource, _ = apply(EmailRule(), entry(mail=[" Ada.Lovelace@Example.COM", "ADA@x.org"]))
        assert [{"value": "ada.lovelace@example.com", "type": "work", "primary": True},
                {"value": "ada@x.org", "type": "work"}] == resource["emails"]


class TestPhone:
    def test_national_numbers_use_the_region(self) -> None:
        """A German national number with region DE becomes E.164."""
        assert "+493012345678" == to_e164("030 12345678", "DE")

    def test_international_numbers_need_no_region(self) -> None:
        """+1 415 555 ... parses without a region (555-01xx are valid in libphonenumber)."""
        assert "+14155550123" == to_e164("+1 (415) 555-0123", "")

    def test_every_valid_number_is_rewritten(self) -> None:
        """work and mobile numbers both go to E.164."""
        rule = PhoneRule("US")
        resource, problems = apply(rule, entry(telephoneNumber="(415) 555-0123", mobile="+44 20 7946 0958"))
        assert ["+14155550123", "+442079460958"] == [p["value"] for p in resource["phoneNumbers"]]
        assert () == problems

    def test_an_invalid_number_is_kept_and_reported(self) -> None:
        """Never lose data: the value stays; the run records a problem naming it."""
        resource, problems = apply(PhoneRule("US"), entry(telephoneNumber="12", mobile="(415) 555-0123"))
        assert ["12", "+14155550123"] == [p["value"] for p in resource["phoneNumbers"]]
        assert 1 == len(problems)
        assert "'12' is not a valid phone number for region US; kept as is" in problems[0].reason

    def test_on_invalid_keep_is_quiet(self) -> None:
        """on_invalid = "keep": no problem."""
        assert () == apply(PhoneRule("US", on_invalid="keep"), entry(telephoneNumber="12"))[1]

    def test_types_limit_the_rule(self) -> None:
        """types = ["mobile"] leaves the work number alone."""
        resource, _ = apply(PhoneRule("US", types=["mobile"]),
                            entry(telephoneNumber="(415) 555-0123", mobile="(415) 555-0124"))
        assert ["(415) 555-0123", "+14155550124"] == [p["value"] for p in resource["phoneNumbers"]]


class TestWhitespace:
    def test_collapse(self) -> None:
        """Tabs, newlines and non-breaking spaces become single spaces; ends are trimmed."""
        assert "Ada King Lovelace" == collapse_whitespace("  Ada\tKing\u00a0\n Lovelace ")

    def test_only_the_targets_change(self) -> None:
        """title is collapsed; addresses[work].formatted (multi-line on purpose) is not a target."""
        rule = WhitespaceRule([path("title"), path("displayName")])
        resource, _ = apply(rule, entry(title="Senior   Engineer ", postalAddress="1 Main St$Town"))
        assert "Senior Engineer" == resource["title"]
        assert "1 Main St\nTown" == resource["addresses"][0]["formatted"]


class TestTitleCase:
    @pytest.mark.parametrize(("text", "expected"), [
        ("SENIOR ENGINEER", "Senior Engineer"),
        ("head of it", "Head of IT"),
        ("jean-luc o'neil", "Jean-Luc O'Neil"),
        ("ludwig van beethoven", "Ludwig van Beethoven"),
        ("iOS developer at McDonald", "iOS Developer at McDonald"),
        ("of mice", "Of Mice"),
    ])
    def test_title_case(self, text: str, expected: str) -> None:
        """Single-case words are capitalised; mixed case and kept words are left alone."""
        assert expected == title_case(text, frozenset({"IT"}))

    def test_rule_touches_only_its_targets(self) -> None:
        """title is title-cased, displayName is not."""
        rule = TitleCaseRule([path("title")], keep=["VP"])
        resource, _ = apply(rule, entry(title="vp of sales", displayName="ada LOVELACE"))
        assert ("VP of Sales", "ada LOVELACE") == (resource["title"], resource["displayName"])


class TestLookup:
    def table(self, tmp_path: Path, text: str, name: str = "hr.csv", column: str = "employee_id",
              **kwargs: Any) -> LookupTable:
        file = tmp_path / name
        file.write_text(text, encoding="utf-8")
        table = LookupTable(file, column, **kwargs)
        table.refresh()
        return table

    def test_csv_row_sets_its_columns(self, tmp_path: Path) -> None:
        """An HR export by employeeNumber: costCenter and the office."""
        table = self.table(tmp_path, "\ufeffemployee_id,cost_center,office\n1001,CC-7,Berlin\n")
        rule = LookupRule(table, "employeeNumber", ((path("enterprise:costCenter"), "cost_center"),
                                                    (path("addresses[work].locality"), "office")))
        resource, _ = apply(rule, entry(employeeNumber="1001", departmentNumber="ENG"))
        assert "CC-7" == resource[ENTERPRISE_USER]["costCenter"]
        assert [{"type": "work", "locality": "Berlin"}] == resource["addresses"]

    def test_a_missing_key_changes_nothing(self, tmp_path: Path) -> None:
        """No row for 1002, or no employeeNumber at all: the directory's values stay."""
        table = self.table(tmp_path, "employee_id,cost_center\n1001,CC-7\n")
        rule = LookupRule(table, "employeeNumber", ((path("enterprise:costCenter"), "cost_center"),))
        assert Update() == rule({}, entry(employeeNumber="1002"))
        assert Update() == rule({}, entry())

    def test_json_keyed_object_and_scim_path_key(self, tmp_path: Path) -> None:
        """A JSON object of objects; the key read from the resource; numbers match as text."""
        table = self.table(tmp_path, '{"1001": {"office": "Paris", "floor": 3}}', "hr.json",
                           column="id")
        rule = LookupRule(table, path("enterprise:employeeNumber"),
                          ((path("addresses[work].locality"), "office"),))
        resource, _ = apply(rule, entry(employeeNumber="1001"))
        assert "Paris" == resource["addresses"][0]["locality"]
        json_list = self.table(tmp_path, '[{"id": 1001, "office": "Rome"}]', "list.json", column="id")
        assert "Rome" == json_list.get("1001")["office"]  # type: ignore[index]

    def test_empty_cells_and_overwrite_false(self, tmp_path: Path) -> None:
        """An empty cell sets nothing; overwrite = false only fills gaps."""
        table = self.table(tmp_path, "employee_id,cost_center,title\n1001,,Boss\n")
        rule = LookupRule(table, "employeeNumber", ((path("enterprise:costCenter"), "cost_center"),
                                                    (path("title"), "title")), overwrite=False)
        resource, _ = apply(rule, entry(employeeNumber="1001", departmentNumber="ENG", title="Eng"))
        assert ("ENG", "Eng") == (resource[ENTERPRISE_USER]["costCenter"], resource["title"])

    def test_the_file_is_re_read_only_when_it_changed(self, tmp_path: Path) -> None:
        """refresh() reloads after a change on disk, and does nothing when it did not change."""
        table = self.table(tmp_path, "employee_id,office\n1001,Berlin\n")
        file = tmp_path / "hr.csv"
        file.write_text("employee_id,office\n1001,Munich!\n", encoding="utf-8")
        table.refresh()
        assert "Munich!" == table.get("1001")["office"]  # type: ignore[index]
        file.unlink()
        with pytest.raises(Exception, match="cannot read"):
            table.refresh()

    def test_ignore_case_keys(self, tmp_path: Path) -> None:
        """ignore_case matches keys case-insensitively."""
        table = self.table(tmp_path, "login,office\nADA,Oslo\n", column="login", ignore_case=True)
        assert "Oslo" == table.get("ada")["office"]  # type: ignore[index]


class TestDepartmentFromDn:
    def test_ou_values_nearest_first_unescaped(self) -> None:
        """The entry's own RDN is not an OU; escapes are undone."""
        assert ["R, D", "People"] == ou_values(
            "uid=x,ou=R\\, D,ou=People,dc=ex")
        assert ["Ops"] == ou_values("ou=Self,ou=Ops,dc=ex")

    def test_fills_department_from_the_nearest_ou(self) -> None:
        """ou=Engineering under ou=People: Engineering (People is a container)."""
        rule = DepartmentFromDnRule(path("enterprise:department"))
        resource, _ = apply(rule, entry())
        assert "Engineering" == resource[ENTERPRISE_USER]["department"]
        assert ENTERPRISE_USER in resource["schemas"]

    def test_a_department_from_the_directory_stays(self) -> None:
        """Only when absent."""
        rule = DepartmentFromDnRule(path("enterprise:department"))
        assert Update() == rule({ENTERPRISE_USER: {"department": "R&D"}}, entry())

    def test_level_top_and_no_ou(self) -> None:
        """level = "top" takes the OU nearest the root; a DN without OUs changes nothing."""
        rule = DepartmentFromDnRule(path("enterprise:department"), level="top", skip=())
        assert "People" == apply(rule, entry())[0][ENTERPRISE_USER]["department"]
        assert Update() == rule({}, entry(dn="uid=x,dc=example,dc=com"))


class TestChain:
    def test_rules_see_what_earlier_rules_did(self) -> None:
        """department_from_dn, then a template reading it."""
        rules = (DepartmentFromDnRule(path("enterprise:department")),
                 template("title", "{{ enterprise.department }} staff"))
        out = Enrichment(rules=rules)(mapped(entry()), entry())
        assert "Engineering staff" == out.record.resource["title"]

    def test_a_failing_rule_does_not_stop_the_others(self) -> None:
        """The failing template is a problem; the default after it still applies."""
        rules = (template("title", "{{ user.nope }}"), DefaultRule(path("preferredLanguage"), "en"))
        out = Enrichment(rules=rules)(mapped(entry()), entry())
        assert "en" == out.record.resource["preferredLanguage"]
        assert ["enrich.rules[0] (template title)"] == [p.reason.split(":")[0] for p in out.problems]

    def test_a_crashing_rule_is_a_problem_not_a_crash(self) -> None:
        """A bug in a rule becomes the entry's problem."""
        class Broken:
            label = "broken"

            def __call__(self, resource: Any, e: LdapEntry) -> Update:
                raise KeyError("boom")

        out = Enrichment(rules=(Broken(),))(mapped(entry()), entry())
        assert "internal error: KeyError" in out.problems[0].reason

    def test_the_mapped_record_is_never_mutated(self) -> None:
        """The chain works on a copy; an unchanged result is the same record."""
        record = mapped(entry(mail="A@B.C"))
        before = repr(record.resource)
        out = Enrichment(rules=(EmailRule(),))(record, entry(mail="A@B.C"))
        assert before == repr(record.resource)
        assert "a@b.c" == out.record.resource["emails"][0]["value"]
        same = Enrichment(rules=(EmailRule(),))(out.record, entry())
        assert same.record is out.record
