"""SMS webhooks: delivery receipts, replies, opt-outs and refused numbers, and the staff queue of texts

- sms_outbox.appointment_id: the 1:1 appointment a text is about (booking_id is for course seats), so the
  dispatcher drops it once the appointment has ended; sms_outbox.dismissed_at: staff took a failed or
  unknown text off their queue.
- patient.sms_opted_out_at (STOP, or Twilio error 21610) and patient.mobile_invalid_at (21211, 21614).
- appointment.confirmed_at: the patient replied YES.
- sms_inbound: every text received, what it was matched to and what was done.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import portal.db

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('sms_inbound',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_sid', sa.String(length=64), nullable=False),
    sa.Column('from_number', sa.String(length=20), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('received_at', portal.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=True),
    sa.Column('action', sa.String(length=20), nullable=False),
    sa.Column('appointment_id', sa.Integer(), nullable=True),
    sa.Column('booking_id', sa.Integer(), nullable=True),
    sa.Column('cohort_session_id', sa.Integer(), nullable=True),
    sa.Column('reply_kind', sa.String(length=40), nullable=True),
    sa.CheckConstraint("action IN ('received', 'confirmed', 'cancelled', 'call_to_cancel', 'nothing_booked', 'opted_out', 'opted_in', 'help', 'unknown_sender')", name=op.f('ck_sms_inbound_action_known')),
    sa.ForeignKeyConstraint(['appointment_id'], ['appointment.id'], name=op.f('fk_sms_inbound_appointment_id_appointment')),
    sa.ForeignKeyConstraint(['booking_id'], ['booking.id'], name=op.f('fk_sms_inbound_booking_id_booking')),
    sa.ForeignKeyConstraint(['cohort_session_id'], ['cohort_session.id'], name=op.f('fk_sms_inbound_cohort_session_id_cohort_session')),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], name=op.f('fk_sms_inbound_patient_id_patient')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sms_inbound')),
    sa.UniqueConstraint('message_sid', name=op.f('uq_sms_inbound_message_sid'))
    )
    with op.batch_alter_table('sms_inbound', schema=None) as batch_op:
        batch_op.create_index('ix_sms_inbound_from_time', ['from_number', 'received_at'], unique=False)
        batch_op.create_index('ix_sms_inbound_patient_time', ['patient_id', 'received_at'], unique=False)

    # Plain nullable columns: SQLite adds them with ALTER TABLE, no rebuild.
    with op.batch_alter_table('appointment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('confirmed_at', portal.db.UTCDateTime(timezone=True), nullable=True))

    with op.batch_alter_table('patient', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sms_opted_out_at', portal.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('mobile_invalid_at', portal.db.UTCDateTime(timezone=True), nullable=True))

    # A foreign key: SQLite cannot add the constraint to a table, so batch mode rebuilds sms_outbox (nothing
    # points at it).
    with op.batch_alter_table('sms_outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('appointment_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('dismissed_at', portal.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_sms_outbox_appointment_id_appointment'), 'appointment', ['appointment_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('sms_outbox', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_sms_outbox_appointment_id_appointment'), type_='foreignkey')
        batch_op.drop_column('dismissed_at')
        batch_op.drop_column('appointment_id')

    with op.batch_alter_table('patient', schema=None) as batch_op:
        batch_op.drop_column('mobile_invalid_at')
        batch_op.drop_column('sms_opted_out_at')

    with op.batch_alter_table('appointment', schema=None) as batch_op:
        batch_op.drop_column('confirmed_at')

    with op.batch_alter_table('sms_inbound', schema=None) as batch_op:
        batch_op.drop_index('ix_sms_inbound_patient_time')
        batch_op.drop_index('ix_sms_inbound_from_time')

    op.drop_table('sms_inbound')
