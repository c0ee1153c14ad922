"""Keyword-only factories for appointment test data. Each commits, so the app under test sees the rows."""

from __future__ import annotations

import datetime as dt
import itertools
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from portal.appointments import availability, services
from portal.appointments.models import Appointment, AppointmentSlot, AvailabilityTemplate
from portal.auth.models import Role, User
from portal.booking.models import Venue
from portal.db import utcnow
from portal.patients.models import Patient
from tests import factories

LONDON = ZoneInfo("Europe/London")
_counter = itertools.count(1)


def london(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    """A London wall-clock time as an aware UTC datetime."""
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=LONDON).astimezone(dt.UTC)


def days_ahead(days: int, hour: int = 10, minute: int = 0) -> dt.datetime:
    """``days`` from today (London), at a London wall-clock time."""
    today = utcnow().astimezone(LONDON).date()
    return london(today + dt.timedelta(days=days), hour, minute)


def create_clinician(session: Session, *, role: Role = Role.FACILITATOR, **kw) -> User:
    """A clinician who never signs in in these tests: no password hashing, so fifty of them are quick."""
    n = next(_counter)
    user = User(role=role.value, email=kw.pop("email", f"clinician{n}@test.nhs.uk"),
                display_name=kw.pop("display_name", f"Clinician {n}"), password_hash="!unusable", **kw)
    session.add(user)
    session.commit()
    return user


def create_template(
    session: Session,
    *,
    clinician: User | None = None,
    service_key: str = "t1-physio",
    team: str | None = None,
    venue: Venue | None = None,
    weekday: int = 0,
    start_time: dt.time = dt.time(9, 0),
    end_time: dt.time = dt.time(12, 0),
    slot_minutes: int = 30,
    valid_from: dt.date | None = None,
    valid_until: dt.date | None = None,
) -> AvailabilityTemplate:
    template = availability.create_template(
        session, factories.domain(), clinician_id=(clinician or create_clinician(session)).id,
        service_key=service_key, team=team, venue_id=(venue or factories.create_venue(session)).id,
        weekday=weekday, start_time=start_time, end_time=end_time, slot_minutes=slot_minutes,
        valid_from=valid_from or utcnow().date(), valid_until=valid_until,
    )
    session.commit()
    return template


def create_slot(
    session: Session,
    *,
    starts_at: dt.datetime | None = None,
    minutes: int = 30,
    service_key: str = "t1-physio",
    team: str | None = None,
    clinician: User | None = None,
    venue: Venue | None = None,
    status: str = "open",
    blocked_reason: str | None = None,
) -> AppointmentSlot:
    if team is None and service_key.startswith("t2-"):
        team = "whittington"
    starts_at = starts_at or days_ahead(3)
    slot = AppointmentSlot(
        clinician_id=(clinician or create_clinician(session)).id, service_key=service_key, team=team,
        venue_id=(venue or factories.create_venue(session)).id, starts_at=starts_at,
        ends_at=starts_at + dt.timedelta(minutes=minutes), status=status,
        blocked_reason=blocked_reason or ("Training" if status == "blocked" else None),
    )
    session.add(slot)
    session.commit()
    return slot


def create_slots(session: Session, count: int, *, first: dt.datetime | None = None, **kw) -> list[AppointmentSlot]:
    """``count`` back-to-back 30-minute slots of one clinician at one venue."""
    first = first or days_ahead(3)
    kw.setdefault("clinician", create_clinician(session))
    kw.setdefault("venue", factories.create_venue(session))
    return [create_slot(session, starts_at=first + dt.timedelta(minutes=30 * i), **kw) for i in range(count)]


def book(session: Session, patient: Patient, slot: AppointmentSlot, *, now: dt.datetime | None = None,
         **kw) -> Appointment:
    appointment = services.book_appointment(session, factories.domain(), patient, slot.id, now=now or utcnow(), **kw)
    session.commit()
    return appointment
