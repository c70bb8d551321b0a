"""The rules fingerprint: an incremental run under changed mapping or enrichment rules runs as a
full run (and says so), so the new rules reach every user, not only the ones that changed."""

from __future__ import annotations

import dataclasses

from sqlalchemy import select

from syncsvc.domain import RunMode, RunStatus
from syncsvc.store.schema import SyncRunRow, SyncStateRow
from syncsvc.sync.fingerprint import FINGERPRINT_KEY
from tests.integration.syncenv import pipeline, settings_for, sync_once, users_by_name
from tests.support.slapd import Slapd

DISPLAY = [{"kind": "template", "target": "displayName",
            "template": "{{ user.name.familyName }}, {{ user.name.givenName }}"}]


async def stored(settings: object) -> tuple[str | None, dict[str, str | None]]:
    """(the stored fingerprint, run id -> detail)."""
    async with pipeline(settings) as service:  # type: ignore[arg-type]
        async with service.engine.connect() as conn:
            mark = await conn.scalar(select(SyncStateRow.value).where(
                SyncStateRow.key == FINGERPRINT_KEY))
            runs = {r.id: r.detail for r in await conn.execute(select(SyncRunRow.__table__))}
    return mark, runs


class TestRulesFingerprint:
    async def test_changed_rules_turn_an_incremental_run_into_a_full_one(
        self, slapd: Slapd, store_url: str
    ) -> None:
        """Same rules: incremental stays incremental. New enrichment rules, then a new mapping:
        the incremental run runs full, re-derives all 30 users, records why; the next
        incremental run is incremental again."""
        plain = settings_for(slapd, store_url)
        first = await sync_once(plain)
        mark, _ = await stored(plain)
        assert (RunStatus.SUCCESS, 64) == (first.status, len(mark or ""))

        same = await sync_once(plain, RunMode.INCREMENTAL)
        assert (RunMode.INCREMENTAL, None, 0) == (same.mode, same.detail, same.updated)

        enriched = dataclasses.replace(plain, enrich={"rules": DISPLAY})
        forced = await sync_once(enriched, RunMode.INCREMENTAL)
        assert (RunStatus.SUCCESS, RunMode.FULL, "paged") == (forced.status, forced.mode,
                                                              forced.method)
        assert 30 == forced.updated  # every user, though none changed in the directory
        assert "rules changed since the last full run" in (forced.detail or "")
        new_mark, runs = await stored(enriched)
        assert new_mark not in (None, mark)
        assert forced.detail == runs[forced.run_id]  # kept with the run for the CLI and admin API
        async with pipeline(enriched) as service:
            assert "Lovelace, Ada" == (await users_by_name(service))["ada.lovelace"].display_name

        after = await sync_once(enriched, RunMode.INCREMENTAL)
        assert (RunMode.INCREMENTAL, None, 0) == (after.mode, after.detail, after.updated)

        remapped = dataclasses.replace(enriched, mapping={"user": {"title": False}})
        again = await sync_once(remapped, RunMode.INCREMENTAL)
        assert (RunMode.FULL, "paged") == (again.mode, again.method)
        assert "rules changed" in (again.detail or "")
        async with pipeline(remapped) as service:
            assert "title" not in (await users_by_name(service))["ada.lovelace"].resource

    async def test_store_without_fingerprint_runs_full_once(
        self, slapd: Slapd, store_url: str
    ) -> None:
        """A store synced before fingerprints existed (marks, no fingerprint): the first
        incremental run runs full and says why; then incremental runs follow."""
        plain = settings_for(slapd, store_url)
        await sync_once(plain)
        async with pipeline(plain) as service:
            async with service.engine.begin() as conn:
                await conn.execute(SyncStateRow.__table__.delete().where(
                    SyncStateRow.key == FINGERPRINT_KEY))
        forced = await sync_once(plain, RunMode.INCREMENTAL)
        assert (RunMode.FULL, 0) == (forced.mode, forced.updated)
        assert "no full run recorded under the current mapping" in (forced.detail or "")
        assert RunMode.INCREMENTAL == (await sync_once(plain, RunMode.INCREMENTAL)).mode
