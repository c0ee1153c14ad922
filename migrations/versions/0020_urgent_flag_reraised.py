"""An acknowledged urgent flag no longer stops a graver answer from raising another

``urgent_flag.response_id`` was unique, so a response could raise one flag in its life: once a clinician had
acknowledged "Several days", a draft saved again with "Nearly every day" raised nothing. The rule is now at most
one *open* flag per response (a partial unique index); the service raises a new one for an answer graver than
any a clinician has acknowledged.

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0020'
down_revision: str | None = '0019'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OPEN = sa.text("acknowledged_at IS NULL")


def upgrade() -> None:
    with op.batch_alter_table('urgent_flag') as batch:
        batch.drop_constraint('uq_urgent_flag_response_id', type_='unique')
        batch.create_index('ix_urgent_flag_response_id', ['response_id'], unique=False)
        batch.create_index('uq_urgent_flag_open_response', ['response_id'], unique=True,
                           sqlite_where=_OPEN, postgresql_where=_OPEN)


def downgrade() -> None:
    # The old rule allows one flag per response. Flags are clinical records, so none is deleted to fit it.
    repeated = op.get_bind().execute(sa.text(
        "SELECT COUNT(*) FROM (SELECT response_id FROM urgent_flag GROUP BY response_id HAVING COUNT(*) > 1) AS r"
    )).scalar()
    if repeated:
        raise RuntimeError(f"{repeated} responses have raised more than one urgent flag: cannot downgrade")
    with op.batch_alter_table('urgent_flag') as batch:
        batch.drop_index('uq_urgent_flag_open_response')
        batch.drop_index('ix_urgent_flag_response_id')
        batch.create_unique_constraint('uq_urgent_flag_response_id', ['response_id'])
