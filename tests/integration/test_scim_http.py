"""The SCIM endpoint over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event

from syncsvc.http.app import ENGINE
from tests.integration.scimenv import SCIM_JSON, Scim, scim, synced  # noqa: F401 - fixtures

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PROFILE = "urn:syncsvc:params:scim:schemas:extension:profile:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


def new_user(name: str, **extra: Any) -> dict[str, Any]:
    return {"schemas": [USER], "userName": name, "name": {"givenName": "Test", "familyName": name},
            "emails": [{"value": f"{name}@example.org", "type": "work", "primary": True}], **extra}


async def find(scim: Scim, user_name: str) -> dict[str, Any]:
    page = await scim.json("GET", "/Users", filter=f'userName eq "{user_name}"')
    assert 1 == page["totalResults"], page
    return page["Resources"][0]


class TestAuth:
    async def test_no_token_is_401_with_challenge(self, scim: Scim) -> None:
        """Without a token: 401, WWW-Authenticate, and an RFC 7644 error document."""
        response = await scim.http.get("/scim/v2/Users")
        assert 401 == response.status
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        body = await response.json(content_type=None)
        assert (ERROR, "401") == (body["schemas"][0], body["status"])

    async def test_health_probes_are_public(self, scim: Scim) -> None:
        """/healthz and /readyz answer without a token."""
        assert 200 == (await scim.http.get("/healthz")).status
        assert 200 == (await scim.http.get("/readyz")).status


class TestReads:
    async def test_group_reads_leave_the_directory_member_dns_unread(self, synced: Scim) -> None:
        """Lists and GETs of groups render from the served columns: the DNs the sync keeps to
        resolve members (megabytes for a large group) are never selected, and members show."""
        engine = synced.http.app[ENGINE].sync_engine
        statements: list[str] = []

        def capture(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            statements.append(statement)

        event.listen(engine, "before_cursor_execute", capture)
        try:
            page = await synced.json("GET", "/Groups", count=100)
            slim = await synced.json("GET", "/Groups", excludedAttributes="members")
            one = await synced.json("GET", f"/Groups/{page['Resources'][0]['id']}")
        finally:
            event.remove(engine, "before_cursor_execute", capture)
        assert any("FROM scim_group" in s for s in statements), statements  # the capture works
        assert [] == [s for s in statements if "source_members" in s]
        assert any(group.get("members") for group in page["Resources"])
        assert not any("members" in group for group in slim["Resources"])
        assert one == page["Resources"][0]

    async def test_synced_user_has_meta_manager_and_groups(self, synced: Scim) -> None:
        """GET by id: meta (with a weak ETag), the resolved manager and the user's groups."""
        grace = await find(synced, "grace.hopper")
        response = await synced.request("GET", f"/Users/{grace['id']}")
        assert SCIM_JSON == response.content_type
        body = await response.json(content_type=None)
        assert response.headers["ETag"] == body["meta"]["version"]
        assert body["meta"]["version"].startswith('W/"')
        assert "User" == body["meta"]["resourceType"]
        assert body["meta"]["location"].endswith(f"/scim/v2/Users/{grace['id']}")
        ada = await find(synced, "ada.lovelace")
        assert ada["id"] == body[ENTERPRISE]["manager"]["value"]
        assert {"platform-team", "managers"} == {g["display"] for g in body["groups"]}  # direct only

    async def test_if_none_match_gives_304(self, synced: Scim) -> None:
        """The current ETag in If-None-Match answers 304 without a body."""
        ada = await find(synced, "ada.lovelace")
        response = await synced.request("GET", f"/Users/{ada['id']}",
                                        headers={"If-None-Match": ada["meta"]["version"]})
        assert 304 == response.status

    async def test_paging_past_the_end_is_an_empty_page(self, synced: Scim) -> None:
        """startIndex beyond the total: 200, itemsPerPage 0, no resources."""
        page = await synced.json("GET", "/Users", startIndex=1000, count=10)
        assert (30, 0, 1000, []) == (page["totalResults"], page["itemsPerPage"], page["startIndex"],
                                     page["Resources"])

    async def test_index_paging_walks_every_user_once(self, synced: Scim) -> None:
        """Pages of 7 sorted by userName cover all 30 users exactly once, in order."""
        names: list[str] = []
        for start in range(1, 31, 7):
            page = await synced.json("GET", "/Users", startIndex=start, count=7, sortBy="userName",
                                     attributes="userName")
            names += [r["userName"] for r in page["Resources"]]
        assert sorted(names) == names
        assert 30 == len(set(names))

    async def test_cursor_paging_walks_every_user_once(self, synced: Scim) -> None:
        """RFC 9865: nextCursor until it is absent; every user once."""
        seen: list[str] = []
        cursor = ""
        while cursor is not None:
            page = await synced.json("GET", "/Users", cursor=cursor, count=8)
            seen += [r["id"] for r in page["Resources"]]
            cursor = page.get("nextCursor")
        assert 30 == len(seen) == len(set(seen))

    async def test_excluded_members_loads_no_members(self, synced: Scim) -> None:
        """excludedAttributes=members returns groups without members."""
        page = await synced.json("GET", "/Groups", excludedAttributes="members")
        assert 6 == page["totalResults"]
        assert all("members" not in g for g in page["Resources"])

    async def test_filter_probe_of_a_random_user_is_an_empty_list(self, synced: Scim) -> None:
        """Entra's connection probe: a userName that does not exist gives 200 and no resources."""
        page = await synced.json("GET", "/Users", filter='userName eq "7f3c0a1e-probe"')
        assert (0, []) == (page["totalResults"], page["Resources"])

    async def test_invalid_filter_is_400_invalid_filter(self, synced: Scim) -> None:
        """A broken filter: 400 invalidFilter with a detail, never a 500."""
        body = await synced.json("GET", "/Users", expect=400, filter='userName eq')
        assert ("400", "invalidFilter") == (body["status"], body["scimType"])
        assert body["detail"]

    async def test_search_at_root_spans_users_and_groups(self, synced: Scim) -> None:
        """POST /.search without a filter counts users and groups together."""
        body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "count": 5}
        page = await synced.json("POST", "/.search", body)
        assert (36, 5) == (page["totalResults"], page["itemsPerPage"])


class TestWrites:
    async def test_create_read_replace_delete_a_local_user(self, scim: Scim) -> None:
        """POST 201 with Location and ETag; PUT changes it; DELETE 204; then 404."""
        response = await scim.request("POST", "/Users", new_user("bob"))
        assert 201 == response.status
        created = await response.json(content_type=None)
        assert response.headers["Location"] == created["meta"]["location"]
        put = new_user("bob", title="Boss")
        replaced = await scim.json("PUT", f"/Users/{created['id']}", put)
        assert "Boss" == replaced["title"]
        assert replaced["meta"]["version"] != created["meta"]["version"]
        await scim.json("DELETE", f"/Users/{created['id']}", expect=204)
        await scim.json("GET", f"/Users/{created['id']}", expect=404)

    async def test_duplicate_user_name_is_409_uniqueness(self, scim: Scim) -> None:
        """userName is unique case-insensitively: BOB after bob is 409 uniqueness."""
        await scim.json("POST", "/Users", new_user("bob"), expect=201)
        body = await scim.json("POST", "/Users", new_user("BOB"), expect=409)
        assert "uniqueness" == body["scimType"]

    async def test_if_match_mismatch_is_412(self, scim: Scim) -> None:
        """A PUT with a stale If-Match is refused with 412 and changes nothing."""
        created = await scim.json("POST", "/Users", new_user("carol"), expect=201)
        await scim.json("PUT", f"/Users/{created['id']}", new_user("carol", title="A"),
                        headers={"If-Match": 'W/"999"'}, expect=412)
        current = await scim.json("GET", f"/Users/{created['id']}")
        assert "title" not in current

    async def test_directory_attributes_are_read_only(self, synced: Scim) -> None:
        """PATCH of an LDAP-owned attribute: 400 mutability; the profile extension is writable."""
        ada = await find(synced, "ada.lovelace")
        body = {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "title", "value": "X"}]}
        error = await synced.json("PATCH", f"/Users/{ada['id']}", body, expect=400)
        assert "mutability" == error["scimType"]
        body = {"schemas": [PATCH], "Operations": [
            {"op": "add", "path": f"{PROFILE}:headline", "value": "Poet of science"}]}
        patched = await synced.json("PATCH", f"/Users/{ada['id']}", body)
        assert "Poet of science" == patched[PROFILE]["headline"]

    async def test_profile_survives_the_next_sync(self, synced: Scim, slapd: Any, store_url: str) -> None:
        """A profile written through SCIM is kept by a full sync that updates the user."""
        from tests.integration.syncenv import settings_for, sync_once

        ada = await find(synced, "ada.lovelace")
        body = {"schemas": [PATCH], "Operations": [
            {"op": "add", "path": f"{PROFILE}:skills", "value": ["math", "poetry"]}]}
        await synced.json("PATCH", f"/Users/{ada['id']}", body)
        slapd.modify("dn: uid=ada.lovelace,ou=engineering,ou=people,dc=example,dc=com\n"
                     "changetype: modify\nreplace: title\ntitle: Countess\n")
        await sync_once(settings_for(slapd, store_url))
        after = await synced.json("GET", f"/Users/{ada['id']}")
        assert ("Countess", ["math", "poetry"]) == (after["title"], after[PROFILE]["skills"])

    async def test_group_with_members_and_patch_remove(self, scim: Scim) -> None:
        """A local group: members set on POST, one removed by an Entra-style PATCH."""
        a = await scim.json("POST", "/Users", new_user("a1"), expect=201)
        b = await scim.json("POST", "/Users", new_user("b1"), expect=201)
        group = await scim.json("POST", "/Groups", {"schemas": [GROUP], "displayName": "team",
                                                    "members": [{"value": a["id"]}, {"value": b["id"]}]},
                                expect=201)
        assert {a["id"], b["id"]} == {m["value"] for m in group["members"]}
        body = {"schemas": [PATCH], "Operations": [
            {"op": "Remove", "path": "members", "value": [{"value": a["id"]}]}]}
        patched = await scim.json("PATCH", f"/Groups/{group['id']}", body)
        assert [b["id"]] == [m["value"] for m in patched["members"]]
        user_b = await scim.json("GET", f"/Users/{b['id']}")
        assert ["team"] == [g["display"] for g in user_b["groups"]]

    async def test_bulk_with_bulk_id_reference(self, scim: Scim) -> None:
        """A user and a group referring to it by bulkId are created in one request."""
        body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": [
            {"method": "POST", "path": "/Users", "bulkId": "u1", "data": new_user("dora")},
            {"method": "POST", "path": "/Groups", "bulkId": "g1",
             "data": {"schemas": [GROUP], "displayName": "dora-team",
                      "members": [{"value": "bulkId:u1", "type": "User"}]}},
        ]}
        result = await scim.json("POST", "/Bulk", body)
        assert ["201", "201"] == [op["status"] for op in result["Operations"]]
        group_id = result["Operations"][1]["location"].rsplit("/", 1)[1]
        group = await scim.json("GET", f"/Groups/{group_id}")
        dora = await find(scim, "dora")
        assert [dora["id"]] == [m["value"] for m in group["members"]]

    async def test_empty_operations_is_400_invalid_value(self, scim: Scim) -> None:
        """A PATCH with an empty Operations array is refused with invalidValue."""
        created = await scim.json("POST", "/Users", new_user("erin"), expect=201)
        body = await scim.json("PATCH", f"/Users/{created['id']}", {"schemas": [PATCH], "Operations": []},
                               expect=400)
        assert "invalidValue" == body["scimType"]


class TestDiscovery:
    async def test_discovery_documents(self, scim: Scim) -> None:
        """ServiceProviderConfig announces cursor paging; Schemas lists the four schemas."""
        spc = await scim.json("GET", "/ServiceProviderConfig")
        assert spc["pagination"]["cursor"] is True
        assert spc["bulk"]["supported"] is True
        schemas = await scim.json("GET", "/Schemas")
        assert {USER, GROUP, ENTERPRISE, PROFILE} == {s["id"] for s in schemas["Resources"]}
        types = await scim.json("GET", "/ResourceTypes")
        assert {"User", "Group"} == {t["name"] for t in types["Resources"]}


class TestLimits:
    async def test_bulk_limits_are_enforced(self, store_url: str, aiohttp_client: Any) -> None:
        """Over maxOperations or maxPayloadSize: 413 with a SCIM error, nothing created."""
        from syncsvc.settings import ScimSettings
        from tests.integration.scimenv import serving

        limits = ScimSettings(bulk_max_operations=2, bulk_max_payload=2000)
        async with serving(store_url, aiohttp_client, limits) as scim:
            ops = [{"method": "POST", "path": "/Users", "bulkId": f"u{i}", "data": new_user(f"u{i}")}
                   for i in range(3)]
            bulk = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": ops}
            body = await scim.json("POST", "/Bulk", bulk, expect=413)
            assert "413" == body["status"]
            big = {**bulk, "Operations": [{**ops[0], "data": new_user("x" * 3000)}]}
            await scim.json("POST", "/Bulk", big, expect=413)
            assert 0 == (await scim.json("GET", "/Users"))["totalResults"]
            spc = await scim.json("GET", "/ServiceProviderConfig")
            assert (2, 2000) == (spc["bulk"]["maxOperations"], spc["bulk"]["maxPayloadSize"])

    async def test_fail_on_errors_stops_the_bulk(self, scim: Scim) -> None:
        """failOnErrors=1: after the first failed operation the rest are not run."""
        ops = [{"method": "POST", "path": "/Users", "bulkId": "a", "data": {"schemas": [USER]}},
               {"method": "POST", "path": "/Users", "bulkId": "b", "data": new_user("b")}]
        body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "failOnErrors": 1,
                "Operations": ops}
        result = await scim.json("POST", "/Bulk", body)
        assert ["400"] == [op["status"] for op in result["Operations"]]
        assert 0 == (await scim.json("GET", "/Users"))["totalResults"]

    async def test_too_many_and_count_clamped(self, store_url: str, aiohttp_client: Any) -> None:
        """A filter matching more than max_filter_results is tooMany; count above maxResults is lowered."""
        from syncsvc.settings import ScimSettings
        from tests.integration.scimenv import serving

        async with serving(store_url, aiohttp_client,
                           ScimSettings(max_results=2, max_filter_results=2)) as scim:
            for name in ("p1", "p2", "p3"):
                await scim.json("POST", "/Users", new_user(name), expect=201)
            body = await scim.json("GET", "/Users", expect=400, filter='userName sw "p"')
            assert "tooMany" == body["scimType"]
            page = await scim.json("GET", "/Users", count=50)
            assert (3, 2) == (page["totalResults"], page["itemsPerPage"])
