"""Staff set-up links

- staff_set_up_link: the single-use link an admin gives a new staff member to choose their password (only
  a hash of its token is kept). Invited accounts wait, inactive, until it is used.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import portal.db

revision: str = '0017'
down_revision: str | None = '0016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('staff_set_up_link',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', portal.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', portal.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('used_at', portal.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', portal.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['user_account.id'], name=op.f('fk_staff_set_up_link_created_by_id_user_account')),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_staff_set_up_link_user_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_set_up_link')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_staff_set_up_link_token_hash'))
    )
    with op.batch_alter_table('staff_set_up_link', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_set_up_link_user_id'), ['user_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('staff_set_up_link', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staff_set_up_link_user_id'))

    op.drop_table('staff_set_up_link')
