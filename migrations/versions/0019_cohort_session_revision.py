"""Cohort sessions count their changes

``cohort_session.revision`` rises each time staff move or cancel the session. Calendar feeds give it as the
events' SEQUENCE, which must rise with every change: a phone that subscribed ignores an update whose SEQUENCE
is not higher than the one it has. Sessions moved or cancelled before this start at 1.

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0019'
down_revision: str | None = '0018'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('cohort_session', sa.Column('revision', sa.Integer(), nullable=False, server_default='0'))
    op.execute("UPDATE cohort_session SET revision = 1 WHERE moved_from IS NOT NULL OR status = 'cancelled'")


def downgrade() -> None:
    with op.batch_alter_table('cohort_session') as batch:
        batch.drop_column('revision')
