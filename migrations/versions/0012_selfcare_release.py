"""Self-management reading: releases, what patients read and did, the release job's cursor

- selfcare_release: a week of a track released to a patient, once (unique patient+track+week: the release
  job inserts with ON CONFLICT DO NOTHING, so two runs record and text it once).
- selfcare_progress: when a patient first opened an item, and when they marked it done.
- selfcare_release_cursor: how far the release job has looked, so each run looks only at what opened since.
- ix_user_account_created_at: the release job finds patients whose general-track week opens today by their
  activation time (an index only: SQLite creates it without rebuilding the table).

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import portal.db

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('selfcare_release',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('track', sa.String(length=40), nullable=False),
    sa.Column('week', sa.SmallInteger(), nullable=False),
    sa.Column('opens_at', portal.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('recorded_at', portal.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('texted', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.CheckConstraint('week >= 1', name=op.f('ck_selfcare_release_week_positive')),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], name=op.f('fk_selfcare_release_patient_id_patient'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_selfcare_release'))
    )
    with op.batch_alter_table('selfcare_release', schema=None) as batch_op:
        batch_op.create_index('uq_selfcare_release_patient_track_week', ['patient_id', 'track', 'week'], unique=True)

    op.create_table('selfcare_progress',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('track', sa.String(length=40), nullable=False),
    sa.Column('week', sa.SmallInteger(), nullable=False),
    sa.Column('opened_at', portal.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('done_at', portal.db.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint('week >= 1', name=op.f('ck_selfcare_progress_week_positive')),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], name=op.f('fk_selfcare_progress_patient_id_patient'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_selfcare_progress'))
    )
    with op.batch_alter_table('selfcare_progress', schema=None) as batch_op:
        batch_op.create_index('uq_selfcare_progress_patient_track_week', ['patient_id', 'track', 'week'],
                              unique=True)

    op.create_table('selfcare_release_cursor',
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('covered_until', portal.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_selfcare_release_cursor'))
    )

    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.create_index('ix_user_account_created_at', ['created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_index('ix_user_account_created_at')

    op.drop_table('selfcare_release_cursor')

    with op.batch_alter_table('selfcare_progress', schema=None) as batch_op:
        batch_op.drop_index('uq_selfcare_progress_patient_track_week')
    op.drop_table('selfcare_progress')

    with op.batch_alter_table('selfcare_release', schema=None) as batch_op:
        batch_op.drop_index('uq_selfcare_release_patient_track_week')
    op.drop_table('selfcare_release')
