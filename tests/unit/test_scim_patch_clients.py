"""PATCH bodies as Microsoft Entra ID and Okta send them, applied end to end.

Sources of the request bodies (ids and values as printed there):

- Entra ID, "Tutorial: Develop and plan provisioning for a SCIM endpoint", request examples
  (learn.microsoft.com/entra/identity/app-provisioning/use-scim-to-provision-users-and-groups);
- Entra ID, "Known issues and resolutions with SCIM 2.0 protocol compliance" (the
  ``aadOptscim062020`` behaviour: path-less replace with dotted, filtered and URN keys;
  ``members[value eq ...]`` removal; booleans as "True"/"False" before the flag);
- Microsoft Q&A 1684621 "Entra ID patch sending Add instead of Replace" (Add on a
  value-filter path for the work email);
- Okta, "SCIM 2.0 guide" (developer.okta.com/docs/api/openapi/okta-scim/guides/scim-20):
  deactivate, group rename (echoing ``id``), add/remove/replace members.
"""

from __future__ import annotations

import copy
from typing import Any

from syncsvc.scim.patch import PATCH_OP, apply_patch, parse_patch
from syncsvc.scim.schema import CORE_GROUP, CORE_USER, ENTERPRISE_USER

USER: dict[str, Any] = {
    "schemas": [CORE_USER],
    "id": "2819c223-7f76-453a-919d-413861904646",
    "userName": "Test_User_dfeef4c5-5681-4387-b016-bdf221e82081",
    "active": True,
    "name": {"givenName": "Test", "familyName": "User"},
    "emails": [{"value": "Test_User_11bb6d20@testuser.com", "type": "work", "primary": True}],
}

GROUP: dict[str, Any] = {
    "schemas": [CORE_GROUP],
    "id": "abf4dd94-a4c0-4f67-89c9-76b03340cb9b",
    "displayName": "Group A",
    "members": [
        {"value": "89bb1940-b905-4575-9e7f-6f887cfb368e", "type": "User"},
        {"value": "f648f8d5ea4e4cd38e9c", "type": "User"},
    ],
}


def apply(resource: dict[str, Any], body: dict[str, Any], rt: str = "User") -> dict[str, Any]:
    """parse_patch then apply_patch, as the HTTP handler does."""
    return apply_patch(resource, parse_patch(body), rt)


class TestEntraUsers:
    def test_update_multi_valued_properties(self) -> None:
        """Replace emails[type eq "work"].value and name.familyName (tutorial example)."""
        body = {
            "schemas": [PATCH_OP],
            "Operations": [
                {
                    "op": "Replace",
                    "path": 'emails[type eq "work"].value',
                    "value": "updatedEmail@microsoft.com",
                },
                {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
            ],
        }

        actual = apply(USER, body)

        expected = copy.deepcopy(USER)
        expected["emails"][0]["value"] = "updatedEmail@microsoft.com"
        expected["name"]["familyName"] = "updatedFamilyName"
        assert expected == actual

    def test_update_single_valued_property(self) -> None:
        """Replace userName (tutorial example)."""
        body = {
            "schemas": [PATCH_OP],
            "Operations": [
                {
                    "op": "Replace",
                    "path": "userName",
                    "value": "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com",
                }
            ],
        }

        actual = apply(USER, body)

        assert "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com" == actual["userName"]

    def test_disable_user(self) -> None:
        """Replace active false, Operations listed before schemas (tutorial example)."""
        body = {
            "Operations": [{"op": "Replace", "path": "active", "value": False}],
            "schemas": [PATCH_OP],
        }

        assert apply(USER, body)["active"] is False

    def test_disable_user_boolean_as_string(self) -> None:
        """Without aadOptscim062020 Entra ID sends "False" as a string."""
        body = {
            "schemas": [PATCH_OP],
            "Operations": [{"op": "Replace", "path": "active", "value": "False"}],
        }

        assert apply(USER, body)["active"] is False

    def test_add_work_email_on_value_filter_path(self) -> None:
        """Add on emails[type eq "work"].value replaces the work address (Q&A 1684621)."""
        body = {
            "schemas": [PATCH_OP],
            "Operations": [
                {"op": "Replace", "path": "title", "value": "tester"},
                {"op": "Add", "path": 'emails[type eq "work"].value', "value": "joe@joe.com"},
            ],
        }

        actual = apply(USER, body)

        assert "tester" == actual["title"]
        assert [{"value": "joe@joe.com", "type": "work", "primary": True}] == actual["emails"]

    def test_add_work_email_creates_it(self) -> None:
        """The same Add on a user with no emails creates the work email."""
        body = {
            "schemas": [PATCH_OP],
            "Operations": [
                {"op": "Add", "path": 'emails[type eq "work"].value', "value": "joe@joe.com"}
            ],
        }
        user = {k: v for k, v in USER.items() if k != "emails"}

        assert [{"type": "work", "value": "joe@joe.com"}] == apply(user, body)["emails"]

    def test_pathless_replace_of_many_attributes(self) -> None:
        """aadOptscim062020: one replace whose value mixes plain, dotted, filtered, URN keys."""
        body = {
            "schemas": [PATCH_OP],
            "Operations": [
                {
                    "op": "replace",
                    "value": {
                        "displayName": "Pvlo",
                        'emails[type eq "work"].value': "TestBcwqnm@test.microsoft.com",
                        "name.givenName": "Gtfd",
                        "name.familyName": "Pkqf",
                        "externalId": "Eqpj",
                        f"{ENTERPRISE_USER}:employeeNumber": "Eqpj",
                    },
                }
            ],
        }

        actual = apply(USER, body)

        expected = {
            **copy.deepcopy(USER),
            "schemas": [CORE_USER, ENTERPRISE_USER],
            "displayName": "Pvlo",
            "emails": [{"value": "TestBcwqnm@test.microsoft.com", "type": "work", "primary": True}],
            "name": {"givenName": "Gtfd", "familyName": "Pkqf"},
            "externalId": "Eqpj",
            ENTERPRISE_USER: {"employeeNumber": "Eqpj"},
        }
        assert expected == actual

    def test_manager_as_bare_id(self) -> None:
        """Entra ID sends the manager's id as a plain string."""
        body = {
            "schemas": [PATCH_OP],
            "Operations": [
                {
                    "op": "Add",
                    "path": f"{ENTERPRISE_USER}:manager",
                    "value": "2819c223-7f76-453a-919d-413861904646",
                }
            ],
        }

        actual = apply(USER, body)

        assert {"value": "2819c223-7f76-453a-919d-413861904646"} == actual[ENTERPRISE_USER][
            "manager"
        ]

    def test_manager_cleared_with_empty_id(self) -> None:
        """A manager replaced by {"value": ""} is no manager (see validate.coerce_value)."""
        user = {**USER, ENTERPRISE_USER: {"manager": {"value": "m1"}, "department": "D"}}
        body = {
            "schemas": [PATCH_OP],
            "Operations": [
                {"op": "Replace", "path": f"{ENTERPRISE_USER}:manager", "value": {"value": ""}}
            ],
        }

        assert {"department": "D"} == apply(user, body)[ENTERPRISE_USER]


class TestEntraGroups:
    def test_rename(self) -> None:
        """Replace displayName (tutorial example)."""
        body = {
            "schemas": [PATCH_OP],
            "Operations": [
                {
                    "op": "Replace",
                    "path": "displayName",
                    "value": "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName",
                }
            ],
        }

        actual = apply(GROUP, body, "Group")

        assert "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName" == actual["displayName"]

    def test_add_members(self) -> None:
        """Add members with "$ref": null (tutorial example): the null is unassigned."""
        body = {
            "schemas": [PATCH_OP],
            "Operations": [
                {"op": "Add", "path": "members", "value": [{"$ref": None, "value": "new-id"}]}
            ],
        }

        actual = apply(GROUP, body, "Group")

        assert [*GROUP["members"], {"value": "new-id"}] == actual["members"]

    def test_add_existing_member_is_noop(self) -> None:
        """Adding a member already present changes nothing."""
        body = {
            "schemas": [PATCH_OP],
            "Operations": [
                {
                    "op": "Add",
                    "path": "members",
                    "value": [{"$ref": None, "value": "f648f8d5ea4e4cd38e9c"}],
                }
            ],
        }

        assert GROUP == apply(GROUP, body, "Group")

    def test_remove_members_listed_in_value(self) -> None:
        """Remove members with a value array (tutorial example) removes only that member."""
        body = {
            "schemas": [PATCH_OP],
            "Operations": [
                {
                    "op": "Remove",
                    "path": "members",
                    "value": [{"$ref": None, "value": "f648f8d5ea4e4cd38e9c"}],
                }
            ],
        }

        assert [GROUP["members"][0]] == apply(GROUP, body, "Group")["members"]

    def test_remove_member_by_filter(self) -> None:
        """aadOptscim062020: remove members[value eq "..."]."""
        body = {
            "schemas": [PATCH_OP],
            "Operations": [
                {"op": "remove", "path": 'members[value eq "89bb1940-b905-4575-9e7f-6f887cfb368e"]'}
            ],
        }

        assert [GROUP["members"][1]] == apply(GROUP, body, "Group")["members"]


class TestOkta:
    def test_deactivate_user(self) -> None:
        """{"op": "replace", "value": {"active": false}}."""
        body = {
            "schemas": [PATCH_OP],
            "Operations": [{"op": "replace", "value": {"active": False}}],
        }

        assert {**USER, "active": False} == apply(USER, body)

    def test_rename_group_echoing_id(self) -> None:
        """Okta sends the group's own id with the new displayName; the id is unchanged."""
        body = {
            "schemas": [PATCH_OP],
            "Operations": [
                {
                    "op": "replace",
                    "value": {
                        "id": "abf4dd94-a4c0-4f67-89c9-76b03340cb9b",
                        "displayName": "Test SCIMv2",
                    },
                }
            ],
        }

        assert {**GROUP, "displayName": "Test SCIMv2"} == apply(GROUP, body, "Group")

    def test_add_member_with_display(self) -> None:
        """members[].display is readOnly here: Okta's display is dropped, the member added."""
        body = {
            "schemas": [PATCH_OP],
            "Operations": [
                {
                    "op": "add",
                    "path": "members",
                    "value": [
                        {
                            "value": "23a35c27-23d3-4c03-b4c5-6443c09e7173",
                            "display": "test.user@okta.local",
                        }
                    ],
                }
            ],
        }

        actual = apply(GROUP, body, "Group")

        assert {"value": "23a35c27-23d3-4c03-b4c5-6443c09e7173"} == actual["members"][-1]

    def test_remove_member(self) -> None:
        """remove members[value eq "..."]."""
        body = {
            "schemas": [PATCH_OP],
            "Operations": [
                {"op": "remove", "path": 'members[value eq "89bb1940-b905-4575-9e7f-6f887cfb368e"]'}
            ],
        }

        assert [GROUP["members"][1]] == apply(GROUP, body, "Group")["members"]

    def test_replace_all_members(self) -> None:
        """replace members with a full list replaces the membership."""
        body = {
            "schemas": [PATCH_OP],
            "Operations": [
                {
                    "op": "replace",
                    "path": "members",
                    "value": [
                        {
                            "value": "23a35c27-23d3-4c03-b4c5-6443c09e7173",
                            "display": "test.user@okta.local",
                        }
                    ],
                }
            ],
        }

        actual = apply(GROUP, body, "Group")

        assert [{"value": "23a35c27-23d3-4c03-b4c5-6443c09e7173"}] == actual["members"]
