"""Attendance, did-not-attend reviews, discharge, and the clinician role

- attendance: one mark per patient per group session, or per 1:1 appointment (a CHECK says exactly one);
  partial unique indexes are the ON CONFLICT targets that make saving a register idempotent.
- dna_review and dna_review_action: at most one open review per patient and service; each clinician's
  decision is a row.
- patient.discharged_at / discharge_reason: set only by a clinician's recorded decision.
- user_account.role gains 'clinician' (1:1 clinics and did-not-attend reviews).

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import portal.db

revision: str = '0015'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('dna_review',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('service_key', sa.String(length=40), nullable=False),
    sa.Column('cohort_id', sa.Integer(), nullable=True),
    sa.Column('trigger', sa.String(length=200), nullable=False),
    sa.Column('opened_at', portal.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('decision', sa.String(length=20), nullable=True),
    sa.Column('closed_at', portal.db.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("decision IS NULL OR decision IN ('contacted', 'kept_on', 'offered_later', 'discharged')", name=op.f('ck_dna_review_decision_known')),
    sa.CheckConstraint("status IN ('open', 'closed')", name=op.f('ck_dna_review_status_known')),
    sa.ForeignKeyConstraint(['cohort_id'], ['cohort.id'], name=op.f('fk_dna_review_cohort_id_cohort')),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], name=op.f('fk_dna_review_patient_id_patient')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dna_review'))
    )
    with op.batch_alter_table('dna_review', schema=None) as batch_op:
        batch_op.create_index('ix_dna_review_status_opened', ['status', 'opened_at'], unique=False)
        batch_op.create_index('uq_dna_review_open', ['patient_id', 'service_key'], unique=True, sqlite_where=sa.text("status = 'open'"), postgresql_where=sa.text("status = 'open'"))

    op.create_table('dna_review_action',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('review_id', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=20), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('decided_by_id', sa.Integer(), nullable=False),
    sa.Column('decided_at', portal.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("action IN ('contacted', 'kept_on', 'offered_later', 'discharged')", name=op.f('ck_dna_review_action_action_known')),
    sa.ForeignKeyConstraint(['decided_by_id'], ['user_account.id'], name=op.f('fk_dna_review_action_decided_by_id_user_account')),
    sa.ForeignKeyConstraint(['review_id'], ['dna_review.id'], name=op.f('fk_dna_review_action_review_id_dna_review')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dna_review_action'))
    )
    with op.batch_alter_table('dna_review_action', schema=None) as batch_op:
        batch_op.create_index('ix_dna_review_action_review', ['review_id'], unique=False)

    op.create_table('attendance',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('cohort_session_id', sa.Integer(), nullable=True),
    sa.Column('appointment_id', sa.Integer(), nullable=True),
    sa.Column('service_key', sa.String(length=40), nullable=False),
    sa.Column('starts_at', portal.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('mark', sa.String(length=20), nullable=False),
    sa.Column('recorded_by_id', sa.Integer(), nullable=False),
    sa.Column('recorded_at', portal.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', portal.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("mark IN ('attended', 'late', 'dna', 'could_not_attend', 'late_cancellation')", name=op.f('ck_attendance_mark_known')),
    sa.CheckConstraint('(cohort_session_id IS NULL) <> (appointment_id IS NULL)', name=op.f('ck_attendance_session_or_appointment')),
    sa.ForeignKeyConstraint(['appointment_id'], ['appointment.id'], name=op.f('fk_attendance_appointment_id_appointment')),
    sa.ForeignKeyConstraint(['cohort_session_id'], ['cohort_session.id'], name=op.f('fk_attendance_cohort_session_id_cohort_session')),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], name=op.f('fk_attendance_patient_id_patient')),
    sa.ForeignKeyConstraint(['recorded_by_id'], ['user_account.id'], name=op.f('fk_attendance_recorded_by_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_attendance'))
    )
    with op.batch_alter_table('attendance', schema=None) as batch_op:
        batch_op.create_index('ix_attendance_patient_time', ['patient_id', 'starts_at'], unique=False)
        batch_op.create_index('ix_attendance_time', ['starts_at'], unique=False)
        batch_op.create_index('uq_attendance_appointment', ['appointment_id'], unique=True, sqlite_where=sa.text('appointment_id IS NOT NULL'), postgresql_where=sa.text('appointment_id IS NOT NULL'))
        batch_op.create_index('uq_attendance_session_patient', ['cohort_session_id', 'patient_id'], unique=True, sqlite_where=sa.text('cohort_session_id IS NOT NULL'), postgresql_where=sa.text('cohort_session_id IS NOT NULL'))

    with op.batch_alter_table('patient', schema=None) as batch_op:
        batch_op.add_column(sa.Column('discharged_at', portal.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('discharge_reason', sa.Text(), nullable=True))

    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_user_account_role_known'), type_='check')
        batch_op.create_check_constraint(
            op.f('ck_user_account_role_known'),
            "role IN ('patient', 'facilitator', 'clinician', 'reception', 'admin')")


def downgrade() -> None:
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_user_account_role_known'), type_='check')
        batch_op.create_check_constraint(
            op.f('ck_user_account_role_known'), "role IN ('patient', 'facilitator', 'reception', 'admin')")

    with op.batch_alter_table('patient', schema=None) as batch_op:
        batch_op.drop_column('discharge_reason')
        batch_op.drop_column('discharged_at')

    with op.batch_alter_table('attendance', schema=None) as batch_op:
        batch_op.drop_index('uq_attendance_session_patient', sqlite_where=sa.text('cohort_session_id IS NOT NULL'), postgresql_where=sa.text('cohort_session_id IS NOT NULL'))
        batch_op.drop_index('uq_attendance_appointment', sqlite_where=sa.text('appointment_id IS NOT NULL'), postgresql_where=sa.text('appointment_id IS NOT NULL'))
        batch_op.drop_index('ix_attendance_time')
        batch_op.drop_index('ix_attendance_patient_time')

    op.drop_table('attendance')
    with op.batch_alter_table('dna_review_action', schema=None) as batch_op:
        batch_op.drop_index('ix_dna_review_action_review')

    op.drop_table('dna_review_action')
    with op.batch_alter_table('dna_review', schema=None) as batch_op:
        batch_op.drop_index('uq_dna_review_open', sqlite_where=sa.text("status = 'open'"), postgresql_where=sa.text("status = 'open'"))
        batch_op.drop_index('ix_dna_review_status_opened')

    op.drop_table('dna_review')
