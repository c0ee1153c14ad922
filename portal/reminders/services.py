"""Planning reminders into the outbox (or onto the call list), and cancelling them when a booking changes.

Planning is a scheduled job (reminders.jobs), not part of booking: each run looks at the appointments and
group sessions starting in the next few days (planning.horizon_days), through indexes on their start times,
so its cost follows the reminders due, not the bookings ever made. Each reminder has an idempotency key that
names what it is about, which reminder, and the start time (planning.reminder_key), so:

- planning again inserts nothing (keys already in the outbox are skipped before inserting, so PostgreSQL does
  not burn an id of the outbox's sequence on every conflict, every run); two planners at once are kept apart
  by INSERT ... ON CONFLICT DO NOTHING on the unique key;
- a moved session or appointment has a new start, hence new keys: its new reminders are planned by the next
  run, while the change itself cancels the old ones in its own transaction (cancel_pending_reminders);
- a cancelled reminder gives up its key, so a session moved away and back again is reminded at its old time.

Each run first cancels pending reminders whose appointment or session no longer stands at that time, and
those of patients who may no longer be texted, or whose number Twilio refused (they go on the call list
instead): a change made by a path that does not call cancel_pending_reminders, or one that committed while a
planner was between reading the bookings and writing their reminders (PostgreSQL, READ COMMITTED), is put
right by the next run, 5 minutes later; the dispatcher also drops a text whose seat or appointment has ended.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import String, and_, bindparam, cast, func, literal_column, or_, select, update
from sqlalchemy.orm import Session, selectinload

from portal.appointments.models import Appointment, AppointmentSlot
from portal.auth.models import User
from portal.booking.models import Booking, Cohort, CohortSession, Venue
from portal.db import upsert_insert
from portal.messaging import texts
from portal.messaging.models import SmsMessage
from portal.messaging.services import enqueue_sms
from portal.patients.models import Patient
from portal.reminders import planning
from portal.reminders.models import ReminderCall
from portal.settings import DomainConfig

KIND = "reminder"
# Keys looked up per statement: well under every database's limit on bound parameters.
_CHUNK = 500
# A literal, not a bound parameter: SQLite uses a partial index (uq_appointment_active_slot,
# WHERE status = 'active') only when the query's own condition is visibly the same.
_ACTIVE = literal_column("'active'")


@dataclass(frozen=True)
class PlanResult:
    texts: int = 0
    calls: int = 0
    cancelled: int = 0


@dataclass(frozen=True)
class _Due:
    key: str
    patient: Patient
    subject: str  # "booking" or "appointment"
    subject_id: int
    kind: str
    service_key: str
    venue: str
    starts_at: dt.datetime
    due_at: dt.datetime


def plan_reminders(session: Session, domain: DomainConfig, *, now: dt.datetime) -> PlanResult:
    """Plan every reminder still to come for appointments and group sessions starting in the next
    ``planning.horizon_days`` days, in the caller's transaction; idempotent, and safe to run concurrently.

    Patients who may be texted get an outbox row (due at the reminder time, expiring at the start); the rest
    get a call-list row under the same key. Reminders whose time has passed are not planned.
    """
    cancelled = cancel_stale_reminders(session, now=now)
    policy = domain.policy.reminders
    zone = ZoneInfo(domain.policy.service.timezone)
    horizon = now + dt.timedelta(days=planning.horizon_days(policy))
    due = [*_appointment_reminders(session, domain, now=now, horizon=horizon, zone=zone),
           *_session_reminders(session, domain, now=now, horizon=horizon, zone=zone)]
    # One order for every planner: two at once on PostgreSQL then wait for each other's keys in the same
    # order, and never deadlock.
    due.sort(key=lambda d: d.key)
    to_text = [d for d in due if _textable(d.patient)]
    to_call = [d for d in due if not _textable(d.patient)]
    texted = _enqueue_texts(session, domain, to_text, now=now)
    called = _add_calls(session, to_call, now=now)
    return PlanResult(texts=texted, calls=called, cancelled=cancelled)


def _textable(patient: Patient) -> bool:
    """Whether a reminder can reach the patient by text: they may be texted (Patient.may_text), and Twilio has
    not refused their number as invalid. A text to a refused number is dropped by the dispatcher, so without
    this the patient would get no reminder at all until staff correct the number: reception phones instead."""
    return patient.may_text and patient.mobile_invalid_at is None


def _venue_words(short_name: str, is_online: bool) -> str:
    return "online" if is_online else short_name


def _appointment_reminders(session: Session, domain: DomainConfig, *, now: dt.datetime, horizon: dt.datetime,
                           zone: ZoneInfo) -> Iterator[_Due]:
    rows = session.execute(
        select(Appointment.id, Appointment.service_key, AppointmentSlot.starts_at, Venue.short_name,
               Venue.is_online, Patient)
        .select_from(AppointmentSlot)
        .join(Appointment, and_(Appointment.slot_id == AppointmentSlot.id, Appointment.status == _ACTIVE))
        .join(Venue, Venue.id == AppointmentSlot.venue_id)
        .join(Patient, Patient.id == Appointment.patient_id)
        .where(AppointmentSlot.starts_at > now, AppointmentSlot.starts_at <= horizon)
    )
    policy = domain.policy.reminders
    # Many appointments share a start time (every clinician's 10am): its reminder times are worked out once.
    by_start: dict[dt.datetime, list[planning.Reminder]] = {}
    for appointment_id, service_key, starts_at, short_name, is_online, patient in rows:
        if starts_at not in by_start:
            by_start[starts_at] = planning.appointment_reminders(starts_at, policy, now=now, zone=zone)
        for reminder in by_start[starts_at]:
            yield _Due(
                key=planning.reminder_key("appointment", appointment_id, reminder.kind, starts_at),
                patient=patient, subject="appointment", subject_id=appointment_id, kind=reminder.kind,
                service_key=service_key, venue=_venue_words(short_name, is_online), starts_at=starts_at,
                due_at=reminder.due_at,
            )


def _session_reminders(session: Session, domain: DomainConfig, *, now: dt.datetime, horizon: dt.datetime,
                       zone: ZoneInfo) -> Iterator[_Due]:
    rows = session.execute(
        select(Booking.id, Cohort.id, Cohort.service_key, CohortSession.starts_at, Venue.short_name,
               Venue.is_online, Patient)
        .select_from(CohortSession)
        .join(Cohort, Cohort.id == CohortSession.cohort_id)
        .join(Venue, Venue.id == Cohort.venue_id)
        .join(Booking, and_(Booking.cohort_id == Cohort.id, Booking.status == "active"))
        .join(Patient, Patient.id == Booking.patient_id)
        .where(CohortSession.starts_at > now, CohortSession.starts_at <= horizon,
               CohortSession.status == "scheduled", Cohort.status != "cancelled")
    ).all()
    firsts = _first_session_starts(session, {row[1] for row in rows})
    policy = domain.policy.reminders
    # Every seat of a session has the same reminder times: worked out once per session.
    by_session: dict[tuple[dt.datetime, bool], list[planning.Reminder]] = {}
    for booking_id, cohort_id, service_key, starts_at, short_name, is_online, patient in rows:
        session_key = (starts_at, firsts.get(cohort_id) == starts_at)
        if session_key not in by_session:
            by_session[session_key] = planning.session_reminders(starts_at, policy, first=session_key[1], now=now,
                                                                 zone=zone)
        for reminder in by_session[session_key]:
            yield _Due(
                key=planning.reminder_key("booking", booking_id, reminder.kind, starts_at),
                patient=patient, subject="booking", subject_id=booking_id, kind=reminder.kind,
                service_key=service_key, venue=_venue_words(short_name, is_online), starts_at=starts_at,
                due_at=reminder.due_at,
            )


def _first_session_starts(session: Session, cohort_ids: set[int]) -> dict[int, dt.datetime]:
    """Each cohort's first session still going ahead (a cancelled first week makes the second the first)."""
    firsts: dict[int, dt.datetime] = {}
    for chunk in _chunks(sorted(cohort_ids)):
        firsts.update((cohort_id, start) for cohort_id, start in session.execute(
            select(CohortSession.cohort_id, func.min(CohortSession.starts_at))
            .where(CohortSession.cohort_id.in_(chunk), CohortSession.status == "scheduled")
            .group_by(CohortSession.cohort_id)
        ))
    return firsts


def _chunks(items: list, size: int = _CHUNK) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _existing_keys(session: Session, column, keys: Iterable[str]) -> set[str]:
    found: set[str] = set()
    for chunk in _chunks(list(keys)):
        found.update(session.scalars(select(column).where(column.in_(chunk))))
    return found


def _enqueue_texts(session: Session, domain: DomainConfig, due: list[_Due], *, now: dt.datetime) -> int:
    existing = _existing_keys(session, SmsMessage.idempotency_key, (d.key for d in due))
    phone = domain.policy.service.phone
    bodies: dict[tuple[str, dt.datetime, str], str] = {}
    inserted = 0
    for d in due:
        if d.key in existing:
            continue
        body = bodies.get((d.subject, d.starts_at, d.venue))
        if body is None:
            render = texts.appointment_reminder if d.subject == "appointment" else texts.session_reminder
            body = bodies[(d.subject, d.starts_at, d.venue)] = render(
                starts_at=d.starts_at, venue_short_name=d.venue, phone=phone)
        inserted += enqueue_sms(
            session, key=d.key, patient=d.patient, kind=KIND, body=body, now=now, due_at=d.due_at,
            expires_at=d.starts_at, **{f"{d.subject}_id": d.subject_id},
        )
    return inserted


@functools.cache
def _insert_call_statement(dialect: str):
    insert = upsert_insert(dialect)
    columns = ("idempotency_key", "patient_id", "booking_id", "appointment_id", "kind", "service_key", "venue",
               "starts_at", "call_at", "status", "attempts", "created_at")
    return (
        insert(ReminderCall)
        .values({name: bindparam(name, type_=ReminderCall.__table__.c[name].type) for name in columns})
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(ReminderCall.id)
    )


def _add_calls(session: Session, due: list[_Due], *, now: dt.datetime) -> int:
    existing = _existing_keys(session, ReminderCall.idempotency_key, (d.key for d in due))
    rows = [
        {"idempotency_key": d.key, "patient_id": d.patient.id,
         "booking_id": d.subject_id if d.subject == "booking" else None,
         "appointment_id": d.subject_id if d.subject == "appointment" else None,
         "kind": d.kind, "service_key": d.service_key, "venue": d.venue, "starts_at": d.starts_at,
         "call_at": d.due_at, "status": "open", "attempts": 0, "created_at": now}
        for d in due if d.key not in existing
    ]
    if not rows:
        return 0
    session.flush()
    connection = session.connection()
    statement = _insert_call_statement(connection.dialect.name)
    return sum(connection.execute(statement, row).first() is not None for row in rows)


# Cancelling.

# A cancelled reminder gives up its key (the key gains ":cancelled:{id}"), so that if its session or
# appointment comes back to that start (a session moved, then moved back) the reminder is planned again. A
# reminder sent, or being sent, keeps its key, so it is never planned twice.

def _released(key_column, id_column):
    return key_column + ":cancelled:" + cast(id_column, String)


def _cancel_texts(session: Session, condition, *, code: str, now: dt.datetime) -> int:
    return session.execute(
        update(SmsMessage)
        .where(SmsMessage.kind == KIND, SmsMessage.status == "pending", condition)
        .values(status="cancelled", error_code=code, updated_at=now,
                idempotency_key=_released(SmsMessage.idempotency_key, SmsMessage.id))
        .execution_options(synchronize_session=False)
    ).rowcount


def _close_calls(session: Session, condition, *, now: dt.datetime) -> int:
    return session.execute(
        update(ReminderCall)
        .where(ReminderCall.status == "open", condition)
        .values(status="closed", closed_at=now,
                idempotency_key=_released(ReminderCall.idempotency_key, ReminderCall.id))
        .execution_options(synchronize_session=False)
    ).rowcount


def cancel_pending_reminders(
    session: Session,
    *,
    now: dt.datetime,
    booking_id: int | None = None,
    appointment_id: int | None = None,
    cohort_id: int | None = None,
    starts_at: dt.datetime | None = None,
) -> int:
    """Cancel the reminders not yet sent, and close the open call-list rows, of one course seat
    (``booking_id``), one 1:1 appointment (``appointment_id``), or one session of a cohort for every seat in
    it (``cohort_id`` and the session's ``starts_at`` before the change). In the caller's transaction, beside
    the change itself; returns the texts cancelled. New reminders are planned by the next planning run.
    """
    if booking_id is not None:
        texts_condition = SmsMessage.booking_id == booking_id
        calls_condition = ReminderCall.booking_id == booking_id
        code = "booking-ended"
    elif appointment_id is not None:
        texts_condition = SmsMessage.appointment_id == appointment_id
        calls_condition = ReminderCall.appointment_id == appointment_id
        code = "appointment-ended"
    elif cohort_id is not None and starts_at is not None:
        seats = select(Booking.id).where(Booking.cohort_id == cohort_id)
        texts_condition = and_(SmsMessage.booking_id.in_(seats), SmsMessage.expires_at == starts_at)
        calls_condition = and_(ReminderCall.booking_id.in_(seats), ReminderCall.starts_at == starts_at)
        code = "session-changed"
    else:
        raise ValueError("name a booking, an appointment, or a cohort and the session's start")
    _close_calls(session, calls_condition, now=now)
    return _cancel_texts(session, texts_condition, code=code, now=now)


def cancel_stale_reminders(session: Session, *, now: dt.datetime) -> int:
    """Cancel pending reminders (and close open calls) whose seat, session or appointment no longer stands
    at the time they were planned for; cancel pending reminder texts to patients who may no longer be
    texted, so that planning puts them on the call list. Returns the texts cancelled."""
    seat_active = select(Booking.id).where(Booking.id == SmsMessage.booking_id, Booking.status == "active").exists()
    cancelled = _cancel_texts(session, and_(SmsMessage.booking_id.is_not(None), ~seat_active),
                              code="booking-ended", now=now)
    cancelled += _cancel_texts(session, and_(SmsMessage.booking_id.is_not(None),
                                             ~_session_stands(SmsMessage.booking_id, SmsMessage.expires_at)),
                               code="session-changed", now=now)
    cancelled += _cancel_texts(session, and_(SmsMessage.appointment_id.is_not(None),
                                             ~_appointment_stands(SmsMessage.appointment_id, SmsMessage.expires_at)),
                               code="appointment-ended", now=now)
    # The same rule the dispatcher checks before each send (Patient.may_text), so the two cannot drift apart.
    may_not_text = select(Patient.id).where(Patient.id == SmsMessage.patient_id, ~Patient.may_text).exists()
    cancelled += _cancel_texts(session, may_not_text, code="no-consent", now=now)
    # And the dispatcher's check of the number (_textable): a number Twilio refused gets calls instead.
    refused = select(Patient.id).where(Patient.id == SmsMessage.patient_id,
                                       Patient.mobile_invalid_at.is_not(None)).exists()
    cancelled += _cancel_texts(session, refused, code="mobile-invalid", now=now)
    # The other way: a patient who can be texted again (START, or staff corrected a refused number) is texted
    # their reminders still to come rather than phoned as well. A call already due stays for reception to make.
    textable = select(Patient.id).where(Patient.id == ReminderCall.patient_id, Patient.may_text,
                                        Patient.mobile_invalid_at.is_(None)).exists()
    _close_calls(session, and_(textable, ReminderCall.call_at > now), now=now)
    _close_calls(session, or_(
        and_(ReminderCall.booking_id.is_not(None),
             ~_session_stands(ReminderCall.booking_id, ReminderCall.starts_at, seat_must_be_active=True)),
        and_(ReminderCall.appointment_id.is_not(None),
             ~_appointment_stands(ReminderCall.appointment_id, ReminderCall.starts_at)),
    ), now=now)
    return cancelled


def _session_stands(booking_id, starts_at, *, seat_must_be_active: bool = False):
    query = (
        select(CohortSession.id)
        .join(Booking, Booking.cohort_id == CohortSession.cohort_id)
        .join(Cohort, Cohort.id == CohortSession.cohort_id)
        .where(Booking.id == booking_id, CohortSession.status == "scheduled", CohortSession.starts_at == starts_at,
               Cohort.status != "cancelled")
    )
    if seat_must_be_active:
        query = query.where(Booking.status == "active")
    return query.exists()


def _appointment_stands(appointment_id, starts_at):
    return (
        select(Appointment.id)
        .join(AppointmentSlot, AppointmentSlot.id == Appointment.slot_id)
        .where(Appointment.id == appointment_id, Appointment.status == "active", AppointmentSlot.starts_at == starts_at)
        .exists()
    )


# The call list.

def open_calls(session: Session, *, now: dt.datetime, limit: int = 500) -> list[ReminderCall]:
    """Reminders to give by phone for appointments and sessions still to come, soonest call first."""
    return list(session.scalars(
        select(ReminderCall)
        .where(ReminderCall.status == "open", ReminderCall.starts_at > now)
        .options(selectinload(ReminderCall.called_by))
        .order_by(ReminderCall.call_at, ReminderCall.id)
        .limit(limit)
    ))


def count_open_calls(session: Session, *, now: dt.datetime) -> int:
    """How many calls the call list shows (before its limit)."""
    return session.scalar(
        select(func.count(ReminderCall.id)).where(ReminderCall.status == "open", ReminderCall.starts_at > now)
    ) or 0


class CallNotOpen(Exception):
    """The call was made already, or its booking changed: the list moved on."""


def record_call(session: Session, call_id: int, *, outcome: str, by: User, now: dt.datetime) -> ReminderCall:
    """Record that reception phoned about a reminder (who, when, and how it went). LookupError if there is
    no such call; CallNotOpen if it is no longer on the list."""
    call = session.scalars(
        select(ReminderCall).where(ReminderCall.id == call_id).with_for_update(of=ReminderCall)
    ).one_or_none() if 0 < call_id < 2**31 else None
    if call is None:
        raise LookupError(call_id)
    if call.status != "open":
        raise CallNotOpen("This call is no longer on the list")
    call.record_call(outcome, by=by, now=now)
    session.flush()
    return call
