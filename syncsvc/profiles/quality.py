"""The directory-quality report: how complete and how consistent the directory is.

Every downstream tool inherits the directory's gaps; this report names them. Everything is
computed by SQL aggregates in the store (one ``GROUP BY`` for completeness, one per issue, plus
small samples), so it costs a few table scans at 100k users, never a load of the table into
Python.

What it measures:

- **completeness** of :data:`FIELDS` over *active* users, overall and by department
  (``enterprise.department``; users without one are counted under ``null``);
- a **score** per user: the share of :data:`FIELDS` present, 0-100, and the mean over active
  users (the overall score); the lowest scores are listed with what they lack;
- **issues**: broken manager references (an LDAP manager DN that resolved to nobody) and users
  without any group, both among active users; duplicate e-mail addresses and userNames
  (case-insensitive, among all users); inactive users still in groups; the entries the latest
  finished full sync could not map.

A user with no manager by design (the head of the organisation) still loses that field's
points: the score measures data present, not data owed.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import (
    ColumnElement,
    Integer,
    and_,
    case,
    exists,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from syncsvc.domain import RunMode, RunStatus
from syncsvc.profiles._json import Json as _Json
from syncsvc.scim.schema import ENTERPRISE_USER
from syncsvc.store.schema import GroupMemberRow, SyncProblemRow, SyncRunRow, UserEmailRow, UserRow

__all__ = ["FIELDS", "quality_report", "report_csv", "report_table"]

_U = UserRow.__table__.c
_M = GroupMemberRow.__table__.c
_E = UserEmailRow.__table__.c


Predicate = Callable[[_Json], ColumnElement[bool]]

FIELDS: Final[Mapping[str, Predicate]] = {
    "title": lambda j: j.filled(_U.resource, "title"),
    "email": lambda j: func.coalesce(_U.primary_email, "") != "",
    "phone": lambda j: j.array_len(_U.resource, "phoneNumbers") > 0,
    "manager": lambda j: _U.manager_id.is_not(None),
    "department": lambda j: j.filled(_U.resource, ENTERPRISE_USER, "department"),
    "location": lambda j: or_(j.filled(_U.profile, "location"),
                              j.array_len(_U.resource, "addresses") > 0),
    "photo": lambda j: or_(j.filled(_U.profile, "photo", "url"), _U.photo_hash.is_not(None),
                           j.array_len(_U.resource, "photos") > 0),
    "headline": lambda j: j.filled(_U.profile, "headline"),
    "bio": lambda j: j.filled(_U.profile, "bio"),
    "skills": lambda j: j.array_len(_U.profile, "skills") > 0,
}
"""The fields a complete profile has; each is worth the same share of a user's score."""


def _share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def _score(hits: float | None, fields: int) -> float:
    return round(100.0 * float(hits or 0) / fields, 1) if fields else 0.0


def _per_user(j: _Json) -> Any:
    """A subquery of active users: id, names, department, one 0/1 column per field, hits.

    Aggregates run over this subquery rather than over the expressions themselves: PostgreSQL
    matches GROUP BY expressions by their text, and two copies of one JSON path carry different
    bind parameters.
    """
    flags = {name: case((pred(j), 1), else_=0) for name, pred in FIELDS.items()}
    hits = sum(flags.values(), start=literal(0, Integer))
    department = func.nullif(func.trim(j.text(_U.resource, ENTERPRISE_USER, "department")), "")
    return (
        select(_U.id, _U.user_name, _U.user_name_lower, department.label("dept"),
               *(flag.label(name) for name, flag in flags.items()), hits.label("hits"))
        .where(_U.active)
        .subquery("per_user")
    )


async def _completeness(conn: AsyncConnection, per_user: Any) -> dict[str, Any]:
    """One scan: users and field counts per (department, hits); the rest is summed here."""
    p = per_user.c
    rows = list(await conn.execute(
        select(p.dept, p.hits, func.count().label("users"),
               *(func.sum(p[name]).label(name) for name in FIELDS))
        .group_by(p.dept, p.hits)))
    n = len(FIELDS)
    depts: dict[str | None, dict[str, int]] = {}
    histogram: dict[int, int] = {}
    for r in rows:
        users, hits = int(r.users), int(r.hits or 0)
        histogram[hits] = histogram.get(hits, 0) + users
        acc = depts.setdefault(r.dept, {"users": 0, "hits": 0, **dict.fromkeys(FIELDS, 0)})
        acc["users"] += users
        acc["hits"] += hits * users
        for name in FIELDS:
            acc[name] += int(getattr(r, name) or 0)
    total = sum(acc["users"] for acc in depts.values())
    overall = {name: sum(acc[name] for acc in depts.values()) for name in FIELDS}
    order = sorted(depts, key=lambda d: (d is None, d or ""))
    return {
        "score": _score(sum(acc["hits"] for acc in depts.values()) / total, n) if total else 0.0,
        "fields": {name: {"count": overall[name], "share": _share(overall[name], total)}
                   for name in FIELDS},
        "departments": [
            {"department": d, "users": depts[d]["users"],
             "score": _score(depts[d]["hits"] / depts[d]["users"], n),
             "completeness": {name: _share(depts[d][name], depts[d]["users"]) for name in FIELDS}}
            for d in order
        ],
        "scores": {str(_score(h, n)): histogram[h] for h in sorted(histogram)},
    }


async def _lowest(conn: AsyncConnection, per_user: Any, limit: int) -> list[dict[str, Any]]:
    p = per_user.c
    query = select(per_user).order_by(p.hits, p.user_name_lower).limit(limit)
    return [
        {"id": r.id, "userName": r.user_name, "department": r.dept,
         "score": _score(r.hits, len(FIELDS)),
         "missing": [name for name in FIELDS if not getattr(r, name)]}
        for r in await conn.execute(query)
    ]


async def _count_and_sample(
    conn: AsyncConnection, base: Any, order: Sequence[Any], limit: int
) -> tuple[int, list[Any]]:
    sub = base.subquery()
    count = int(await conn.scalar(select(func.count()).select_from(sub)) or 0)
    sample = list(await conn.execute(base.order_by(*order).limit(limit))) if count else []
    return count, sample


async def _issues(conn: AsyncConnection, limit: int) -> dict[str, Any]:
    in_group = exists().where(_M.member_id == _U.id, _M.member_type == "User")
    out: dict[str, Any] = {}

    count, rows = await _count_and_sample(
        conn,
        select(_U.id, _U.user_name, _U.manager_dn_norm)
        .where(_U.active, _U.manager_dn_norm.is_not(None), _U.manager_id.is_(None)),
        [_U.user_name_lower], limit)
    out["brokenManagers"] = {"count": count, "sample": [
        {"id": r.id, "userName": r.user_name, "managerDn": r.manager_dn_norm} for r in rows]}

    count, rows = await _count_and_sample(
        conn, select(_U.id, _U.user_name).where(_U.active, ~in_group), [_U.user_name_lower], limit)
    out["withoutGroups"] = {"count": count, "sample": [
        {"id": r.id, "userName": r.user_name} for r in rows]}

    count, rows = await _count_and_sample(
        conn,
        select(_U.id, _U.user_name, func.count(_M.group_id).label("groups"))
        .join_from(UserRow.__table__, GroupMemberRow.__table__,
                   and_(_M.member_id == _U.id, _M.member_type == "User"))
        .where(~_U.active)
        .group_by(_U.id, _U.user_name, _U.user_name_lower),
        [_U.user_name_lower], limit)
    out["inactiveInGroups"] = {"count": count, "sample": [
        {"id": r.id, "userName": r.user_name, "groups": int(r.groups)} for r in rows]}

    # An address two users share (any of their e-mails, case-insensitive).
    dup_emails = (select(_E.value_lower.label("value"),
                         func.count(func.distinct(_E.user_id)).label("users"))
                  .group_by(_E.value_lower)
                  .having(func.count(func.distinct(_E.user_id)) > 1))
    count, rows = await _count_and_sample(conn, dup_emails, [_E.value_lower], limit)
    sample = []
    for r in rows:
        names = await conn.scalars(
            select(_U.user_name).join_from(UserRow.__table__, UserEmailRow.__table__,
                                           _E.user_id == _U.id)
            .where(_E.value_lower == r.value).distinct().order_by(_U.user_name))
        sample.append({"email": r.value, "userNames": list(names)})
    out["duplicateEmails"] = {"count": count, "sample": sample}

    # user_name_lower is unique in the store, so this stays 0 unless that constraint is lifted;
    # userNames the directory repeats are refused by the sync and show under unmappedEntries.
    dup_names = (select(_U.user_name_lower.label("value"), func.count().label("users"))
                 .group_by(_U.user_name_lower).having(func.count() > 1))
    count, rows = await _count_and_sample(conn, dup_names, [_U.user_name_lower], limit)
    out["duplicateUserNames"] = {"count": count, "sample": [
        {"userName": r.value, "users": int(r.users)} for r in rows]}

    run = (await conn.execute(
        select(SyncRunRow.id, SyncRunRow.started, SyncRunRow.status)
        .where(SyncRunRow.mode == RunMode.FULL.value, SyncRunRow.status != RunStatus.RUNNING.value)
        .order_by(SyncRunRow.started.desc()).limit(1))).first()
    unmapped: dict[str, Any] = {"run": None, "count": 0, "sample": []}
    if run is not None:
        count, rows = await _count_and_sample(
            conn, select(SyncProblemRow.dn, SyncProblemRow.reason)
            .where(SyncProblemRow.run_id == run.id), [SyncProblemRow.id], limit)
        started = run.started if run.started.tzinfo else run.started.replace(tzinfo=UTC)
        unmapped = {"run": {"id": run.id, "started": started.isoformat(), "status": run.status},
                    "count": count,
                    "sample": [{"dn": r.dn, "reason": r.reason} for r in rows]}
    out["unmappedEntries"] = unmapped
    return out


async def quality_report(conn: AsyncConnection, *, limit: int = 20) -> dict[str, Any]:
    """The report as JSON-ready data; ``limit`` bounds every list of examples.

    Shape: ``generated``, ``users`` (total, active, inactive), ``score`` (mean over active
    users, 0-100), ``fields`` (name -> count and share of active users), ``departments``
    (department, users, score, completeness by field), ``scores`` (score -> users),
    ``lowestScores`` (id, userName, department, score, missing), ``issues`` (each a count and
    a sample).
    """
    j = _Json(conn.dialect.name)
    totals = (await conn.execute(
        select(func.count(), func.sum(case((_U.active, 1), else_=0))))).one()
    total, active = int(totals[0] or 0), int(totals[1] or 0)
    per_user = _per_user(j)
    parts = await _completeness(conn, per_user)
    return {
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "users": {"total": total, "active": active, "inactive": total - active},
        **parts,
        "lowestScores": await _lowest(conn, per_user, limit),
        "issues": await _issues(conn, limit),
    }


def _rows(report: Mapping[str, Any]) -> Iterator[tuple[str, str, str, Any]]:
    """The report flattened to (section, name, metric, value) rows."""
    for key, value in report["users"].items():
        yield "users", "", key, value
    yield "score", "", "overall", report["score"]
    for name, numbers in report["fields"].items():
        yield "field", name, "count", numbers["count"]
        yield "field", name, "share", numbers["share"]
    for dept in report["departments"]:
        label = dept["department"] or ""
        yield "department", label, "users", dept["users"]
        yield "department", label, "score", dept["score"]
        for name, share in dept["completeness"].items():
            yield "department", label, name, share
    for name, issue in report["issues"].items():
        yield "issue", name, "count", issue["count"]
    for user in report["lowestScores"]:
        yield "user", user["userName"], "score", user["score"]
        yield "user", user["userName"], "missing", " ".join(user["missing"])


def report_csv(report: Mapping[str, Any]) -> str:
    """CSV with the header ``section,name,metric,value``: one number per row."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["section", "name", "metric", "value"])
    writer.writerows(_rows(report))
    return out.getvalue()


def _pct(share: float) -> str:
    return f"{100 * share:5.1f}%"


def report_table(report: Mapping[str, Any]) -> str:
    """A plain-text summary for a terminal."""
    users = report["users"]
    summary = (f"Directory quality: score {report['score']:.1f}/100 over {users['active']} "
               f"active users ({users['inactive']} inactive)")
    lines = [summary, "", "Completeness (active users)"]
    for name, numbers in report["fields"].items():
        lines.append(f"  {name:<12} {_pct(numbers['share'])}  ({numbers['count']})")
    names = list(report["fields"])
    lines += ["", "By department"]
    head = f"  {'department':<20} {'users':>6} {'score':>6} " + " ".join(f"{n[:8]:>8}" for n in names)
    lines.append(head)
    for dept in report["departments"]:
        label = (dept["department"] or "(none)")[:20]
        cells = " ".join(f"{_pct(dept['completeness'][n]):>8}" for n in names)
        lines.append(f"  {label:<20} {dept['users']:>6} {dept['score']:>6.1f} {cells}")
    lines += ["", "Issues"]
    for name, issue in report["issues"].items():
        lines.append(f"  {name:<20} {issue['count']:>6}")
        for item in issue["sample"][:5]:
            lines.append(f"    - {', '.join(f'{k}={v}' for k, v in item.items() if k != 'id')}")
    if report["lowestScores"]:
        lines += ["", "Lowest scores"]
        for user in report["lowestScores"]:
            lines.append(f"  {user['score']:5.1f}  {user['userName']:<24} "
                         f"missing: {', '.join(user['missing']) or '-'}")
    return "\n".join(lines) + "\n"
