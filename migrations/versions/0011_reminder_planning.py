"""Reminder planning: the staff call list, and an index to find appointments by start time

- reminder_call: a reminder for a patient we may not text, phoned by reception instead; unique on the same
  idempotency key a text would have (reminder:{booking|appointment}:{id}:{kind}:{start}).
- ix_appointment_slot_starts_at: planning reads only the slots starting in the next few days.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import portal.db

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('reminder_call',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=200), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('booking_id', sa.Integer(), nullable=True),
    sa.Column('appointment_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('service_key', sa.String(length=40), nullable=False),
    sa.Column('venue', sa.String(length=40), nullable=False),
    sa.Column('starts_at', portal.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('call_at', portal.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('outcome', sa.String(length=20), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('called_at', portal.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('called_by_id', sa.Integer(), nullable=True),
    sa.Column('closed_at', portal.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', portal.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("outcome IS NULL OR outcome IN ('reached', 'message', 'no_answer')", name=op.f('ck_reminder_call_outcome_known')),
    sa.CheckConstraint("status IN ('open', 'called', 'closed')", name=op.f('ck_reminder_call_status_known')),
    sa.CheckConstraint('(booking_id IS NULL) <> (appointment_id IS NULL)', name=op.f('ck_reminder_call_one_subject')),
    sa.ForeignKeyConstraint(['appointment_id'], ['appointment.id'], name=op.f('fk_reminder_call_appointment_id_appointment')),
    sa.ForeignKeyConstraint(['booking_id'], ['booking.id'], name=op.f('fk_reminder_call_booking_id_booking')),
    sa.ForeignKeyConstraint(['called_by_id'], ['user_account.id'], name=op.f('fk_reminder_call_called_by_id_user_account')),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], name=op.f('fk_reminder_call_patient_id_patient')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reminder_call')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_reminder_call_idempotency_key'))
    )
    with op.batch_alter_table('reminder_call', schema=None) as batch_op:
        batch_op.create_index('ix_reminder_call_appointment', ['appointment_id', 'status'], unique=False)
        batch_op.create_index('ix_reminder_call_booking', ['booking_id', 'status'], unique=False)
        batch_op.create_index(batch_op.f('ix_reminder_call_patient_id'), ['patient_id'], unique=False)
        batch_op.create_index('ix_reminder_call_status_call_at', ['status', 'call_at'], unique=False)

    # An index only: SQLite creates it without rebuilding the table.
    with op.batch_alter_table('appointment_slot', schema=None) as batch_op:
        batch_op.create_index('ix_appointment_slot_starts_at', ['starts_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('appointment_slot', schema=None) as batch_op:
        batch_op.drop_index('ix_appointment_slot_starts_at')

    with op.batch_alter_table('reminder_call', schema=None) as batch_op:
        batch_op.drop_index('ix_reminder_call_status_call_at')
        batch_op.drop_index(batch_op.f('ix_reminder_call_patient_id'))
        batch_op.drop_index('ix_reminder_call_booking')
        batch_op.drop_index('ix_reminder_call_appointment')

    op.drop_table('reminder_call')
