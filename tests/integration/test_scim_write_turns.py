"""Concurrent SCIM writes through the real server: every one lands, and on SQLite they take
turns in this process instead of waiting for each other in SQLite's busy handler."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import event

from syncsvc.http.app import ENGINE
from tests.integration.scimenv import Scim, scim  # noqa: F401 - the fixture

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
PROFILE = "urn:syncsvc:params:scim:schemas:extension:profile:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
WRITERS = 12


def headline(text: str) -> dict[str, Any]:
    return {"schemas": [PATCH],
            "Operations": [{"op": "replace", "path": f"{PROFILE}:headline", "value": text}]}


async def test_concurrent_writes_all_land_one_transaction_at_a_time(
    scim: Scim, store_url: str,
) -> None:
    target = await scim.json("POST", "/Users", {"schemas": [USER], "userName": "target"},
                             expect=201)
    engine = scim.http.app[ENGINE].sync_engine
    open_now, most = 0, 0

    def began(_conn: Any) -> None:
        nonlocal open_now, most
        open_now += 1
        most = max(most, open_now)

    def ended(_conn: Any) -> None:
        nonlocal open_now
        open_now -= 1

    hooks = (("begin", began), ("commit", ended), ("rollback", ended))
    for name, hook in hooks:
        event.listen(engine, name, hook)
    try:
        await asyncio.gather(
            *(scim.json("POST", "/Users", {"schemas": [USER], "userName": f"writer{i}"},
                        expect=201) for i in range(WRITERS)),
            *(scim.json("PATCH", f"/Users/{target['id']}", headline(f"Take {i}"))
              for i in range(WRITERS)),
            *(scim.json("DELETE", f"/Users/{target['id']}x", expect=404) for _ in range(2)),
        )
    finally:
        for name, hook in hooks:
            event.remove(engine, name, hook)

    everyone = await scim.json("GET", "/Users", count=100)
    names = {user["userName"] for user in everyone["Resources"]}
    after = await scim.json("GET", f"/Users/{target['id']}")
    assert {f"writer{i}" for i in range(WRITERS)} <= names
    # Each PATCH wrote a headline of its own: none was lost to another.
    version = int(after["meta"]["version"].strip('W/"'))
    assert version == int(target["meta"]["version"].strip('W/"')) + WRITERS
    assert after[PROFILE]["headline"].startswith("Take ")
    if store_url.startswith("sqlite"):
        assert 1 == most
