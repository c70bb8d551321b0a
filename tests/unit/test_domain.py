"""DN normalization: the quick path for plain DNs gives what the general one gives."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncsvc.domain import _normalize_dn_parts, normalize_dn

# Characters that matter to DN syntax, blanks of several kinds, and a few letters.
_DN_TEXT = st.text(alphabet="aBz=,+\\ \t\n\u00a0\u2003#2Cé", max_size=24)


class TestNormalizeDn:
    @pytest.mark.parametrize(
        ("dn", "expected"),
        [
            ("uid=jo,ou=People,dc=Example,dc=com", "uid=jo,ou=people,dc=example,dc=com"),
            ("uid=jo,ou=people,dc=example,dc=com", "uid=jo,ou=people,dc=example,dc=com"),
            ("CN=Smith\\, John,OU=Users,DC=corp", "cn=smith\\, john,ou=users,dc=corp"),
            ("CN=John Smith,OU=Users,DC=corp", "cn=john smith,ou=users,dc=corp"),
            ("uid = jo , dc = ex", "uid=jo,dc=ex"),
            ("cn=b+uid=a,dc=ex", "cn=b+uid=a,dc=ex"),
            ("uid=a+cn=b,dc=ex", "cn=b+uid=a,dc=ex"),
            ("cn=\\ x,dc=ex", "cn=\\ x,dc=ex"),
            ("cn=a=b,dc=ex", "cn=a=b,dc=ex"),
            ("dc=ex,", "dc=ex"),
            ("", ""),
        ],
    )
    def test_known_forms(self, dn: str, expected: str) -> None:
        """Case, blanks around separators, escapes and multi-valued RDNs normalize as documented."""
        assert expected == normalize_dn(dn)

    def test_plain_lower_case_dn_is_returned_itself(self) -> None:
        """A DN already in normal form is not copied (a run holds many of them)."""
        dn = "".join(["uid=jo,", "dc=example,dc=com"])
        assert dn is normalize_dn(dn)

    @settings(max_examples=400, deadline=None)
    @given(prefix=_DN_TEXT, middle=_DN_TEXT)
    def test_any_dn_normalizes_as_the_general_path_does(self, prefix: str, middle: str) -> None:
        """Whatever the text, the quick path and the RDN-by-RDN path agree."""
        for dn in (prefix, f"uid={prefix},ou={middle},dc=ex", f"{prefix}={middle}"):
            assert _normalize_dn_parts(dn) == normalize_dn(dn)
