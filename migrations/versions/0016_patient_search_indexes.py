"""Reception search: indexed name keys and date of birth

- patient.given_name_key / family_name_key: each name case folded, with accents and everything but letters and
  digits dropped (portal.patients.models.name_key), filled in here for the patients already registered.
- ix_patient_name_key (family, given) and ix_patient_given_name_key: prefix search by surname, surname and given
  name, or given name. On PostgreSQL with text_pattern_ops, so the byte-order operators the search uses
  (~>=~, ~<~) are answered from the index whatever the database's collation.
- ix_patient_date_of_birth. The NHS number (unique) and the mobile were indexed already.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-25
"""

import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0016'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 1000


def _name_key(name: str) -> str:
    # A copy of portal.patients.models.name_key as it was when this migration was written.
    decomposed = unicodedata.normalize("NFKD", (name or "").casefold())
    return "".join(ch for ch in decomposed if ch.isalnum())[:100]


def upgrade() -> None:
    # Plain ADD COLUMN: SQLite adds these without rebuilding a table that other tables point at.
    op.add_column('patient', sa.Column('given_name_key', sa.String(length=100), server_default='', nullable=False))
    op.add_column('patient', sa.Column('family_name_key', sa.String(length=100), server_default='', nullable=False))

    patient = sa.table('patient', sa.column('id', sa.Integer), sa.column('given_name', sa.String),
                       sa.column('family_name', sa.String), sa.column('given_name_key', sa.String),
                       sa.column('family_name_key', sa.String))
    connection = op.get_bind()
    update = (
        sa.update(patient).where(patient.c.id == sa.bindparam('pid'))
        .values(given_name_key=sa.bindparam('given'), family_name_key=sa.bindparam('family'))
    )
    last = 0
    while True:
        rows = connection.execute(
            sa.select(patient.c.id, patient.c.given_name, patient.c.family_name)
            .where(patient.c.id > last).order_by(patient.c.id).limit(_BATCH)
        ).all()
        if not rows:
            break
        connection.execute(update, [
            {'pid': pid, 'given': _name_key(given), 'family': _name_key(family)} for pid, given, family in rows
        ])
        last = rows[-1][0]

    op.create_index('ix_patient_name_key', 'patient', ['family_name_key', 'given_name_key'], unique=False,
                    postgresql_ops={'family_name_key': 'text_pattern_ops', 'given_name_key': 'text_pattern_ops'})
    op.create_index('ix_patient_given_name_key', 'patient', ['given_name_key'], unique=False,
                    postgresql_ops={'given_name_key': 'text_pattern_ops'})
    op.create_index('ix_patient_date_of_birth', 'patient', ['date_of_birth'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_patient_date_of_birth', table_name='patient')
    op.drop_index('ix_patient_given_name_key', table_name='patient')
    op.drop_index('ix_patient_name_key', table_name='patient')
    with op.batch_alter_table('patient', schema=None) as batch_op:
        batch_op.drop_column('family_name_key')
        batch_op.drop_column('given_name_key')
