"""Test data for attendance: a group session at a chosen time with booked patients, and 1:1 appointments
at chosen (past) times. Each commits, so the app under test sees the rows."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from portal.appointments.models import Appointment
from portal.auth.models import User
from portal.booking.models import Booking, Cohort, CohortSession
from portal.db import utcnow
from portal.patients.models import Patient
from tests import factories
from tests.appointments import factories as appt


def group_session(
    session: Session,
    *,
    patients: int = 3,
    starts_at: dt.datetime | None = None,
    facilitators: tuple[User, ...] = (),
    booked: list[Patient] | None = None,
    cohort: Cohort | None = None,
    number: int = 1,
) -> CohortSession:
    """Session ``number`` of a (new) cohort, moved to ``starts_at`` (default: now), with patients booked on it."""
    if cohort is None:
        cohort = factories.create_cohort(session, first_date=(starts_at or utcnow()).date() - dt.timedelta(days=70))
        cohort.facilitators.extend(facilitators)
        for patient in booked if booked is not None else [factories.create_patient(session) for _ in range(patients)]:
            session.add(Booking(patient_id=patient.id, service_key=cohort.service_key, cohort_id=cohort.id))
            cohort.seats_taken += 1
    cohort_session = next(s for s in cohort.sessions if s.number == number)
    at = starts_at or utcnow()
    cohort_session.starts_at, cohort_session.ends_at = at, at + dt.timedelta(hours=2)
    session.commit()
    return cohort_session


def patients_of(session: Session, cohort_session: CohortSession) -> list[Patient]:
    return [b.patient for b in session.query(Booking).filter_by(cohort_id=cohort_session.cohort_id, status="active")
            .order_by(Booking.id)]


def appointment(
    session: Session, patient: Patient, *, starts_at: dt.datetime | None = None, clinician: User | None = None,
    service_key: str = "t1-physio", status: str = "active",
) -> Appointment:
    """A 1:1 appointment at ``starts_at`` (default now), even in the past (booking services refuse those)."""
    slot = appt.create_slot(session, starts_at=starts_at or utcnow(), clinician=clinician, service_key=service_key,
                            status="booked")
    booked = Appointment(patient_id=patient.id, slot_id=slot.id, service_key=service_key, status=status)
    session.add(booked)
    session.commit()
    return booked
