"""Carer phone numbers saved before they were parsed are stored as one diallable +44 number

Until the communication-needs form parsed carer numbers with phonenumbers, it kept the digits it was given, with a
"+" if one was typed first: "+44 (0)20 7946 0000" became +4402079460000, which no phone can dial, and "020 7946 0000"
became 02079460000. The form now stores E.164 (+442079460000); this rewrites the rows saved before it the same way.

A number this cannot read as a valid UK number (or an Ofcom drama mobile, 07700 900xxx, which demo and test data
use) is left exactly as it is: staff see it as typed, as they do now, and nothing is lost.

The normaliser is written out here rather than imported from portal.patients.identifiers, so that this migration
keeps doing what it did when it was written however the form's rule changes later.

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-25
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import phonenumbers
import sqlalchemy as sa
from alembic import op

revision: str = '0022'
down_revision: str | None = '0021'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DRAMA_MOBILE = re.compile(r"^\+447700900\d{3}$")
_patient = sa.table("patient", sa.column("id", sa.Integer), sa.column("carer_phone", sa.String(16)))


def normalised_carer_phone(stored: str) -> str:
    """The stored number as E.164 (+44...), or ``stored`` unchanged when it is not a valid UK number."""
    try:
        number = phonenumbers.parse(stored.strip(), "GB")
    except phonenumbers.NumberParseException:
        return stored
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if number.country_code != 44 or number.extension or len(e164) > 16:
        return stored
    if _DRAMA_MOBILE.match(e164) or phonenumbers.is_valid_number(number):
        return e164
    return stored


def upgrade() -> None:
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(_patient.c.id, _patient.c.carer_phone).where(_patient.c.carer_phone.is_not(None))
    ).all()
    changes = [{"row_id": row.id, "phone": new} for row in rows
               if (new := normalised_carer_phone(row.carer_phone)) != row.carer_phone]
    if changes:
        connection.execute(
            _patient.update().where(_patient.c.id == sa.bindparam("row_id")).values(carer_phone=sa.bindparam("phone")),
            changes,
        )


def downgrade() -> None:
    # Nothing to undo: the numbers written are the same numbers, in the one form the portal now keeps.
    pass
