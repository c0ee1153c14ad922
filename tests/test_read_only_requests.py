"""Pages marked read_only read through Database.reader(): no SQLite write lock, and no writes at all."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, update

from portal.booking.models import Venue
from portal.db import ReadOnlySessionError
from portal.patients.models import Patient
from tests import factories
from tests.test_query_counts import book_patient, recorded_statements

READ_ONLY_PAGES = ["/", "/services", "/services/t1-group", "/bookings"]


def transactions_begun(db, client, url: str) -> list[str]:
    with recorded_statements(db.engine) as statements:
        assert client.get(url).status_code == 200
    return [s for s in statements if s.startswith("BEGIN")]


def test_a_reader_reads(db, session):
    patient = factories.create_patient(session)
    with db.reader() as reader:
        assert reader.get(Patient, patient.id).given_name == patient.given_name


def test_a_reader_refuses_to_flush_a_change(db, session):
    patient = factories.create_patient(session)
    with db.reader() as reader:
        reader.get(Patient, patient.id).given_name = "Changed"
        with pytest.raises(ReadOnlySessionError):
            reader.flush()


def test_a_reader_refuses_a_new_object(db):
    with db.reader() as reader:
        reader.add(Venue(name="a", short_name="b", address="c"))
        with pytest.raises(ReadOnlySessionError):
            reader.commit()


@pytest.mark.parametrize(
    "statement", [update(Patient).values(given_name="x"), delete(Patient)], ids=["update", "delete"]
)
def test_a_reader_refuses_dml(db, statement):
    with db.reader() as reader, pytest.raises(ReadOnlySessionError):
        reader.execute(statement)


def test_read_only_pages_begin_a_deferred_transaction_on_sqlite(app, db, patient_client, session):
    if not db.is_sqlite:
        pytest.skip("SQLite transaction modes: this run is on PostgreSQL")
    book_patient(session, patient_client.user.patient)
    cohort_id = factories.create_cohort(session).id
    for url in READ_ONLY_PAGES:
        assert transactions_begun(db, patient_client, url) == ["BEGIN"], url
    # A page that is not marked (its view also takes the booking POST) keeps the writer's transaction.
    assert transactions_begun(db, patient_client, f"/cohorts/{cohort_id}") == ["BEGIN IMMEDIATE"]


def test_a_page_view_does_not_wait_for_a_writer(app, db, patient_client, session):
    if not db.is_sqlite:
        pytest.skip("SQLite write lock: this run is on PostgreSQL")
    book_patient(session, patient_client.user.patient)
    with db.transaction() as writer:
        writer.connection()  # BEGIN IMMEDIATE: this connection now holds the write lock
        for url in READ_ONLY_PAGES:
            assert patient_client.get(url).status_code == 200
