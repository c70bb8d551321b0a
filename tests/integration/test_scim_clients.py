"""Real provisioning clients over real HTTP: the exact requests Entra ID and Okta send.

Sources of the request bodies (each test names the one it replays):

- [ENTRA] Microsoft Learn, "Tutorial: Develop and plan provisioning for a SCIM endpoint in
  Microsoft Entra ID", section "User and group operations" (request/response examples):
  https://learn.microsoft.com/en-us/entra/identity/app-provisioning/use-scim-to-provision-users-and-groups
- [ENTRA-COMPAT] Microsoft Learn, "Known issues and resolutions with SCIM 2.0 protocol compliance
  of the Microsoft Entra user provisioning service" (PascalCase ``op``, ``"False"`` strings,
  path-less replace with dotted and URN-qualified keys, ``Remove`` of members with a value list):
  https://learn.microsoft.com/en-us/entra/identity/app-provisioning/application-provisioning-config-problem-scim-compatibility
- [OKTA] Okta Developer, "Okta and SCIM Version 2.0" (user lookup, create, path-less deactivate,
  group rename with ``id`` in the value, member add with ``display``, ``members[value eq]``
  remove, PUT of a group):
  https://developer.okta.com/docs/api/openapi/okta-scim/guides/scim-20
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, insert
from sqlalchemy.ext.asyncio import AsyncEngine

from syncsvc.scim.service import KINDS, ScimService
from syncsvc.settings import ScimSettings, StoreSettings
from syncsvc.store import create_engine
from syncsvc.store.resources import MEMBERS, USERS
from tests.integration.scimenv import SCIM_JSON, Scim, scim, synced  # noqa: F401 - fixtures

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PROFILE = "urn:syncsvc:params:scim:schemas:extension:profile:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ENTRA_GROUP_EXT = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"


def entra_user(user_name: str, **extra: Any) -> dict[str, Any]:
    """[ENTRA] "Create User" request body."""
    return {
        "schemas": [USER, ENTERPRISE],
        "externalId": str(uuid.uuid4()),
        "userName": user_name,
        "active": True,
        "emails": [{"primary": True, "type": "work", "value": f"{user_name}@testuser.com"}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "givenName familyName", "familyName": "familyName",
                 "givenName": "givenName"},
        "roles": [],
        **extra,
    }


def okta_user(user_name: str) -> dict[str, Any]:
    """[OKTA] "Create the User" request body (with its password and empty groups)."""
    return {
        "schemas": [USER],
        "userName": user_name,
        "name": {"givenName": "Test", "familyName": "User"},
        "emails": [{"primary": True, "value": user_name, "type": "work"}],
        "displayName": "Test User",
        "locale": "en-US",
        "externalId": "00ujl29u0le5T6Aj10h7",
        "groups": [],
        "password": "1mz050nq",
        "active": True,
    }


def patch(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH], "Operations": list(operations)}


async def create(scim: Scim, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
    return await scim.json("POST", f"/{endpoint}", body, expect=201)


async def find(scim: Scim, user_name: str) -> dict[str, Any]:
    page = await scim.json("GET", "/Users", filter=f'userName eq "{user_name}"')
    assert 1 == page["totalResults"], page
    return page["Resources"][0]


async def a_group(scim: Scim, name: str, *members: dict[str, Any]) -> dict[str, Any]:
    return await create(scim, "Groups", {"schemas": [GROUP], "displayName": name,
                                         "members": [{"value": m["id"]} for m in members]})


def member_ids(group: dict[str, Any]) -> set[str]:
    return {m["value"] for m in group.get("members", [])}


class TestEntraUsers:
    async def test_connection_probe_without_user_agent(self, scim: Scim) -> None:
        """[ENTRA] Test Connection: filter on a random userName, no User-Agent: 200, empty list."""
        response = await scim.http.request(
            "GET", "/scim/v2/Users", params={"filter": f'userName eq "{uuid.uuid4()}"'},
            headers={"Authorization": f"Bearer {scim.token}"}, skip_auto_headers=["User-Agent"])
        assert 200 == response.status, await response.text()
        assert SCIM_JSON == response.content_type
        page = await response.json(content_type=None)
        assert (0, []) == (page["totalResults"], page["Resources"])

    async def test_create_with_meta_roles_and_enterprise_urn(self, scim: Scim) -> None:
        """[ENTRA] Create User: the body's meta and empty roles are accepted."""
        created = await create(scim, "Users", entra_user("Test_User_ab6490ee"))
        assert ("Test_User_ab6490ee", True) == (created["userName"], created["active"])
        assert "givenName" == created["name"]["givenName"]

    async def test_pascal_case_ops_and_boolean_strings(self, scim: Scim) -> None:
        """[ENTRA-COMPAT] "Replace"/"Add" in any case and "False" for a boolean."""
        user = await create(scim, "Users", entra_user("pascal"))
        patched = await scim.json("PATCH", f"/Users/{user['id']}", patch(
            {"op": "Replace", "path": "active", "value": "False"},
            {"op": "Add", "path": "title", "value": "Engineer"},
            {"op": "REPLACE", "path": "name.familyName", "value": "updatedFamilyName"},
        ))
        assert (False, "Engineer", "updatedFamilyName") == (
            patched["active"], patched["title"], patched["name"]["familyName"])
        again = await scim.json("PATCH", f"/Users/{user['id']}", patch(
            {"op": "Replace", "path": "active", "value": "True"}))
        assert again["active"] is True

    async def test_pathless_replace_with_dotted_and_urn_keys(self, scim: Scim) -> None:
        """[ENTRA-COMPAT] Path-less Replace whose value mixes dotted, URN and plain keys."""
        user = await create(scim, "Users", entra_user("pathless"))
        patched = await scim.json("PATCH", f"/Users/{user['id']}", patch({
            "op": "Replace",
            "value": {
                "displayName": "Babs Jensen",
                "name.givenName": "Barbara",
                "name.familyName": "Jensen",
                f"{ENTERPRISE}:department": "Tour Operations",
                f"{ENTERPRISE}:employeeNumber": "701984",
                "active": "False",
            },
        }))
        assert ("Babs Jensen", "Barbara", "Jensen", False) == (
            patched["displayName"], patched["name"]["givenName"], patched["name"]["familyName"],
            patched["active"])
        assert {"department": "Tour Operations", "employeeNumber": "701984"} == patched[ENTERPRISE]
        assert ENTERPRISE in patched["schemas"]

    async def test_add_on_a_filter_that_matches_nothing_creates_the_element(self, scim: Scim) -> None:
        """[ENTRA] Update User [Multi-valued properties] on a user with no work e-mail yet."""
        body = entra_user("nomail")
        del body["emails"]
        user = await create(scim, "Users", body)
        added = await scim.json("PATCH", f"/Users/{user['id']}", patch(
            {"op": "Add", "path": 'emails[type eq "work"].value', "value": "new@example.com"}))
        assert [{"type": "work", "value": "new@example.com"}] == added["emails"]
        replaced = await scim.json("PATCH", f"/Users/{user['id']}", patch(
            {"op": "Replace", "path": 'emails[type eq "work"].value',
             "value": "updatedEmail@microsoft.com"}))
        assert [{"type": "work", "value": "updatedEmail@microsoft.com"}] == replaced["emails"]
        page = await scim.json("GET", "/Users", filter='emails[type eq "work"].value eq '
                                                       '"updatedEmail@microsoft.com"')
        assert [user["id"]] == [r["id"] for r in page["Resources"]]

    async def test_manager_as_a_bare_string(self, scim: Scim) -> None:
        """[ENTRA] Add manager: the value is the manager's id, not an object."""
        boss = await create(scim, "Users", entra_user("boss", displayName="The Boss"))
        user = await create(scim, "Users", entra_user("report"))
        patched = await scim.json("PATCH", f"/Users/{user['id']}", patch(
            {"op": "Add", "path": f"{ENTERPRISE}:manager", "value": boss["id"]}))
        manager = patched[ENTERPRISE]["manager"]
        assert (boss["id"], "The Boss") == (manager["value"], manager["displayName"])
        assert manager["$ref"].endswith(f"/Users/{boss['id']}")


class TestEntraGroups:
    async def test_create_with_microsoft_extension_urn_and_lookup(self, scim: Scim) -> None:
        """[ENTRA] Create Group (with Microsoft's ADSCIM URN), then the excludedAttributes lookup."""
        body = {"schemas": [GROUP, ENTRA_GROUP_EXT], "externalId": str(uuid.uuid4()),
                "displayName": "displayName", "meta": {"resourceType": "Group"}}
        created = await create(scim, "Groups", body)
        assert [GROUP] == created["schemas"]
        page = await scim.json("GET", "/Groups", excludedAttributes="members",
                               filter='displayName eq "displayName"')
        assert [created["id"]] == [g["id"] for g in page["Resources"]]
        assert "members" not in page["Resources"][0]

    async def test_add_and_remove_members_with_a_value_list(self, scim: Scim) -> None:
        """[ENTRA] Update Group [Add Members] / [Remove Members], with their "name" and null $ref."""
        a = await create(scim, "Users", entra_user("ga"))
        b = await create(scim, "Users", entra_user("gb"))
        group = await a_group(scim, "entra-team")
        added = await scim.json("PATCH", f"/Groups/{group['id']}", patch(
            {"name": "addMember", "op": "Add", "path": "members",
             "value": [{"$ref": None, "value": a["id"]}, {"$ref": None, "value": b["id"]}]}))
        assert {a["id"], b["id"]} == member_ids(added)
        removed = await scim.json("PATCH", f"/Groups/{group['id']}", patch(
            {"name": "removeMember", "op": "Remove", "path": "members",
             "value": [{"$ref": None, "value": a["id"]}]}))
        assert {b["id"]} == member_ids(removed)
        assert [] == (await scim.json("GET", f"/Users/{a['id']}")).get("groups", [])

    async def test_remove_member_by_value_filter(self, scim: Scim) -> None:
        """members[value eq "..."] as the remove path (Entra and Okta both send it)."""
        a = await create(scim, "Users", entra_user("fa"))
        b = await create(scim, "Users", entra_user("fb"))
        group = await a_group(scim, "filter-team", a, b)
        removed = await scim.json("PATCH", f"/Groups/{group['id']}", patch(
            {"op": "Remove", "path": f'members[value eq "{a["id"]}"]'}))
        assert {b["id"]} == member_ids(removed)


class TestOkta:
    async def test_user_lookup_create_and_pathless_deactivate(self, scim: Scim) -> None:
        """[OKTA] lookup (startIndex/count), create with password and groups, then deactivate."""
        name = "test.user@okta.local"
        page = await scim.json("GET", "/Users", filter=f'userName eq "{name}"', startIndex=1,
                               count=100)
        assert 0 == page["totalResults"]
        created = await create(scim, "Users", okta_user(name))
        assert "password" not in created
        assert created["active"] is True
        patched = await scim.json("PATCH", f"/Users/{created['id']}", patch(
            {"op": "replace", "value": {"active": False}}))
        assert patched["active"] is False
        assert (await scim.json("GET", f"/Users/{created['id']}"))["active"] is False

    async def test_group_rename_with_its_id_in_the_value(self, scim: Scim) -> None:
        """[OKTA] Update a Group name: path-less replace that repeats the (readOnly) id."""
        group = await a_group(scim, "Test SCIMv1")
        patched = await scim.json("PATCH", f"/Groups/{group['id']}", patch(
            {"op": "replace", "value": {"id": group["id"], "displayName": "Test SCIMv2"}}))
        assert ("Test SCIMv2", group["id"]) == (patched["displayName"], patched["id"])

    async def test_member_add_with_display_then_filtered_remove(self, scim: Scim) -> None:
        """[OKTA] add members with their display, then remove one by members[value eq]."""
        a = await create(scim, "Users", okta_user("a@okta.local"))
        b = await create(scim, "Users", okta_user("b@okta.local"))
        group = await a_group(scim, "okta-team")
        added = await scim.json("PATCH", f"/Groups/{group['id']}", patch(
            {"op": "add", "path": "members",
             "value": [{"value": a["id"], "display": "a@okta.local"},
                       {"value": b["id"], "display": "b@okta.local"}]}))
        assert {a["id"], b["id"]} == member_ids(added)
        removed = await scim.json("PATCH", f"/Groups/{group['id']}", patch(
            {"op": "remove", "path": f'members[value eq "{b["id"]}"]'}))
        assert {a["id"]} == member_ids(removed)

    async def test_put_group_reconciles_members(self, scim: Scim) -> None:
        """[OKTA] PUT of a group with its whole member list: unlisted removed, new ones added."""
        a, b, c = [await create(scim, "Users", okta_user(f"{n}@okta.local")) for n in "abc"]
        group = await a_group(scim, "push-group", a, b)
        put = {"schemas": [GROUP], "id": group["id"], "displayName": "push-group",
               "members": [{"value": b["id"], "display": "b@okta.local"},
                           {"value": c["id"], "display": "c@okta.local"}]}
        replaced = await scim.json("PUT", f"/Groups/{group['id']}", put)
        assert {b["id"], c["id"]} == member_ids(replaced)
        assert [] == (await scim.json("GET", f"/Users/{a['id']}")).get("groups", [])
        assert ["push-group"] == [g["display"] for g in
                                  (await scim.json("GET", f"/Users/{c['id']}"))["groups"]]
        assert replaced["meta"]["version"] != group["meta"]["version"]


class TestTolerance:
    async def test_empty_operations_is_400_invalid_value(self, scim: Scim) -> None:
        """An empty Operations array: 400 invalidValue (the Microsoft SCIM validator sends it)."""
        user = await create(scim, "Users", entra_user("empty-ops"))
        error = await scim.json("PATCH", f"/Users/{user['id']}", patch(), expect=400)
        assert ("400", "invalidValue") == (error["status"], error["scimType"])

    async def test_application_json_is_accepted(self, scim: Scim) -> None:
        """Content-Type application/json works like application/scim+json (RFC 7644 §3.1)."""
        plain = {"Content-Type": "application/json"}
        response = await scim.request("POST", "/Users", okta_user("json@okta.local"), plain)
        assert 201 == response.status, await response.text()
        assert SCIM_JSON == response.content_type
        user = await response.json(content_type=None)
        patched = await scim.json("PATCH", f"/Users/{user['id']}",
                                  patch({"op": "replace", "path": "title", "value": "CTO"}),
                                  headers=plain)
        assert "CTO" == patched["title"]

    async def test_attribute_names_in_any_case(self, scim: Scim) -> None:
        """Attribute names are case-insensitive (RFC 7643 §2.1) in bodies, paths and filters."""
        body = {"SCHEMAS": [USER], "USERNAME": "MixedCase", "Name": {"GIVENNAME": "Mixed"},
                "EMAILS": [{"VALUE": "mixed@example.org", "TYPE": "work"}], "Active": "TRUE"}
        created = await create(scim, "Users", body)
        assert ("MixedCase", "Mixed", True) == (
            created["userName"], created["name"]["givenName"], created["active"])
        assert [{"value": "mixed@example.org", "type": "work"}] == created["emails"]
        patched = await scim.json("PATCH", f"/Users/{created['id']}", patch(
            {"OP": "Replace", "PATH": "NAME.FAMILYNAME", "VALUE": "Case"}))
        assert "Case" == patched["name"]["familyName"]
        for expression in ('USERNAME eq "mixedcase"', 'Emails.Value eq "mixed@example.org"',
                           'NAME.familyName eq "Case"'):
            page = await scim.json("GET", "/Users", filter=expression)
            assert [created["id"]] == [r["id"] for r in page["Resources"]], expression


class TestDirectoryUsers:
    async def test_entra_patch_of_a_directory_attribute_is_refused(self, synced: Scim) -> None:
        """[ENTRA] Update User on an LDAP-sourced user: 400 mutability, nothing changed."""
        ada = await find(synced, "ada.lovelace")
        error = await synced.json("PATCH", f"/Users/{ada['id']}", patch(
            {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "x@microsoft.com"},
            {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
        ), expect=400)
        assert ("400", "mutability") == (error["status"], error["scimType"])
        after = await synced.json("GET", f"/Users/{ada['id']}")
        assert (ada["emails"], ada["name"], ada["meta"]["version"]) == (
            after["emails"], after["name"], after["meta"]["version"])

    async def test_pathless_profile_patch_is_accepted(self, synced: Scim) -> None:
        """A path-less Replace touching only the profile extension works on a directory user."""
        ada = await find(synced, "ada.lovelace")
        patched = await synced.json("PATCH", f"/Users/{ada['id']}", patch(
            {"op": "Replace", "value": {f"{PROFILE}:headline": "Poet of science",
                                        f"{PROFILE}:skills": ["math", "poetry"]}}))
        assert ("Poet of science", ["math", "poetry"]) == (
            patched[PROFILE]["headline"], patched[PROFILE]["skills"])
        assert ada["name"] == patched["name"]


BIG = 5_000


@pytest.fixture
async def store(store_url: str, scim: Scim) -> AsyncIterator[AsyncEngine]:
    """A second engine on the live server's store, for bulk inserts and statement capture."""
    engine = create_engine(StoreSettings(url=store_url))
    yield engine
    await engine.dispose()


async def big_group(scim: Scim, store: AsyncEngine) -> tuple[dict[str, Any], list[str]]:
    """A local group of BIG users, the rows inserted with SQLAlchemy Core (no SCIM per user)."""
    group = await a_group(scim, "everyone")
    now = datetime.now(UTC)
    ids = [str(uuid.uuid4()) for _ in range(BIG)]
    users = [{"id": i, "origin": "local", "user_name": f"u{n}", "user_name_lower": f"u{n}",
              "active": True, "resource": {"schemas": [USER], "userName": f"u{n}"},
              "content_hash": "", "version": 1, "created": now, "last_modified": now}
             for n, i in enumerate(ids)]
    async with store.begin() as conn:
        await conn.execute(insert(USERS), users)
        await conn.execute(insert(MEMBERS), [{"group_id": group["id"], "member_id": i,
                                              "member_type": "User"} for i in ids])
    return group, ids


class TestLargeGroups:
    async def test_patch_one_member_of_a_large_group(self, scim: Scim, store: AsyncEngine) -> None:
        """Add and remove ONE member of a 5,000-member group; the version moves each time."""
        group, ids = await big_group(scim, store)
        newcomer = await create(scim, "Users", entra_user("newcomer"))
        added = await scim.json("PATCH", f"/Groups/{group['id']}", patch(
            {"op": "Add", "path": "members", "value": [{"value": newcomer["id"]}]}),
            excludedAttributes="members")
        assert "members" not in added
        assert added["meta"]["version"] != group["meta"]["version"]
        removed = await scim.json("PATCH", f"/Groups/{group['id']}", patch(
            {"op": "remove", "path": f'members[value eq "{ids[0]}"]'}),
            excludedAttributes="members")
        assert removed["meta"]["version"] != added["meta"]["version"]
        light = await scim.json("GET", f"/Groups/{group['id']}", excludedAttributes="members")
        assert ("everyone", removed["meta"]["version"]) == (light["displayName"],
                                                            light["meta"]["version"])
        assert "members" not in light
        full = await scim.json("GET", f"/Groups/{group['id']}")
        assert (set(ids[1:]) | {newcomer["id"]}) == member_ids(full)
        assert ["everyone"] == [g["display"] for g in
                                (await scim.json("GET", f"/Users/{newcomer['id']}"))["groups"]]
        again = await scim.json("PATCH", f"/Groups/{group['id']}", patch(
            {"op": "Add", "path": "members", "value": [{"value": newcomer["id"]}]}),
            excludedAttributes="members")
        assert removed["meta"]["version"] == again["meta"]["version"]  # nothing changed
        error = await scim.json("PATCH", f"/Groups/{group['id']}", patch(
            {"op": "Add", "path": "members", "value": [{"value": str(uuid.uuid4())}]}), expect=400)
        assert "invalidValue" == error["scimType"]

    async def test_member_patch_and_rename_read_no_other_members(
        self, scim: Scim, store: AsyncEngine
    ) -> None:
        """Member add/remove and a path-less rename never select the group's member list."""
        group, ids = await big_group(scim, store)
        service = ScimService(store, ScimSettings())
        statements: list[str] = []

        def capture(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            statements.append(" ".join(statement.split()))

        event.listen(store.sync_engine, "before_cursor_execute", capture)
        kind, base = KINDS["Groups"], "http://test/scim/v2"
        await service.patch(kind, group["id"], patch(
            {"op": "add", "path": "members", "value": [{"value": ids[0], "display": "u0"}]},
            {"op": "Remove", "path": "members", "value": [{"$ref": None, "value": ids[1]}]},
            {"op": "remove", "path": f'members[value eq "{ids[2]}"]'},
        ), base_url=base, excluded=["members"])
        await service.patch(kind, group["id"], patch(
            {"op": "replace", "value": {"id": group["id"], "displayName": "all-hands"}}),
            base_url=base, excluded=["members"])
        event.remove(store.sync_engine, "before_cursor_execute", capture)
        reads = [s for s in statements if s.startswith("SELECT") and "scim_group_member" in s]
        assert reads, statements  # the capture works: adds look up the ids they add
        assert [] == [s for s in reads if "member_id IN" not in s], reads
        result = await service.get(kind, group["id"], base_url=base)
        assert ("all-hands", BIG - 2) == (result.body["displayName"], len(result.body["members"]))
