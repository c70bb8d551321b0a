"""Push with real processes on both ends: a second syncsvc as the target, and our own
`syncsvc serve` killed with SIGKILL in the middle of a push."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from syncsvc.settings import DEMO_LDIF
from tests.integration.pushenv import demo_settings, drain, links, target_for, target_state
from tests.integration.syncenv import sync_once
from tests.support.scim2server import Scim2Server, scim2_server
from tests.support.syncsvcpeer import ServeProcess

__all__ = ["scim2_server"]

USER = "urn:ietf:params:scim:schemas:core:2.0:User"


async def _wait_for(predicate: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class TestSyncsvcAsTarget:
    async def test_push_to_a_second_syncsvc_survives_its_restart(
        self, tmp_path: Path
    ) -> None:
        """The demo directory goes to another syncsvc over HTTP with a token (updates as PATCH);
        while that syncsvc is stopped, drains fail and keep the cursor; once it is back, the
        changes arrive, nothing is lost and nothing is duplicated."""
        peer = ServeProcess.peer(tmp_path / "peer").start()
        try:
            ldif = tmp_path / "directory.ldif"
            ldif.write_text(DEMO_LDIF.read_text())
            settings = demo_settings(f"sqlite+aiosqlite:///{tmp_path / 'ours.db'}",
                                     target_for(peer, name="peer", max_retries=1,
                                                update_method="patch", member_batch=5),
                                     ldif=str(ldif))
            await sync_once(settings)
            report = await drain(settings)
            assert (None, 0, 220) == (report.error, report.failed, report.pushed)
            users = {u["userName"]: u for u in peer.all("Users")}
            groups = {g["displayName"]: g for g in peer.all("Groups")}
            assert (200, 20) == (len(users), len(groups))
            sample = sorted(groups)[0]
            ours = await links(settings, "Group")
            assert {g["externalId"] for g in groups.values()} == set(ours)
            assert groups[sample].get("members")

            peer.stop()
            text = ldif.read_text().replace("title: ", "title: Pushed ", 3)
            # ...and two members leave the first group that has members (PATCH remove).
            for line in [ln for ln in text.split("\n") if ln.startswith("member: uid=")][:2]:
                text = text.replace(line + "\n", "", 1)
            ldif.write_text(text)
            await sync_once(settings)
            down = await drain(settings)
            assert down.error is not None
            assert 0 < (await target_state(settings)).queue_depth

            peer.start()
            back = await drain(settings)
            assert (None, 3 + 1) == (back.error, back.pushed)  # 3 users, 1 group's members
            users = peer.all("Users")
            assert 200 == len(users) == len({u["userName"] for u in users})
            assert 3 == sum(1 for u in users if str(u.get("title", "")).startswith("Pushed "))
            groups_after = {g["displayName"]: g for g in peer.all("Groups")}
            assert 20 == len(groups_after)
            assert sum(len(g.get("members") or []) for g in groups.values()) - 2 == sum(
                len(g.get("members") or []) for g in groups_after.values())
        finally:
            peer.stop()


class TestKilledMidPush:
    async def test_sigkill_mid_push_then_restart_pushes_the_rest_once(
        self, scim2_server: Scim2Server, tmp_path: Path
    ) -> None:
        """`serve` pushes the demo directory slowly (rate limit); SIGKILL part-way; after a
        restart every user and group is on the target exactly once, all linked."""
        config = (f'[ldap]\nurl = ["ldif://{DEMO_LDIF}"]\n[schedule]\nenabled = false\n'
                  f'[[targets]]\nname = "ref"\nurl = "{scim2_server.url}"\nrate_limit = 40\n'
                  f'[targets.auth]\nkind = "bearer"\ntoken = "{scim2_server.token}"\n')
        ours = ServeProcess(tmp_path / "ours", config)
        ours.start()
        try:
            await _wait_for(lambda: len(scim2_server.all("Users")) >= 40, "40 users pushed")
            ours.kill()
            partial = len(scim2_server.all("Users"))
            assert partial < 200, "the push finished before the kill: slow it down"
            ours.config = ours.config.replace("rate_limit = 40\n", "")  # the rest at full speed
            ours.start(with_token=False)
            await _wait_for(lambda: len(scim2_server.all("Groups")) >= 20
                            and len(scim2_server.all("Users")) >= 200, "the rest pushed")
            # A write through our own SCIM API is pushed too (the write wakes the runner).
            ours.post("/Users", {"schemas": [USER], "userName": "guest.user", "active": True})
            await _wait_for(lambda: "guest.user" in scim2_server.users(), "the SCIM write")
            ours.request("DELETE", f"/Users/{ours.find_user('guest.user')}")
            await _wait_for(lambda: not scim2_server.users()["guest.user"]["active"],
                            "the guest deactivated")
        finally:
            assert ours.stop() == 0, ours.log_tail()
        remote_users = [u for u in scim2_server.all("Users") if u["userName"] != "guest.user"]
        remote_groups = scim2_server.all("Groups")
        assert (200, 20) == (len(remote_users), len(remote_groups))
        counts = Counter(u["externalId"] for u in [*remote_users, *remote_groups])
        assert 1 == max(counts.values())
        settings = demo_settings(ours.store_url, target_for(scim2_server))
        user_links = await links(settings, "User")
        guest = [link for link in user_links.values() if link.status == "removed"]
        assert 1 == len(guest)
        assert set(user_links) - {guest[0].resource_id} == {u["externalId"] for u in remote_users}
        assert {"ok"} == {link.status for link in user_links.values() if link not in guest}
        print(f"\nkilled after {partial} of 200 users; the restart pushed the rest")
