"""The SQL schema: one schema, two engines (SQLite and PostgreSQL).

Hot SCIM attributes are real, indexed columns; the whole resource is kept as JSON. Columns a
sync needs to find rows (anchor, normalised DN) are indexed too. Migrations in
``syncsvc/store/migrations`` mirror this module.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "EMAILS",
    "GROUPS",
    "MEMBERS",
    "OUTBOX",
    "PHOTOS",
    "PUSH_RESOURCES",
    "PUSH_TARGETS",
    "USERS",
    "ApiTokenRow",
    "Base",
    "GroupMemberRow",
    "GroupRow",
    "PushOutboxRow",
    "PushResourceRow",
    "PushTargetRow",
    "SyncProblemRow",
    "SyncRunRow",
    "SyncStateRow",
    "UserEmailRow",
    "UserPhotoRow",
    "UserRow",
    "served_columns",
]

# JSONB on PostgreSQL (indexable, compact), plain JSON text on SQLite.
Json = JSON().with_variant(JSONB(), "postgresql")
Timestamp = DateTime(timezone=True)

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class UserRow(Base):
    """A SCIM User. ``origin`` is ``ldap`` (anchored, owned by the directory) or ``local``."""

    __tablename__ = "scim_user"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    origin: Mapped[str] = mapped_column(String(8))
    anchor: Mapped[str | None] = mapped_column(String(255), unique=True)
    dn: Mapped[str | None] = mapped_column(Text)
    dn_norm: Mapped[str | None] = mapped_column(Text, index=True)
    user_name: Mapped[str] = mapped_column(String(255))
    # userName is caseExact=false (RFC 7643 §4.1.1): uniqueness and filters use the folded form.
    user_name_lower: Mapped[str] = mapped_column(String(255), unique=True)
    external_id: Mapped[str | None] = mapped_column(String(255), index=True)
    # Indexed although filters compare lower(display_name): SQLite counts a filter's matches
    # (`displayName co "an"`: 9 ms at 100k users, 80-108 ms without it) by scanning this index
    # alone instead of the table's wide rows.
    display_name: Mapped[str | None] = mapped_column(String(255), index=True)
    primary_email: Mapped[str | None] = mapped_column(String(320), index=True)
    active: Mapped[bool] = mapped_column(Boolean, index=True)
    resource: Mapped[dict[str, Any]] = mapped_column(Json)
    # Owned by syncsvc, never written by a sync (see DESIGN.md, ownership).
    profile: Mapped[dict[str, Any] | None] = mapped_column(Json)
    # profile.publicProfile.slug, lower-cased, as a real column: /p/{slug} looks it up by index
    # and two users cannot claim the same slug.
    public_slug: Mapped[str | None] = mapped_column(String(64), unique=True, index=True)
    # SHA-256 of the stored thumbnail (user_photo), None without one: the SCIM body shows the
    # thumbnail URL from it and the photo route's ETag is it, without loading the bytes.
    photo_hash: Mapped[str | None] = mapped_column(String(64))
    # Indexed: an incremental run resolves managers for the reports of the users it read.
    manager_dn_norm: Mapped[str | None] = mapped_column(Text, index=True)
    manager_id: Mapped[str | None] = mapped_column(String(36), index=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    created: Mapped[datetime] = mapped_column(Timestamp)
    last_modified: Mapped[datetime] = mapped_column(Timestamp, index=True)
    # Set when a full read no longer saw the entry and the user was deactivated.
    missing_since: Mapped[datetime | None] = mapped_column(Timestamp)


class UserEmailRow(Base):
    """One of a user's e-mail addresses, for filters such as ``emails.value eq ...``."""

    __tablename__ = "scim_user_email"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("scim_user.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[str] = mapped_column(String(320))
    value_lower: Mapped[str] = mapped_column(String(320), index=True)
    type: Mapped[str | None] = mapped_column(String(32))
    primary: Mapped[bool] = mapped_column(Boolean, default=False)


class UserPhotoRow(Base):
    """A user's thumbnail, made by the sync from the directory's photo (``syncsvc.enrich.photos``).

    ``source_hash`` is of the directory's bytes: an unchanged photo is neither re-resized nor
    rewritten.
    """

    __tablename__ = "user_photo"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("scim_user.id", ondelete="CASCADE"), primary_key=True
    )
    content_type: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    source_hash: Mapped[str] = mapped_column(String(64))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    updated: Mapped[datetime] = mapped_column(Timestamp)


class GroupRow(Base):
    """A SCIM Group; ``source_members`` keeps the directory's member DNs (and memberUids)."""

    __tablename__ = "scim_group"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    origin: Mapped[str] = mapped_column(String(8))
    anchor: Mapped[str | None] = mapped_column(String(255), unique=True)
    dn: Mapped[str | None] = mapped_column(Text)
    dn_norm: Mapped[str | None] = mapped_column(Text, index=True)
    display_name: Mapped[str] = mapped_column(String(255))
    display_name_lower: Mapped[str] = mapped_column(String(255), unique=True)
    external_id: Mapped[str | None] = mapped_column(String(255), index=True)
    resource: Mapped[dict[str, Any]] = mapped_column(Json)
    source_members: Mapped[dict[str, Any] | None] = mapped_column(Json)
    content_hash: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    created: Mapped[datetime] = mapped_column(Timestamp)
    last_modified: Mapped[datetime] = mapped_column(Timestamp, index=True)
    missing_since: Mapped[datetime | None] = mapped_column(Timestamp)

    # A User's groups (their ids and names) come from this index alone, never from the group's
    # wide row (its resource and member DNs): list pages read them for 100 users each.
    __table_args__ = (Index("ix_scim_group_id_display_name", "id", "display_name"),)


class GroupMemberRow(Base):
    """A resolved membership: a user or a nested group in a group."""

    __tablename__ = "scim_group_member"

    group_id: Mapped[str] = mapped_column(
        ForeignKey("scim_group.id", ondelete="CASCADE"), primary_key=True
    )
    member_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    member_type: Mapped[str] = mapped_column(String(8))

    # (member_id, group_id): a user's memberships from the index alone (list pages).
    __table_args__ = (Index("ix_scim_group_member_member_id_group_id", "member_id", "group_id"),)


class SyncRunRow(Base):
    """One sync run, its outcome and its counts."""

    __tablename__ = "sync_run"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    mode: Mapped[str] = mapped_column(String(16))
    method: Mapped[str] = mapped_column(String(16))  # paged | timestamp | usn | contentsync
    trigger: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), index=True)
    started: Mapped[datetime] = mapped_column(Timestamp, index=True)
    ended: Mapped[datetime | None] = mapped_column(Timestamp)
    read: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    deactivated: Mapped[int] = mapped_column(Integer, default=0)
    deleted: Mapped[int] = mapped_column(Integer, default=0)
    problems: Mapped[int] = mapped_column(Integer, default=0)
    detail: Mapped[str | None] = mapped_column(Text)


class SyncProblemRow(Base):
    """A per-entry problem of a run: the entry's DN and what was wrong."""

    __tablename__ = "sync_problem"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(
        ForeignKey("sync_run.id", ondelete="CASCADE"), index=True
    )
    dn: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)


class SyncStateRow(Base):
    """Small durable state: high-water marks and content-sync cookies."""

    __tablename__ = "sync_state"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated: Mapped[datetime] = mapped_column(Timestamp)


class ApiTokenRow(Base):
    """A bearer token for the SCIM and admin APIs; only the SHA-256 of its secret is kept."""

    __tablename__ = "api_token"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    scopes: Mapped[str] = mapped_column(Text)  # comma-separated, sorted
    created: Mapped[datetime] = mapped_column(Timestamp)
    last_used: Mapped[datetime | None] = mapped_column(Timestamp)
    revoked: Mapped[datetime | None] = mapped_column(Timestamp)


# SQLite numbers a plain INTEGER PRIMARY KEY, not a BIGINT: the outbox sequence is 64-bit on
# PostgreSQL and SQLite's rowid (also 64-bit) there.
Sequence64 = BigInteger().with_variant(Integer(), "sqlite")


class PushOutboxRow(Base):
    """One change to a resource, written in the transaction that made it (transactional outbox).

    Push workers read it in ``seq`` order from their target's ``last_seq``; rows every target has
    passed are pruned. AUTOINCREMENT on SQLite: a pruned top row's seq is never handed out again.
    """

    __tablename__ = "push_outbox"
    __table_args__ = {"sqlite_autoincrement": True}

    seq: Mapped[int] = mapped_column(Sequence64, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(8))  # User | Group
    resource_id: Mapped[str] = mapped_column(String(36))
    op: Mapped[str] = mapped_column(String(8))  # upsert | delete
    created: Mapped[datetime] = mapped_column(Timestamp)


class PushTargetRow(Base):
    """Where one downstream target stands: its outbox cursor, health and quarantine."""

    __tablename__ = "push_target"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    initial_done: Mapped[bool] = mapped_column(Boolean, default=False)
    last_success: Mapped[datetime | None] = mapped_column(Timestamp)
    last_attempt: Mapped[datetime | None] = mapped_column(Timestamp)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    quarantined: Mapped[bool] = mapped_column(Boolean, default=False)
    quarantine_reason: Mapped[str | None] = mapped_column(Text)
    last_error: Mapped[str | None] = mapped_column(Text)


class PushResourceRow(Base):
    """One of our resources as a target knows it: its remote id and what was last sent."""

    __tablename__ = "push_resource"

    target: Mapped[str] = mapped_column(
        ForeignKey("push_target.name", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    resource_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    remote_id: Mapped[str | None] = mapped_column(Text)
    pushed_hash: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(8))  # ok | failed | removed
    last_error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[datetime] = mapped_column(Timestamp)


# The tables as Core objects, for bulk statements and queries that need no ORM.
USERS: Table = UserRow.__table__  # type: ignore[assignment]
GROUPS: Table = GroupRow.__table__  # type: ignore[assignment]
EMAILS: Table = UserEmailRow.__table__  # type: ignore[assignment]
MEMBERS: Table = GroupMemberRow.__table__  # type: ignore[assignment]
PHOTOS: Table = UserPhotoRow.__table__  # type: ignore[assignment]
OUTBOX: Table = PushOutboxRow.__table__  # type: ignore[assignment]
PUSH_TARGETS: Table = PushTargetRow.__table__  # type: ignore[assignment]
PUSH_RESOURCES: Table = PushResourceRow.__table__  # type: ignore[assignment]


@cache  # per table, once: group reads ask for them on every request
def served_columns(table: Table) -> tuple[Column[Any], ...]:
    """The columns a resource is rendered from (SCIM reads, push bodies): all but a group's
    ``source_members``, the directory's member DNs that only the sync resolves. They are
    megabytes for a large group: a page of 100 groups at 100k users read and decoded 6.1 MB
    of them, 34 ms, for nothing."""
    if table is GROUPS:
        return tuple(column for column in table.c if column.name != "source_members")
    return tuple(table.c)
