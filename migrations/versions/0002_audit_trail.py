"""audit trail

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import portal.db
from portal.audit.models import NO_UPDATE_POSTGRES, NO_UPDATE_SQLITE

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('audit_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('occurred_at', portal.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('actor_user_id', sa.Integer(), nullable=True),
    sa.Column('actor_role', sa.String(length=20), nullable=False),
    sa.Column('action', sa.String(length=60), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=True),
    sa.Column('detail', sa.String(length=300), nullable=False),
    sa.Column('ip', sa.String(length=45), nullable=True),
    sa.Column('request_id', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_event'))
    )
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.create_index('ix_audit_event_actor_time', ['actor_user_id', 'occurred_at'], unique=False)
        batch_op.create_index('ix_audit_event_patient_time', ['patient_id', 'occurred_at'], unique=False)
        batch_op.create_index('ix_audit_event_time', ['occurred_at'], unique=False)

    # Append-only in the database itself: an UPDATE of an audit row is refused.
    if op.get_bind().dialect.name == "postgresql":
        for statement in NO_UPDATE_POSTGRES:
            op.execute(statement)
    else:
        op.execute(NO_UPDATE_SQLITE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_event_no_update ON audit_event")
        op.execute("DROP FUNCTION audit_event_refuse_update()")
    else:
        op.execute("DROP TRIGGER audit_event_no_update")
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_event_time')
        batch_op.drop_index('ix_audit_event_patient_time')
        batch_op.drop_index('ix_audit_event_actor_time')

    op.drop_table('audit_event')
