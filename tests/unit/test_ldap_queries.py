"""Queries, filter escaping and flavour presets of the LDAP source."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from syncsvc.ldap import (
    FLAVORS,
    SearchQuery,
    changed_since,
    escape_filter_value,
    flavor_for,
    generalized_time,
    group_query,
    user_query,
)
from syncsvc.ldap.queries import parenthesize
from syncsvc.settings import LdapSettings


class TestEscapeFilterValue:
    def test_specials_are_hex_escaped(self) -> None:
        """RFC 4515 specials * ( ) \\ and NUL become \\2a \\28 \\29 \\5c \\00."""
        assert r"a\2ab\28c\29d\5ce\00" == escape_filter_value("a*b(c)d\\e\x00")

    def test_plain_and_non_ascii_text_is_kept(self) -> None:
        """Ordinary characters, including non-ASCII, pass through unchanged."""
        assert "José Núñez" == escape_filter_value("José Núñez")

    def test_bytes_are_escaped_byte_by_byte(self) -> None:
        """A binary value (an objectGUID) is escaped as \\xx for every byte."""
        assert r"\00\ff\10" == escape_filter_value(b"\x00\xff\x10")


class TestParenthesize:
    def test_bare_filter_is_wrapped(self) -> None:
        """A filter written without outer parentheses gets them."""
        assert "(objectClass=person)" == parenthesize(" objectClass=person ")

    def test_wrapped_filter_is_kept(self) -> None:
        """An already parenthesized filter is unchanged."""
        assert "(&(a=1)(b=2))" == parenthesize("(&(a=1)(b=2))")

    def test_empty_filter_matches_everything(self) -> None:
        """An empty filter means every entry."""
        assert "(objectClass=*)" == parenthesize("")


class TestFlavors:
    def test_openldap_preset(self) -> None:
        """OpenLDAP anchors on entryUUID and tracks modifyTimestamp."""
        flavor = flavor_for(LdapSettings(flavor="openldap"))
        assert ("entryUUID", "modifyTimestamp") == (flavor.anchor_attribute, flavor.change_attribute)
        assert "(objectClass=inetOrgPerson)" == flavor.user_filter

    def test_ad_preset(self) -> None:
        """AD anchors on objectGUID, tracks uSNChanged and treats objectGUID as binary."""
        flavor = flavor_for(LdapSettings(flavor="ad"))
        assert ("objectGUID", "uSNChanged") == (flavor.anchor_attribute, flavor.change_attribute)
        assert "objectguid" in flavor.binary_attributes
        assert "(objectClass=group)" == flavor.group_filter

    def test_every_settings_flavor_has_a_preset(self) -> None:
        """Each flavour name the settings accept has a preset."""
        assert {"openldap", "389ds", "freeipa", "ad"} == set(FLAVORS)

    def test_settings_override_preset(self) -> None:
        """user_filter, group_filter and anchor_attribute from the settings win over the preset."""
        settings = LdapSettings(
            flavor="389ds",
            user_filter="(objectClass=person)",
            group_filter="(objectClass=groupOfNames)",
            anchor_attribute="nsUniqueId",
        )
        flavor = flavor_for(settings)
        assert ("(objectClass=person)", "(objectClass=groupOfNames)", "nsUniqueId") == (
            flavor.user_filter,
            flavor.group_filter,
            flavor.anchor_attribute,
        )
        assert "389ds" == flavor.name


class TestUserAndGroupQueries:
    def test_user_query_adds_anchor_and_change_attribute(self) -> None:
        """The users query asks for the anchor and change attribute next to the wanted ones."""
        settings = LdapSettings(base_dn="dc=ex", user_base="ou=people,dc=ex")
        query = user_query(settings, flavor_for(settings), ["uid", "mail"])
        assert SearchQuery(
            "ou=people,dc=ex", "(objectClass=inetOrgPerson)", ("uid", "mail", "entryUUID", "modifyTimestamp")
        ) == query

    def test_no_attributes_means_all_user_attributes(self) -> None:
        """An empty attribute list asks for * plus the operational anchor and change attribute."""
        settings = LdapSettings(base_dn="dc=ex", flavor="ad")
        query = group_query(settings, flavor_for(settings))
        assert ("dc=ex", ("*", "objectGUID", "uSNChanged")) == (query.base, query.attributes)

    def test_requested_anchor_is_not_duplicated(self) -> None:
        """An attribute already requested (in any case) is not added twice."""
        settings = LdapSettings(base_dn="dc=ex")
        query = user_query(settings, flavor_for(settings), ["*", "ENTRYUUID", "cn", "CN"])
        assert ("*", "ENTRYUUID", "cn", "modifyTimestamp") == query.attributes

    def test_group_base_defaults_to_base_dn_and_filter_is_wrapped(self) -> None:
        """Without group_base the base DN is used; a bare configured filter gets parentheses."""
        settings = LdapSettings(base_dn="dc=ex", group_filter="objectClass=groupOfNames")
        query = group_query(settings, flavor_for(settings), ["cn"])
        assert ("dc=ex", "(objectClass=groupOfNames)") == (query.base, query.filter)


class TestChangedSince:
    QUERY = SearchQuery("dc=ex", "(objectClass=inetOrgPerson)", ("*",))

    def test_modify_timestamp_condition(self) -> None:
        """On OpenLDAP the query gains (modifyTimestamp>=mark)."""
        query = changed_since(self.QUERY, FLAVORS["openldap"], "20240131120000Z")
        assert "(&(objectClass=inetOrgPerson)(modifyTimestamp>=20240131120000Z))" == query.filter
        assert (self.QUERY.base, self.QUERY.attributes) == (query.base, query.attributes)

    def test_usn_condition(self) -> None:
        """On AD the query gains (uSNChanged>=n)."""
        query = changed_since(self.QUERY, FLAVORS["ad"], "123456")
        assert "(&(objectClass=inetOrgPerson)(uSNChanged>=123456))" == query.filter

    def test_bare_original_filter_is_wrapped(self) -> None:
        """A bare original filter is parenthesized inside the AND."""
        query = changed_since(SearchQuery("dc=ex", "uid=*", ()), FLAVORS["openldap"], "20240101000000Z")
        assert "(&(uid=*)(modifyTimestamp>=20240101000000Z))" == query.filter

    @pytest.mark.parametrize("mark", ["x)(uid=*", "2024-01-01", ""])
    def test_bad_timestamp_mark_is_refused(self, mark: str) -> None:
        """A mark that is not a generalizedTime cannot inject filter text."""
        with pytest.raises(ValueError, match="generalizedTime"):
            changed_since(self.QUERY, FLAVORS["openldap"], mark)

    def test_bad_usn_mark_is_refused(self) -> None:
        """A non-numeric USN mark is refused."""
        with pytest.raises(ValueError, match="integer"):
            changed_since(self.QUERY, FLAVORS["ad"], "12*")

    def test_fractional_and_offset_times_are_accepted(self) -> None:
        """generalizedTime with fractions and an offset are valid marks."""
        for mark in ("20240101120000.5Z", "202401011200+0100"):
            assert mark in changed_since(self.QUERY, FLAVORS["openldap"], mark).filter


class TestGeneralizedTime:
    def test_aware_datetime_is_converted_to_utc(self) -> None:
        """An aware datetime renders in UTC with a Z suffix."""
        moment = datetime(2024, 1, 31, 13, 0, 5, tzinfo=timezone(timedelta(hours=1)))
        assert "20240131120005Z" == generalized_time(moment)

    def test_naive_datetime_is_taken_as_utc(self) -> None:
        """A naive datetime is read as UTC."""
        assert "20240131120005Z" == generalized_time(datetime(2024, 1, 31, 12, 0, 5))

    def test_round_trip_with_changed_since(self) -> None:
        """A generated time is a valid changed_since mark."""
        mark = generalized_time(datetime.now(UTC))
        assert mark in changed_since(TestChangedSince.QUERY, FLAVORS["openldap"], mark).filter
