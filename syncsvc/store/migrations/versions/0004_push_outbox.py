"""push to downstream SCIM targets: the outbox, per-target state, per-resource links

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 10:45:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

# 64-bit on PostgreSQL; SQLite autoincrements only an INTEGER PRIMARY KEY (its 64-bit rowid).
_SEQ = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('push_outbox',
    sa.Column('seq', _SEQ, autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('resource_id', sa.String(length=36), nullable=False),
    sa.Column('op', sa.String(length=8), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_push_outbox')),
    sqlite_autoincrement=True
    )
    op.create_table('push_target',
    sa.Column('name', sa.String(length=63), nullable=False),
    sa.Column('last_seq', sa.BigInteger(), nullable=False),
    sa.Column('initial_done', sa.Boolean(), nullable=False),
    sa.Column('last_success', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_attempt', sa.DateTime(timezone=True), nullable=True),
    sa.Column('consecutive_failures', sa.Integer(), nullable=False),
    sa.Column('quarantined', sa.Boolean(), nullable=False),
    sa.Column('quarantine_reason', sa.Text(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_push_target'))
    )
    op.create_table('push_resource',
    sa.Column('target', sa.String(length=63), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('resource_id', sa.String(length=36), nullable=False),
    sa.Column('remote_id', sa.Text(), nullable=True),
    sa.Column('pushed_hash', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('updated', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['target'], ['push_target.name'], name=op.f('fk_push_resource_target_push_target'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('target', 'kind', 'resource_id', name=op.f('pk_push_resource'))
    )


def downgrade() -> None:
    op.drop_table('push_resource')
    op.drop_table('push_target')
    op.drop_table('push_outbox')
