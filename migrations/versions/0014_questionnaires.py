"""Outcome questionnaires and the urgent flags they raise

- questionnaire_response: one measure (PHQ-9, GAD-7, pain ratings, global impression of change) answered for
  one due set (baseline, end of course, follow-up); a draft is never scored (a CHECK says so), and one row
  per patient, set and measure (a unique index, the ON CONFLICT target when a draft is first saved).
- urgent_flag: raised once per response (unique response_id) by a PHQ-9 item 9 answer above "not at all";
  open until a clinician acknowledges it with a note of the action taken.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import portal.db

revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('questionnaire_response',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('instrument', sa.String(length=30), nullable=False),
    sa.Column('set_key', sa.String(length=80), nullable=False),
    sa.Column('occasion', sa.String(length=20), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('answers', sa.JSON(), nullable=False),
    sa.Column('score', sa.Float(), nullable=True),
    sa.Column('band', sa.String(length=40), nullable=True),
    sa.Column('created_at', portal.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', portal.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('submitted_at', portal.db.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("(status = 'draft' AND score IS NULL AND submitted_at IS NULL) OR (status = 'submitted' AND score IS NOT NULL AND submitted_at IS NOT NULL)", name=op.f('ck_questionnaire_response_scored_only_when_submitted')),
    sa.CheckConstraint("occasion IN ('baseline', 'end', 'follow_up')", name=op.f('ck_questionnaire_response_occasion_known')),
    sa.CheckConstraint("status IN ('draft', 'submitted')", name=op.f('ck_questionnaire_response_status_known')),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], name=op.f('fk_questionnaire_response_patient_id_patient')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_questionnaire_response'))
    )
    with op.batch_alter_table('questionnaire_response', schema=None) as batch_op:
        batch_op.create_index('ix_questionnaire_response_patient_submitted', ['patient_id', 'status', 'submitted_at'], unique=False)
        batch_op.create_index('uq_questionnaire_response_set_instrument', ['patient_id', 'set_key', 'instrument'], unique=True)

    op.create_table('urgent_flag',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('response_id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=40), nullable=False),
    sa.Column('answer_value', sa.SmallInteger(), nullable=False),
    sa.Column('raised_at', portal.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('acknowledged_at', portal.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('acknowledged_by_id', sa.Integer(), nullable=True),
    sa.Column('action_note', sa.Text(), nullable=True),
    sa.CheckConstraint('(acknowledged_at IS NULL AND acknowledged_by_id IS NULL AND action_note IS NULL) OR (acknowledged_at IS NOT NULL AND acknowledged_by_id IS NOT NULL AND action_note IS NOT NULL)', name=op.f('ck_urgent_flag_acknowledgement_complete')),
    sa.ForeignKeyConstraint(['acknowledged_by_id'], ['user_account.id'], name=op.f('fk_urgent_flag_acknowledged_by_id_user_account')),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], name=op.f('fk_urgent_flag_patient_id_patient')),
    sa.ForeignKeyConstraint(['response_id'], ['questionnaire_response.id'], name=op.f('fk_urgent_flag_response_id_questionnaire_response')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_urgent_flag')),
    sa.UniqueConstraint('response_id', name=op.f('uq_urgent_flag_response_id'))
    )
    with op.batch_alter_table('urgent_flag', schema=None) as batch_op:
        batch_op.create_index('ix_urgent_flag_open', ['acknowledged_at', 'raised_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_urgent_flag_patient_id'), ['patient_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('urgent_flag', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_urgent_flag_patient_id'))
        batch_op.drop_index('ix_urgent_flag_open')

    op.drop_table('urgent_flag')
    with op.batch_alter_table('questionnaire_response', schema=None) as batch_op:
        batch_op.drop_index('uq_questionnaire_response_set_instrument')
        batch_op.drop_index('ix_questionnaire_response_patient_submitted')

    op.drop_table('questionnaire_response')
