"""Concurrency: many requests at once must never oversell a cohort or double-book a patient.

Each thread runs the real service in its own transaction, as a request would, released together by a
threading.Barrier. The same tests run on SQLite and on PostgreSQL (make test-postgres).
"""

import threading
from collections import Counter

import pytest
from sqlalchemy import func, select

from portal.booking import services
from portal.booking.models import Booking, Cohort
from portal.db import Database, utcnow
from portal.messaging.models import SmsMessage
from tests import factories


@pytest.fixture
def race_db(database_url):
    # Enough pooled connections for the racers to overlap for real on PostgreSQL.
    db = Database(database_url) if database_url.startswith("sqlite") else Database(
        database_url, pool_size=40, max_overflow=0, pool_timeout=60)
    yield db
    db.dispose()


def _race(db, domain, jobs):
    """Run each (patient_id, cohort_id) job in its own thread and transaction; return the outcomes."""
    barrier = threading.Barrier(len(jobs))
    outcomes: list[str] = []
    lock = threading.Lock()

    def attempt(patient_id, cohort_id):
        barrier.wait()
        try:
            with db.transaction() as s:
                from portal.patients.models import Patient

                services.book_seat(s, domain, s.get(Patient, patient_id), cohort_id, now=utcnow())
            result = "booked"
        except services.CohortFull:
            result = "full"
        except services.AlreadyBooked:
            result = "already"
        except Exception as exc:  # noqa: BLE001 - any other failure is the finding
            result = f"error: {exc!r}"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=attempt, args=job) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a racer hung"
    return Counter(outcomes)


def test_200_patients_race_for_the_last_12_seats(session, race_db, domain):
    cohort = factories.create_cohort(session, capacity=20, seats_taken=8)
    patients = [factories.create_patient(session) for _ in range(200)]
    outcomes = _race(race_db, domain, [(p.id, cohort.id) for p in patients])
    assert outcomes == {"booked": 12, "full": 188}, outcomes
    session.expire_all()
    assert session.get(Cohort, cohort.id).seats_taken == 20
    active = session.scalar(select(func.count()).select_from(Booking).where(Booking.status == "active"))
    assert active == 12
    assert session.scalar(select(func.count()).select_from(SmsMessage)) == 12


def test_one_patient_double_submitting_gets_one_seat(session, race_db, domain):
    cohort = factories.create_cohort(session, capacity=20)
    patient = factories.create_patient(session)
    outcomes = _race(race_db, domain, [(patient.id, cohort.id)] * 10)
    assert outcomes["booked"] == 1 and outcomes["already"] == 9, outcomes
    session.expire_all()
    assert session.get(Cohort, cohort.id).seats_taken == 1
    assert session.scalar(select(func.count()).select_from(Booking)) == 1


def test_one_patient_racing_for_two_cohorts_of_the_same_course_gets_one(session, race_db, domain):
    import datetime as dt

    first = factories.create_cohort(session)
    second = factories.create_cohort(session, first_date=utcnow().date() + dt.timedelta(days=35))
    patient = factories.create_patient(session)
    outcomes = _race(race_db, domain, [(patient.id, first.id), (patient.id, second.id)] * 5)
    assert outcomes["booked"] == 1 and outcomes["already"] == 9, outcomes
    session.expire_all()
    seats = session.get(Cohort, first.id).seats_taken + session.get(Cohort, second.id).seats_taken
    assert seats == 1
