"""Small hand-built datasets for the report tests, written straight as rows (with the times the tests need)."""

from __future__ import annotations

import datetime as dt
import itertools
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from portal.appointments.models import Appointment, AppointmentSlot
from portal.attendance.models import Attendance
from portal.auth.models import Role, User
from portal.booking.models import Booking, Cohort, CohortSession
from portal.messaging.models import SmsMessage
from portal.patients.models import Patient
from portal.questionnaires.models import QuestionnaireResponse
from tests import factories

LONDON = ZoneInfo("Europe/London")
_counter = itertools.count(1)


def london(day: dt.date, hour: int = 12, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=LONDON).astimezone(dt.UTC)


def staff(session: Session) -> User:
    user = User(role=Role.FACILITATOR.value, email=f"report-staff{next(_counter)}@test.nhs.uk",
                display_name="Report Staff", password_hash="!unusable")
    session.add(user)
    session.commit()
    return user


def patient(session: Session, *, triaged: dt.date | None, tier: int = 1, team: str | None = None) -> Patient:
    return factories.create_patient(session, tier=tier, team=team, triage_date=triaged)


def cohort(session: Session, *, first: dt.date, service_key: str = "t1-group", team: str | None = None,
           capacity: int = 10, taken: int = 0, status: str = "open", weeks: int = 2) -> Cohort:
    venue = factories.create_venue(session)
    row = Cohort(service_key=service_key, team=team, venue_id=venue.id, first_date=first, weekday=first.weekday(),
                 start_time=dt.time(18), session_minutes=120, capacity=capacity, seats_taken=taken, status=status)
    session.add(row)
    session.flush()
    for number in range(1, weeks + 1):
        starts = london(first + dt.timedelta(weeks=number - 1), 18)
        session.add(CohortSession(cohort_id=row.id, number=number, starts_at=starts,
                                  ends_at=starts + dt.timedelta(hours=2)))
    session.commit()
    return row


def booking(session: Session, who: Patient, where: Cohort, *, at: dt.datetime, status: str = "active") -> Booking:
    row = Booking(patient_id=who.id, service_key=where.service_key, cohort_id=where.id, status=status, created_at=at)
    session.add(row)
    session.commit()
    return row


def appointment(session: Session, who: Patient, *, booked: dt.datetime, starts: dt.datetime, clinician: User,
                service_key: str = "t1-physio", status: str = "active") -> Appointment:
    venue = factories.create_venue(session)
    slot = AppointmentSlot(clinician_id=clinician.id, service_key=service_key, venue_id=venue.id, starts_at=starts,
                           ends_at=starts + dt.timedelta(minutes=30), status="booked")
    session.add(slot)
    session.flush()
    row = Appointment(patient_id=who.id, slot_id=slot.id, service_key=service_key, status=status, created_at=booked)
    session.add(row)
    session.commit()
    return row


def mark(session: Session, who: Patient, appointment_row: Appointment, starts: dt.datetime, mark: str,
         recorder: User) -> Attendance:
    row = Attendance(patient_id=who.id, appointment_id=appointment_row.id, service_key=appointment_row.service_key,
                     starts_at=starts, mark=mark, recorded_by_id=recorder.id)
    session.add(row)
    session.commit()
    return row


def text(session: Session, who: Patient | None, *, at: dt.datetime, status: str, body: str = "NHS: hello.",
         sid: bool = True, booking_row: Booking | None = None) -> SmsMessage:
    n = next(_counter)
    row = SmsMessage(idempotency_key=f"report-test:{n}", patient_id=who.id if who else None, kind="test",
                     to_number="+447700900950", body=body, status=status, due_at=at, next_attempt_at=at,
                     created_at=at, provider_sid=f"SM{n:032x}" if sid else None,
                     booking_id=booking_row.id if booking_row else None)
    session.add(row)
    session.commit()
    return row


def response(session: Session, who: Patient, *, instrument: str, plan: str, occasion: str, score: float,
             at: dt.datetime, status: str = "submitted") -> QuestionnaireResponse:
    row = QuestionnaireResponse(patient_id=who.id, instrument=instrument, set_key=f"{plan}:{occasion}",
                                occasion=occasion, due_on=at.date(), status=status, answers={},
                                score=score if status == "submitted" else None,
                                submitted_at=at if status == "submitted" else None, created_at=at, updated_at=at)
    session.add(row)
    session.commit()
    return row
