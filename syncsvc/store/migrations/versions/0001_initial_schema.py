"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-27 07:19:02.588089
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('scim_group',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('origin', sa.String(length=8), nullable=False),
    sa.Column('anchor', sa.String(length=255), nullable=True),
    sa.Column('dn', sa.Text(), nullable=True),
    sa.Column('dn_norm', sa.Text(), nullable=True),
    sa.Column('display_name', sa.String(length=255), nullable=False),
    sa.Column('display_name_lower', sa.String(length=255), nullable=False),
    sa.Column('external_id', sa.String(length=255), nullable=True),
    sa.Column('resource', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('source_members', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_modified', sa.DateTime(timezone=True), nullable=False),
    sa.Column('missing_since', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scim_group')),
    sa.UniqueConstraint('anchor', name=op.f('uq_scim_group_anchor')),
    sa.UniqueConstraint('display_name_lower', name=op.f('uq_scim_group_display_name_lower'))
    )
    op.create_index(op.f('ix_scim_group_dn_norm'), 'scim_group', ['dn_norm'], unique=False)
    op.create_index(op.f('ix_scim_group_external_id'), 'scim_group', ['external_id'], unique=False)
    op.create_index(op.f('ix_scim_group_last_modified'), 'scim_group', ['last_modified'], unique=False)
    op.create_table('scim_user',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('origin', sa.String(length=8), nullable=False),
    sa.Column('anchor', sa.String(length=255), nullable=True),
    sa.Column('dn', sa.Text(), nullable=True),
    sa.Column('dn_norm', sa.Text(), nullable=True),
    sa.Column('user_name', sa.String(length=255), nullable=False),
    sa.Column('user_name_lower', sa.String(length=255), nullable=False),
    sa.Column('external_id', sa.String(length=255), nullable=True),
    sa.Column('display_name', sa.String(length=255), nullable=True),
    sa.Column('primary_email', sa.String(length=320), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('resource', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('profile', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('manager_dn_norm', sa.Text(), nullable=True),
    sa.Column('manager_id', sa.String(length=36), nullable=True),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_modified', sa.DateTime(timezone=True), nullable=False),
    sa.Column('missing_since', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scim_user')),
    sa.UniqueConstraint('anchor', name=op.f('uq_scim_user_anchor')),
    sa.UniqueConstraint('user_name_lower', name=op.f('uq_scim_user_user_name_lower'))
    )
    op.create_index(op.f('ix_scim_user_active'), 'scim_user', ['active'], unique=False)
    op.create_index(op.f('ix_scim_user_display_name'), 'scim_user', ['display_name'], unique=False)
    op.create_index(op.f('ix_scim_user_dn_norm'), 'scim_user', ['dn_norm'], unique=False)
    op.create_index(op.f('ix_scim_user_external_id'), 'scim_user', ['external_id'], unique=False)
    op.create_index(op.f('ix_scim_user_last_modified'), 'scim_user', ['last_modified'], unique=False)
    op.create_index(op.f('ix_scim_user_manager_id'), 'scim_user', ['manager_id'], unique=False)
    op.create_index(op.f('ix_scim_user_primary_email'), 'scim_user', ['primary_email'], unique=False)
    op.create_table('sync_run',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('mode', sa.String(length=16), nullable=False),
    sa.Column('method', sa.String(length=16), nullable=False),
    sa.Column('trigger', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('started', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended', sa.DateTime(timezone=True), nullable=True),
    sa.Column('read', sa.Integer(), nullable=False),
    sa.Column('created', sa.Integer(), nullable=False),
    sa.Column('updated', sa.Integer(), nullable=False),
    sa.Column('unchanged', sa.Integer(), nullable=False),
    sa.Column('deactivated', sa.Integer(), nullable=False),
    sa.Column('deleted', sa.Integer(), nullable=False),
    sa.Column('problems', sa.Integer(), nullable=False),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sync_run'))
    )
    op.create_index(op.f('ix_sync_run_started'), 'sync_run', ['started'], unique=False)
    op.create_index(op.f('ix_sync_run_status'), 'sync_run', ['status'], unique=False)
    op.create_table('sync_state',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('updated', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_sync_state'))
    )
    op.create_table('scim_group_member',
    sa.Column('group_id', sa.String(length=36), nullable=False),
    sa.Column('member_id', sa.String(length=36), nullable=False),
    sa.Column('member_type', sa.String(length=8), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['scim_group.id'], name=op.f('fk_scim_group_member_group_id_scim_group'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('group_id', 'member_id', name=op.f('pk_scim_group_member'))
    )
    op.create_index('ix_scim_group_member_member_id', 'scim_group_member', ['member_id'], unique=False)
    op.create_table('scim_user_email',
    sa.Column('user_id', sa.String(length=36), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('value', sa.String(length=320), nullable=False),
    sa.Column('value_lower', sa.String(length=320), nullable=False),
    sa.Column('type', sa.String(length=32), nullable=True),
    sa.Column('primary', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['scim_user.id'], name=op.f('fk_scim_user_email_user_id_scim_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'position', name=op.f('pk_scim_user_email'))
    )
    op.create_index(op.f('ix_scim_user_email_value_lower'), 'scim_user_email', ['value_lower'], unique=False)
    op.create_table('sync_problem',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('run_id', sa.String(length=36), nullable=False),
    sa.Column('dn', sa.Text(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['sync_run.id'], name=op.f('fk_sync_problem_run_id_sync_run'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sync_problem'))
    )
    op.create_index(op.f('ix_sync_problem_run_id'), 'sync_problem', ['run_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_sync_problem_run_id'), table_name='sync_problem')
    op.drop_table('sync_problem')
    op.drop_index(op.f('ix_scim_user_email_value_lower'), table_name='scim_user_email')
    op.drop_table('scim_user_email')
    op.drop_index('ix_scim_group_member_member_id', table_name='scim_group_member')
    op.drop_table('scim_group_member')
    op.drop_table('sync_state')
    op.drop_index(op.f('ix_sync_run_status'), table_name='sync_run')
    op.drop_index(op.f('ix_sync_run_started'), table_name='sync_run')
    op.drop_table('sync_run')
    op.drop_index(op.f('ix_scim_user_primary_email'), table_name='scim_user')
    op.drop_index(op.f('ix_scim_user_manager_id'), table_name='scim_user')
    op.drop_index(op.f('ix_scim_user_last_modified'), table_name='scim_user')
    op.drop_index(op.f('ix_scim_user_external_id'), table_name='scim_user')
    op.drop_index(op.f('ix_scim_user_dn_norm'), table_name='scim_user')
    op.drop_index(op.f('ix_scim_user_display_name'), table_name='scim_user')
    op.drop_index(op.f('ix_scim_user_active'), table_name='scim_user')
    op.drop_table('scim_user')
    op.drop_index(op.f('ix_scim_group_last_modified'), table_name='scim_group')
    op.drop_index(op.f('ix_scim_group_external_id'), table_name='scim_group')
    op.drop_index(op.f('ix_scim_group_dn_norm'), table_name='scim_group')
    op.drop_table('scim_group')
