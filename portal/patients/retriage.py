"""What a change of tier does to what the patient already holds.

Staff re-triage a patient by registering newer triage details (``onboarding.update_from_triage``). The tier
decides what a patient may book (``config/catalogue.toml`` puts each service in one tier), so a patient moved
from one tier to the other may still hold things their new tier does not offer:

- A waiting-list place that can never be offered now (the old tier's course, or a Tier 2 group of a team that
  is no longer theirs) would wait for ever: ``waitlist.offer_free_seats`` passes it over and ``open_to``
  refuses its offers. So it is closed in the transaction that changes the tier (status "left"), a seat held for
  an offer on it goes on to the next patient, and the patient is texted that they are off the list.
- A course place not yet finished, and 1:1 appointments still to come, of a service the new tier does not offer
  are not cancelled: there may be good reason to keep them (finishing the Group; a review already booked). They
  are listed to staff ("Still booked from Tier 1") on the patient's record and by the import, and a person
  cancels or keeps each one.
- Finished course places, past appointments and questionnaires stay as they are.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from portal.appointments.models import Appointment
from portal.appointments.services import upcoming_appointments
from portal.booking import notices, waitlist
from portal.booking.models import Booking, Cohort, WaitlistEntry
from portal.booking.services import course_finished
from portal.patients.models import Patient
from portal.settings import DomainConfig


@dataclass(frozen=True)
class StillBooked:
    """A course place or a 1:1 appointment of a service the patient's tier no longer offers."""

    kind: str  # "seat" or "appointment"
    id: int
    service_name: str
    tier: int  # the tier the service belongs to
    starts_at: dt.datetime  # the appointment, or the group's first session

    @property
    def cancel_path(self) -> str:
        """The reception page that cancels it (the patient's id goes in front)."""
        return f"bookings/{self.id}/cancel" if self.kind == "seat" else f"appointments/{self.id}/cancel"


def _can_never_be_offered(domain: DomainConfig, patient: Patient, entry: WaitlistEntry) -> bool:
    # waitlist.may_be_offered, less its discharge rule: re-triage is not the place to undo a discharge, and a
    # Tier 2 patient without a team yet may be given the one they waited for.
    service = domain.catalogue.get(entry.service_key)
    if service is None or service.tier != patient.tier:
        return True
    return (service.team_scoped and patient.team is not None and entry.cohort is not None
            and entry.cohort.team != patient.team)


def close_waiting_lists(session: Session, domain: DomainConfig, patient: Patient, *,
                        now: dt.datetime) -> list[WaitlistEntry]:
    """Take the patient off every waiting list that can no longer offer them a place, as they are now, and text
    them once for each (through the outbox, in the caller's transaction). Returns the entries closed."""
    closed = []
    for entry in waitlist.live_entries_for_patient(session, patient.id):
        if not _can_never_be_offered(domain, patient, entry):
            continue
        waitlist.leave(session, domain, entry, now=now)
        if entry.status == "left":  # not ended meanwhile by an expiry or an answer to its offer
            notices.waiting_list_closed(session, domain, patient, entry_id=entry.id, now=now)
            closed.append(entry)
    return closed


def other_tier_bookings(domain: DomainConfig, patient: Patient, seats: Iterable[Booking],
                        appointments: Iterable[Appointment], *, now: dt.datetime) -> list[StillBooked]:
    """Of the patient's active ``seats`` and ``appointments``, those of a service their tier does not offer,
    soonest first: course places whose group has not finished, and appointments still to come."""
    found = []
    for seat in seats:
        service = domain.catalogue.get(seat.service_key)
        if (seat.status != "active" or service is None or service.tier == patient.tier
                or seat.cohort.status == "cancelled" or not seat.cohort.sessions
                or course_finished(seat.cohort, now=now)):
            continue
        found.append(StillBooked("seat", seat.id, service.name, service.tier,
                                 seat.cohort.first_session_going_ahead.starts_at))
    for appointment in appointments:
        service = domain.catalogue.get(appointment.service_key)
        if (not appointment.is_active or appointment.starts_at <= now or service is None
                or service.tier == patient.tier):
            continue
        found.append(StillBooked("appointment", appointment.id, service.name, service.tier, appointment.starts_at))
    return sorted(found, key=lambda item: (item.starts_at, item.kind, item.id))


def still_booked(session: Session, domain: DomainConfig, patient: Patient, *, now: dt.datetime) -> list[StillBooked]:
    """``other_tier_bookings`` read from the database: what staff must decide on after a change of tier."""
    seats = session.scalars(
        select(Booking).where(Booking.patient_id == patient.id, Booking.status == "active")
        .options(selectinload(Booking.cohort).selectinload(Cohort.sessions))
    )
    return other_tier_bookings(domain, patient, seats, upcoming_appointments(session, patient.id, now=now), now=now)
