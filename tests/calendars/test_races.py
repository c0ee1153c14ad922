"""Concurrency: a patient asking for a new calendar address twice at once gets one working address, not an
error. Each thread runs the service in its own transaction, as a request would (see tests/races.py)."""

from sqlalchemy import func, select

from portal.booking.models import CalendarFeed
from portal.calendars import services as calendars
from portal.db import utcnow
from tests import factories
from tests.races import run_together


def _new_feed(db, patient_id):
    def job():
        with db.transaction() as s:
            token = calendars.new_feed_token(s, patient_id, now=utcnow())
        return token
    return job


def _race(session, race_db, patient_id, racers=6):
    tokens = run_together([_new_feed(race_db, patient_id)] * racers)
    assert all(len(token) > 20 for token in tokens), tokens
    assert session.scalar(select(func.count()).select_from(CalendarFeed)) == 1
    working = [t for t in tokens if calendars.patient_for_feed(session, t) == patient_id]
    assert len(working) == 1, tokens


def test_new_addresses_asked_for_at_once_leave_one_that_works(session, race_db):
    patient = factories.create_patient(session)
    _race(session, race_db, patient.id)


def test_replacing_an_address_twice_at_once_leaves_one_that_works(session, race_db):
    patient = factories.create_patient(session)
    old = calendars.new_feed_token(session, patient.id, now=utcnow())
    session.commit()
    _race(session, race_db, patient.id)
    assert calendars.patient_for_feed(session, old) is None
