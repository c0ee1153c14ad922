"""What goes in a patient's calendar, and the private feed address they subscribe to.

The feed holds every session of the patient's course bookings and every 1:1 appointment, including those given
up or moved away from in the last 90 days (as cancelled events), so a phone that subscribed removes them by
itself. A rescheduled appointment is a new appointment (a new event); the old one shows as cancelled.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session, selectinload

from portal.appointments.models import Appointment
from portal.booking.models import Booking, CalendarFeed, Cohort
from portal.calendars.ics import CalendarEvent
from portal.db import upsert_insert
from portal.settings import DomainConfig

KEEP_CANCELLED = dt.timedelta(days=90)


def _location(cohort: Cohort) -> str:
    if cohort.venue.is_online:
        return "Online (video call)"
    return f"{cohort.venue.name}, {cohort.venue.address}"


def course_events(domain: DomainConfig, booking: Booking) -> list[CalendarEvent]:
    """One event per session of the booked cohort. The summary is discreet: a phone's lock screen shows it."""
    cohort = booking.cohort
    phone = domain.policy.service.phone
    weeks = len(cohort.sessions)
    link = f"Join online: {cohort.online_link}\n" if cohort.online_link and booking.status == "active" else ""
    events = []
    for s in cohort.sessions:
        ended = booking.status != "active" or cohort.status == "cancelled"
        cancelled = ended or s.status == "cancelled"
        events.append(CalendarEvent(
            uid=f"booking-{booking.id}-session-{s.id}@pain-portal",
            starts_at=s.starts_at,
            ends_at=s.ends_at,
            summary=f"NHS group session (week {s.number} of {weeks})",
            location=_location(cohort),
            description=f"{link}To change or cancel, sign in to the portal or call {phone}.",
            cancelled=cancelled,
            # Each change by staff raises the session's revision; the seat's ending is one change more.
            sequence=s.revision + (1 if ended else 0),
        ))
    return events


def appointment_event(domain: DomainConfig, appointment: Appointment) -> CalendarEvent:
    slot = appointment.slot
    venue = slot.venue
    return CalendarEvent(
        uid=f"appointment-{appointment.id}@pain-portal",
        starts_at=slot.starts_at,
        ends_at=slot.ends_at,
        summary="NHS appointment",
        location="Online (video call)" if venue.is_online else f"{venue.name}, {venue.address}",
        description=f"To change or cancel, sign in to the portal or call {domain.policy.service.phone}.",
        cancelled=appointment.status != "active",
        sequence=0 if appointment.status == "active" else 1,
    )


def events_for_patient(session: Session, domain: DomainConfig, patient_id: int, *, now: dt.datetime):
    since = now - KEEP_CANCELLED
    bookings = session.scalars(
        select(Booking)
        .where(
            Booking.patient_id == patient_id,
            or_(Booking.status == "active", Booking.cancelled_at >= since),
        )
        .options(selectinload(Booking.cohort).selectinload(Cohort.sessions))
        .order_by(Booking.id)
    )
    events = [event for booking in bookings for event in course_events(domain, booking)]
    appointments = session.scalars(
        select(Appointment)
        .where(
            Appointment.patient_id == patient_id,
            or_(Appointment.status == "active", Appointment.ended_at >= since),
        )
        .order_by(Appointment.id)
    )
    events.extend(appointment_event(domain, a) for a in appointments)
    return sorted(events, key=lambda e: e.starts_at)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def has_feed(session: Session, patient_id: int) -> bool:
    return session.get(CalendarFeed, patient_id) is not None


def new_feed_token(session: Session, patient_id: int, *, now: dt.datetime) -> str:
    """A new private feed token; any earlier address stops working. Only its hash is stored."""
    token = secrets.token_urlsafe(32)
    # One statement, not delete-then-insert: two taps at once (or two tabs) would both find no row to
    # replace and the second insert would fail on the patient's key. The later request's address wins.
    insert = upsert_insert(session.connection().dialect.name)(CalendarFeed).values(
        patient_id=patient_id, token_hash=_hash(token), created_at=now)
    session.execute(insert.on_conflict_do_update(
        index_elements=[CalendarFeed.patient_id],
        set_={"token_hash": insert.excluded.token_hash, "created_at": insert.excluded.created_at},
    ))
    return token


def revoke_feed(session: Session, patient_id: int) -> None:
    session.execute(delete(CalendarFeed).where(CalendarFeed.patient_id == patient_id))


def patient_for_feed(session: Session, token: str) -> int | None:
    if not token or len(token) > 100:
        return None
    return session.scalar(select(CalendarFeed.patient_id).where(CalendarFeed.token_hash == _hash(token)))
