"""Diary, goals and flare-up plans: the patient's own self-management records

- diary_entry: one quick entry per patient per local day (unique), pain 0-10 and 5-point sleep, mood and
  activity, with an optional pacing note; the diary POST upserts on (patient_id, entry_date).
- goal: SMART goals, active, achieved or stopped (closed_at set exactly when not active).
- goal_check_in: how a goal went in one ISO week, unique per goal and week (its Monday).
- flare_up_plan: one per patient, four free-text parts.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import portal.db

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('diary_entry',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('entry_date', sa.Date(), nullable=False),
    sa.Column('pain', sa.SmallInteger(), nullable=False),
    sa.Column('sleep', sa.SmallInteger(), nullable=False),
    sa.Column('mood', sa.SmallInteger(), nullable=False),
    sa.Column('activity', sa.SmallInteger(), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=False),
    sa.Column('created_at', portal.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', portal.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('activity BETWEEN 1 AND 5', name=op.f('ck_diary_entry_activity_in_range')),
    sa.CheckConstraint('mood BETWEEN 1 AND 5', name=op.f('ck_diary_entry_mood_in_range')),
    sa.CheckConstraint('pain BETWEEN 0 AND 10', name=op.f('ck_diary_entry_pain_in_range')),
    sa.CheckConstraint('sleep BETWEEN 1 AND 5', name=op.f('ck_diary_entry_sleep_in_range')),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], name=op.f('fk_diary_entry_patient_id_patient')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_diary_entry')),
    sa.UniqueConstraint('patient_id', 'entry_date', name=op.f('uq_diary_entry_patient_day'))
    )
    op.create_table('flare_up_plan',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('what_helps', sa.Text(), nullable=False),
    sa.Column('what_to_reduce', sa.Text(), nullable=False),
    sa.Column('who_to_tell', sa.Text(), nullable=False),
    sa.Column('when_to_seek_help', sa.Text(), nullable=False),
    sa.Column('created_at', portal.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', portal.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], name=op.f('fk_flare_up_plan_patient_id_patient')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_flare_up_plan')),
    sa.UniqueConstraint('patient_id', name=op.f('uq_flare_up_plan_patient_id'))
    )
    op.create_table('goal',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('what', sa.String(length=200), nullable=False),
    sa.Column('how_much', sa.String(length=200), nullable=False),
    sa.Column('target_date', sa.Date(), nullable=False),
    sa.Column('why', sa.String(length=500), nullable=False),
    sa.Column('confidence', sa.SmallInteger(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('created_at', portal.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', portal.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('closed_at', portal.db.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("(status = 'active') = (closed_at IS NULL)", name=op.f('ck_goal_closed_when_not_active')),
    sa.CheckConstraint("status IN ('active', 'achieved', 'stopped')", name=op.f('ck_goal_status_known')),
    sa.CheckConstraint('confidence BETWEEN 0 AND 10', name=op.f('ck_goal_confidence_in_range')),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], name=op.f('fk_goal_patient_id_patient')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_goal'))
    )
    with op.batch_alter_table('goal', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_goal_patient_id'), ['patient_id'], unique=False)

    op.create_table('goal_check_in',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('goal_id', sa.Integer(), nullable=False),
    sa.Column('week_start', sa.Date(), nullable=False),
    sa.Column('outcome', sa.String(length=10), nullable=False),
    sa.Column('note', sa.String(length=300), nullable=False),
    sa.Column('created_at', portal.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', portal.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("outcome IN ('done', 'partly', 'not')", name=op.f('ck_goal_check_in_outcome_known')),
    sa.ForeignKeyConstraint(['goal_id'], ['goal.id'], name=op.f('fk_goal_check_in_goal_id_goal'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_goal_check_in')),
    sa.UniqueConstraint('goal_id', 'week_start', name=op.f('uq_goal_check_in_goal_week'))
    )


def downgrade() -> None:
    op.drop_table('goal_check_in')
    with op.batch_alter_table('goal', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_goal_patient_id'))

    op.drop_table('goal')
    op.drop_table('flare_up_plan')
    op.drop_table('diary_entry')
