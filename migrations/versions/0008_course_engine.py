"""course engine: online cohorts, facilitators, session changes, waiting lists

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import portal.db

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('cohort_facilitator',
    sa.Column('cohort_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['cohort_id'], ['cohort.id'], name=op.f('fk_cohort_facilitator_cohort_id_cohort'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_cohort_facilitator_user_id_user_account')),
    sa.PrimaryKeyConstraint('cohort_id', 'user_id', name=op.f('pk_cohort_facilitator'))
    )
    op.create_table('calendar_feed',
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', portal.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], name=op.f('fk_calendar_feed_patient_id_patient'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('patient_id', name=op.f('pk_calendar_feed')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_calendar_feed_token_hash'))
    )
    op.create_table('waitlist_entry',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('service_key', sa.String(length=40), nullable=False),
    sa.Column('cohort_id', sa.Integer(), nullable=True),
    sa.Column('team', sa.String(length=40), nullable=True),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('offer_cohort_id', sa.Integer(), nullable=True),
    sa.Column('offer_expires_at', portal.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('joined_by_staff', sa.Boolean(), nullable=False),
    sa.Column('created_at', portal.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', portal.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status <> 'offered' OR (offer_cohort_id IS NOT NULL AND offer_expires_at IS NOT NULL)", name=op.f('ck_waitlist_entry_offer_complete')),
    sa.CheckConstraint("status IN ('waiting', 'offered', 'booked', 'declined', 'expired', 'left')", name=op.f('ck_waitlist_entry_status_known')),
    sa.ForeignKeyConstraint(['cohort_id'], ['cohort.id'], name=op.f('fk_waitlist_entry_cohort_id_cohort')),
    sa.ForeignKeyConstraint(['offer_cohort_id'], ['cohort.id'], name=op.f('fk_waitlist_entry_offer_cohort_id_cohort')),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], name=op.f('fk_waitlist_entry_patient_id_patient')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_waitlist_entry'))
    )
    with op.batch_alter_table('waitlist_entry', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_waitlist_entry_patient_id'), ['patient_id'], unique=False)
        batch_op.create_index('ix_waitlist_offer_expiry', ['status', 'offer_expires_at'], unique=False)
        batch_op.create_index('ix_waitlist_queue', ['service_key', 'status', 'position'], unique=False)
        batch_op.create_index('uq_waitlist_live_per_course', ['patient_id', 'service_key'], unique=True, sqlite_where=sa.text("status IN ('waiting', 'offered')"), postgresql_where=sa.text("status IN ('waiting', 'offered')"))

    with op.batch_alter_table('booking', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cancel_reason', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('cancelled_by_staff', sa.Boolean(), server_default=sa.false(), nullable=False))

    with op.batch_alter_table('cohort', schema=None) as batch_op:
        batch_op.add_column(sa.Column('online_link', sa.String(length=300), nullable=True))

    with op.batch_alter_table('cohort_session', schema=None) as batch_op:
        batch_op.add_column(sa.Column('moved_from', portal.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('change_reason', sa.Text(), nullable=True))

    with op.batch_alter_table('venue', schema=None) as batch_op:
        batch_op.add_column(sa.Column('is_online', sa.Boolean(), server_default=sa.false(), nullable=False))



def downgrade() -> None:
    with op.batch_alter_table('venue', schema=None) as batch_op:
        batch_op.drop_column('is_online')

    with op.batch_alter_table('cohort_session', schema=None) as batch_op:
        batch_op.drop_column('change_reason')
        batch_op.drop_column('moved_from')

    with op.batch_alter_table('cohort', schema=None) as batch_op:
        batch_op.drop_column('online_link')

    with op.batch_alter_table('booking', schema=None) as batch_op:
        batch_op.drop_column('cancelled_by_staff')
        batch_op.drop_column('cancel_reason')

    with op.batch_alter_table('waitlist_entry', schema=None) as batch_op:
        batch_op.drop_index('uq_waitlist_live_per_course', sqlite_where=sa.text("status IN ('waiting', 'offered')"), postgresql_where=sa.text("status IN ('waiting', 'offered')"))
        batch_op.drop_index('ix_waitlist_queue')
        batch_op.drop_index('ix_waitlist_offer_expiry')
        batch_op.drop_index(batch_op.f('ix_waitlist_entry_patient_id'))

    op.drop_table('waitlist_entry')
    op.drop_table('cohort_facilitator')
    op.drop_table('calendar_feed')
