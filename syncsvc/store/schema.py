"""The SQL schema: one schema, two engines (SQLite and PostgreSQL).

Hot SCIM attributes are real, indexed columns; the whole resource is kept as JSON. Columns a
sync needs to find rows (anchor, normalised DN) are indexed too. Migrations in
``syncsvc/store/migrations`` mirror this module.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
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
    "USERS",
    "ApiTokenRow",
    "Base",
    "GroupMemberRow",
    "GroupRow",
    "SyncProblemRow",
    "SyncRunRow",
    "SyncStateRow",
    "UserEmailRow",
    "UserRow",
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
    display_name: Mapped[str | None] = mapped_column(String(255), index=True)
    primary_email: Mapped[str | None] = mapped_column(String(320), index=True)
    active: Mapped[bool] = mapped_column(Boolean, index=True)
    resource: Mapped[dict[str, Any]] = mapped_column(Json)
    # Owned by syncsvc, never written by a sync (see DESIGN.md, ownership).
    profile: Mapped[dict[str, Any] | None] = mapped_column(Json)
    manager_dn_norm: Mapped[str | None] = mapped_column(Text)
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


class GroupMemberRow(Base):
    """A resolved membership: a user or a nested group in a group."""

    __tablename__ = "scim_group_member"

    group_id: Mapped[str] = mapped_column(
        ForeignKey("scim_group.id", ondelete="CASCADE"), primary_key=True
    )
    member_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    member_type: Mapped[str] = mapped_column(String(8))

    __table_args__ = (Index("ix_scim_group_member_member_id", "member_id"),)


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


# The tables as Core objects, for bulk statements and queries that need no ORM.
USERS: Table = UserRow.__table__  # type: ignore[assignment]
GROUPS: Table = GroupRow.__table__  # type: ignore[assignment]
EMAILS: Table = UserEmailRow.__table__  # type: ignore[assignment]
MEMBERS: Table = GroupMemberRow.__table__  # type: ignore[assignment]
