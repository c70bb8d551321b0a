"""SCIM filters run in real SQLite and PostgreSQL agree with a plain-Python oracle.

One data set per backend (300 users, 20 groups, written as the sync writes them) is shared by
the tests of this module: a fresh store per test would cost more than the tests themselves. The
databases come from the same helpers as the ``store_url`` fixture.

The property test generates filter trees over the grammar, renders them as text (keywords and
names in random case, parentheses only where precedence needs them, sometimes more), runs the
text through ``parse_filter`` + ``user_where`` / ``group_where`` and compares the ids with what
``tests.support.scim_oracle`` computes from the *generated* tree, so a parser that got
precedence wrong would be caught too.
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import Table, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from syncsvc.errors import InvalidFilter
from syncsvc.scim._filterparse import And, AttrPath, Compare, Filter, Not, Or, Present, ValuePath
from syncsvc.scim.filters import group_where, order_by, user_where
from syncsvc.scim.schema import CORE_GROUP, CORE_USER, ENTERPRISE_USER, PROFILE_USER
from syncsvc.settings import StoreSettings
from syncsvc.store import create_engine, upgrade
from syncsvc.store.rows import emails_of
from syncsvc.store.schema import GroupMemberRow, GroupRow, UserEmailRow, UserRow
from tests.support import postgres
from tests.support.scim_oracle import matches

USERS: Table = UserRow.__table__  # type: ignore[assignment]
GROUPS: Table = GroupRow.__table__  # type: ignore[assignment]
EMAILS: Table = UserEmailRow.__table__  # type: ignore[assignment]
MEMBERS: Table = GroupMemberRow.__table__  # type: ignore[assignment]

# Small pools so that generated filters hit: case variants, LIKE/GLOB metacharacters, quotes,
# non-ASCII (upper-case non-ASCII only where the store folds in Python: userName, e-mails).
WORDS = ["alpha", "Alpha", "ALPHA", "beta", "al", "gam%ma", "del_ta", "x*y", "[z]", 'q"t', "é", "ü-ber", ""]
NAMES = ["Émile", "émile", "bjensen", "BJensen", "o'brien", "user_1", "user%2", "zoë"]
BASE = datetime(2024, 1, 1, tzinfo=UTC)


@dataclass
class DataSet:
    engine: AsyncEngine
    runner: asyncio.Runner
    dialect: str
    users: list[dict[str, Any]]  # SCIM documents the oracle reads
    groups: list[dict[str, Any]]

    def __repr__(self) -> str:
        # Hypothesis prints the arguments of a failing case; the documents would be 350 kB
        # (and its HypothesisWarning is an error under filterwarnings=error).
        return f"DataSet({self.dialect}, {len(self.users)} users, {len(self.groups)} groups)"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # hypothesis' pretty-printer
        printer.text(repr(self))

    def ids(self, resource_type: str, text: str) -> set[str]:
        table, where = (USERS, user_where) if resource_type == "User" else (GROUPS, group_where)
        clause = where(text, self.dialect)

        async def run() -> set[str]:
            async with self.engine.connect() as conn:
                return set((await conn.execute(select(table.c.id).where(clause))).scalars())

        return self.runner.run(run())

    def expected(self, resource_type: str, node: Filter) -> set[str]:
        docs = self.users if resource_type == "User" else self.groups
        return {d["id"] for d in docs if matches(resource_type, node, d)}


def _users(rng: random.Random) -> list[dict[str, Any]]:
    users = []
    for i in range(300):
        r: dict[str, Any] = {"schemas": [CORE_USER]}
        r["userName"] = f"{rng.choice(NAMES)}{i}"
        if rng.random() < 0.8:
            r["displayName"] = f"{rng.choice(WORDS)} {rng.choice(WORDS)}".strip()
        if rng.random() < 0.7:
            r["title"] = rng.choice(WORDS)
        name = {k: rng.choice(WORDS) for k in ("givenName", "familyName") if rng.random() < 0.7}
        if name:
            r["name"] = name
        r["active"] = rng.random() < 0.7
        emails = []
        for n in range(rng.choice([0, 1, 1, 2, 3])):
            email: dict[str, Any] = {
                "value": f"{rng.choice(NAMES)}.{rng.choice(WORDS) or 'x'}@{rng.choice(['Example.com', 'x.org'])}",
                "type": rng.choice(["work", "home", "Other"]),
            }
            if n == 0 and rng.random() < 0.5:
                email["primary"] = True
            if rng.random() < 0.3:
                email["display"] = rng.choice(WORDS)
            emails.append(email)
        if emails:
            r["emails"] = emails
        phones = [{"value": f"+{rng.randint(1, 49)} {rng.randint(100, 999)}",
                   "type": rng.choice(["work", "mobile"])} for _ in range(rng.choice([0, 1, 2]))]
        if phones:
            r["phoneNumbers"] = phones
        addresses = [{"locality": rng.choice(WORDS), "country": rng.choice(["DE", "de", "US"]),
                      "type": rng.choice(["work", "home"])} for _ in range(rng.choice([0, 1, 2]))]
        if addresses:
            r["addresses"] = addresses
        ent = {k: rng.choice(WORDS) for k in ("department", "costCenter") if rng.random() < 0.5}
        if ent:
            r[ENTERPRISE_USER] = ent
            r["schemas"] = [CORE_USER, ENTERPRISE_USER]
        profile: dict[str, Any] | None = None
        if rng.random() < 0.7:
            profile = {}
            if rng.random() < 0.7:
                profile["skills"] = rng.sample(WORDS, rng.randint(0, 3))
            if rng.random() < 0.7:
                profile["completeness"] = rng.choice([0, 10, 50, 75, 100])
            if rng.random() < 0.5:
                profile["publicProfile"] = {"enabled": rng.random() < 0.5, "slug": rng.choice(WORDS)}
        created = BASE + timedelta(days=rng.randint(0, 60), seconds=rng.randint(0, 86399),
                                   microseconds=rng.choice([0, 500000]))
        users.append({
            "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "externalId": rng.choice(["AbC", "abc", "ABC-1", None]),
            "resource": r, "profile": profile, "created": created,
            "last_modified": created + timedelta(hours=rng.randint(0, 500)),
        })
    for u in users:
        u["manager_id"] = rng.choice(users)["id"] if rng.random() < 0.5 else None
    return users


async def _load(engine: AsyncEngine, seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rng = random.Random(seed)
    users = _users(rng)
    groups = [{"id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
               "displayName": f"{rng.choice(WORDS) or 'g'} Group {n}",
               "externalId": rng.choice(["G1", "g1", None]),
               "created": BASE + timedelta(days=n)} for n in range(20)]
    members: dict[str, dict[str, str]] = {}
    for g in groups:
        picks = {u["id"]: "User" for u in rng.sample(users, rng.randint(0, 30))}
        if rng.random() < 0.3:
            other = rng.choice(groups)
            if other is not g:
                picks[other["id"]] = "Group"
        members[g["id"]] = picks

    user_rows, email_rows = [], []
    for u in users:
        r = u["resource"]
        emails = emails_of(r)
        primary = next((e["value_lower"] for e in emails if e["primary"]), None)
        user_rows.append({
            "id": u["id"], "origin": "ldap", "anchor": u["id"], "dn": f"uid={u['id']}",
            "dn_norm": f"uid={u['id']}", "user_name": r["userName"],
            "user_name_lower": r["userName"].lower(), "external_id": u["externalId"],
            "display_name": r.get("displayName"),
            "primary_email": primary or (emails[0]["value_lower"] if emails else None),
            "active": r["active"], "resource": r, "profile": u["profile"],
            "manager_id": u["manager_id"], "content_hash": "x", "version": 1,
            "created": u["created"], "last_modified": u["last_modified"],
        })
        email_rows += [{"user_id": u["id"], **e} for e in emails]
    group_rows = [{
        "id": g["id"], "origin": "local", "anchor": None, "display_name": g["displayName"],
        "display_name_lower": g["displayName"].lower(), "external_id": g["externalId"],
        "resource": {"schemas": [CORE_GROUP], "displayName": g["displayName"]},
        "content_hash": "x", "version": 1, "created": g["created"], "last_modified": g["created"],
    } for g in groups]
    member_rows = [{"group_id": gid, "member_id": mid, "member_type": t}
                   for gid, picks in members.items() for mid, t in picks.items()]
    async with engine.begin() as conn:
        await conn.execute(insert(USERS), user_rows)
        await conn.execute(insert(EMAILS), email_rows)
        await conn.execute(insert(GROUPS), group_rows)
        await conn.execute(insert(MEMBERS), member_rows)

    by_id = {g["id"]: g for g in groups}
    user_docs = []
    for u in users:
        doc = {**u["resource"], "id": u["id"]}
        if u["externalId"] is not None:
            doc["externalId"] = u["externalId"]
        if u["manager_id"]:
            doc.setdefault(ENTERPRISE_USER, {})
            doc[ENTERPRISE_USER] = {**doc[ENTERPRISE_USER], "manager": {"value": u["manager_id"]}}
        if u["profile"] is not None:
            doc[PROFILE_USER] = u["profile"]
        doc["groups"] = [{"value": gid, "display": by_id[gid]["displayName"], "type": "direct"}
                         for gid, picks in members.items() if u["id"] in picks]
        doc["meta"] = {"resourceType": "User", "created": u["created"],
                       "lastModified": u["last_modified"]}
        user_docs.append(doc)
    group_docs = []
    for g in groups:
        doc = {"id": g["id"], "displayName": g["displayName"],
               "members": [{"value": m, "type": t} for m, t in members[g["id"]].items()],
               "meta": {"resourceType": "Group", "created": g["created"],
                        "lastModified": g["created"]}}
        if g["externalId"] is not None:
            doc["externalId"] = g["externalId"]
        group_docs.append(doc)
    return user_docs, group_docs


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def data(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DataSet]:
    """The shared data set in a fresh store of each backend (like ``store_url``, per module)."""
    with asyncio.Runner() as runner:
        if request.param == "sqlite":
            path: Path = tmp_path_factory.mktemp("filters") / "store.db"
            yield from _with_store(runner, f"sqlite+aiosqlite:///{path}", "sqlite")
            return
        admin_url: str = request.getfixturevalue("pg_admin_url")
        with postgres.fresh_database(admin_url) as url:
            yield from _with_store(runner, url, "postgresql")


def _with_store(runner: asyncio.Runner, url: str, dialect: str) -> Iterator[DataSet]:
    engine = create_engine(StoreSettings(url=url))
    try:
        runner.run(upgrade(engine))
        users, groups = runner.run(_load(engine, seed=20240601))
        yield DataSet(engine, runner, dialect, users, groups)
    finally:
        runner.run(engine.dispose())


# ---------------------------------------------------------------------------------------------
# Explicit examples


def _check(data: DataSet, text: str, resource_type: str = "User") -> set[str]:
    from syncsvc.scim.filters import parse_filter

    got = data.ids(resource_type, text)
    assert got == data.expected(resource_type, parse_filter(text)), text
    return got


OPERATOR_EXAMPLES = [
    'userName eq "BJENSEN7"', 'userName ne "bjensen7"', 'userName co "JEN"', 'userName sw "ÉMILE"',
    'userName ew "1"', 'userName gt "o"', 'userName ge "user"', 'userName lt "bj"', 'userName le "émile"',
    'userName pr', 'displayName co "AL"', 'displayName sw "gam%"', 'displayName co "del_t"',
    'title eq ""', 'title pr', 'title eq null', 'title ne null', 'title co "\\""',
    'externalId eq "abc"', 'externalId eq "ABC"', 'externalId co "b"', 'externalId sw "A"',
    'externalId ew "C"', 'id pr', 'active eq true', 'active eq False', 'active ne true',
    'name.familyName co "ph"', 'name pr', 'not (name pr)', 'emails co "EXAMPLE"',
    'emails.value ew ".org"', 'emails.type eq "other"', 'emails.primary eq true', 'emails pr',
    'emails.display pr', 'emails.display co "a"', 'emails[type eq "work" and value co "@x"]',
    'emails[type eq "work"].value co "x.org"', 'emails[not (primary eq true)]',
    'phoneNumbers.value sw "+1"', 'phoneNumbers[type eq "mobile" and value co "5"]',
    'addresses[country eq "de" and locality pr]', 'addresses.country eq "US"',
    'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "alpha"',
    'department co "A"', f'{ENTERPRISE_USER}:manager.value pr', f'{ENTERPRISE_USER}:manager pr',
    f'{PROFILE_USER}:skills eq "x*y"', 'skills co "[z"', 'skills pr', 'skills eq null',
    'completeness gt 50', 'completeness le 10', 'completeness eq 75', 'completeness ge 50.5',
    'publicProfile.enabled eq true', 'publicProfile[enabled eq false and slug sw "a"]',
    'meta.created gt "2024-02-01T00:00:00Z"', 'meta.created le "2024-02-01T01:00:00+01:00"',
    'meta.lastModified ge "2024-01-20"', 'meta.resourceType eq "User"', 'meta.resourceType eq "user"',
    'groups pr', 'groups[display sw "alpha"]', 'groups.type eq "direct"', 'not (groups pr)',
    'meta.resourceType co "se"', 'groups.type sw "DIR"',
    'urn:ietf:params:scim:schemas:core:2.0:User:userName sw "zo"', 'USERNAME SW "ZO"',
    'title eq "alpha" or title eq "beta" and active eq true',
    '(title eq "alpha" or title eq "beta") and active eq true',
]


class TestExamples:
    @pytest.mark.parametrize("text", OPERATOR_EXAMPLES)
    def test_operator_examples_match_the_oracle(self, data: DataSet, text: str) -> None:
        """Each operator, type and attribute kind gives the oracle's answer."""
        _check(data, text)

    def test_examples_are_not_vacuous(self, data: DataSet) -> None:
        """The data set makes most examples select some but not all users."""
        sizes = [len(_check(data, t)) for t in OPERATOR_EXAMPLES]
        assert sum(0 < n < 300 for n in sizes) >= len(sizes) * 3 // 4, sizes

    def test_precedence_and_binds_tighter_than_or(self, data: DataSet) -> None:
        """``a or b and c`` is ``a or (b and c)`` (RFC 7644 §3.4.2.2)."""
        loose = data.ids("User", 'title eq "alpha" or title eq "beta" and active eq true')
        tight = data.ids("User", 'title eq "alpha" or (title eq "beta" and active eq true)')
        wrong = data.ids("User", '(title eq "alpha" or title eq "beta") and active eq true')
        assert loose == tight != wrong

    def test_rfc7644_examples(self, data: DataSet) -> None:
        """The example filters of RFC 7644 §3.4.2.2 run (adapted to attributes we store)."""
        for text in [
            'userName Eq "john"', 'name.familyName co "O\'Malley"', 'userName sw "J"',
            f'{CORE_USER}:userName sw "J"', 'title pr', 'meta.lastModified gt "2011-05-13T04:42:34Z"',
            'meta.lastModified ge "2011-05-13T04:42:34Z"', 'meta.lastModified lt "2011-05-13T04:42:34Z"',
            'meta.lastModified le "2011-05-13T04:42:34Z"', 'title pr and userType eq "Employee"',
            'title pr or userType eq "Intern"',
            'schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"',
            'userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")',
            'userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")',
            'userType eq "Employee" and (emails.type eq "work")',
            'userType eq "Employee" and emails[type eq "work" and value co "@example.com"]',
            ('emails[type eq "work" and value co "@example.com"] or '
             'ims[type eq "xmpp" and value co "@foo.com"]'),
        ]:
            _check(data, text)

    def test_group_filters(self, data: DataSet) -> None:
        """Groups: displayName (folded column), members EXISTS, externalId, meta."""
        some_user = data.users[0]["id"]
        for text in ['displayName co "GROUP 1"', 'displayName eq "alpha group 3"',
                     f'members.value eq "{some_user.upper()}"', f'members[value eq "{some_user}"]',
                     'members.type eq "group"', 'members pr', 'not (members pr)',
                     'externalId eq "g1"', 'meta.created ge "2024-01-10T00:00:00Z"',
                     'meta.resourceType eq "Group"']:
            _check(data, text, "Group")

    def test_groups_value_finds_members(self, data: DataSet) -> None:
        """``groups.value eq <id>`` is the members of that group."""
        group = next(g for g in data.groups if g["members"])
        members = {m["value"] for m in group["members"] if m["type"] == "User"}
        assert members == data.ids("User", f'groups.value eq "{group["id"]}"')

    def test_bad_filters_raise_invalid_filter(self, data: DataSet) -> None:
        """Type errors and unknown attributes are refused before any SQL runs."""
        for text in ['active gt true', 'foo eq "x"', 'userName eq 1', 'completeness co "1"',
                     'meta.created gt "yesterday"', 'name eq "x"', 'emails[foo eq "x"]',
                     'password eq "x"', 'userName gt null']:
            with pytest.raises(InvalidFilter):
                data.ids("User", text)

    @pytest.mark.parametrize("sort_by", ["userName", "displayName", "emails", "name.familyName",
                                         "meta.created", "meta.lastModified", "externalId", "id",
                                         "title", "completeness", "active"])
    def test_sort_orders_like_python(self, data: DataSet, sort_by: str) -> None:
        """sortBy orders by the folded value, code point order, missing values last, id ties."""
        async def run(descending: bool) -> list[str]:
            query = select(USERS.c.id).order_by(*order_by("User", sort_by, descending, data.dialect))
            async with data.engine.connect() as conn:
                return list((await conn.execute(query)).scalars())

        def key(doc: dict[str, Any]) -> Any:
            value: Any = doc
            for part in {"emails": ["emails"], "name.familyName": ["name", "familyName"],
                         "meta.created": ["meta", "created"], "meta.lastModified": ["meta", "lastModified"],
                         "completeness": [PROFILE_USER, "completeness"]}.get(sort_by, [sort_by]):
                value = value.get(part) if isinstance(value, dict) else None
            if sort_by == "emails":
                emails = value or []
                value = next((e["value"] for e in emails if e.get("primary")),
                             emails[0]["value"] if emails else None)
            if isinstance(value, str) and sort_by not in ("externalId", "id"):
                value = value.lower()
            return value

        docs = sorted(data.users, key=lambda d: d["id"])
        present = [d for d in docs if key(d) is not None]
        missing = [d["id"] for d in docs if key(d) is None]
        ascending = [d["id"] for d in sorted(present, key=key)] + missing
        assert ascending == data.runner.run(run(False))
        descending = missing + [d["id"] for d in sorted(present, key=key, reverse=True)]
        # Equal keys keep id order in both directions.
        got = data.runner.run(run(True))
        assert [key(next(d for d in docs if d["id"] == i)) for i in got] == \
            [key(next(d for d in docs if d["id"] == i)) for i in descending]


# ---------------------------------------------------------------------------------------------
# Property: random filters, SQL == oracle


@dataclass(frozen=True)
class Spec:
    path: str
    kind: str  # string | boolean | number | dateTime | complex
    values: tuple[Any, ...] = ()


STRINGS = tuple(WORDS) + ("BJ", "émile", "zoë", "EXAMPLE.COM", ".org", "@x", "+1", "de", "abc", "ABC")
INSTANTS = ("2024-01-15T00:00:00Z", "2024-02-01T12:30:00+02:00", "2024-01-31T23:59:59.5-01:00",
            "2024-03-01")
USER_SPECS = [
    Spec("userName", "string", STRINGS + ("bjensen1", "Émile2")),
    Spec("urn:ietf:params:scim:schemas:core:2.0:User:USERNAME", "string", STRINGS),
    Spec("displayName", "string", STRINGS), Spec("title", "string", STRINGS),
    Spec("name.givenName", "string", STRINGS), Spec("NAME.familyName", "string", STRINGS),
    Spec("name", "complex"), Spec("externalId", "string", ("AbC", "abc", "ABC-1", "b", "A")),
    Spec("active", "boolean", (True, False)),
    Spec("emails", "string", STRINGS), Spec("emails.value", "string", STRINGS),
    Spec("emails.type", "string", ("work", "WORK", "other", "home")),
    Spec("emails.primary", "boolean", (True, False)), Spec("emails.display", "string", STRINGS),
    Spec("phoneNumbers.value", "string", ("+1", "+4", "5", " ")),
    Spec("phoneNumbers.type", "string", ("mobile", "work")),
    Spec("addresses.country", "string", ("de", "DE", "us", "d")),
    Spec("addresses.locality", "string", STRINGS),
    Spec(f"{ENTERPRISE_USER}:department", "string", STRINGS),
    Spec("costCenter", "string", STRINGS),
    Spec("skills", "string", STRINGS), Spec(f"{PROFILE_USER}:completeness", "number", (0, 10, 50, 50.5, 100, -1)),
    Spec("publicProfile.enabled", "boolean", (True, False)),
    Spec("publicProfile.slug", "string", STRINGS),
    Spec("meta.created", "dateTime", INSTANTS), Spec("meta.lastModified", "dateTime", INSTANTS),
    Spec("meta.resourceType", "string", ("User", "user", "Group", "se", "Us")),
    Spec("groups.display", "string", STRINGS), Spec("groups.type", "string", ("direct", "Direct", "dir", "ECT")),
    Spec("groups", "complex"),
]
VALUE_PATHS = {
    "emails": [Spec("value", "string", STRINGS), Spec("type", "string", ("work", "Other")),
               Spec("primary", "boolean", (True, False)), Spec("display", "string", STRINGS)],
    "phoneNumbers": [Spec("value", "string", ("+1", "2")), Spec("type", "string", ("mobile", "work"))],
    "addresses": [Spec("country", "string", ("de", "US")), Spec("locality", "string", STRINGS),
                  Spec("type", "string", ("work", "home"))],
    "publicProfile": [Spec("enabled", "boolean", (True, False)), Spec("slug", "string", STRINGS)],
    "name": [Spec("givenName", "string", STRINGS), Spec("familyName", "string", STRINGS)],
    "groups": [Spec("display", "string", STRINGS), Spec("type", "string", ("direct",))],
}
OPS = {"string": ("eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"), "boolean": ("eq", "ne"),
       "number": ("eq", "ne", "gt", "ge", "lt", "le"), "dateTime": ("eq", "ne", "gt", "ge", "lt", "le"),
       "complex": ()}


def _split(path: str) -> AttrPath:
    uri, _, rest = path.rpartition(":")
    attr, _, sub = rest.partition(".")
    return AttrPath(attr, sub or None, uri or None)


@st.composite
def attr_exp(draw: st.DrawFn, specs: list[Spec], inner: bool = False) -> Filter:
    spec = draw(st.sampled_from(specs))
    path = AttrPath(spec.path) if inner else _split(spec.path)
    # Hypothesis leans towards the first choice: put the plain comparisons first.
    op = draw(st.sampled_from(OPS[spec.kind] + ("pr",) + (() if spec.kind == "complex" else ("null",))))
    if op == "pr":
        return Present(path)
    if op == "null":
        return Compare(path, draw(st.sampled_from(("eq", "ne"))), None)
    return Compare(path, op, draw(st.sampled_from(spec.values)))


def _combine(children: st.SearchStrategy[Filter]) -> st.SearchStrategy[Filter]:
    return st.one_of(
        st.lists(children, min_size=2, max_size=3).map(lambda xs: Or(tuple(xs))),
        st.lists(children, min_size=2, max_size=3).map(lambda xs: And(tuple(xs))),
        children.map(Not),
    )


def _flat(node: Filter) -> Filter:
    """And-in-And / Or-in-Or are one n-ary node, as the parser returns them."""
    match node:
        case And(items):
            return And(tuple(y for x in map(_flat, items) for y in (x.items if isinstance(x, And) else (x,))))
        case Or(items):
            return Or(tuple(y for x in map(_flat, items) for y in (x.items if isinstance(x, Or) else (x,))))
        case Not(item):
            return Not(_flat(item))
        case ValuePath(path, inner):
            return ValuePath(path, _flat(inner))
    return node


def value_path(names: list[str]) -> st.SearchStrategy[Filter]:
    return st.sampled_from(names).flatmap(
        lambda name: st.recursive(attr_exp(VALUE_PATHS[name], inner=True), _combine, max_leaves=3)
        .map(lambda inner: ValuePath(AttrPath(name), inner))
    )


# Each property run focuses on one family of attributes (mixed with all the others), so that
# every family gets examples even at a small budget.
FOCUS = {
    "core": (["userName", "urn:ietf:params:scim:schemas:core:2.0:User:USERNAME", "displayName",
              "title", "externalId", "active"], ["name"]),
    "name": (["name.givenName", "NAME.familyName", "name"], ["name"]),
    "emails": (["emails", "emails.value", "emails.type", "emails.primary", "emails.display"],
               ["emails"]),
    "json-arrays": (["phoneNumbers.value", "phoneNumbers.type", "addresses.country",
                     "addresses.locality"], ["phoneNumbers", "addresses"]),
    "extensions": ([f"{ENTERPRISE_USER}:department", "costCenter", "skills",
                    f"{PROFILE_USER}:completeness", "publicProfile.enabled", "publicProfile.slug"],
                   ["publicProfile"]),
    "meta-groups": (["meta.created", "meta.lastModified", "meta.resourceType", "groups.display",
                     "groups.type", "groups"], ["groups"]),
}


def user_filters(focus: str) -> st.SearchStrategy[Filter]:
    paths, value_paths = FOCUS[focus]
    specs = [s for s in USER_SPECS if s.path in paths]
    assert len(specs) == len(paths), focus
    leaf = st.one_of(attr_exp(specs), attr_exp(specs), attr_exp(USER_SPECS), value_path(value_paths))
    return st.recursive(leaf, _combine, max_leaves=5).map(_flat)


def _case(draw: st.DrawFn, word: str) -> str:
    return draw(st.sampled_from((word, word.upper(), word.capitalize())))


@st.composite
def rendered(draw: st.DrawFn, node: Filter) -> str:
    """Filter text for ``node``: random case and spacing, parentheses where needed (or more)."""
    def lit(value: Any) -> str:
        if value is None or isinstance(value, bool):
            return _case(draw, json.dumps(value))
        return json.dumps(value, ensure_ascii=draw(st.booleans()))

    def path(p: AttrPath) -> str:
        text = str(p)
        return text if draw(st.booleans()) else text.swapcase()

    def go(n: Filter, parent: str) -> str:
        match n:
            case Present(p):
                text = f"{path(p)} {_case(draw, 'pr')}"
            case Compare(p, op, value):
                text = f"{path(p)} {_case(draw, op)} {lit(value)}"
            case Not(item):
                return f"{_case(draw, 'not')} ({go(item, 'not')})"
            case ValuePath(p, inner):
                text = f"{path(p)}[{go(inner, 'vp')}]"
            case And(items):
                text = f" {_case(draw, 'and')} ".join(go(i, "and") for i in items)
                if parent == "and":  # only a flattened tree avoids this
                    return f"({text})"
            case Or(items):
                text = f" {_case(draw, 'or')} ".join(go(i, "or") for i in items)
                if parent == "and":
                    return f"({text})"
        return f"({text})" if draw(st.integers(0, 5)) == 0 else text

    return go(node, "top")


@pytest.mark.parametrize("focus", sorted(FOCUS))
# No shrinking: a failure is reported as found (its filter text is in the message), quickly.
@settings(max_examples=25, deadline=None, derandomize=True, database=None,
          phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.data())
def test_random_user_filters_agree_with_the_oracle(data: DataSet, focus: str, draw: st.DataObject) -> None:
    """For generated filters, SQL on the real backend returns exactly the oracle's ids."""
    nodes = draw.draw(st.lists(user_filters(focus), min_size=4, max_size=4), label="filters")
    # Draw everything before checking anything: the draws must not depend on the outcome.
    texts = [draw.draw(rendered(node), label="text") for node in nodes]
    wrong = [t for n, t in zip(nodes, texts, strict=True)
             if data.ids("User", t) != data.expected("User", n)]
    assert not wrong, f"SQL and oracle disagree on: {wrong}"


GROUP_SPECS = [
    Spec("displayName", "string", STRINGS + ("alpha group 3", "Group 1")),
    Spec("externalId", "string", ("G1", "g1")), Spec("members.type", "string", ("User", "group")),
    Spec("members", "complex"), Spec("meta.created", "dateTime", INSTANTS),
]


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.data())
def test_random_group_filters_agree_with_the_oracle(data: DataSet, draw: st.DataObject) -> None:
    """The same for Groups."""
    node = draw.draw(st.recursive(attr_exp(GROUP_SPECS), _combine, max_leaves=4).map(_flat))
    text = draw.draw(rendered(node))
    assert data.ids("Group", text) == data.expected("Group", node), text
