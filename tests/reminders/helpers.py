"""Arranging bookings at fixed times in 2027, and reading back the reminders planned for them."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import select

from portal.booking import services as booking
from portal.messaging.models import SmsMessage
from portal.reminders import jobs
from portal.reminders.models import ReminderCall
from tests import factories
from tests.appointments import factories as appointment_factories

LONDON = ZoneInfo("Europe/London")


def london(year, month, day, hour, minute=0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=LONDON).astimezone(dt.UTC)


def utc(year, month, day, hour, minute=0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=dt.UTC)


def plan(db, now: dt.datetime):
    """One planning run, as the scheduler's job does it: its own transaction."""
    return jobs.plan_reminders(db, factories.domain(), now=now)


def reminder_texts(session, *, status: str | None = None) -> list[SmsMessage]:
    session.expire_all()
    query = select(SmsMessage).where(SmsMessage.kind == "reminder")
    if status:
        query = query.where(SmsMessage.status == status)
    return list(session.scalars(query.order_by(SmsMessage.due_at, SmsMessage.id)))


def calls(session, *, status: str | None = None) -> list[ReminderCall]:
    session.expire_all()
    query = select(ReminderCall)
    if status:
        query = query.where(ReminderCall.status == status)
    return list(session.scalars(query.order_by(ReminderCall.call_at, ReminderCall.id)))


def appointment_at(session, starts_at: dt.datetime, *, booked_at: dt.datetime, patient=None, venue=None, **kw):
    """A Tier 1 physiotherapy appointment at ``starts_at``, booked at ``booked_at``."""
    patient = patient or factories.create_patient(session, **kw)
    slot = appointment_factories.create_slot(session, starts_at=starts_at, venue=venue)
    return appointment_factories.book(session, patient, slot, now=booked_at)


def seat_on(session, cohort, *, booked_at: dt.datetime, patient=None, **kw):
    patient = patient or factories.create_patient(session, **kw)
    seat = booking.book_seat(session, factories.domain(), patient, cohort.id, now=booked_at)
    session.commit()
    return seat
