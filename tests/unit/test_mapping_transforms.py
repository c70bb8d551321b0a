"""Named transforms and transform chains (syncsvc.mapping.transforms)."""

from __future__ import annotations

import uuid

import pytest

from syncsvc.mapping.transforms import (
    Kind,
    TransformFailed,
    as_text,
    bitmask_off,
    bitmask_on,
    compile_chain,
    first_token,
    negate,
    postal_address,
    present,
    rdn,
    strip_uid,
    to_base64,
    to_bool,
    to_int,
    to_lower,
    to_strip,
    to_upper,
    to_uuid,
    utf8,
)

GUID = uuid.UUID("3f2504e0-4f89-11d3-9a0c-0305e82c3301")


def run(names: list[str], values: tuple[object, ...], target: Kind = Kind.TEXT) -> object:
    chain, problems = compile_chain(names, start=Kind.RAW, target=target, multi_ok=True)
    assert [] == problems
    assert chain is not None
    return chain.run(values)


class TestValueTransforms:
    def test_text_transforms_decode_bytes(self) -> None:
        """lower/upper/strip/utf8 work on str and on UTF-8 bytes alike."""
        assert ("jo", "JO", "Jö", "Jö") == (
            to_lower("Jo"),
            to_upper(b"jo"),
            to_strip("  J\u00f6 "),
            utf8("Jö".encode()),
        )

    def test_non_utf8_bytes_are_a_value_error(self) -> None:
        """Bytes that are not UTF-8 raise ValueError, which the chain reports."""
        with pytest.raises(ValueError, match="utf-8"):
            as_text(b"\xff\xfe")

    def test_first_token(self) -> None:
        """first_token keeps a labeledURI's URI and drops its label."""
        assert ("https://ex/jo", "") == (first_token("https://ex/jo My page"), first_token("  "))

    def test_rdn_value(self) -> None:
        """rdn gives the first RDN's value of a DN."""
        assert "jo" == rdn("uid=jo,ou=p,dc=x")

    def test_rdn_undoes_escapes(self) -> None:
        """rdn undoes backslash and hex escapes, and stops at a multi-valued RDN's '+'."""
        assert ("Doe, Jo", "Zoë", "a") == (
            rdn(r"cn=Doe\, Jo,ou=p"),
            rdn(r"cn=Zo\C3\AB,dc=x"),
            rdn("cn=a+uid=b,dc=x"),
        )

    def test_rdn_rejects_non_dn(self) -> None:
        """A value without '=' is not a DN."""
        with pytest.raises(ValueError, match="not a DN"):
            rdn("jo")

    def test_strip_uid_suffix(self) -> None:
        """strip_uid drops the optional #'0101'B of a uniqueMember value, and only that."""
        stripped = (strip_uid("uid=a,dc=x#'0101'B"), strip_uid("uid=a,dc=x"))
        assert ("uid=a,dc=x", "uid=a,dc=x") == stripped

    def test_postal_address(self) -> None:
        """postal_address turns $-separated lines into newlines and unescapes \\24."""
        assert "1 Main St\nUS$ Town" == postal_address(r"1 Main St $ US\24 Town")

    def test_int(self) -> None:
        """int parses decimal text, with surrounding blanks."""
        assert 42 == to_int(b" 42 ")

    def test_int_rejects_text(self) -> None:
        """int of a non-number raises ValueError."""
        with pytest.raises(ValueError, match="abc"):
            to_int("abc")

    def test_bool(self) -> None:
        """bool reads LDAP Boolean syntax in any case."""
        assert (True, False) == (to_bool("TRUE"), to_bool(b"false"))

    def test_bool_rejects_other_text(self) -> None:
        """bool refuses anything but TRUE/FALSE."""
        with pytest.raises(ValueError, match="TRUE or FALSE"):
            to_bool("yes")

    def test_not_and_present(self) -> None:
        """not negates a boolean; present is True for any value."""
        assert (False, True, True) == (negate(True), negate(False), present(b"\x00"))

    def test_bitmask(self) -> None:
        """bitmask_off:2 is True for an enabled AD account (512), False for a disabled one (514)."""
        enabled, disabled = bitmask_off(2)("512"), bitmask_off(2)("514")
        assert (True, False, True) == (enabled, disabled, bitmask_on(2)(514))

    def test_uuid_from_guid_bytes(self) -> None:
        """uuid reads 16 bytes in GUID (little-endian) layout, as AD's objectGUID."""
        assert str(GUID) == to_uuid(GUID.bytes_le)

    def test_uuid_normalises_text(self) -> None:
        """uuid of UUID text gives its canonical lower-case form."""
        assert str(GUID) == to_uuid(str(GUID).upper())

    def test_base64(self) -> None:
        """base64 encodes bytes (and text as UTF-8)."""
        assert ("AP8=", "aGk=") == (to_base64(b"\x00\xff"), to_base64("hi"))


class TestChains:
    def test_default_is_first_value_as_text(self) -> None:
        """With no cardinality transform only the first value is used; bytes become text."""
        assert "a" == run([], (b"a", "b"))

    def test_all_keeps_every_value(self) -> None:
        """all keeps every value, transformed one by one."""
        assert ["a@x", "b@x"] == run(["all", "lower"], ("A@X", "b@x"))

    def test_join(self) -> None:
        """join:<sep> joins every value into one text."""
        assert "a, b" == run(["join:, "], ("a", b"b"))

    def test_transforms_compose_in_order(self) -> None:
        """bool then not: LDAP TRUE becomes False."""
        assert False is run(["bool", "not"], ("TRUE",), Kind.BOOL)

    def test_empty_text_is_no_value(self) -> None:
        """A value that strips to nothing counts as no value."""
        assert None is run(["strip"], ("   ",))

    def test_int_into_text_target_is_decimal_text(self) -> None:
        """An integer reaching a text target is written as decimal text."""
        assert "7" == run(["int"], ("007",))

    def test_failure_names_transform_and_value(self) -> None:
        """A failing transform raises TransformFailed with its name and the value."""
        with pytest.raises(TransformFailed) as caught:
            run(["int"], ("abc",))
        assert ("int", "abc") == (caught.value.transform, caught.value.value)

    def test_failure_reason_truncates_long_values(self) -> None:
        """The reason shows at most 40 characters of the value."""
        reason = TransformFailed("int", "x" * 500, "bad", "employeeNumber").reason()
        shown = repr("x" * 40)
        assert f"attribute 'employeeNumber': transform 'int' failed on {shown}...: bad" == reason

    def test_non_utf8_reason(self) -> None:
        """Undecodable bytes for a text target are reported as not UTF-8."""
        with pytest.raises(TransformFailed) as caught:
            run([], (b"\xff\xd8\xff",))
        assert "attribute 'jpegPhoto': value b'\\xff\\xd8\\xff' is not UTF-8 text" == (
            caught.value.at("jpegPhoto").reason()
        )

    def test_compile_reports_every_problem(self) -> None:
        """Unknown names, bad arguments and kind mismatches are all reported."""
        chain, problems = compile_chain(
            ["lowr", "bitmask_off:x", "join", "first"],
            start=Kind.RAW,
            target=Kind.TEXT,
            multi_ok=False,
        )
        assert (None, 4) == (chain, len(problems))
        assert "unknown transform 'lowr' (did you mean 'lower'?)" == problems[0]

    def test_kind_mismatch(self) -> None:
        """not needs a boolean; a text chain cannot feed a boolean target."""
        _, problems = compile_chain(["not"], start=Kind.RAW, target=Kind.BOOL, multi_ok=False)
        _, text_to_bool = compile_chain(["lower"], start=Kind.RAW, target=Kind.BOOL, multi_ok=False)
        hint = "(put 'bool', 'present' or 'bitmask_on:<n>' before it)"
        assert [f"'not' cannot take a raw LDAP value {hint}"] == problems
        assert 1 == len(text_to_bool)

    def test_all_needs_multi_valued_target(self) -> None:
        """'all' on a single-valued target is a compile error."""
        _, problems = compile_chain(["all"], start=Kind.RAW, target=Kind.TEXT, multi_ok=False)
        assert ["'all' needs a multi-valued target such as emails[work]"] == problems
