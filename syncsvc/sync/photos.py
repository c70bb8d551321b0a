"""The photo part of a sync page: which thumbnails to make, store or drop, and counting them.

Per page of users: :func:`plan_photos` reads the stored source hashes (one query), resizes only
the photos whose directory bytes changed (in a worker thread, before the page's transaction,
so no lock is held while Pillow works), and turns a photo the resizer rejects into a problem of
the run (the stored thumbnail, if any, stays). :func:`apply_photos` then writes the plan in the
page's transaction, after the users are upserted, and counts a user whose only change is
its photo as updated (with a new version), never one whose photo is unchanged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from syncsvc.domain import EntryKind, Problem, UserRecord
from syncsvc.enrich.photos import PhotoRejected, Thumbnail, make_thumbnail, source_hash
from syncsvc.store import photos as store
from syncsvc.store.writes import Change, PageOutcome, WriteContext

__all__ = ["PhotoPlan", "apply_photos", "plan_photos"]


@dataclass(slots=True)
class PhotoPlan:
    """Per anchor: a new thumbnail to store, or the stored one to drop."""

    put: dict[str, Thumbnail | None] = field(default_factory=dict)  # None: dry run, not resized
    drop: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    names: dict[str, tuple[str, str]] = field(default_factory=dict)  # anchor -> (dn, userName)


def _resize_all(photos: Mapping[str, bytes]) -> dict[str, Thumbnail | PhotoRejected]:
    out: dict[str, Thumbnail | PhotoRejected] = {}
    for anchor, data in photos.items():
        try:
            out[anchor] = make_thumbnail(data)
        except PhotoRejected as exc:
            out[anchor] = exc
    return out


async def plan_photos(
    engine: AsyncEngine,
    ctx: WriteContext,
    records: Sequence[UserRecord],
    photos: Mapping[str, bytes | None],
) -> PhotoPlan:
    """What the page's photos need: ``photos`` maps each record's anchor to its directory photo."""
    plan = PhotoPlan(names={r.anchor: (r.dn, r.user_name) for r in records})
    if not photos:
        return plan
    async with engine.connect() as conn:
        stored = await store.source_hashes(conn, list(photos))
    changed: dict[str, bytes] = {}
    for anchor, data in photos.items():
        old = stored.get(anchor)
        if data is None:
            if old is not None:
                plan.drop.append(anchor)
        elif old is None or old[1] != source_hash(data):
            changed[anchor] = data
    if ctx.dry_run:
        plan.put = dict.fromkeys(changed)
        return plan
    if changed:
        for anchor, result in (await asyncio.to_thread(_resize_all, changed)).items():
            if isinstance(result, PhotoRejected):
                plan.problems.append(Problem(plan.names[anchor][0], f"photo: {result}"))
            else:
                plan.put[anchor] = result
    return plan


async def apply_photos(
    conn: AsyncConnection, ctx: WriteContext, plan: PhotoPlan, outcome: PageOutcome
) -> None:
    """Write ``plan`` in the page's transaction and fold it into the page's counts."""
    # An entry the upsert refused (its userName is taken) keeps its stored row as it was.
    refused = {problem.dn for problem in outcome.problems}
    outcome.problems.extend(plan.problems)
    anchors = [a for a in (*plan.put, *plan.drop) if plan.names[a][0] not in refused]
    if not anchors:
        return
    kept = set(anchors)
    ids = await store.user_ids(conn, anchors)  # users just created have theirs now
    puts = [
        store.NewPhoto(user_id=ids[anchor], content_type=thumb.content_type, data=thumb.data,
                       source_hash=thumb.source_hash, width=thumb.width, height=thumb.height)
        for anchor, thumb in plan.put.items()
        if anchor in ids and anchor in kept and thumb is not None
    ]
    drops = [ids[anchor] for anchor in plan.drop if anchor in ids and anchor in kept]
    written = set(outcome.changed_ids)
    photo_only = [(anchor, ids[anchor]) for anchor in anchors
                  if anchor in ids and ids[anchor] not in written]
    if not ctx.dry_run:
        await store.put_photos(conn, puts, ctx.now, new_users=set(outcome.created_ids))
        await store.drop_photos(conn, drops)
        await store.touch_users(conn, [user_id for _, user_id in photo_only], ctx.now)
    outcome.updated += len(photo_only)
    outcome.unchanged -= len(photo_only)
    outcome.changed_ids.extend(user_id for _, user_id in photo_only)
    if ctx.keep_changes:
        outcome.changes.extend(
            Change("update", EntryKind.USER, *plan.names[anchor]) for anchor, _ in photo_only
        )
