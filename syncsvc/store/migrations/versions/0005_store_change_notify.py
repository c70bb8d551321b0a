"""PostgreSQL: NOTIFY syncsvc_store at commit when a resource table changes

The SCIM response cache of every replica LISTENs on this channel (syncsvc.store.changes).
Statement triggers, not row triggers: a page of 1000 written users sends one notification,
and PostgreSQL folds identical notifications of one transaction into one. SQLite needs
nothing: a reader asks ``PRAGMA data_version``.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 13:20:00.000000
"""

from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

# What a SCIM resource is made of: its row, its emails (filters), photos, groups and members.
_TABLES = ('scim_user', 'scim_user_email', 'user_photo', 'scim_group', 'scim_group_member')


def upgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    op.execute(
        "CREATE OR REPLACE FUNCTION syncsvc_notify_store() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN PERFORM pg_notify('syncsvc_store', ''); RETURN NULL; END $$"
    )
    for table in _TABLES:
        op.execute(
            f"CREATE TRIGGER syncsvc_notify_{table} "
            f"AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION syncsvc_notify_store()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    for table in _TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS syncsvc_notify_{table} ON {table}")
    op.execute("DROP FUNCTION IF EXISTS syncsvc_notify_store()")
