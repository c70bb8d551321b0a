"""From a real slapd to the reference SCIM server: an LDAP change is on the target after one
incremental sync and one drain."""

from __future__ import annotations

from syncsvc.domain import RunMode
from tests.integration.pushenv import drain, ldap_settings, target_for
from tests.integration.syncenv import sync_once
from tests.support.scim2server import Scim2Server, scim2_server
from tests.support.slapd import Slapd

__all__ = ["scim2_server"]

BASE = "dc=example,dc=com"
ENG = f"ou=engineering,ou=people,{BASE}"
GROUPS = f"ou=groups,{BASE}"


def members(server: Scim2Server, group: str) -> set[str]:
    """userNames of a remote group's members."""
    names = {u["id"]: u["userName"] for u in server.all("Users")}
    return {names[m["value"]] for m in server.groups()[group].get("members") or []
            if m["value"] in names}


class TestLdapToTarget:
    async def test_ldap_changes_reach_the_target_in_one_sync_and_one_drain(
        self, slapd: Slapd, store_url: str, scim2_server: Scim2Server
    ) -> None:
        """A new title, a member moved between groups, a new user and a deleted user."""
        settings = ldap_settings(slapd, store_url, target_for(scim2_server))
        await sync_once(settings)
        first = await drain(settings)
        assert (0, 30) == (first.failed, len(scim2_server.users()))
        assert "grace.hopper" in members(scim2_server, "platform-team")

        slapd.modify(f"dn: uid=ada.lovelace,{ENG}\nchangetype: modify\n"
                     "replace: title\ntitle: Countess of Computing\n")
        slapd.modify(f"dn: cn=platform-team,{GROUPS}\nchangetype: modify\ndelete: member\n"
                     f"member: uid=grace.hopper,{ENG}\n")
        slapd.modify(f"dn: cn=on-call,{GROUPS}\nchangetype: modify\nadd: member\n"
                     f"member: uid=grace.hopper,{ENG}\n")
        slapd.add(f"dn: uid=new.person,{ENG}\nobjectClass: inetOrgPerson\nuid: new.person\n"
                  "cn: New Person\nsn: Person\ngivenName: New\nmail: new.person@example.com\n")
        await sync_once(settings, RunMode.INCREMENTAL)
        report = await drain(settings)

        users = scim2_server.users()
        assert (None, 0) == (report.error, report.failed)
        assert "Countess of Computing" == users["ada.lovelace"]["title"]
        assert "grace.hopper" not in members(scim2_server, "platform-team")
        assert "grace.hopper" in members(scim2_server, "on-call")
        assert "new.person" in users and 31 == len(users)
