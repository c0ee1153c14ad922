"""The texts that seat changes cause, written to the outbox in the caller's transaction."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from portal.booking.models import Booking
from portal.messaging import texts
from portal.messaging.services import enqueue_sms
from portal.patients.models import Patient
from portal.settings import DomainConfig


def venue_name(booking: Booking) -> str:
    """What a text calls the place: the venue's short name, or "online"."""
    cohort = booking.cohort
    return "online" if cohort.venue.is_online else cohort.venue.short_name


def seat_booked(
    session: Session,
    domain: DomainConfig,
    patient: Patient,
    *,
    booking_id: int,
    first_session_at: dt.datetime,
    venue_short_name: str,
    now: dt.datetime,
) -> None:
    enqueue_sms(
        session, key=f"booked:{booking_id}", patient=patient, kind="booking_confirmation",
        body=texts.seat_booked(first_session=first_session_at, venue_short_name=venue_short_name,
                               phone=domain.policy.service.phone),
        now=now, booking_id=booking_id, expires_at=first_session_at,
    )


def seat_moved(
    session: Session, domain: DomainConfig, patient: Patient, booking: Booking, *, now: dt.datetime
) -> None:
    first = booking.cohort.first_session_going_ahead
    enqueue_sms(
        session, key=f"moved:{booking.id}", patient=patient, kind="booking_moved",
        body=texts.seat_moved(first_session=first.starts_at, venue_short_name=venue_name(booking),
                              phone=domain.policy.service.phone),
        now=now, booking_id=booking.id, expires_at=first.starts_at,
    )


def seat_cancelled(
    session: Session, domain: DomainConfig, patient: Patient, booking: Booking, *, now: dt.datetime
) -> bool:
    """True if the text went in the outbox (not for a patient who takes no texts)."""
    first = booking.cohort.first_session
    return enqueue_sms(
        session, key=f"cancelled:{booking.id}", patient=patient, kind="booking_cancelled",
        body=texts.seat_cancelled(first_session=first.starts_at, phone=domain.policy.service.phone),
        # No booking_id: the dispatcher drops a text whose booking has ended, and this one is about just that.
        now=now,
    )


def waiting_list_closed(session: Session, domain: DomainConfig, patient: Patient, *, entry_id: int,
                        now: dt.datetime) -> None:
    """The patient's waiting-list place ended because their tier (or team) changed: tell them, once."""
    enqueue_sms(
        session, key=f"waitlist-closed:{entry_id}", patient=patient, kind="waiting_list_closed",
        body=texts.waiting_list_closed(phone=domain.policy.service.phone), now=now,
    )
