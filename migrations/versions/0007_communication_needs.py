"""communication needs: the patient's needs under the Accessible Information Standard

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Plain ADD COLUMN: SQLite adds these without rebuilding a table that other tables point at.
_FLAGS = ('needs_large_print', 'needs_easy_read', 'needs_bsl_interpreter', 'no_texts')


def upgrade() -> None:
    for column in _FLAGS:
        op.add_column('patient', sa.Column(column, sa.Boolean(), server_default=sa.false(), nullable=False))
    op.add_column('patient', sa.Column('interpreter_language', sa.String(length=60), nullable=True))
    op.add_column('patient', sa.Column('carer_name', sa.String(length=100), nullable=True))
    op.add_column('patient', sa.Column('carer_phone', sa.String(length=16), nullable=True))


def downgrade() -> None:
    for column in ('carer_phone', 'carer_name', 'interpreter_language', *reversed(_FLAGS)):
        op.drop_column('patient', column)
