"""Prepared reads (portal.prepared) give exactly the rows SQLAlchemy's own execution gives, on either engine."""

import datetime as dt

import pytest
from sqlalchemy import Column, Integer, MetaData, Numeric, Table, bindparam, cast, event, func, select, text
from sqlalchemy.exc import DBAPIError, StatementError

from portal import prepared
from portal.booking.models import Booking, Cohort, CohortSession, Venue
from portal.db import UTCDateTime, read_rows
from portal.patients.models import Patient
from tests import factories

_SESSIONS = (
    select(CohortSession.cohort_id, CohortSession.number, CohortSession.starts_at, CohortSession.moved_from)
    .where(CohortSession.cohort_id.in_(bindparam("cohort_ids", expanding=True)),
           CohortSession.starts_at > bindparam("after", type_=UTCDateTime()),
           CohortSession.status.in_(["scheduled", "moved"]))
    .order_by(CohortSession.cohort_id, CohortSession.number)
)
_PATIENTS = (
    select(Patient.id, Patient.tier, Patient.team, Patient.sms_consent, Patient.date_of_birth, Patient.discharged_at)
    .where(Patient.id.in_(bindparam("ids", expanding=True)))
    .order_by(Patient.id)
)
_SEATS = (
    select(Booking.patient_id, Cohort.id.label("cohort"), Venue.is_online)
    .join(Cohort, Cohort.id == Booking.cohort_id).join(Venue, Venue.id == Cohort.venue_id)
    .where(Booking.patient_id == bindparam("patient_id"), Booking.status == "active")
)


def _sqlalchemy_rows(session, statement, params):
    return [tuple(row) for row in session.connection().execute(statement, params)]


def test_rows_match_sqlalchemy_with_expanding_lists_constants_and_utc_datetimes(session):
    # Nothing listens to the engine's statements here, so the reads below go straight to the DBAPI cursor.
    assert not session.connection().dispatch.before_cursor_execute
    cohorts = [factories.create_cohort(session) for _ in range(3)]
    session.flush()
    first_start = min(s.starts_at for s in cohorts[0].sessions)
    for ids in ([cohorts[0].id], [c.id for c in cohorts], [cohorts[2].id, cohorts[1].id], []):
        params = {"cohort_ids": ids, "after": first_start}
        rows = read_rows(session, _SESSIONS, params)
        assert [tuple(row) for row in rows] == _sqlalchemy_rows(session, _SESSIONS, params)
        assert len(rows) == (8 - 1) * len(ids)  # a Tier 1 group has 8 sessions, and the first is not after itself
    row = read_rows(session, _SESSIONS, {"cohort_ids": [cohorts[1].id], "after": first_start}).first()
    assert row.cohort_id == cohorts[1].id
    assert row.starts_at.tzinfo is not None and row.starts_at.utcoffset() == dt.timedelta(0)
    assert row.moved_from is None


def test_booleans_dates_and_nulls_come_back_as_python_values(session):
    texts = factories.create_patient(session, sms_consent=True, team=None)
    no_texts = factories.create_patient(session, sms_consent=False, date_of_birth=dt.date(1950, 12, 31))
    no_texts.discharged_at = dt.datetime(2026, 3, 29, 0, 30, tzinfo=dt.UTC)
    session.flush()
    params = {"ids": [texts.id, no_texts.id]}
    rows = read_rows(session, _PATIENTS, params)
    assert [tuple(row) for row in rows] == _sqlalchemy_rows(session, _PATIENTS, params)
    assert rows[0].sms_consent is True and rows[0].team is None and rows[0].discharged_at is None
    assert rows[1].sms_consent is False and rows[1].date_of_birth == dt.date(1950, 12, 31)
    assert rows[1].discharged_at == dt.datetime(2026, 3, 29, 0, 30, tzinfo=dt.UTC)


def test_labels_joins_and_the_result_methods(session):
    patient = factories.create_patient(session)
    cohort = factories.create_cohort(session)
    session.add(Booking(patient_id=patient.id, service_key=cohort.service_key, cohort_id=cohort.id, status="active",
                        booked_by_staff=False, created_at=dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)))
    session.flush()
    rows = read_rows(session, _SEATS, {"patient_id": patient.id})
    assert rows.all() == [(patient.id, cohort.id, cohort.venue.is_online)]
    assert rows.first().cohort == cohort.id
    assert rows.scalar() == patient.id
    empty = read_rows(session, _SEATS, {"patient_id": patient.id + 1000})
    assert empty.all() == [] and empty.first() is None and empty.scalar() is None


def test_unwritten_changes_are_written_before_reading(session):
    patient = factories.create_patient(session, tier=1)
    session.flush()
    patient.tier = 2  # not flushed yet
    assert read_rows(session, _PATIENTS, {"ids": [patient.id]}).first().tier == 2


def test_a_missing_value_is_refused_by_name(session):
    with pytest.raises(KeyError, match="patient_id"):
        read_rows(session, _SEATS, {})


def test_a_database_error_comes_back_as_sqlalchemys(session):
    missing = Table("no_such_table", MetaData(), Column("id", Integer))
    with pytest.raises(DBAPIError):
        read_rows(session, select(missing.c.id).where(missing.c.id == bindparam("id")), {"id": 1})
    session.rollback()


def test_the_engine_sees_every_prepared_read(db, session):
    """The query-count tests listen to the engine: a prepared read must not slip past them."""
    seen = []

    def record(_conn, _cursor, statement, *_):
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        read_rows(session, _SEATS, {"patient_id": 1})
        read_rows(session, _SEATS, {"patient_id": 2})
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    assert len([s for s in seen if s.lstrip().startswith("SELECT booking.patient_id")]) == 2


def test_each_list_length_is_compiled_once(session):
    prepared._expand.cache_clear()
    for _ in range(3):
        read_rows(session, _PATIENTS, {"ids": [1, 2]})
        read_rows(session, _PATIENTS, {"ids": [1, 2, 3]})
    assert prepared._expand.cache_info().misses == 2
    assert prepared._expand.cache_info().hits == 4


def test_lists_share_the_form_of_the_next_power_of_two_and_read_the_same_rows(session):
    """Staff lists read ids in chunks of any length up to 500: each length its own form would push a page's
    forms out of the cache. Padded with copies of the last id, 300 lengths make 10 forms."""
    patients = [factories.create_patient(session, given_name=f"Ann{n}") for n in range(9)]
    session.flush()
    ids = [p.id for p in patients]
    prepared._expand.cache_clear()
    for length in range(1, 10):
        got = sorted(row.id for row in read_rows(session, _PATIENTS, {"ids": ids[:length]}))
        assert got == sorted(ids[:length])
    assert prepared._expand.cache_info().misses == 5  # lengths 1, 2, 4, 8 and 16
    for length in range(1, 301):
        read_rows(session, _PATIENTS, {"ids": list(range(length))})
    assert prepared._expand.cache_info().currsize == 10


def test_an_in_list_of_untyped_values_and_any_collection(session):
    """A placeholder must not look like a row value to SQLAlchemy, and a set or a generator is a list too."""
    patient = factories.create_patient(session, given_name="Ann")
    session.flush()
    by_name = select(Patient.id).where(func.lower(Patient.given_name).in_(bindparam("names", expanding=True)))
    assert read_rows(session, by_name, {"names": ["ann"]}).all() == [(patient.id,)]
    assert read_rows(session, _PATIENTS, {"ids": {patient.id}}).first().id == patient.id
    assert read_rows(session, _PATIENTS, {"ids": (i for i in [patient.id])}).first().id == patient.id


def test_a_parameter_with_a_value_of_its_own_takes_the_callers(session):
    one = factories.create_patient(session, tier=1)
    two = factories.create_patient(session, tier=2)
    session.flush()
    statement = select(Patient.id).where(Patient.id.in_([one.id, two.id]), Patient.tier == bindparam("tier", value=1))
    assert read_rows(session, statement, {}).all() == [(one.id,)]
    assert read_rows(session, statement, {"tier": 2}).all() == [(two.id,)]
    nothing = select(Patient.id).where(Patient.team == bindparam("team", value=None, required=False))
    assert read_rows(session, nothing, {}).all() == []


def test_a_value_that_cannot_be_sent_is_a_statement_error(session):
    with pytest.raises(StatementError, match="naive datetime"):
        read_rows(session, _SESSIONS, {"cohort_ids": [1], "after": dt.datetime(2026, 3, 29, 1, 30)})


def test_numbers_come_back_as_numbers(session):
    """PostgreSQL's numeric results need the driver's type code to be converted."""
    patient = factories.create_patient(session)
    session.flush()
    statement = select(cast(Patient.tier, Numeric(5, 2)).label("tier"), (Patient.tier / 2.0).label("half")).where(
        Patient.id == bindparam("id"))
    row = read_rows(session, statement, {"id": patient.id}).first()
    assert (float(row.tier), float(row.half)) == (1.0, 0.5)


def test_a_lost_connection_is_invalidated_and_the_session_carries_on(db, session):
    if db.is_sqlite:
        pytest.skip("a connection lost to the server: PostgreSQL (run with PORTAL_TEST_DATABASE_URL)")
    backend = session.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar()
    with db.engine.connect() as other:
        other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
        other.commit()
    with pytest.raises(DBAPIError) as raised:
        read_rows(session, _SEATS, {"patient_id": 1})
    assert raised.value.connection_invalidated
    session.rollback()
    assert read_rows(session, _SEATS, {"patient_id": 1}).all() == []
