"""A discharged patient can be referred again, and the discharge it ends is kept

Until now a clinician's discharge was for good: nothing cleared it, so a patient the GP referred again could
never book online. Reception now records the new referral; the patient's own discharge columns are cleared for
the new episode of care, and this table keeps the discharge (date and reason) and the triage it replaced.

``patient.episode_started_on`` is the triage date of the latest new referral: questionnaires count a new
baseline from it. Patients on their first referral have none, so their questionnaires are as they were.

Revision ID: 0024
Revises: 0023
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import portal.db

revision: str = '0024'
down_revision: str | None = '0023'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('patient', sa.Column('episode_started_on', sa.Date(), nullable=True))
    op.create_table(
        'patient_referral',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('patient_id', sa.Integer(), nullable=False),
        sa.Column('triage_date', sa.Date(), nullable=False),
        sa.Column('tier', sa.SmallInteger(), nullable=False),
        sa.Column('team', sa.String(length=40), nullable=True),
        sa.Column('note', sa.String(length=200), nullable=False),
        sa.Column('discharged_at', portal.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('discharge_reason', sa.Text(), nullable=True),
        sa.Column('previous_triage_date', sa.Date(), nullable=True),
        sa.Column('recorded_by_id', sa.Integer(), nullable=True),
        sa.Column('recorded_at', portal.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint('tier IN (1, 2)', name=op.f('ck_patient_referral_tier_known')),
        sa.CheckConstraint('tier = 2 OR team IS NULL', name=op.f('ck_patient_referral_team_only_in_tier_2')),
        sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], name=op.f('fk_patient_referral_patient_id_patient')),
        sa.ForeignKeyConstraint(['recorded_by_id'], ['user_account.id'],
                                name=op.f('fk_patient_referral_recorded_by_id_user_account')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_patient_referral')),
    )
    op.create_index(op.f('ix_patient_referral_patient_id'), 'patient_referral', ['patient_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_patient_referral_patient_id'), table_name='patient_referral')
    op.drop_table('patient_referral')
    op.drop_column('patient', 'episode_started_on')
