"""Test data for self-management reading: activated patients, seats on courses, times in London."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from portal.auth.models import User
from portal.booking.models import Booking, Cohort
from tests import factories

LONDON = ZoneInfo("Europe/London")


def london(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    """A London wall-clock time, as an aware UTC datetime."""
    return dt.datetime(year, month, day, hour, minute, tzinfo=LONDON).astimezone(dt.UTC)


def activated_patient(session: Session, *, activated_at: dt.datetime, tier: int = 1, **kw) -> User:
    """A patient whose account was set up at ``activated_at``."""
    user = factories.create_patient_user(session, tier=tier, **kw)
    user.created_at = activated_at
    session.commit()
    return user


def seat(session: Session, patient_id: int, cohort: Cohort) -> Booking:
    """An active seat, written directly: the booking service refuses a course that has started."""
    booking = Booking(patient_id=patient_id, service_key=cohort.service_key, cohort_id=cohort.id, status="active")
    session.add(booking)
    session.commit()
    return booking
