"""Migration 0022 rewrites carer numbers saved before the form parsed them, as the form now stores them."""

from __future__ import annotations

import datetime as dt
import importlib.util
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, insert, select
from sqlalchemy.orm import Session

from portal.cli import _alembic_config
from portal.demo_data import demo_mobile, demo_nhs_numbers
from portal.patients.identifiers import parse_uk_phone
from portal.patients.models import Patient
from tests.fixtures import databases

MIGRATION = Path(__file__).parents[2] / "migrations" / "versions" / "0022_carer_phone_e164.py"

_numbers = demo_nhs_numbers(start=730_000)

# What the old form kept (the digits typed, "+" first if typed first), and what 0022 makes of it.
STORED = {
    "+4402079460000": "+442079460000",      # "+44 (0)20 7946 0000": the trunk 0 kept, undiallable
    "02079460000": "+442079460000",         # "020 7946 0000"
    "+442079460000": "+442079460000",       # already E.164
    "07911123456": "+447911123456",         # a mobile typed the national way
    "+4407911123456": "+447911123456",
    "07700900123": "+447700900123",         # an Ofcom drama mobile, as demo data holds
    "0207946000": "0207946000",             # a digit short: not a valid number, left for staff to see
    "+12025550123": "+12025550123",         # not a UK number: left as it is
    "12345": "12345",
}


def _normaliser():
    spec = importlib.util.spec_from_file_location("migration_0022", MIGRATION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.normalised_carer_phone


@pytest.mark.parametrize(("stored", "expected"), STORED.items())
def test_the_migration_normalises_as_the_form_does(stored, expected):
    assert _normaliser()(stored) == expected
    if expected != stored or stored.startswith("+44"):
        # Whatever it rewrites, the form (outside production) would have saved from the same number.
        assert parse_uk_phone(stored, allow_drama_range=True) == expected


def _patient_at_0021(session, **values) -> int:
    """A patient row as the schema at 0021 holds it. Through Core, naming only columns 0021 has: the ORM would
    name every column of today's model, and later migrations add some."""
    n = next(_numbers)
    row = {"nhs_number": n, "given_name": "Sam", "family_name": "Carer", "date_of_birth": dt.date(1970, 1, 1),
           "mobile": demo_mobile(int(n[-3:]) % 900), "postcode": "N8 8JD", "tier": 1, **values}
    return session.execute(insert(Patient.__table__).values(**row).returning(Patient.__table__.c.id)).scalar_one()


def test_upgrading_rewrites_old_carer_numbers_and_leaves_the_rest(tmp_path):
    with databases.test_database_url(tmp_path) as url:
        config = _alembic_config(url)
        command.upgrade(config, "0021")
        engine = create_engine(url)
        try:
            with Session(engine) as session:
                ids = {stored: _patient_at_0021(session, carer_name="Sam", carer_phone=stored) for stored in STORED}
                no_carer = _patient_at_0021(session)
                session.commit()
            command.upgrade(config, "head")
            with Session(engine) as session:
                phones = dict(session.execute(select(Patient.id, Patient.carer_phone)).all())
            assert {stored: phones[ids[stored]] for stored in STORED} == STORED
            assert phones[no_carer] is None
            # Run again (a second deploy, or after a downgrade): nothing changes.
            command.downgrade(config, "0021")
            command.upgrade(config, "head")
            with Session(engine) as session:
                assert dict(session.execute(select(Patient.id, Patient.carer_phone)).all()) == phones
        finally:
            engine.dispose()
