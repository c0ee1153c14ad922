"""triage intake: triage date, pain duration, referral checklist, overridden eligibility warnings

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Copied, not imported: a migration must keep meaning what it meant when it was written.
PAIN_DURATIONS = ("under-6-months", "6-12-months", "1-5-years", "over-5-years")


def upgrade() -> None:
    # Plain ADD COLUMN on every backend (the checks are column constraints): SQLite never rebuilds the
    # patient table, which other tables reference, so a database with patients in it migrates safely.
    pain_known = "pain_duration IN (" + ", ".join(f"'{code}'" for code in PAIN_DURATIONS) + ")"
    op.add_column('patient', sa.Column('triage_date', sa.Date(), nullable=True))
    op.add_column('patient', sa.Column(
        'pain_duration', sa.String(length=20),
        sa.CheckConstraint(pain_known, name=op.f('ck_patient_pain_duration_known')), nullable=True))
    op.add_column('patient', sa.Column('diagnosis_recorded', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.add_column('patient', sa.Column('investigations_recorded', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.add_column('patient', sa.Column('treatment_recorded', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.add_column('patient', sa.Column('letters_received', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.add_column('patient', sa.Column('override_reason', sa.String(length=500), nullable=True))
    # After override_reason, which its check refers to.
    op.add_column('patient', sa.Column(
        'eligibility_warnings', sa.String(length=100),
        sa.CheckConstraint("eligibility_warnings = '' OR override_reason IS NOT NULL",
                           name=op.f('ck_patient_override_has_a_reason')),
        server_default='', nullable=False))


def downgrade() -> None:
    # eligibility_warnings first: its check refers to override_reason.
    for column in ('eligibility_warnings', 'override_reason', 'letters_received', 'treatment_recorded',
                   'investigations_recorded', 'diagnosis_recorded', 'pain_duration', 'triage_date'):
        op.drop_column('patient', column)
