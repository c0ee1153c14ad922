"""Concurrency: a patient booking a seat while staff cancel one of the cohort's sessions is told of the
cancellation, whichever commits first. The booking's transaction is held open while the cancellation
runs, as two requests overlapping on PostgreSQL would be; SQLite runs one writer at a time (BEGIN
IMMEDIATE), so there the cancellation simply follows the booking.
"""

import threading

from sqlalchemy import select

from portal.booking import services, sessions
from portal.booking.models import Booking, CohortSession
from portal.db import utcnow
from portal.messaging.models import SmsMessage
from portal.patients.models import Patient
from tests import factories
from tests.races import run_together


def test_a_seat_booked_while_a_session_is_cancelled_gets_the_cancellation_text(session, race_db, domain):
    cohort = factories.create_cohort(session, capacity=10)
    patient = factories.create_patient(session)
    first = session.scalars(select(CohortSession).where(CohortSession.cohort_id == cohort.id)
                            .order_by(CohortSession.starts_at)).first()
    session.commit()
    overlapping = race_db.engine.dialect.name == "postgresql"
    booked = threading.Event()

    def book():
        with race_db.transaction() as s:
            services.book_seat(s, domain, s.get(Patient, patient.id), cohort.id, now=utcnow())
            booked.set()
            if overlapping:
                # Still uncommitted while the cancellation looks for the patients to text.
                threading.Event().wait(1.0)
        return "booked"

    def cancel():
        booked.wait(timeout=30)
        with race_db.transaction() as s:
            sessions.cancel_session(s, domain, s.get(CohortSession, first.id), reason="Room flooded", now=utcnow())
        return "cancelled"

    assert sorted(run_together([book, cancel])) == ["booked", "cancelled"]
    booking = session.scalars(select(Booking).where(Booking.patient_id == patient.id)).one()
    kinds = set(session.scalars(select(SmsMessage.kind).where(SmsMessage.booking_id == booking.id)))
    assert "session_cancelled" in kinds, kinds
