"""The requests that bring one remote resource in line: update (PUT or PATCH), match, create,
deactivate. No state of ours is read or written here; the worker keeps the links."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from syncsvc.errors import TargetRejected
from syncsvc.push.client import ScimClient, TargetFeatures
from syncsvc.push.payload import Payload
from syncsvc.settings import TargetSettings

__all__ = ["RemoteOps"]


class RemoteOps:
    """One target's resource operations; ``features`` is set from /ServiceProviderConfig."""

    def __init__(self, client: ScimClient, target: TargetSettings, log: Any) -> None:
        self._client = client
        self._target = target
        self._log = log
        self.features = TargetFeatures()

    async def update(self, endpoint: str, remote_id: str, payload: Payload, kind: str) -> bool:
        """Bring the remote copy to ``payload``; False when it no longer exists there."""
        try:
            if self._target.update_method == "patch" and self.features.patch:
                await self._patch(endpoint, remote_id, payload, kind)
            else:
                await self._client.replace(endpoint, remote_id, payload.body)
        except TargetRejected as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def _patch(self, endpoint: str, remote_id: str, payload: Payload, kind: str) -> None:
        """PATCH: replace the attributes; members as add/remove in batches of member_batch."""
        body = {k: v for k, v in payload.body.items() if k not in ("schemas", "members")}
        await self._client.patch(endpoint, remote_id, [{"op": "replace", "value": body}])
        if kind != "Group":
            return
        remote = await self._client.get(endpoint, remote_id)
        if remote is None:
            raise TargetRejected("gone while patching", status=404)
        have = {str(m.get("value")) for m in remote.get("members") or () if isinstance(m, dict)}
        want = {m["value"] for m in payload.body.get("members") or ()}
        batch = max(1, self._target.member_batch)
        add, remove = sorted(want - have), sorted(have - want)
        for start in range(0, len(add), batch):
            await self._client.patch(endpoint, remote_id, [
                {"op": "add", "path": "members",
                 "value": [{"value": v} for v in add[start : start + batch]]}])
        for start in range(0, len(remove), batch):
            part = remove[start : start + batch]
            # One filter naming the whole batch: RFC 7644 §3.5.2.2 remove with a value filter.
            flt = " or ".join(f'value eq "{v}"' for v in part)
            await self._client.patch(endpoint, remote_id, [
                {"op": "remove", "path": f"members[{flt}]"}])

    def _match_keys(self, kind: str) -> list[str]:
        keys = []
        for attr in self._target.match_by:
            if kind == "Group" and attr.lower() == "username":
                attr = "displayName"
            if kind == "User" and attr.lower() == "displayname":
                continue
            keys.append(attr)
        return keys

    async def remote_empty(self, endpoint: str) -> bool:
        _, body = await self._client.request("GET", f"/{endpoint}",
                                             params={"count": "0", "startIndex": "1"})
        return isinstance(body, Mapping) and int(body.get("totalResults") or 0) == 0

    async def match(self, endpoint: str, kind: str, payload: Payload) -> str | None:
        """The remote id of an existing copy, by ``match_by``; ambiguous matches are refused."""
        if not self.features.filter:
            return None
        for attr in self._match_keys(kind):
            value = payload.body.get(attr)
            if not isinstance(value, str) or not value:
                continue
            found = await self._client.find(endpoint, attr, value)
            if len(found) > 1:
                raise TargetRejected(
                    f"{len(found)} remote resources have {attr} {value!r}: not choosing one",
                    status=409, scim_type="uniqueness")
            if found:
                self._log.info("push.matched", kind=kind, by=attr, remote_id=found[0]["id"])
                return str(found[0]["id"])
        return None

    async def match_or_create(
        self, endpoint: str, kind: str, payload: Payload, *, skip_match: bool = False
    ) -> str:
        remote_id = None if skip_match else await self.match(endpoint, kind, payload)
        if remote_id is None:
            try:
                return str((await self._client.create(endpoint, payload.body))["id"])
            except TargetRejected as exc:
                if exc.status != 409:
                    raise
                # Already there (created by someone else, or by us before a crash): match it.
                remote_id = await self.match(endpoint, kind, payload)
                if remote_id is None:
                    raise
        await self.update(endpoint, remote_id, payload, kind)
        return remote_id

    async def deactivate(self, endpoint: str, remote_id: str) -> None:
        if self.features.patch:
            await self._client.patch(endpoint, remote_id,
                                     [{"op": "replace", "path": "active", "value": False}])
            return
        remote = await self._client.get(endpoint, remote_id)
        if remote is None:
            return
        body = {k: v for k, v in remote.items() if k not in ("id", "meta")}
        body["active"] = False
        await self._client.replace(endpoint, remote_id, body)
