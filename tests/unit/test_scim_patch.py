"""RFC 7644 §3.5.2 PATCH: parse_patch, apply_patch (add / replace / remove) and changed_paths."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from syncsvc.errors import (
    InvalidFilter,
    InvalidPath,
    InvalidSyntax,
    InvalidValue,
    Mutability,
    NoTarget,
)
from syncsvc.scim.patch import PATCH_OP, PatchOp, apply_patch, changed_paths, parse_patch
from syncsvc.scim.schema import CORE_GROUP, CORE_USER, ENTERPRISE_USER, PROFILE_USER

USER: dict[str, Any] = {
    "schemas": [CORE_USER, ENTERPRISE_USER, PROFILE_USER],
    "id": "2819c223",
    "userName": "bjensen",
    "name": {"givenName": "Barbara", "familyName": "Jensen"},
    "title": "Engineer",
    "active": True,
    "emails": [
        {"value": "bjensen@example.com", "type": "work", "primary": True},
        {"value": "babs@home.example", "type": "home"},
    ],
    "groups": [{"value": "g1", "display": "Staff"}],
    "meta": {"resourceType": "User", "version": 'W/"3"'},
    ENTERPRISE_USER: {
        "department": "R&D",
        "manager": {"value": "m1", "displayName": "Boss"},
    },
    PROFILE_USER: {"headline": "Builds things", "skills": ["python"], "completeness": 40},
}

GROUP: dict[str, Any] = {
    "schemas": [CORE_GROUP],
    "id": "g1",
    "displayName": "Staff",
    "members": [
        {"value": "id1", "type": "User", "display": "Ann"},
        {"value": "id2", "type": "User", "display": "Bob"},
    ],
}


def patch(resource: dict[str, Any], *ops: dict[str, Any], rt: str = "User") -> dict[str, Any]:
    """Parse a PatchOp body with ``ops`` and apply it."""
    return apply_patch(resource, parse_patch({"schemas": [PATCH_OP], "Operations": list(ops)}), rt)


def with_(resource: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A deep copy of ``resource`` with top-level keys replaced (None deletes)."""
    out = copy.deepcopy(resource)
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


class TestParsePatch:
    def test_ops_in_any_case(self) -> None:
        """'Replace', 'ADD' and 'remove' all parse; op is lower-cased (Entra ID capitalises)."""
        body = {
            "schemas": [PATCH_OP],
            "Operations": [
                {"op": "Replace", "path": "title", "value": "x"},
                {"op": "ADD", "value": {"nickName": "B"}},
                {"op": "remove", "path": "title"},
            ],
        }

        expected = (
            PatchOp("replace", "title", "x"),
            PatchOp("add", None, {"nickName": "B"}),
            PatchOp("remove", "title", None),
        )
        assert expected == parse_patch(body)

    def test_member_names_are_case_insensitive(self) -> None:
        """'operations', 'Path' and 'Value' are read like their canonical spellings."""
        body = {"SCHEMAS": [PATCH_OP], "operations": [{"OP": "add", "Path": "x", "Value": 1}]}

        assert (PatchOp("add", "x", 1),) == parse_patch(body)

    def test_missing_schemas_is_invalid_syntax(self) -> None:
        """§3.5.2: the body MUST carry the PatchOp URN in schemas."""
        with pytest.raises(InvalidSyntax, match="PatchOp"):
            parse_patch({"Operations": [{"op": "add", "path": "title", "value": "x"}]})

    def test_wrong_schema_is_invalid_syntax(self) -> None:
        """A schemas list without the PatchOp URN is refused."""
        with pytest.raises(InvalidSyntax):
            parse_patch({"schemas": [CORE_USER], "Operations": [{"op": "remove", "path": "x"}]})

    def test_empty_operations_is_invalid_value(self) -> None:
        """§3.5.2 asks for one or more operations."""
        with pytest.raises(InvalidValue, match="Operations must not be empty"):
            parse_patch({"schemas": [PATCH_OP], "Operations": []})

    def test_missing_operations_is_invalid_syntax(self) -> None:
        """A body without an Operations array has the wrong structure."""
        with pytest.raises(InvalidSyntax, match="Operations"):
            parse_patch({"schemas": [PATCH_OP]})

    def test_unknown_op_is_invalid_syntax(self) -> None:
        """Only add, remove and replace exist."""
        with pytest.raises(InvalidSyntax, match="'move'"):
            parse_patch({"schemas": [PATCH_OP], "Operations": [{"op": "move", "path": "x"}]})

    def test_operation_must_be_an_object(self) -> None:
        """A string where an operation belongs is refused."""
        with pytest.raises(InvalidSyntax, match="operation 1"):
            parse_patch({"schemas": [PATCH_OP], "Operations": ["add"]})

    def test_add_without_value_is_invalid_value(self) -> None:
        """add MUST carry a value (§3.5.2.1)."""
        with pytest.raises(InvalidValue, match="needs a 'value'"):
            parse_patch({"schemas": [PATCH_OP], "Operations": [{"op": "add", "path": "title"}]})

    def test_add_with_null_value_is_invalid_value(self) -> None:
        """add of null adds nothing and is refused."""
        body = {"schemas": [PATCH_OP], "Operations": [{"op": "add", "path": "x", "value": None}]}
        with pytest.raises(InvalidValue):
            parse_patch(body)

    def test_empty_path_counts_as_none(self) -> None:
        """A blank path means the resource itself."""
        body = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": " ", "value": {}}]}

        assert (PatchOp("replace", None, {}),) == parse_patch(body)

    def test_body_must_be_an_object(self) -> None:
        """A JSON array body is refused."""
        with pytest.raises(InvalidSyntax):
            parse_patch([])  # type: ignore[arg-type]


class TestAddWithPath:
    def test_simple_attribute(self) -> None:
        """add to an unset single-valued attribute sets it."""
        actual = patch(USER, {"op": "add", "path": "nickName", "value": "Babs"})

        assert "Babs" == actual["nickName"]

    def test_single_valued_replaces(self) -> None:
        """§3.5.2.1: add to a single-valued attribute replaces its value."""
        actual = patch(USER, {"op": "add", "path": "title", "value": "Lead"})

        assert with_(USER, title="Lead") == actual

    def test_sub_attribute_of_unset_complex(self) -> None:
        """name.givenName on a user without name creates name."""
        actual = patch(
            with_(USER, name=None), {"op": "add", "path": "name.givenName", "value": "B"}
        )

        assert {"givenName": "B"} == actual["name"]

    def test_complex_merges_sub_attributes(self) -> None:
        """add of name keeps the sub-attributes it does not mention."""
        actual = patch(USER, {"op": "add", "path": "name", "value": {"middleName": "J"}})

        assert {"givenName": "Barbara", "familyName": "Jensen", "middleName": "J"} == actual["name"]

    def test_multi_valued_appends(self) -> None:
        """§3.5.2.1: add to a multi-valued attribute adds a value."""
        new = {"value": "b@other.example", "type": "other"}

        actual = patch(USER, {"op": "add", "path": "emails", "value": [new]})

        assert [*USER["emails"], new] == actual["emails"]

    def test_equal_value_is_not_added_twice(self) -> None:
        """An email equal to an existing one (value is not caseExact) adds nothing."""
        same = {"value": "BJensen@Example.com", "type": "work"}

        actual = patch(USER, {"op": "add", "path": "emails", "value": [same]})

        assert USER == actual

    def test_single_object_for_multi_valued(self) -> None:
        """One object where an array is expected is taken as a one-element array."""
        new = {"value": "b@other.example", "type": "other"}

        actual = patch(USER, {"op": "add", "path": "emails", "value": new})

        assert [*USER["emails"], new] == actual["emails"]

    def test_simple_multi_valued_no_duplicates(self) -> None:
        """Profile skills: a new skill is appended, an existing one is not repeated."""
        path = f"{PROFILE_USER}:skills"

        actual = patch(USER, {"op": "add", "path": path, "value": ["Python", "go"]})

        assert ["python", "go"] == actual[PROFILE_USER]["skills"]

    def test_filtered_sub_attribute_match(self) -> None:
        """emails[type eq "work"].value sets the value of the work email."""
        actual = patch(
            USER, {"op": "add", "path": 'emails[type eq "work"].value', "value": "new@example.com"}
        )

        assert "new@example.com" == actual["emails"][0]["value"]
        assert USER["emails"][1] == actual["emails"][1]

    def test_filtered_sub_attribute_no_match_creates(self) -> None:
        """A user without a work email gets {"type": "work", "value": ...} (Entra ID)."""
        user = with_(USER, emails=[{"value": "babs@home.example", "type": "home"}])

        actual = patch(
            user, {"op": "add", "path": 'emails[type eq "work"].value', "value": "w@example.com"}
        )

        expected = [
            {"value": "babs@home.example", "type": "home"},
            {"type": "work", "value": "w@example.com"},
        ]
        assert expected == actual["emails"]

    def test_filtered_element_no_match_creates_from_object(self) -> None:
        """emails[type eq "other"] with an object creates that element, filter terms included."""
        actual = patch(
            USER,
            {"op": "add", "path": 'emails[type eq "other"]', "value": {"value": "o@x.example"}},
        )

        assert {"type": "other", "value": "o@x.example"} == actual["emails"][-1]

    def test_filter_that_describes_no_element_is_no_target(self) -> None:
        """An 'or' filter matching nothing cannot say what to create."""
        op = {"op": "add", "path": 'emails[type eq "a" or type eq "b"].value', "value": "x@y.z"}

        with pytest.raises(NoTarget):
            patch(USER, op)

    def test_urn_qualified_attribute(self) -> None:
        """The enterprise department by its URN-qualified name."""
        actual = patch(USER, {"op": "add", "path": f"{ENTERPRISE_USER}:department", "value": "Ops"})

        assert "Ops" == actual[ENTERPRISE_USER]["department"]

    def test_manager_bare_id(self) -> None:
        """A manager given as a bare id becomes {"value": id}."""
        user = with_(USER, **{ENTERPRISE_USER: {"department": "R&D"}})

        actual = patch(user, {"op": "add", "path": f"{ENTERPRISE_USER}:manager", "value": "m2"})

        assert {"value": "m2"} == actual[ENTERPRISE_USER]["manager"]

    def test_manager_value_sub_attribute(self) -> None:
        """manager.value changes the id and keeps the other sub-attributes."""
        actual = patch(
            USER, {"op": "add", "path": f"{ENTERPRISE_USER}:manager.value", "value": "m2"}
        )

        assert {"value": "m2", "displayName": "Boss"} == actual[ENTERPRISE_USER]["manager"]

    def test_extension_created_and_listed_in_schemas(self) -> None:
        """Adding the first enterprise attribute creates the object and lists its URN."""
        user = {"schemas": [CORE_USER], "id": "u", "userName": "u"}

        actual = patch(user, {"op": "add", "path": f"{ENTERPRISE_USER}:department", "value": "X"})

        expected = {
            "schemas": [CORE_USER, ENTERPRISE_USER],
            "id": "u",
            "userName": "u",
            ENTERPRISE_USER: {"department": "X"},
        }
        assert expected == actual

    def test_extension_urn_as_path(self) -> None:
        """A path that is an extension URN takes an object of that extension's attributes."""
        actual = patch(USER, {"op": "add", "path": ENTERPRISE_USER, "value": {"division": "EU"}})

        assert "EU" == actual[ENTERPRISE_USER]["division"]
        assert "R&D" == actual[ENTERPRISE_USER]["department"]

    def test_unknown_attribute_is_invalid_path(self) -> None:
        """A path naming no attribute is refused."""
        with pytest.raises(InvalidPath, match="shoeSize"):
            patch(USER, {"op": "add", "path": "shoeSize", "value": 42})

    def test_unknown_sub_attribute_is_invalid_path(self) -> None:
        """name.nickname does not exist."""
        with pytest.raises(InvalidPath):
            patch(USER, {"op": "add", "path": "name.nickname", "value": "x"})

    def test_filter_on_single_valued_is_invalid_path(self) -> None:
        """Value filters select elements of multi-valued attributes only."""
        with pytest.raises(InvalidPath, match="multi-valued"):
            patch(USER, {"op": "add", "path": 'name[givenName eq "B"]', "value": {}})

    def test_bad_filter_is_invalid_filter(self) -> None:
        """A filter that does not parse is invalidFilter (§3.12)."""
        with pytest.raises(InvalidFilter):
            patch(USER, {"op": "add", "path": "emails[type eq].value", "value": "x"})

    def test_unknown_filter_attribute_is_invalid_filter(self) -> None:
        """Names inside [...] must be sub-attributes of the filtered attribute."""
        with pytest.raises(InvalidFilter, match="colour"):
            patch(USER, {"op": "add", "path": 'emails[colour eq "red"].value', "value": "x"})

    def test_unbalanced_bracket_is_invalid_path(self) -> None:
        """A '[' without its ']' is a malformed path."""
        with pytest.raises(InvalidPath):
            patch(USER, {"op": "add", "path": 'emails[type eq "work"', "value": "x"})

    def test_wrong_type_is_invalid_value(self) -> None:
        """active must be a boolean."""
        with pytest.raises(InvalidValue, match="active"):
            patch(USER, {"op": "add", "path": "active", "value": "sometimes"})


class TestPathless:
    def test_okta_deactivate(self) -> None:
        """Okta's {"op": "replace", "value": {"active": false}}."""
        actual = patch(USER, {"op": "replace", "value": {"active": False}})

        assert with_(USER, active=False) == actual

    def test_dotted_urn_and_extension_object_keys(self) -> None:
        """Keys may be plain, dotted, URN-qualified, or an extension URN with an object."""
        value = {
            "title": "Lead",
            "name.givenName": "Babs",
            f"{ENTERPRISE_USER}:department": "Ops",
            PROFILE_USER: {"headline": "Leads things"},
        }

        actual = patch(USER, {"op": "replace", "value": value})

        assert "Lead" == actual["title"]
        assert {"givenName": "Babs", "familyName": "Jensen"} == actual["name"]
        assert "Ops" == actual[ENTERPRISE_USER]["department"]
        assert "Leads things" == actual[PROFILE_USER]["headline"]

    def test_filter_key(self) -> None:
        """A value-filter path as a key (Entra ID with aadOptscim062020)."""
        value = {'emails[type eq "work"].value': "new@example.com"}

        actual = patch(USER, {"op": "replace", "value": value})

        assert "new@example.com" == actual["emails"][0]["value"]

    def test_schemas_key_is_ignored(self) -> None:
        """A schemas key inside the value is a message marker, not an attribute."""
        actual = patch(USER, {"op": "replace", "value": {"schemas": [CORE_USER], "title": "X"}})

        assert with_(USER, title="X") == actual

    def test_unchanged_read_only_is_accepted(self) -> None:
        """Okta echoes id in a group rename; an unchanged readOnly value is a no-op (§3.5.2.1)."""
        actual = patch(USER, {"op": "replace", "value": {"id": "2819c223", "title": "X"}})

        assert with_(USER, title="X") == actual

    def test_value_must_be_an_object(self) -> None:
        """Without a path the value is an object of attributes."""
        with pytest.raises(InvalidValue, match="object"):
            patch(USER, {"op": "replace", "value": "Lead"})


class TestReplace:
    def test_simple_attribute(self) -> None:
        """replace sets a single-valued attribute."""
        assert with_(USER, title="Lead") == patch(
            USER, {"op": "replace", "path": "title", "value": "Lead"}
        )

    def test_unset_attribute_is_added(self) -> None:
        """§3.5.2.3: replace of an attribute that does not exist acts as add."""
        actual = patch(USER, {"op": "replace", "path": "nickName", "value": "Babs"})

        assert "Babs" == actual["nickName"]

    def test_multi_valued_is_replaced_whole(self) -> None:
        """replace of emails without a filter replaces all values."""
        new = [{"value": "only@example.com", "type": "work", "primary": True}]

        actual = patch(USER, {"op": "replace", "path": "emails", "value": new})

        assert new == actual["emails"]

    def test_complex_leaves_other_sub_attributes(self) -> None:
        """§3.5.2.3: sub-attributes not in the value are left unchanged."""
        actual = patch(USER, {"op": "replace", "path": "name", "value": {"familyName": "Smith"}})

        assert {"givenName": "Barbara", "familyName": "Smith"} == actual["name"]

    def test_filtered_match(self) -> None:
        """replace emails[type eq "home"].value changes only the home email."""
        actual = patch(
            USER, {"op": "replace", "path": 'emails[type eq "home"].value', "value": "h@x.example"}
        )

        assert [USER["emails"][0], {"value": "h@x.example", "type": "home"}] == actual["emails"]

    def test_filtered_element_merges(self) -> None:
        """replace emails[type eq "home"] with an object sets the given sub-attributes."""
        actual = patch(
            USER, {"op": "replace", "path": 'emails[type eq "home"]', "value": {"display": "Home"}}
        )

        assert {"value": "babs@home.example", "type": "home", "display": "Home"} == actual[
            "emails"
        ][1]

    def test_filtered_no_match_creates(self) -> None:
        """Entra ID replaces emails[type eq "work"].value on users without one: it is created."""
        user = with_(USER, emails=None)

        actual = patch(
            user, {"op": "replace", "path": 'emails[type eq "work"].value', "value": "w@x.example"}
        )

        assert [{"type": "work", "value": "w@x.example"}] == actual["emails"]

    def test_null_unassigns(self) -> None:
        """replace with null removes the attribute (RFC 7643 §2.5)."""
        actual = patch(USER, {"op": "replace", "path": "title", "value": None})

        assert with_(USER, title=None) == actual

    def test_boolean_string_coerced(self) -> None:
        """Entra ID's "False" becomes false."""
        actual = patch(USER, {"op": "replace", "path": "active", "value": "False"})

        assert actual["active"] is False

    def test_empty_required_is_invalid_value(self) -> None:
        """userName cannot be replaced by a blank string."""
        with pytest.raises(InvalidValue, match="userName"):
            patch(USER, {"op": "replace", "path": "userName", "value": " "})

    def test_names_written_in_canonical_case(self) -> None:
        """TITLE, Name.GivenName and an upper-case URN are stored under canonical names."""
        user = with_(USER, title=None, Title="Old")
        ops = [
            {"op": "replace", "path": "TITLE", "value": "Lead"},
            {"op": "replace", "path": "Name.GIVENNAME", "value": "Babs"},
            {"op": "replace", "path": f"{ENTERPRISE_USER.upper()}:DEPARTMENT", "value": "Ops"},
        ]

        actual = patch(user, *ops)

        assert "Title" not in actual
        assert "Lead" == actual["title"]
        assert "Babs" == actual["name"]["givenName"]
        assert "Ops" == actual[ENTERPRISE_USER]["department"]

    def test_existing_extension_key_is_canonicalised(self) -> None:
        """An extension stored under a lower-case URN is written back under the canonical one."""
        user = with_(USER, **{ENTERPRISE_USER: None, ENTERPRISE_USER.lower(): {"division": "A"}})

        actual = patch(user, {"op": "replace", "path": f"{ENTERPRISE_USER}:division", "value": "B"})

        assert {"division": "B"} == actual[ENTERPRISE_USER]
        assert ENTERPRISE_USER.lower() not in actual


class TestPrimary:
    def test_filtered_primary_demotes_others(self) -> None:
        """RFC 7643 §2.4: setting the home email primary clears the work email's flag."""
        actual = patch(
            USER, {"op": "replace", "path": 'emails[type eq "home"].primary', "value": True}
        )

        assert [False, True] == [e.get("primary") for e in actual["emails"]]

    def test_added_primary_demotes_others(self) -> None:
        """An added primary email takes the flag from the old one."""
        new = {"value": "n@x.example", "type": "other", "primary": "True"}

        actual = patch(USER, {"op": "add", "path": "emails", "value": [new]})

        assert [False, None, True] == [e.get("primary") for e in actual["emails"]]

    def test_two_primaries_in_one_value_is_invalid(self) -> None:
        """A value that marks two emails primary is refused."""
        new = [{"value": "a@x.example", "primary": True}, {"value": "b@x.example", "primary": True}]

        with pytest.raises(InvalidValue, match="primary"):
            patch(USER, {"op": "add", "path": "emails", "value": new})


class TestMutability:
    @pytest.mark.parametrize(
        "path",
        [
            "id",
            "meta",
            "meta.version",
            "groups",
            f"{ENTERPRISE_USER}:manager.displayName",
            f"{PROFILE_USER}:completeness",
        ],
    )
    def test_read_only_target(self, path: str) -> None:
        """Changing a readOnly attribute is a mutability error (RFC 7643 §2.2)."""
        with pytest.raises(Mutability, match="readOnly"):
            patch(USER, {"op": "replace", "path": path, "value": "x"})

    def test_read_only_filter_target(self) -> None:
        """groups[value eq "g1"] cannot be written either."""
        with pytest.raises(Mutability):
            patch(USER, {"op": "add", "path": 'groups[value eq "g1"].display', "value": "x"})

    def test_read_only_sub_attribute_in_value_is_dropped(self) -> None:
        """manager.displayName inside a value object is ignored (RFC 7644 §3.5.1)."""
        value = {"value": "m2", "displayName": "Someone"}

        actual = patch(
            USER, {"op": "replace", "path": f"{ENTERPRISE_USER}:manager", "value": value}
        )

        assert {"value": "m2", "displayName": "Boss"} == actual[ENTERPRISE_USER]["manager"]

    def test_immutable_changed_is_refused(self) -> None:
        """members.value is immutable: an existing member's id cannot change."""
        op = {"op": "replace", "path": 'members[value eq "id1"].value', "value": "id9"}

        with pytest.raises(Mutability, match="immutable"):
            patch(GROUP, op, rt="Group")

    def test_immutable_set_when_unset(self) -> None:
        """A new member's immutable value and type may be set (they had no value)."""
        op = {"op": "add", "path": "members", "value": [{"value": "id3", "type": "Group"}]}

        actual = patch(GROUP, op, rt="Group")

        assert {"value": "id3", "type": "Group"} == actual["members"][-1]

    def test_immutable_same_value_is_fine(self) -> None:
        """Writing an immutable sub-attribute with its current value changes nothing."""
        op = {"op": "replace", "path": 'members[value eq "id1"]', "value": {"type": "User"}}

        assert GROUP == patch(GROUP, op, rt="Group")


class TestRemove:
    def test_without_path_is_no_target(self) -> None:
        """§3.5.2.2: remove without a path fails with noTarget."""
        with pytest.raises(NoTarget):
            patch(USER, {"op": "remove"})

    def test_simple_attribute(self) -> None:
        """remove title unassigns it."""
        assert with_(USER, title=None) == patch(USER, {"op": "remove", "path": "title"})

    def test_sub_attribute(self) -> None:
        """remove name.givenName keeps familyName."""
        actual = patch(USER, {"op": "remove", "path": "name.givenName"})

        assert {"familyName": "Jensen"} == actual["name"]

    def test_last_sub_attribute_unassigns_parent(self) -> None:
        """A complex attribute left without sub-attributes is unassigned."""
        ops = [
            {"op": "remove", "path": "name.givenName"},
            {"op": "remove", "path": "name.familyName"},
        ]

        assert with_(USER, name=None) == patch(USER, *ops)

    def test_multi_valued_all(self) -> None:
        """remove emails removes every value."""
        assert with_(USER, emails=None) == patch(USER, {"op": "remove", "path": "emails"})

    def test_filtered_element(self) -> None:
        """remove emails[type eq "work"] removes just the work email."""
        actual = patch(USER, {"op": "remove", "path": 'emails[type eq "work"]'})

        assert [USER["emails"][1]] == actual["emails"]

    def test_filtered_sub_attribute(self) -> None:
        """remove emails[type eq "work"].primary removes only that flag."""
        actual = patch(USER, {"op": "remove", "path": 'emails[type eq "work"].primary'})

        assert {"value": "bjensen@example.com", "type": "work"} == actual["emails"][0]

    def test_filtered_no_match_is_noop(self) -> None:
        """A filter matching nothing removes nothing and is not an error."""
        assert USER == patch(USER, {"op": "remove", "path": 'emails[type eq "other"]'})

    def test_member_by_filter(self) -> None:
        """remove members[value eq "id1"] removes that member."""
        actual = patch(GROUP, {"op": "remove", "path": 'members[value eq "id1"]'}, rt="Group")

        assert [GROUP["members"][1]] == actual["members"]

    def test_members_listed_in_value(self) -> None:
        """remove members with a value array removes those members only."""
        op = {"op": "remove", "path": "members", "value": [{"value": "id2"}]}

        assert [GROUP["members"][0]] == patch(GROUP, op, rt="Group")["members"]

    def test_members_listed_value_matching_nothing(self) -> None:
        """Listing an unknown member removes nothing."""
        op = {"op": "remove", "path": "members", "value": [{"value": "nobody"}]}

        assert GROUP == patch(GROUP, op, rt="Group")

    def test_required_attribute_is_mutability(self) -> None:
        """§3.5.2.2: removing required userName is a mutability error."""
        with pytest.raises(Mutability, match="userName"):
            patch(USER, {"op": "remove", "path": "userName"})

    def test_read_only_attribute_is_mutability(self) -> None:
        """§3.5.2.2: removing readOnly id is a mutability error."""
        with pytest.raises(Mutability):
            patch(USER, {"op": "remove", "path": "id"})

    def test_immutable_with_value_is_mutability(self) -> None:
        """An existing member's type (immutable) cannot be removed."""
        with pytest.raises(Mutability):
            patch(GROUP, {"op": "remove", "path": 'members[value eq "id1"].type'}, rt="Group")

    def test_manager(self) -> None:
        """remove of the enterprise manager unassigns it."""
        actual = patch(USER, {"op": "remove", "path": f"{ENTERPRISE_USER}:manager"})

        assert {"department": "R&D"} == actual[ENTERPRISE_USER]

    def test_emptied_extension_is_dropped(self) -> None:
        """With its last attribute gone the extension object and its schemas URN go too."""
        ops = [
            {"op": "remove", "path": f"{ENTERPRISE_USER}:manager"},
            {"op": "remove", "path": f"{ENTERPRISE_USER}:department"},
        ]

        actual = patch(USER, *ops)

        assert ENTERPRISE_USER not in actual
        assert [CORE_USER, PROFILE_USER] == actual["schemas"]

    def test_whole_extension(self) -> None:
        """A path that is an extension URN removes its writable attributes."""
        actual = patch(USER, {"op": "remove", "path": ENTERPRISE_USER})

        assert ENTERPRISE_USER not in actual

    def test_whole_extension_keeps_read_only(self) -> None:
        """Server-computed profile completeness survives removing the profile extension."""
        actual = patch(USER, {"op": "remove", "path": PROFILE_USER})

        assert {"completeness": 40} == actual[PROFILE_USER]

    def test_absent_extension_attribute_is_noop(self) -> None:
        """Removing from an extension the resource does not have changes nothing."""
        user = with_(USER, schemas=[CORE_USER, PROFILE_USER], **{ENTERPRISE_USER: None})

        assert user == patch(user, {"op": "remove", "path": f"{ENTERPRISE_USER}:department"})

    def test_schemas_follow_extensions_present(self) -> None:
        """schemas is made to list exactly the extensions present after the patch."""
        user = with_(USER, **{ENTERPRISE_USER: None})

        actual = patch(user, {"op": "remove", "path": "title"})

        assert [CORE_USER, PROFILE_USER] == actual["schemas"]


class TestAtomicity:
    def test_input_not_mutated(self) -> None:
        """apply_patch returns a new dict and leaves its input alone."""
        before = copy.deepcopy(USER)

        patch(USER, {"op": "add", "path": "emails", "value": [{"value": "x@y.z"}]})

        assert before == USER

    def test_failure_applies_nothing(self) -> None:
        """A failing second operation raises; the input is untouched."""
        before = copy.deepcopy(USER)
        ops = [{"op": "replace", "path": "title", "value": "X"}, {"op": "remove", "path": "id"}]

        with pytest.raises(Mutability, match="operation 2"):
            patch(USER, *ops)
        assert before == USER

    def test_operations_apply_in_order(self) -> None:
        """A later operation sees the result of an earlier one."""
        ops = [
            {"op": "add", "path": "nickName", "value": "A"},
            {"op": "replace", "path": "nickName", "value": "B"},
        ]

        assert "B" == patch(USER, *ops)["nickName"]


class TestChangedPaths:
    def test_top_level_attributes(self) -> None:
        """Changed attributes are reported by their top-level name."""
        after = patch(
            USER,
            {"op": "replace", "path": "name.givenName", "value": "B"},
            {"op": "replace", "path": "active", "value": False},
        )

        assert {"name", "active"} == changed_paths(USER, after)

    def test_extension_urn(self) -> None:
        """A change inside an extension is reported as its URN."""
        after = patch(USER, {"op": "add", "path": f"{PROFILE_USER}:bio", "value": "Hi"})

        assert {PROFILE_USER} == changed_paths(USER, after)

    def test_added_extension_does_not_report_schemas(self) -> None:
        """A newly present extension reports its URN, not schemas."""
        user = with_(USER, schemas=[CORE_USER, ENTERPRISE_USER], **{PROFILE_USER: None})

        after = patch(user, {"op": "add", "path": f"{PROFILE_USER}:bio", "value": "Hi"})

        assert {PROFILE_USER} == changed_paths(user, after)

    def test_unassigned_forms_are_equal(self) -> None:
        """null, [] and {} equal an absent attribute (RFC 7643 §2.5)."""
        before = {"userName": "a", "emails": [], "name": {"givenName": None}}

        assert set() == changed_paths(before, {"userName": "a", "title": None})

    def test_name_case_ignored(self) -> None:
        """Keys differing only in case are the same attribute."""
        assert set() == changed_paths({"Title": "x"}, {"title": "x"})

    def test_removed_attribute(self) -> None:
        """An attribute present only before is reported."""
        assert {"title"} == changed_paths({"title": "x", "id": "1"}, {"id": "1"})

    def test_value_case_matters(self) -> None:
        """A change of case in a value is a change."""
        assert {"title"} == changed_paths({"title": "x"}, {"title": "X"})

    def test_equal_python_values_of_another_json_type_are_a_change(self) -> None:
        """1 == True == 1.0 in Python, but not in JSON: a change of type is a change."""
        assert {"active", "weight"} == changed_paths({"active": True, "weight": 1},
                                                     {"active": 1, "weight": 1.0})

    def test_nested_keys_in_another_case_are_no_change(self) -> None:
        """Sub-attribute names are case-insensitive too, also inside multi-valued ones."""
        before = {"name": {"givenName": "A"}, "emails": [{"value": "a@x", "type": "work"}]}
        after = {"name": {"givenname": "A"}, "emails": [{"Value": "a@x", "TYPE": "work"}]}

        assert set() == changed_paths(before, after)
