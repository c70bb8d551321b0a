"""profile photo thumbnails and the public slug column

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 10:15:00.000000
"""

import re

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

# Same rule as syncsvc.profiles._view.SLUG; copied so the migration never changes with the code.
_SLUG = re.compile(r"[a-z0-9-]{3,64}")


def upgrade() -> None:
    op.create_table('user_photo',
    sa.Column('user_id', sa.String(length=36), nullable=False),
    sa.Column('content_type', sa.String(length=64), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('source_hash', sa.String(length=64), nullable=False),
    sa.Column('width', sa.Integer(), nullable=False),
    sa.Column('height', sa.Integer(), nullable=False),
    sa.Column('updated', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['scim_user.id'], name=op.f('fk_user_photo_user_id_scim_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_user_photo'))
    )
    op.add_column('scim_user', sa.Column('public_slug', sa.String(length=64), nullable=True))
    op.add_column('scim_user', sa.Column('photo_hash', sa.String(length=64), nullable=True))
    _backfill_public_slug()
    op.create_index(op.f('ix_scim_user_public_slug'), 'scim_user', ['public_slug'], unique=True)


def _backfill_public_slug() -> None:
    """Copy publicProfile.slug out of the stored JSON; on a duplicate the oldest user keeps it."""
    users = sa.table(
        'scim_user',
        sa.column('id', sa.String()),
        sa.column('profile', sa.JSON()),
        sa.column('created', sa.DateTime(timezone=True)),
        sa.column('public_slug', sa.String()),
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(users.c.id, users.c.profile)
        .where(users.c.profile.is_not(None))
        .order_by(users.c.created, users.c.id)
    )
    seen: set[str] = set()
    for user_id, profile in list(rows):
        public = profile.get('publicProfile') if isinstance(profile, dict) else None
        slug = public.get('slug') if isinstance(public, dict) else None
        if not isinstance(slug, str):
            continue
        slug = slug.strip().lower()
        if not _SLUG.fullmatch(slug) or slug in seen:
            continue
        seen.add(slug)
        bind.execute(sa.update(users).where(users.c.id == user_id).values(public_slug=slug))


def downgrade() -> None:
    op.drop_index(op.f('ix_scim_user_public_slug'), table_name='scim_user')
    op.drop_column('scim_user', 'photo_hash')
    op.drop_column('scim_user', 'public_slug')
    op.drop_table('user_photo')
