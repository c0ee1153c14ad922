"""Signing out ends the session on the server too

Sessions live in signed cookies; until now signing out only asked the browser to drop its cookie, and a copy
taken before still signed in. Each session now carries a random key, and a signed-out key is kept here until
the cookie would have expired anyway (12 hours).

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import portal.db

revision: str = '0021'
down_revision: str | None = '0020'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'ended_session',
        sa.Column('key', sa.String(length=64), nullable=False),
        sa.Column('ended_at', portal.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('key', name=op.f('pk_ended_session')),
    )
    op.create_index(op.f('ix_ended_session_ended_at'), 'ended_session', ['ended_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_ended_session_ended_at'), table_name='ended_session')
    op.drop_table('ended_session')
