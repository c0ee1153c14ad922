"""The patient's pages run a small, fixed number of SQL statements, however much data there is.

Each page is fetched as a signed-in Tier 1 patient with one booking, its statements counted, then lots
more data is added (other patients, their bookings, more cohorts, the patient's own cancelled bookings)
and the page fetched again: the count must not move. A count that grows with the data is an N+1 query;
fix it in the service (eager loading), not here.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import event

from portal.booking.models import Booking, WaitlistEntry
from portal.booking.services import book_seat
from portal.db import utcnow
from portal.demo_data import demo_mobile, demo_nhs_numbers
from portal.patients.models import Patient
from tests import factories

MAX_STATEMENTS = 10
MORE_COHORTS = 30
OTHER_PATIENTS = 200
OWN_CANCELLED_BOOKINGS = 5

PAGES = [
    pytest.param("/", "Hello", id="home"),
    pytest.param("/services/t1-group", "Group starting", id="t1-group-cohorts"),
    pytest.param("/bookings", "My bookings", id="bookings"),
    pytest.param("/bookings/{booking}/move", "Move to another group", id="move"),
    pytest.param("/bookings/{booking}/cancel", "Cancel your place", id="cancel"),
    pytest.param("/bookings/{booking}/calendar.ics", "BEGIN:VCALENDAR", id="calendar-file"),
    pytest.param("/calendar", "Add your bookings to your calendar", id="calendar-settings"),
]


@contextlib.contextmanager
def recorded_statements(engine) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(_conn, _cursor, statement, _parameters, _context, _executemany) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def statements_for_page(app, client, url: str, expect: str) -> list[str]:
    with recorded_statements(app.extensions["db"].engine) as statements:
        response = client.get(url)
    assert response.status_code == 200, f"GET {url}: {response.status_code}"
    assert expect in response.get_data(as_text=True), f"GET {url} is not the page expected"
    return list(statements)


def book_patient(session, patient) -> int:
    cohort = factories.create_cohort(session)
    seat = book_seat(session, factories.domain(), patient, cohort.id, now=utcnow())
    session.commit()
    return seat.id


def add_lots_of_data(session, patient) -> None:
    """More cohorts of both tiers, 200 other patients booked onto them, and the patient's own history."""
    now = utcnow()
    # Each in a room of its own: a room holds one group at a time (a clash is refused).
    days = (now.date() + dt.timedelta(days=14 + n) for n in range(MORE_COHORTS))
    tier_1 = [factories.create_cohort(session, venue=factories.create_venue(session), capacity=20,
                                      first_date=next(days)) for _ in range(MORE_COHORTS * 2 // 3)]
    tier_2 = [
        factories.create_cohort(session, service_key="t2-programme", venue=factories.create_venue(session),
                                capacity=20, first_date=next(days))
        for _ in range(MORE_COHORTS - len(tier_1))
    ]
    cohorts = tier_1 + tier_2
    numbers = demo_nhs_numbers(start=700_000)
    for n in range(OTHER_PATIENTS):
        cohort = cohorts[n % len(cohorts)]
        other = Patient(
            nhs_number=next(numbers), given_name="Other", family_name=f"Patient {n}",
            date_of_birth=dt.date(1960, 1, 1) + dt.timedelta(days=n), mobile=demo_mobile(n % 1000),
            postcode="N19 5NF", tier=1 if cohort.team is None else 2, team=cohort.team,
        )
        session.add(other)
        session.add(Booking(patient=other, service_key=cohort.service_key, cohort_id=cohort.id, created_at=now))
        cohort.seats_taken += 1
        # ...and half of them waiting for another course too.
        if n % 2 and other.tier == 1:
            session.add(WaitlistEntry(patient=other, service_key="t1-group", position=n, status="waiting",
                                      created_at=now, updated_at=now))
    for cohort in tier_1[:OWN_CANCELLED_BOOKINGS]:
        session.add(
            Booking(
                patient_id=patient.id, service_key=cohort.service_key, cohort_id=cohort.id, status="cancelled",
                created_at=now, cancelled_at=now,
            )
        )
    session.commit()


@pytest.mark.parametrize(("url", "expect"), PAGES)
def test_page_runs_a_fixed_number_of_statements(app, patient_client, session, url, expect):
    patient = patient_client.user.patient
    url = url.format(booking=book_patient(session, patient))

    before = statements_for_page(app, patient_client, url, expect)
    assert len(before) <= MAX_STATEMENTS, f"GET {url} ran {len(before)} statements:\n" + "\n\n".join(before)

    add_lots_of_data(session, patient)
    after = statements_for_page(app, patient_client, url, expect)
    assert len(after) == len(before), (
        f"GET {url} ran {len(before)} statements, then {len(after)} with more data (an N+1?):\n"
        + "\n\n".join(after)
    )

