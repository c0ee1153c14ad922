"""Texts people send us, and what the portal does about them.

- ``YES`` or ``Y`` confirms the patient's next appointment or group session.
- ``CANCEL`` cancels the next 1:1 appointment if it is before the cut-off; otherwise, or for a group session,
  the reply gives the number to call.
- ``STOP`` and Twilio's other opt-out words stop our texts; ``START`` and ``UNSTOP`` allow them again.
- Anything else, or a number that is not exactly one patient's, gets a short help reply.

"Next" means what the patient's last text from us was about (they are most likely answering it), if that is
still booked; otherwise their soonest appointment or session. Every reply is written to the outbox with a key
made from Twilio's SID of the incoming text, so a text Twilio posts twice is acted on, and answered, once.
Every text received is kept in ``sms_inbound``, with what it was matched to and what was done.

Operational note: Twilio's own default keyword handling treats CANCEL as an opt-out word and YES as an opt-in
word. On the live sender, Advanced Opt-Out (on the Messaging Service) must take CANCEL off the opt-out list and
YES off the opt-in list, or a patient cancelling by text is also silently opted out of every later text.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass

from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.orm import Session

from portal.appointments import services as appointments
from portal.appointments.models import Appointment
from portal.audit.services import SYSTEM, Actor, record
from portal.booking.models import Booking, CohortSession
from portal.db import upsert_insert
from portal.messaging import texts
from portal.messaging.models import SmsInbound, SmsMessage
from portal.messaging.services import enqueue_sms
from portal.patients.models import Patient
from portal.settings import DomainConfig

YES_WORDS = frozenset({"YES", "Y"})
CANCEL_WORDS = frozenset({"CANCEL"})
# Twilio's default opt-out words (STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE, OPTOUT) less CANCEL,
# which is ours: a patient who replies CANCEL to a reminder wants the appointment cancelled, not the texts.
OPT_OUT_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "END", "QUIT", "REVOKE", "OPTOUT"})
# Twilio's default opt-in words (START, UNSTOP, YES) less YES, which confirms an appointment.
OPT_IN_WORDS = frozenset({"START", "UNSTOP"})

# A number that keeps sending us what we do not understand (another service's auto-reply, say) gets this many
# help replies a day, so two machines never text each other without end.
HELP_REPLIES_PER_DAY = 3
# A reply is worth sending for this long; after that the dispatcher drops it.
REPLY_VALID_FOR = dt.timedelta(hours=12)
# How far back a text of ours counts as the one being answered.
ANSWERING_WINDOW = dt.timedelta(days=8)
# The key appointments.notices writes the cancellation text under. A cancellation by text is answered with
# reply_cancelled instead (the same words), so that text is taken back out of the outbox.
CANCELLED_NOTICE_KEY = "appointment-cancelled:{appointment_id}"

_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_TRAILING = re.compile(r"[\s.!]+$")


def keyword(body: str) -> str:
    """The body as a keyword: case, surrounding spaces and a trailing full stop or '!' do not matter."""
    return _TRAILING.sub("", " ".join(body.split())).upper()


@dataclass(frozen=True)
class Upcoming:
    """The appointment or group session a YES or CANCEL is about."""

    starts_at: dt.datetime
    appointment: Appointment | None = None
    booking_id: int | None = None
    cohort_session_id: int | None = None


@dataclass
class _Reply:
    kind: str
    body: str
    patient: Patient | None
    appointment_id: int | None = None
    booking_id: int | None = None
    expires_at: dt.datetime | None = None


def handle_inbound(
    session: Session,
    domain: DomainConfig,
    *,
    message_sid: str,
    from_number: str,
    body: str,
    now: dt.datetime,
    actor: Actor = SYSTEM,
) -> str | None:
    """Act on one incoming text, in the caller's transaction. Returns the action taken (SmsInbound.action),
    or None if a text with this SID was handled before."""
    inbound_id = _log_once(session, message_sid=message_sid[:64], from_number=from_number[:20], body=body,
                           now=now)
    if inbound_id is None:
        return None
    inbound = session.get(SmsInbound, inbound_id)
    sender = from_number.strip()
    patients = list(session.scalars(select(Patient).where(Patient.mobile == sender).order_by(Patient.id))) \
        if _E164.match(sender) else []
    word = keyword(body)
    phone = domain.policy.service.phone

    reply: _Reply | None
    if word in OPT_OUT_WORDS:
        _opt_out(session, inbound, patients, now, actor)
        reply = None
    elif word in OPT_IN_WORDS and patients:
        reply = _opt_in(session, inbound, patients, actor)
    elif len(patients) != 1:
        # Nobody, or a number two patients share (a family phone): we cannot tell whose appointment it is.
        inbound.action = "unknown_sender"
        reply = _help(session, inbound, None, phone, now)
        if patients:
            for patient in patients:
                record(session, actor, "inbound_text_unmatched", patient_id=patient.id,
                       detail=f"number shared by {len(patients)} patients (inbound {inbound_id})")
    else:
        [patient] = patients
        inbound.patient_id = patient.id
        if word in YES_WORDS:
            reply = _confirm(session, inbound, patient, phone, now, actor)
        elif word in CANCEL_WORDS:
            reply = _cancel(session, domain, inbound, patient, phone, now, actor)
        else:
            inbound.action = "help"
            reply = _help(session, inbound, patient, phone, now)
            record(session, actor, "inbound_text_help", patient_id=patient.id, detail=f"inbound {inbound_id}")

    if reply is not None and _E164.match(sender):
        written = enqueue_sms(
            session, key=f"sms-reply:{message_sid}", patient=reply.patient, kind=reply.kind, body=reply.body,
            now=now, to_number=sender, appointment_id=reply.appointment_id, booking_id=reply.booking_id,
            expires_at=reply.expires_at or now + REPLY_VALID_FOR,
        )
        inbound.reply_kind = reply.kind if written else None
    session.flush()
    return inbound.action


def _opt_out(session: Session, inbound: SmsInbound, patients: list[Patient], now: dt.datetime,
             actor: Actor) -> None:
    """The number opted out, whoever has it: every patient with it stops getting texts. Twilio answers STOP
    itself, so we do not."""
    inbound.action = "opted_out"
    inbound.patient_id = patients[0].id if len(patients) == 1 else None
    for patient in patients:
        if patient.opt_out_of_texts(now):
            record(session, actor, "sms_opted_out", patient_id=patient.id, detail=f"STOP, inbound {inbound.id}")


def _opt_in(session: Session, inbound: SmsInbound, patients: list[Patient], actor: Actor) -> _Reply | None:
    """The number opted back in: texts start again for every patient with it who otherwise takes texts."""
    inbound.action = "opted_in"
    inbound.patient_id = patients[0].id if len(patients) == 1 else None
    for patient in patients:
        if patient.opt_back_in_to_texts():
            record(session, actor, "sms_opted_in", patient_id=patient.id, detail=f"START, inbound {inbound.id}")
    textable = [p for p in patients if p.may_text]
    if not textable:
        return None  # they told us no texts in the portal: that still stands
    return _Reply("reply_started", texts.reply_started(), patients[0] if len(patients) == 1 else None)


def _confirm(session: Session, inbound: SmsInbound, patient: Patient, phone: str, now: dt.datetime,
             actor: Actor) -> _Reply:
    upcoming = next_booked(session, patient, now=now)
    if upcoming is None:
        inbound.action = "nothing_booked"
        record(session, actor, "inbound_text_nothing_booked", patient_id=patient.id, detail=f"inbound {inbound.id}")
        return _Reply("reply_nothing_booked", texts.reply_nothing_booked(phone=phone), patient)
    inbound.action = "confirmed"
    expires = min(now + REPLY_VALID_FOR, upcoming.starts_at)
    body = texts.reply_confirmed(starts_at=upcoming.starts_at)
    if upcoming.appointment is not None:
        appointment = upcoming.appointment
        inbound.appointment_id = appointment.id
        if appointment.confirmed_at is None:
            appointment.confirmed_at = now
        record(session, actor, "appointment_confirmed_by_text", patient_id=patient.id,
               detail=f"appointment {appointment.id}")
        return _Reply("reply_confirmed", body, patient, appointment_id=appointment.id, expires_at=expires)
    inbound.booking_id = upcoming.booking_id
    inbound.cohort_session_id = upcoming.cohort_session_id
    record(session, actor, "group_session_confirmed_by_text", patient_id=patient.id,
           detail=f"booking {upcoming.booking_id}, session {upcoming.cohort_session_id}")
    return _Reply("reply_confirmed", body, patient, booking_id=upcoming.booking_id, expires_at=expires)


def _cancel(session: Session, domain: DomainConfig, inbound: SmsInbound, patient: Patient, phone: str,
            now: dt.datetime, actor: Actor) -> _Reply:
    upcoming = next_booked(session, patient, now=now)
    if upcoming is None:
        inbound.action = "nothing_booked"
        record(session, actor, "inbound_text_nothing_booked", patient_id=patient.id, detail=f"inbound {inbound.id}")
        return _Reply("reply_nothing_booked", texts.reply_nothing_booked(phone=phone), patient)
    appointment = upcoming.appointment
    inbound.appointment_id = appointment.id if appointment else None
    inbound.booking_id = upcoming.booking_id
    inbound.cohort_session_id = upcoming.cohort_session_id
    if appointment is None or not appointments.may_change_online(domain, appointment, now=now):
        # A group session (a seat covers every week: a person sorts out one missed week), or too late.
        inbound.action = "call_to_cancel"
        record(session, actor, "cancel_by_text_refused", patient_id=patient.id,
               detail="group session" if appointment is None else f"appointment {appointment.id}: inside the cut-off")
        return _Reply("reply_call_to_cancel", texts.reply_call_to_cancel(phone=phone), patient)
    try:
        appointments.cancel_appointment(session, domain, patient, appointment.id,
                                        reason="Cancelled by the patient by text", now=now)
    except appointments.AppointmentError:
        # Ended or past the cut-off between the check and the change.
        inbound.action = "call_to_cancel"
        record(session, actor, "cancel_by_text_refused", patient_id=patient.id,
               detail=f"appointment {appointment.id}: could not be cancelled")
        return _Reply("reply_call_to_cancel", texts.reply_call_to_cancel(phone=phone), patient)
    session.execute(
        delete(SmsMessage)
        .where(SmsMessage.idempotency_key == CANCELLED_NOTICE_KEY.format(appointment_id=appointment.id),
               SmsMessage.status == "pending")
        .execution_options(synchronize_session=False)
    )
    inbound.action = "cancelled"
    record(session, actor, "appointment_cancelled_by_text", patient_id=patient.id,
           detail=f"appointment {appointment.id}")
    return _Reply("reply_cancelled", texts.reply_cancelled(starts_at=upcoming.starts_at, phone=phone), patient)


def _help(session: Session, inbound: SmsInbound, patient: Patient | None, phone: str,
          now: dt.datetime) -> _Reply | None:
    recent = session.scalar(
        select(func.count()).select_from(SmsInbound).where(
            SmsInbound.from_number == inbound.from_number,
            SmsInbound.reply_kind == "reply_help",
            SmsInbound.received_at > now - dt.timedelta(days=1),
            SmsInbound.id != inbound.id,
        )
    )
    if recent >= HELP_REPLIES_PER_DAY:
        return None
    return _Reply("reply_help", texts.reply_help(phone=phone), patient)


# What is booked next.

def next_booked(session: Session, patient: Patient, *, now: dt.datetime) -> Upcoming | None:
    """What a YES or CANCEL from this patient is about: what our last text to them was about, if that is still
    booked and to come; otherwise the soonest of their 1:1 appointments and group sessions."""
    return _last_texted_about(session, patient, now) or _soonest(session, patient, now)


def _last_texted_about(session: Session, patient: Patient, now: dt.datetime) -> Upcoming | None:
    last = session.execute(
        select(SmsMessage.appointment_id, SmsMessage.booking_id)
        .where(
            SmsMessage.patient_id == patient.id,
            SmsMessage.status.in_(("sent", "delivered", "unknown")),
            SmsMessage.sent_at > now - ANSWERING_WINDOW,
            (SmsMessage.appointment_id.is_not(None)) | (SmsMessage.booking_id.is_not(None)),
            SmsMessage.kind.not_like("reply_%"),
        )
        .order_by(SmsMessage.sent_at.desc(), SmsMessage.id.desc())
        .limit(1)
    ).first()
    if last is None:
        return None
    appointment_id, booking_id = last
    if appointment_id is not None:
        appointment = session.get(Appointment, appointment_id)
        if appointment is not None and appointment.is_active and appointment.starts_at > now:
            return Upcoming(starts_at=appointment.starts_at, appointment=appointment)
        return None
    return _next_group_session(session, patient, now, booking_id=booking_id)


def _soonest(session: Session, patient: Patient, now: dt.datetime) -> Upcoming | None:
    upcoming = appointments.upcoming_appointments(session, patient.id, now=now)
    one_to_one = Upcoming(starts_at=upcoming[0].starts_at, appointment=upcoming[0]) if upcoming else None
    group = _next_group_session(session, patient, now)
    candidates = [u for u in (one_to_one, group) if u is not None]
    return min(candidates, key=lambda u: u.starts_at) if candidates else None


def _next_group_session(session: Session, patient: Patient, now: dt.datetime, *,
                        booking_id: int | None = None) -> Upcoming | None:
    query = (
        select(CohortSession.id, CohortSession.starts_at, Booking.id)
        .join(Booking, Booking.cohort_id == CohortSession.cohort_id)
        .where(Booking.patient_id == patient.id, Booking.status == "active",
               CohortSession.status == "scheduled", CohortSession.starts_at > now)
        .order_by(CohortSession.starts_at)
        .limit(1)
    )
    if booking_id is not None:
        query = query.where(Booking.id == booking_id)
    row = session.execute(query).first()
    if row is None:
        return None
    session_id, starts_at, found_booking_id = row
    return Upcoming(starts_at=starts_at, booking_id=found_booking_id, cohort_session_id=session_id)


# The log.

def _log_once(session: Session, *, message_sid: str, from_number: str, body: str, now: dt.datetime) -> int | None:
    """Insert the sms_inbound row unless this SID is there already; its id, or None.

    First, so a second delivery of the same text waits on this row's lock (PostgreSQL) or the write lock
    (SQLite), then finds it and does nothing.
    """
    session.flush()
    connection = session.connection()
    return connection.execute(_log_statement(connection.dialect.name), {
        "message_sid": message_sid, "from_number": from_number, "body": body, "received_at": now,
        "action": "received",
    }).scalar()


@functools.cache
def _log_statement(dialect: str):
    insert = upsert_insert(dialect)
    columns = ("message_sid", "from_number", "body", "received_at", "action")
    return (
        insert(SmsInbound)
        .values({name: bindparam(name, type_=SmsInbound.__table__.c[name].type) for name in columns})
        .on_conflict_do_nothing(index_elements=["message_sid"])
        .returning(SmsInbound.id)
    )


def inbound_for_patient(session: Session, patient_id: int, *, limit: int = 200) -> list[SmsInbound]:
    return list(session.scalars(
        select(SmsInbound).where(SmsInbound.patient_id == patient_id)
        .order_by(SmsInbound.received_at.desc(), SmsInbound.id.desc()).limit(limit)
    ))
