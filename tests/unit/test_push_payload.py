"""What a target receives for one of our resources (syncsvc.push.payload)."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from syncsvc.push._plan import levels
from syncsvc.push.payload import group_payload, user_payload
from syncsvc.settings import TargetSettings

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PROFILE = "urn:syncsvc:params:scim:schemas:extension:profile:2.0:User"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def user_row(**over: Any) -> SimpleNamespace:
    values: dict[str, Any] = {
        "id": "u-1", "external_id": "anchor-1", "manager_id": "u-boss", "profile": {"bio": "hi"},
        "created": NOW, "last_modified": NOW, "version": 3,
        "resource": {"userName": "ann", "displayName": "Ann", "title": "Boss", "active": True,
                     "name": {"givenName": "Ann", "familyName": "Lee"},
                     "emails": [{"value": "ann@example.com", "type": "work"}],
                     ENTERPRISE: {"department": "R&D"}},
    }
    values.update(over)
    return SimpleNamespace(**values)


def target(**over: Any) -> TargetSettings:
    return TargetSettings(name="t", url="http://127.0.0.1:1/scim/v2", **over)


class TestUserPayload:
    def test_our_id_is_the_external_id_and_nothing_of_ours_leaks(self) -> None:
        """No id, meta, $ref or profile; externalId is our id; the manager is the remote id."""
        payload = user_payload(user_row(), target(), {"u-boss": "remote-boss"})
        body = payload.body
        assert "u-1" == body["externalId"]
        assert not {"id", "meta", "groups", PROFILE} & set(body)
        assert {"value": "remote-boss"} == body[ENTERPRISE]["manager"]
        assert ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE] == body["schemas"]
        assert () == payload.deferred

    def test_a_manager_not_on_the_target_yet_is_deferred(self) -> None:
        payload = user_payload(user_row(), target(), {})
        assert "manager" not in payload.body[ENTERPRISE]
        assert ("u-boss",) == payload.deferred

    def test_allow_list_drop_rename_and_profile_extension(self) -> None:
        shaped = target(attributes=("name.givenName", "emails", f"{ENTERPRISE}:department"),
                        drop=("emails",), rename={f"{ENTERPRISE}:department": "title"},
                        profile_extension=True)
        body = user_payload(user_row(), shaped, {"u-boss": "r"}).body
        assert {"givenName": "Ann"} == body["name"]
        assert ("R&D", False, False) == (body["title"], "emails" in body, ENTERPRISE in body)
        assert {"userName", "displayName", "active", "externalId"} <= set(body)
        assert "title" in body and "Boss" != body["title"]
        assert PROFILE not in body  # not in the allow-list, even with the extension on

    def test_the_hash_follows_the_body(self) -> None:
        one = user_payload(user_row(), target(), {"u-boss": "r"})
        same = user_payload(user_row(), target(), {"u-boss": "r"})
        other = user_payload(user_row(manager_id=None), target(), {"u-boss": "r"})
        assert one.hash == same.hash != other.hash


class TestGroupPayload:
    def test_members_are_remote_ids_in_scope_only(self) -> None:
        """Out of scope: left out. In scope without a remote id: deferred."""
        row = SimpleNamespace(id="g-1", external_id=None, display_name="Team", created=NOW,
                              last_modified=NOW, version=1, resource={"displayName": "Team"})
        members = [SimpleNamespace(member_id=m, member_type=t)
                   for m, t in (("a", "User"), ("b", "User"), ("c", "User"), ("g-2", "Group"))]
        remote = {("User", "a"): "ra", ("User", "b"): "rb", ("Group", "g-2"): "rg"}
        scope = {"a": True, "b": False, "c": True, "g-2": True}
        payload = group_payload(row, members, target(), remote, scope)
        assert [{"value": "ra"}, {"value": "rg"}] == payload.body["members"]
        assert ("c",) == payload.deferred
        assert "g-1" == payload.body["externalId"]


class TestOrder:
    def test_what_a_resource_needs_comes_in_an_earlier_level(self) -> None:
        """Managers before their reports; an unknown manager is no constraint; cycles last."""
        got = levels(["a", "b", "c", "d", "e", "f"],
                     {"a": {"b"}, "b": {"c"}, "d": {"x"}, "e": {"f"}, "f": {"e"}})
        assert [["c", "d"], ["b"], ["a"], ["e", "f"]] == got
