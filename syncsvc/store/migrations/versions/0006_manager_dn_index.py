"""index scim_user.manager_dn_norm: an incremental run finds the reports of the users it read

Without it, resolving managers after a run of 100 changes scanned every user (0.86 s at 100k
on PostgreSQL, 0.25 s on SQLite); with it, the run looks up only the users concerned.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 13:30:00.000000
"""

from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f('ix_scim_user_manager_dn_norm'), 'scim_user', ['manager_dn_norm'],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_scim_user_manager_dn_norm'), table_name='scim_user')
