"""Venue names are unique (ignoring case and spacing) in the database, not only in the form

The venue forms refused a name another venue had, but checked and saved with nothing held: two identical
forms sent at once made two venues. Each venue now keeps its name's key (spaces collapsed, case folded), under
a unique index.

A database may already hold two venues of one name. Renaming either here would change what staff lists and
patients' texts say without anyone choosing it, so the oldest keeps the key and each later copy keeps none
(NULL, which the index allows any number of) until an admin renames it; the form still refuses a third.

Revision ID: 0023
Revises: 0021
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0023'
down_revision: str | None = '0022'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _key(name: str) -> str:
    # As portal.booking.models.venue_name_key on the day of this migration (a migration must not change with it).
    return " ".join(name.split()).casefold()


def upgrade() -> None:
    op.add_column('venue', sa.Column('name_key', sa.String(length=360), nullable=True))
    venue = sa.table('venue', sa.column('id', sa.Integer), sa.column('name', sa.String),
                     sa.column('name_key', sa.String))
    connection = op.get_bind()
    taken: set[str] = set()
    for venue_id, name in connection.execute(sa.select(venue.c.id, venue.c.name).order_by(venue.c.id)).all():
        key = _key(name)
        if key in taken:
            continue
        taken.add(key)
        connection.execute(sa.update(venue).where(venue.c.id == venue_id).values(name_key=key))
    op.create_index('uq_venue_name_key', 'venue', ['name_key'], unique=True)


def downgrade() -> None:
    op.drop_index('uq_venue_name_key', table_name='venue')
    op.drop_column('venue', 'name_key')
