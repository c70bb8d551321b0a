"""SQLite: a run that wrote a large share of the store leaves planner statistics behind, so
that a filter matching most users (``active eq true``) pages through the primary key instead
of sorting every match out of the ``active`` index."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select, text
from sqlalchemy.dialects import sqlite

from syncsvc.domain import RunMode, RunStatus
from syncsvc.scim import filters
from syncsvc.store.schema import USERS
from syncsvc.sync import SyncOptions, run_sync
from tests.integration.syncenv import pipeline, settings_for
from tests.support.slapd import Slapd

pytestmark = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)

# Large enough for a first load to be worth a refresh (maintenance._MIN_ROWS).
USERS_IN_DIRECTORY = 1200


@pytest.fixture(scope="module")
def big_slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    with Slapd.generated(tmp_path_factory.mktemp("big"), users=USERS_IN_DIRECTORY,
                         groups=10) as server:
        yield server


def page_of_active_users() -> str:
    """The SQL of a page of ``active eq true`` as SCIM filters it, values inlined."""
    statement = (select(USERS.c.id).where(filters.where("User", "active eq true", "sqlite"))
                 .order_by(USERS.c.id).limit(101))
    return str(statement.compile(dialect=sqlite.dialect(),
                                 compile_kwargs={"literal_binds": True}))


async def test_a_large_load_ends_with_statistics(big_slapd: Slapd, store_url: str) -> None:
    async with pipeline(settings_for(big_slapd, store_url)) as service:
        report = await run_sync(service.sync, SyncOptions(mode=RunMode.FULL))
        async with service.engine.connect() as conn:
            analyzed = set(await conn.scalars(text("SELECT DISTINCT tbl FROM sqlite_stat1")))
            plan = " | ".join(row[3] for row in await conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN " + page_of_active_users()))
            active = (await conn.execute(text(page_of_active_users()))).all()

    assert (RunStatus.SUCCESS, USERS_IN_DIRECTORY) == (report.status, report.created - 10)
    assert {"scim_user", "scim_user_email", "scim_group", "scim_group_member"} <= analyzed
    assert "ix_scim_user_active" not in plan, plan
    assert 101 == len(active)
