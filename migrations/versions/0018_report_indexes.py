"""Indexes for the service reports

- ix_patient_triage_report (triage_date, tier, team): patients triaged by month, tier and team, and the waits
  report's patients, from the index alone.
- ix_attendance_report (starts_at, service_key, mark, patient_id): attendance and DNA rates by month and
  service, from the index alone.
- ix_attendance_patient_first (patient_id, starts_at, mark), ix_booking_patient_created (patient_id,
  created_at), ix_appointment_patient_created (patient_id, created_at): each patient's first attendance and
  first booking (the waits report), from the index alone.
- ix_sms_outbox_created (created_at): texts by the month they were written.
- ix_questionnaire_response_report (occasion, status, submitted_at): end and follow-up responses by month.

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-25
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0018'
down_revision: str | None = '0017'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_patient_triage_report', 'patient', ['triage_date', 'tier', 'team'], unique=False)
    op.create_index('ix_attendance_report', 'attendance', ['starts_at', 'service_key', 'mark', 'patient_id'],
                    unique=False)
    op.create_index('ix_attendance_patient_first', 'attendance', ['patient_id', 'starts_at', 'mark'], unique=False)
    op.create_index('ix_booking_patient_created', 'booking', ['patient_id', 'created_at'], unique=False)
    op.create_index('ix_appointment_patient_created', 'appointment', ['patient_id', 'created_at'], unique=False)
    op.create_index('ix_sms_outbox_created', 'sms_outbox', ['created_at'], unique=False)
    op.create_index('ix_questionnaire_response_report', 'questionnaire_response',
                    ['occasion', 'status', 'submitted_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_questionnaire_response_report', table_name='questionnaire_response')
    op.drop_index('ix_sms_outbox_created', table_name='sms_outbox')
    op.drop_index('ix_appointment_patient_created', table_name='appointment')
    op.drop_index('ix_booking_patient_created', table_name='booking')
    op.drop_index('ix_attendance_patient_first', table_name='attendance')
    op.drop_index('ix_attendance_report', table_name='attendance')
    op.drop_index('ix_patient_triage_report', table_name='patient')
