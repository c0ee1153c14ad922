"""1:1 appointments: availability templates, clinician leave, slots, and appointments

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import portal.db

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('availability_template',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('clinician_id', sa.Integer(), nullable=False),
    sa.Column('service_key', sa.String(length=40), nullable=False),
    sa.Column('team', sa.String(length=40), nullable=True),
    sa.Column('venue_id', sa.Integer(), nullable=False),
    sa.Column('weekday', sa.SmallInteger(), nullable=False),
    sa.Column('start_time', sa.Time(), nullable=False),
    sa.Column('end_time', sa.Time(), nullable=False),
    sa.Column('slot_minutes', sa.Integer(), nullable=False),
    sa.Column('timezone', sa.String(length=40), nullable=False),
    sa.Column('valid_from', sa.Date(), nullable=False),
    sa.Column('valid_until', sa.Date(), nullable=True),
    sa.Column('created_at', portal.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('end_time > start_time', name=op.f('ck_availability_template_ends_after_start')),
    sa.CheckConstraint('slot_minutes BETWEEN 5 AND 240', name=op.f('ck_availability_template_slot_minutes_valid')),
    sa.CheckConstraint('valid_until IS NULL OR valid_until >= valid_from', name=op.f('ck_availability_template_valid_range')),
    sa.CheckConstraint('weekday BETWEEN 0 AND 6', name=op.f('ck_availability_template_weekday_valid')),
    sa.ForeignKeyConstraint(['clinician_id'], ['user_account.id'], name=op.f('fk_availability_template_clinician_id_user_account')),
    sa.ForeignKeyConstraint(['venue_id'], ['venue.id'], name=op.f('fk_availability_template_venue_id_venue')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_availability_template'))
    )
    with op.batch_alter_table('availability_template', schema=None) as batch_op:
        batch_op.create_index('ix_availability_template_clinician', ['clinician_id', 'weekday'], unique=False)

    op.create_table('clinician_leave',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('clinician_id', sa.Integer(), nullable=False),
    sa.Column('first_day', sa.Date(), nullable=False),
    sa.Column('last_day', sa.Date(), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('created_at', portal.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('last_day >= first_day', name=op.f('ck_clinician_leave_valid_range')),
    sa.ForeignKeyConstraint(['clinician_id'], ['user_account.id'], name=op.f('fk_clinician_leave_clinician_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_clinician_leave'))
    )
    with op.batch_alter_table('clinician_leave', schema=None) as batch_op:
        batch_op.create_index('ix_clinician_leave_clinician', ['clinician_id', 'last_day'], unique=False)

    op.create_table('appointment_slot',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('clinician_id', sa.Integer(), nullable=False),
    sa.Column('template_id', sa.Integer(), nullable=True),
    sa.Column('service_key', sa.String(length=40), nullable=False),
    sa.Column('team', sa.String(length=40), nullable=True),
    sa.Column('venue_id', sa.Integer(), nullable=False),
    sa.Column('starts_at', portal.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ends_at', portal.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('blocked_reason', sa.String(length=200), nullable=True),
    sa.Column('created_at', portal.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status <> 'blocked' OR blocked_reason IS NOT NULL", name=op.f('ck_appointment_slot_blocked_has_a_reason')),
    sa.CheckConstraint("status IN ('open', 'booked', 'blocked')", name=op.f('ck_appointment_slot_status_known')),
    sa.CheckConstraint('ends_at > starts_at', name=op.f('ck_appointment_slot_ends_after_start')),
    sa.ForeignKeyConstraint(['clinician_id'], ['user_account.id'], name=op.f('fk_appointment_slot_clinician_id_user_account')),
    sa.ForeignKeyConstraint(['template_id'], ['availability_template.id'], name=op.f('fk_appointment_slot_template_id_availability_template'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['venue_id'], ['venue.id'], name=op.f('fk_appointment_slot_venue_id_venue')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_appointment_slot')),
    sa.UniqueConstraint('clinician_id', 'starts_at', name='uq_appointment_slot_clinician_start')
    )
    with op.batch_alter_table('appointment_slot', schema=None) as batch_op:
        batch_op.create_index('ix_appointment_slot_offer', ['service_key', 'status', 'starts_at'], unique=False)

    op.create_table('appointment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('slot_id', sa.Integer(), nullable=False),
    sa.Column('service_key', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('booked_by_staff', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('override_reason', sa.String(length=500), nullable=True),
    sa.Column('created_at', portal.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ended_at', portal.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('cancel_reason', sa.String(length=600), nullable=True),
    sa.Column('ended_by_staff', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('moved_to_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("status IN ('active', 'cancelled', 'moved')", name=op.f('ck_appointment_status_known')),
    sa.ForeignKeyConstraint(['moved_to_id'], ['appointment.id'], name=op.f('fk_appointment_moved_to_id_appointment')),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], name=op.f('fk_appointment_patient_id_patient')),
    sa.ForeignKeyConstraint(['slot_id'], ['appointment_slot.id'], name=op.f('fk_appointment_slot_id_appointment_slot')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_appointment'))
    )
    with op.batch_alter_table('appointment', schema=None) as batch_op:
        batch_op.create_index('ix_appointment_patient_service', ['patient_id', 'service_key', 'status'], unique=False)
        batch_op.create_index('uq_appointment_active_slot', ['slot_id'], unique=True, sqlite_where=sa.text("status = 'active'"), postgresql_where=sa.text("status = 'active'"))



def downgrade() -> None:
    with op.batch_alter_table('appointment', schema=None) as batch_op:
        batch_op.drop_index('uq_appointment_active_slot', sqlite_where=sa.text("status = 'active'"), postgresql_where=sa.text("status = 'active'"))
        batch_op.drop_index('ix_appointment_patient_service')

    op.drop_table('appointment')
    with op.batch_alter_table('appointment_slot', schema=None) as batch_op:
        batch_op.drop_index('ix_appointment_slot_offer')

    op.drop_table('appointment_slot')
    with op.batch_alter_table('clinician_leave', schema=None) as batch_op:
        batch_op.drop_index('ix_clinician_leave_clinician')

    op.drop_table('clinician_leave')
    with op.batch_alter_table('availability_template', schema=None) as batch_op:
        batch_op.drop_index('ix_availability_template_clinician')

    op.drop_table('availability_template')
