"""Fixtures for tests against real parts: a private slapd, SQLite and PostgreSQL stores.

Every test under ``tests/integration`` gets the ``integration`` marker. Missing slapd or
PostgreSQL is a failure, not a skip: CI must run them (``scripts/test`` installs them).

- ``slapd``: a fresh slapd seeded with ``tests/fixtures/ldif/base.ldif``, one per test.
- ``make_slapd``: a factory for a slapd with another seed (path or LDIF text).
- ``store_url``: a SQLAlchemy async URL of a fresh database at the head revision (a copy of
  one migrated per session), once per backend (ids ``sqlite`` and ``postgresql``), dropped
  after the test; empty, without the schema, for tests marked ``empty_store``.
- ``pg_admin_url``: the PostgreSQL server's admin URL (libpq form), for the session.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Generator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from syncsvc.settings import StoreSettings
from syncsvc.store import create_engine, upgrade
from tests.support import postgres, storetemplate
from tests.support.slapd import Slapd, missing_tools

HERE = Path(__file__).parent
BASE_LDIF = HERE.parent / "fixtures" / "ldif" / "base.ldif"
_SERVERS = pytest.StashKey[list[Slapd]]()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test collected from this directory as ``integration``."""
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.integration)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Append the slapd logs of a failed test to its report."""
    report: pytest.TestReport = yield
    if report.when == "call" and report.failed:
        for server in item.stash.get(_SERVERS, []):
            report.sections.append((f"slapd log ({server.workdir.name})", server.log_tail()))
    return report


def _require_ldap_tools() -> None:
    missing = missing_tools()
    if missing:
        pytest.fail(
            f"missing {', '.join(missing)}: integration tests need a real slapd. Run scripts/test "
            "(it installs them) or: apt-get install slapd ldap-utils openssl",
            pytrace=False,
        )


@pytest.fixture
def make_slapd(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[str | Path], Slapd]]:
    """A factory: ``make_slapd(seed)`` starts a slapd seeded with *seed*; all stop at teardown."""
    _require_ldap_tools()
    servers = request.node.stash.setdefault(_SERVERS, [])

    def make(seed: str | Path) -> Slapd:
        server = Slapd.create(tmp_path / f"slapd-{len(servers)}", seed)
        servers.append(server)
        return server

    try:
        yield make
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def slapd(make_slapd: Callable[[str | Path], Slapd]) -> Slapd:
    """A fresh slapd seeded with tests/fixtures/ldif/base.ldif (44 entries with the service DN)."""
    return make_slapd(BASE_LDIF)


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    """The admin URL of the test PostgreSQL (found or started once per session)."""
    try:
        return postgres.pg_admin_url()
    except postgres.PostgresUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite store at the head revision, copied by ``store_url``."""
    return storetemplate.migrated_sqlite(tmp_path_factory.mktemp("store-template"))


@pytest.fixture(scope="session")
def pg_template(pg_admin_url: str) -> Iterator[str]:
    """The name of a PostgreSQL database at the head revision, copied by ``store_url``."""
    with storetemplate.migrated_postgres(pg_admin_url) as name:
        yield name


@pytest.fixture(params=["sqlite", "postgresql"], ids=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A SQLAlchemy async URL of a fresh store database at the head revision (empty, without
    the schema, when the test is marked ``empty_store``); run once per backend."""
    empty = request.node.get_closest_marker("empty_store") is not None
    if request.param == "sqlite":
        if empty:
            yield f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
        else:
            yield storetemplate.copy_sqlite(request.getfixturevalue("sqlite_template"),
                                            tmp_path / "store.db")
        return
    admin_url: str = request.getfixturevalue("pg_admin_url")
    template = None if empty else request.getfixturevalue("pg_template")
    with postgres.fresh_database(admin_url, template) as url:
        yield url


@pytest.fixture
async def engine(store_url: str) -> AsyncIterator[AsyncEngine]:
    """The engine of a fresh store at the head revision; disposed of after the test."""
    engine = create_engine(StoreSettings(url=store_url))
    await upgrade(engine)
    try:
        yield engine
    finally:
        await engine.dispose()
