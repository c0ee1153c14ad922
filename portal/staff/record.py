"""What the reception record page shows of one patient, gathered in a small fixed number of queries.

No Flask here: the view in staff/routes.py calls ``patient_record`` and renders it. Every list is bounded (the
latest few, with a link to the full page), so a patient with years of history costs the same queries.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from portal.appointments.models import Appointment
from portal.appointments.services import appointments_for_patient
from portal.attendance.models import Attendance, DnaReview
from portal.attendance.review import review_history
from portal.attendance.services import ServiceAttendance, attendance_history, attendance_summary
from portal.audit.models import AuditEvent
from portal.audit.services import actor_names
from portal.audit.services import search as audit_search
from portal.booking import waitlist
from portal.booking.models import Booking, Cohort, WaitlistEntry
from portal.messaging.models import SmsMessage
from portal.patients.models import Patient, PatientReferral
from portal.patients.referrals import referral_history
from portal.patients.retriage import StillBooked, other_tier_bookings
from portal.settings import DomainConfig

LATEST = 20


@dataclass(frozen=True)
class PatientRecord:
    seats: list[Booking]  # active course seats, first session soonest first
    ended_seats: list[Booking]
    upcoming: list[Appointment]
    past: list[Appointment]  # past, moved and cancelled, newest first (at most LATEST)
    waiting: list[tuple[WaitlistEntry, int]]  # live waiting-list entries and their place in the queue
    # Course places and appointments of services the patient's tier does not offer (booked before a change of
    # tier), soonest first: reception cancels or keeps each.
    other_tier: list[StillBooked]
    attendance: list[ServiceAttendance]
    marks: list[Attendance]  # latest marks, newest first
    reviews: list[DnaReview]
    referrals: list[PatientReferral]  # new referrals after discharges, newest first, with the discharge each ended
    messages: list[SmsMessage]  # latest texts, newest first
    more_messages: bool
    audit: list[AuditEvent]  # latest events about this patient, newest first
    audit_names: dict[int, str]  # who acted in them, by account id


def _bookings(session: Session, patient_id: int) -> list[Booking]:
    return list(session.scalars(
        select(Booking).where(Booking.patient_id == patient_id)
        .options(selectinload(Booking.cohort).selectinload(Cohort.sessions))
        .order_by(Booking.created_at.desc(), Booking.id.desc())
    ))


def _messages(session: Session, patient_id: int) -> list[SmsMessage]:
    return list(session.scalars(
        select(SmsMessage).where(SmsMessage.patient_id == patient_id)
        .order_by(SmsMessage.created_at.desc(), SmsMessage.id.desc())
        .limit(LATEST + 1)
    ))


def patient_record(session: Session, domain: DomainConfig, patient: Patient, *, now: dt.datetime) -> PatientRecord:
    """Everything the record page lists about ``patient``: bookings, appointments, waiting lists, attendance and
    reviews, texts, and the audit trail (the latest of each)."""
    bookings = _bookings(session, patient.id)
    seats = sorted((b for b in bookings if b.status == "active"),
                   key=lambda b: (b.cohort.sessions[0].starts_at if b.cohort.sessions else now, b.id))
    appointments = appointments_for_patient(session, patient.id)
    upcoming = sorted((a for a in appointments if a.is_active and a.starts_at > now), key=lambda a: a.starts_at)
    entries = waitlist.live_entries_for_patient(session, patient.id)
    messages = _messages(session, patient.id)
    audit = audit_search(session, patient_id=patient.id, limit=LATEST)
    return PatientRecord(
        seats=seats,
        ended_seats=[b for b in bookings if b.status != "active"][:LATEST],
        upcoming=upcoming,
        past=[a for a in appointments if a not in upcoming][:LATEST],
        # At most one live entry per course (a unique index), so this loop is bounded by the catalogue.
        waiting=[(entry, waitlist.place_in_queue(session, entry)) for entry in entries],
        other_tier=other_tier_bookings(domain, patient, seats, upcoming, now=now),
        attendance=attendance_summary(session, patient.id),
        marks=attendance_history(session, patient.id, limit=LATEST),
        reviews=review_history(session, patient.id),
        referrals=referral_history(session, patient.id),
        messages=messages[:LATEST],
        more_messages=len(messages) > LATEST,
        audit=audit,
        audit_names=actor_names(session, audit),
    )
