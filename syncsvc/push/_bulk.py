"""Create many resources on a target through SCIM /Bulk (RFC 7644 §3.7).

Only for an initial push into an empty target that announces bulk, with ``use_bulk``: one
request per batch instead of one per resource. Whatever a batch does not settle goes back to
the one-by-one path, which matches before it creates.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from syncsvc.errors import TargetRejected
from syncsvc.push._links import LinkCache
from syncsvc.push._plan import together
from syncsvc.push._report import Tally
from syncsvc.push.client import ScimClient, TargetFeatures
from syncsvc.push.payload import Payload
from syncsvc.push.state import RemoteLink
from syncsvc.settings import TargetSettings

__all__ = ["bulk_create"]


async def bulk_create(
    client: ScimClient, features: TargetFeatures, target: TargetSettings, links: LinkCache,
    kind: str, endpoint: str, payloads: Mapping[str, Payload], tally: Tally,
) -> list[str]:
    """Create the never-pushed ones of ``payloads``, ``concurrency`` batches at a time, each
    within the target's bulk limits. Returns the ids left for the one-by-one path: the others,
    and operations answered 409 (matched there) or with a retryable status."""
    fresh = [rid for rid in payloads if (kind, rid) not in links]
    rest = [rid for rid in payloads if (kind, rid) in links]
    if not fresh:
        return rest
    limit = features.bulk_max_operations or len(fresh)
    size = max(1, min(limit, -(-len(fresh) // max(1, target.concurrency))))
    budget = (features.bulk_max_payload or 1 << 20) * 9 // 10
    batches: list[list[str]] = [[]]
    used = 0
    for rid in fresh:
        weight = len(json.dumps(payloads[rid].body)) + 100
        if batches[-1] and (len(batches[-1]) >= size or used + weight > budget):
            batches.append([])
            used = 0
        batches[-1].append(rid)
        used += weight

    async def send(batch: list[str]) -> None:
        answers = await client.bulk([
            {"method": "POST", "path": f"/{endpoint}", "bulkId": rid,
             "data": payloads[rid].body} for rid in batch])
        done = set()
        for op in answers:
            rid = str(op.get("bulkId") or "")
            if rid not in payloads:
                continue
            status = int(str(op.get("status") or "0").split()[0] or 0)
            location = str(op.get("location") or "").rstrip("/")
            if 200 <= status < 300 and location:
                done.add(rid)
                tally.pushed += 1
                links.keep(RemoteLink(
                    target=target.name, kind=kind, resource_id=rid,
                    remote_id=location.rsplit("/", 1)[-1], pushed_hash=payloads[rid].hash,
                    status="ok", last_error=None, attempts=0))
            elif 400 <= status < 500 and status not in (408, 409, 425, 429):
                done.add(rid)
                error = op.get("response") if isinstance(op.get("response"), dict) else {}
                exc = TargetRejected(str(error.get("detail") or f"HTTP {status}"),
                                     status=status, scim_type=error.get("scimType"))
                tally.failed += 1
                tally.refused.add((kind, rid))
                links.keep(RemoteLink(
                    target=target.name, kind=kind, resource_id=rid, remote_id=None,
                    pushed_hash=None, status="failed", last_error=str(exc), attempts=1))
        rest.extend(rid for rid in batch if rid not in done)

    await together([send(batch) for batch in batches])
    return rest
