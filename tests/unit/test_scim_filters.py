"""SCIM filter parsing and SQL generation (no database: compiled for PostgreSQL and SQLite)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from syncsvc.errors import InvalidFilter, InvalidValue
from syncsvc.scim._filterparse import And, AttrPath, Compare, Not, Or, Present, ValuePath
from syncsvc.scim.filters import group_where, order_by, parse_filter, sort_key, user_where
from syncsvc.scim.schema import ENTERPRISE_USER
from syncsvc.store.schema import GroupRow, UserRow

DIALECTS = {"postgresql": postgresql.dialect(), "sqlite": sqlite.dialect()}


def eq(attr: str, value: Any, sub: str | None = None, uri: str | None = None) -> Compare:
    return Compare(AttrPath(attr, sub, uri), "eq", value)


class TestParse:
    def test_and_binds_tighter_than_or(self) -> None:
        """RFC 7644 §3.4.2.2: not > and > or (scim2-filter-parser 0.7 gets this wrong)."""
        assert Or((eq("a", 1), And((eq("b", 2), eq("c", 3))))) == parse_filter(
            "a eq 1 or b eq 2 and c eq 3"
        )
        assert Or((And((eq("a", 1), eq("b", 2))), eq("c", 3))) == parse_filter(
            "a eq 1 and b eq 2 or c eq 3"
        )

    def test_parentheses_and_not(self) -> None:
        """Grouping overrides precedence; not applies to a parenthesised filter."""
        assert And((Or((eq("a", 1), eq("b", 2))), Not(Present(AttrPath("c"))))) == parse_filter(
            "(a eq 1 or b eq 2) and not (c pr)"
        )

    def test_literals_are_json(self) -> None:
        """Numbers of any size and sign, escaped strings, case-insensitive true/false/null."""
        assert eq("a", 12) == parse_filter("a eq 12")
        assert eq("a", -1.5e3) == parse_filter("a eq -1.5e3")
        assert eq("a", 'x"y\\é') == parse_filter(r'a eq "x\"y\\\u00e9"')
        assert eq("a", True) == parse_filter("a eq True")
        assert eq("a", None) == parse_filter("a EQ NULL")
        assert eq("a", "true") == parse_filter('a eq "true"')

    def test_paths_with_urn_and_sub_attribute(self) -> None:
        """The URN is everything before the last colon; a dot introduces the sub-attribute."""
        assert eq("manager", "x", "value", ENTERPRISE_USER) == parse_filter(
            f'{ENTERPRISE_USER}:manager.value eq "x"'
        )

    def test_value_path(self) -> None:
        """``emails[...]`` holds its conditions on one value; ``[...].sub op v`` joins them."""
        expected = ValuePath(AttrPath("emails"), And((eq("type", "work"), eq("value", "x"))))
        assert expected == parse_filter('emails[type eq "work" and value eq "x"]')
        assert expected == parse_filter('emails[type eq "work"].value eq "x"')

    @pytest.mark.parametrize(
        ("text", "detail"),
        [
            ("userName eq", "expected a value after 'eq'"),
            ('userName xx "a"', "the operator 'xx' is not supported"),
            ("userName", "expected an operator"),
            ("(userName pr", "expected ')'"),
            ("userName pr)", "unexpected ')'"),
            ('emails[type eq "w"', "expected ']'"),
            ('emails[type eq "w"]]', "unexpected ']'"),
            ("not userName pr", "'not' must be followed by '('"),
            ('"a" eq "b"', "expected an attribute name"),
            ('userName eq "open', "unexpected character"),
            ("userName eq 'single'", "unexpected character"),
            ('userName eq "\\x"', "invalid string"),
            ('emails[value[type eq "x"] pr]', "value filters cannot be nested"),
            ('emails[emails.value eq "x"]', "name a sub-attribute only"),
            ("a.b.c eq 1", "invalid attribute path"),
            ("userName eq abc", "expected a value"),
            ("", "empty filter"),
            ("(" * 40 + "a pr" + ")" * 40, "nests deeper"),
        ],
    )
    def test_syntax_errors_are_invalid_filter_with_a_detail(self, text: str, detail: str) -> None:
        """Every syntax error is InvalidFilter (400 invalidFilter) saying what is wrong."""
        with pytest.raises(InvalidFilter) as info:
            parse_filter(text)
        assert detail in info.value.detail


class TestTranslate:
    @pytest.mark.parametrize(
        ("text", "detail"),
        [
            ('foo eq "x"', "unknown attribute 'foo'"),
            ('urn:x:y:User:userName eq "x"', "unknown attribute"),
            ("active gt true", "gt is not defined for boolean"),
            ('active eq "true"', "compare it with true or false"),
            ("userName eq 1", "compare it with a string"),
            ('completeness eq "1"', "compare it with a number"),
            ('meta.created co "2024"', "co needs a string attribute"),
            ('meta.created gt "yesterday"', "not an RFC 3339 dateTime"),
            ('name eq "x"', "name a sub-attribute"),
            ('password eq "x"', "cannot be filtered on"),
            ('meta.version eq "W/\\"1\\""', "cannot be filtered on"),
            ('emails[foo eq "x"]', "no sub-attribute 'foo'"),
            ('userName[value eq "x"]', "not a complex attribute"),
            ("title lt null", "only eq and ne take null"),
            ('x509Certificates.value gt "a"', "gt is not defined for binary"),
        ],
    )
    def test_semantic_errors_are_invalid_filter(self, text: str, detail: str) -> None:
        """Unknown attributes, type mismatches and RFC-forbidden operators are refused."""
        with pytest.raises(InvalidFilter) as info:
            user_where(text, "postgresql")
        assert detail in info.value.detail

    @pytest.mark.parametrize("dialect", sorted(DIALECTS))
    @pytest.mark.parametrize(
        "text",
        [
            "userName eq {v}", "displayName co {v}", "externalId sw {v}", "title ew {v}",
            "name.familyName gt {v}", "emails[type eq {v} and value co {v}]", "phoneNumbers.value eq {v}",
            f"{ENTERPRISE_USER}:department eq {{v}}", f"{ENTERPRISE_USER}:manager.value eq {{v}}",
            "skills eq {v}", "groups.display eq {v}", "emails.display co {v}", "schemas eq {v}",
            "meta.created gt {v}",
        ],
    )
    def test_user_input_is_only_ever_a_bound_parameter(self, dialect: str, text: str) -> None:
        """The SQL text never contains a filter value (habit 12: no formatting of input)."""
        nasty = "2024-01-01T00:00:00Z" if "meta" in text else "x'); DROP TABLE scim_user; --"
        compiled = select(UserRow.id).where(
            user_where(text.format(v='"' + nasty.replace("'", "\\u0027") + '"'), dialect)
        ).compile(dialect=DIALECTS[dialect])
        sql = str(compiled)
        assert "DROP" not in sql and "2024" not in sql
        assert any(nasty.lower() in str(p).lower() or "drop" in str(p).lower()
                   for p in compiled.params.values()) or "meta" in text

    def test_case_insensitive_names_give_the_same_sql(self) -> None:
        """Attribute names and operators match in any case, URN-qualified or not."""
        def sql(text: str) -> str:
            compiled = user_where(text, "postgresql").compile(dialect=DIALECTS["postgresql"])
            return str(compiled)

        assert sql('userName eq "a"') == sql('USERNAME EQ "a"') == sql(
            'urn:ietf:params:scim:schemas:core:2.0:User:username eq "a"'
        )

    def test_folded_column_is_compared_with_python_folded_literal(self) -> None:
        """userName uses user_name_lower and the literal folded in Python (exact for Unicode)."""
        compiled = user_where('userName eq "ÉMILE"', "sqlite").compile(dialect=DIALECTS["sqlite"])
        assert "user_name_lower" in str(compiled) and "lower(" not in str(compiled)
        assert "émile" in compiled.params.values()

    def test_case_exact_substring_uses_glob_on_sqlite(self) -> None:
        """SQLite's LIKE ignores case, so caseExact co/sw/ew use GLOB with escaped wildcards."""
        compiled = user_where('externalId co "a*?[b"', "sqlite").compile(dialect=DIALECTS["sqlite"])
        assert "GLOB" in str(compiled)
        assert "*a[*][?][[]b*" in compiled.params.values()

    def test_like_escapes_wildcards(self) -> None:
        """co/sw/ew escape % and _ (and the escape character) in LIKE patterns."""
        compiled = user_where('displayName co "50%_/"', "postgresql").compile(
            dialect=DIALECTS["postgresql"]
        )
        assert "ESCAPE '/'" in str(compiled)
        assert "%50/%/_//%" in compiled.params.values()

    def test_string_ordering_is_by_code_point_on_postgresql(self) -> None:
        """gt/lt on strings use COLLATE "C" so PostgreSQL agrees with SQLite and Python."""
        sql = str(user_where('title gt "a"', "postgresql").compile(dialect=DIALECTS["postgresql"]))
        assert 'COLLATE "C"' in sql

    def test_group_filters(self) -> None:
        """Group displayName uses its folded column; members is an EXISTS on the member table."""
        sql = str(select(GroupRow.id).where(group_where('displayName eq "A" and members pr', "sqlite"))
                  .compile(dialect=DIALECTS["sqlite"]))
        assert "display_name_lower" in sql and "EXISTS" in sql and "scim_group_member" in sql

    def test_unknown_dialect_is_a_programming_error(self) -> None:
        with pytest.raises(ValueError, match="mysql"):
            user_where("userName pr", "mysql")


class TestSort:
    @pytest.mark.parametrize("sort_by", ["userName", "emails", "emails.value", "name.familyName",
                                         "meta.created", "meta.lastModified", "externalId", "id",
                                         "title", "completeness", f"{ENTERPRISE_USER}:department"])
    def test_sortable_attributes(self, sort_by: str) -> None:
        """Singular attributes (and emails, by the primary address) can be sorted on."""
        for dialect, compiled_for in DIALECTS.items():
            select(UserRow.id).order_by(*order_by("User", sort_by, False, dialect)).compile(
                dialect=compiled_for
            )

    @pytest.mark.parametrize("sort_by", ["foo", "phoneNumbers", "name", "userName eq", "groups"])
    def test_unsortable_is_invalid_value(self, sort_by: str) -> None:
        """An unknown or multi-valued sortBy is refused as invalidValue."""
        with pytest.raises(InvalidValue):
            sort_key("User", sort_by, "postgresql")

    def test_id_breaks_ties_and_missing_values_sort_last(self) -> None:
        sql = str(select(UserRow.id).order_by(*order_by("User", "title", False, "postgresql"))
                  .compile(dialect=DIALECTS["postgresql"]))
        assert sql.endswith("NULLS LAST, scim_user.id")
