"""The reception day and week view: group sessions and 1:1 slots per venue and service, by London day.

No Flask here. Two queries whatever the week holds: the sessions with their cohort's count of booked patients,
and the slots with their active appointment's patient.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from portal.appointments.models import Appointment, AppointmentSlot
from portal.auth.models import User
from portal.booking.models import Booking, Cohort, CohortSession, Venue
from portal.patients.models import Patient

LONDON = ZoneInfo("Europe/London")


@dataclass(frozen=True)
class GroupSession:
    session: CohortSession
    cohort: Cohort
    venue: Venue
    booked: int  # patients with an active seat in the cohort

    @property
    def cancelled(self) -> bool:
        return self.session.status == "cancelled" or self.cohort.status == "cancelled"


@dataclass(frozen=True)
class Slot:
    slot: AppointmentSlot
    venue: Venue
    clinician: User
    patient: Patient | None  # the patient of its active appointment
    appointment_id: int | None


@dataclass
class Day:
    day: dt.date
    sessions: list[GroupSession] = field(default_factory=list)
    slots: list[Slot] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.sessions and not self.slots

    @property
    def slots_booked(self) -> int:
        return sum(1 for s in self.slots if s.patient is not None)


def week_start(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def _utc_bounds(first: dt.date, days: int) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(first, dt.time(), tzinfo=LONDON).astimezone(dt.UTC)
    end = dt.datetime.combine(first + dt.timedelta(days=days), dt.time(), tzinfo=LONDON).astimezone(dt.UTC)
    return start, end


def schedule(
    session: Session, *, first: dt.date, days: int, venue_id: int | None = None, service_key: str | None = None
) -> list[Day]:
    """``days`` London days from ``first``, each with its group sessions and 1:1 slots, by start time."""
    start, end = _utc_bounds(first, days)
    by_day = {first + dt.timedelta(days=n): Day(first + dt.timedelta(days=n)) for n in range(days)}

    booked = (
        select(func.count(Booking.id))
        .where(Booking.cohort_id == Cohort.id, Booking.status == "active")
        .correlate(Cohort)
        .scalar_subquery()
    )
    sessions = (
        select(CohortSession, Cohort, Venue, booked)
        .join(Cohort, CohortSession.cohort_id == Cohort.id)
        .join(Venue, Cohort.venue_id == Venue.id)
        .where(CohortSession.starts_at >= start, CohortSession.starts_at < end)
        .order_by(CohortSession.starts_at, CohortSession.id)
    )
    slots = (
        select(AppointmentSlot, Venue, User, Patient, Appointment.id)
        .join(Venue, AppointmentSlot.venue_id == Venue.id)
        .join(User, AppointmentSlot.clinician_id == User.id)
        .outerjoin(Appointment, and_(Appointment.slot_id == AppointmentSlot.id, Appointment.status == "active"))
        .outerjoin(Patient, Appointment.patient_id == Patient.id)
        .where(AppointmentSlot.starts_at >= start, AppointmentSlot.starts_at < end)
        .order_by(AppointmentSlot.starts_at, User.display_name, AppointmentSlot.id)
    )
    if venue_id is not None:
        sessions = sessions.where(Cohort.venue_id == venue_id)
        slots = slots.where(AppointmentSlot.venue_id == venue_id)
    if service_key is not None:
        sessions = sessions.where(Cohort.service_key == service_key)
        slots = slots.where(AppointmentSlot.service_key == service_key)

    for cohort_session, cohort, venue, count in session.execute(sessions):
        day = by_day.get(cohort_session.starts_at.astimezone(LONDON).date())
        if day is not None:
            day.sessions.append(GroupSession(cohort_session, cohort, venue, count or 0))
    for slot, venue, clinician, patient, appointment_id in session.execute(slots):
        day = by_day.get(slot.starts_at.astimezone(LONDON).date())
        if day is not None:
            day.slots.append(Slot(slot, venue, clinician, patient, appointment_id))
    return list(by_day.values())
