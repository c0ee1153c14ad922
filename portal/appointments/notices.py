"""The texts that appointment changes cause, written to the outbox in the caller's transaction.

Keys are per appointment, so a retried request writes nothing twice. The booked and moved texts name their
appointment, so the dispatcher drops them if it is cancelled or moved again before they go; the cancelled text
names none (its appointment has ended, which is its news).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from portal.appointments.models import Appointment
from portal.messaging import texts
from portal.messaging.services import enqueue_sms
from portal.patients.models import Patient
from portal.settings import DomainConfig


def _venue_name(appointment: Appointment) -> str:
    venue = appointment.slot.venue
    return "online" if venue.is_online else venue.short_name


def booked(session: Session, domain: DomainConfig, patient: Patient, appointment: Appointment, *,
           now: dt.datetime) -> bool:
    starts_at = appointment.slot.starts_at
    return enqueue_sms(
        session, key=f"appointment-booked:{appointment.id}", patient=patient, kind="appointment_booked",
        body=texts.appointment_booked(starts_at=starts_at, venue_short_name=_venue_name(appointment),
                                      phone=domain.policy.service.phone),
        now=now, appointment_id=appointment.id, expires_at=starts_at,
    )


def moved(session: Session, domain: DomainConfig, patient: Patient, appointment: Appointment, *,
          now: dt.datetime) -> bool:
    """``appointment`` is the new one: the key names it, so each move texts once."""
    starts_at = appointment.slot.starts_at
    return enqueue_sms(
        session, key=f"appointment-moved:{appointment.id}", patient=patient, kind="appointment_moved",
        body=texts.appointment_moved(starts_at=starts_at, venue_short_name=_venue_name(appointment),
                                     phone=domain.policy.service.phone),
        now=now, appointment_id=appointment.id, expires_at=starts_at,
    )


def cancelled(session: Session, domain: DomainConfig, patient: Patient, appointment: Appointment, *,
              now: dt.datetime) -> bool:
    starts_at = appointment.slot.starts_at
    return enqueue_sms(
        session, key=f"appointment-cancelled:{appointment.id}", patient=patient, kind="appointment_cancelled",
        body=texts.appointment_cancelled(starts_at=starts_at, phone=domain.policy.service.phone),
        now=now, expires_at=starts_at,
    )
