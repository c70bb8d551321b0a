"""The profile extension's completeness score, computed per user on every read."""

from __future__ import annotations

from syncsvc.enrich.completeness import FIELD_NAMES, completeness
from syncsvc.profiles import FIELDS

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


class TestCompleteness:
    def test_same_fields_as_the_quality_report(self) -> None:
        """Both scores count the same ten fields, in the same order."""
        assert list(FIELDS) == list(FIELD_NAMES)

    def test_bare_user_scores_zero(self) -> None:
        assert 0 == completeness({"userName": "x"}, None, manager_id=None, primary_email=None,
                                 photo_hash=None)

    def test_every_field_scores_hundred(self) -> None:
        resource = {"title": "Engineer", "phoneNumbers": [{"value": "+1"}],
                    ENTERPRISE: {"department": "R&D"}, "addresses": [{"locality": "Paris"}]}
        profile = {"headline": "h", "bio": "b", "skills": ["python"], "photo": {"url": "https://x/y"}}
        assert 100 == completeness(resource, profile, manager_id="m", primary_email="a@b.c",
                                   photo_hash=None)

    def test_blank_text_and_empty_lists_do_not_count(self) -> None:
        """Whitespace is not a title, an empty list is not a skill set."""
        resource = {"title": "   ", "phoneNumbers": []}
        profile = {"bio": "", "skills": [], "headline": "Builder"}
        assert 10 == completeness(resource, profile, manager_id=None, primary_email="",
                                  photo_hash=None)

    def test_a_stored_thumbnail_counts_as_a_photo(self) -> None:
        assert 10 == completeness({}, None, manager_id=None, primary_email=None, photo_hash="ab12")
