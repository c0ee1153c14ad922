"""The staff queue of texts that did not go (failed) or may not have (unknown): retry, or dismiss.

Retrying puts the same outbox row back to 'pending' with a fresh count of attempts, so the dispatcher sends it,
re-checking consent and the booking first, as for any text. An 'unknown' text may have reached the patient
already, so retrying it needs staff to say they checked that it did not.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from portal.messaging import error_codes
from portal.messaging.models import RETRYABLE_BY_STAFF, SmsMessage
from portal.patients.models import Patient


class QueueError(Exception):
    """The text cannot be retried or dismissed; the message is fit to show."""


class NeedsConfirmation(QueueError):
    """An 'unknown' text is retried only once staff confirm the patient did not get it."""


@dataclass(frozen=True)
class QueuedText:
    message: SmsMessage
    patient: Patient | None


def failed_and_unknown(session: Session, *, limit: int = 200) -> list[QueuedText]:
    """Texts that failed or whose fate is unknown, and that staff have not dismissed: newest first."""
    rows = session.execute(
        select(SmsMessage, Patient)
        .outerjoin(Patient, Patient.id == SmsMessage.patient_id)
        .where(SmsMessage.status.in_(RETRYABLE_BY_STAFF), SmsMessage.dismissed_at.is_(None))
        .order_by(SmsMessage.updated_at.desc(), SmsMessage.id.desc())
        .limit(limit)
    ).all()
    return [QueuedText(message, patient) for message, patient in rows]


def queued_text(session: Session, message_id: int) -> QueuedText | None:
    message = session.get(SmsMessage, message_id) if 0 < message_id < 2**31 else None
    if message is None:
        return None
    patient = session.get(Patient, message.patient_id) if message.patient_id is not None else None
    return QueuedText(message, patient)


def why_not_retry(text: QueuedText, *, now: dt.datetime) -> str | None:
    """Why this text cannot be sent again, in words for staff; None if it can."""
    message, patient = text.message, text.patient
    if message.status not in RETRYABLE_BY_STAFF or message.dismissed_at is not None:
        return "Only a failed or unknown text that is still on the queue can be sent again."
    if message.expires_at is not None and message.expires_at <= now:
        return "This text is out of date: what it was about has already happened."
    if patient is not None and not patient.may_text:
        return "The patient does not take texts now (they said no, asked for no texts, or replied STOP)."
    if patient is not None and message.error_code in error_codes.INVALID_NUMBER and patient.mobile_invalid_at:
        return "Twilio refused the patient's mobile number. Correct the number on their record first."
    return None


def retry_message(session: Session, message_id: int, *, now: dt.datetime, checked_not_received: bool) -> SmsMessage:
    """Queue a failed or unknown text to be sent again, as a new attempt. A text that failed because the number
    was refused goes to the patient's current number."""
    text = queued_text(session, message_id)
    if text is None:
        raise QueueError("There is no such text.")
    reason = why_not_retry(text, now=now)
    if reason:
        raise QueueError(reason)
    message, patient = text.message, text.patient
    if message.status == "unknown" and not checked_not_received:
        raise NeedsConfirmation("Confirm you have checked the patient did not get this text")
    values = {"status": "pending", "attempts": 0, "next_attempt_at": now, "error_code": None, "provider": None,
              "provider_sid": None, "sent_at": None, "updated_at": now}
    if patient is not None and message.error_code in error_codes.INVALID_NUMBER:
        values["to_number"] = patient.mobile
    # Conditional, so two staff pressing Retry at once queue it once.
    changed = session.execute(
        update(SmsMessage)
        .where(SmsMessage.id == message.id, SmsMessage.status == message.status, SmsMessage.dismissed_at.is_(None))
        .values(**values)
        .execution_options(synchronize_session=False)
    ).rowcount
    if changed != 1:
        raise QueueError("Someone else has just dealt with this text.")
    session.refresh(message)
    return message


def dismiss_message(session: Session, message_id: int, *, now: dt.datetime) -> SmsMessage:
    """Take a failed or unknown text off the queue; its status stays as it is."""
    text = queued_text(session, message_id)
    if text is None or text.message.status not in RETRYABLE_BY_STAFF:
        raise QueueError("Only a failed or unknown text can be dismissed.")
    changed = session.execute(
        update(SmsMessage)
        .where(SmsMessage.id == message_id, SmsMessage.status.in_(RETRYABLE_BY_STAFF),
               SmsMessage.dismissed_at.is_(None))
        .values(dismissed_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if changed != 1:
        raise QueueError("This text is already off the queue.")
    session.refresh(text.message)
    return text.message


def unreachable_patients(session: Session) -> list[Patient]:
    """Patients we cannot text: their number opted out (STOP), or Twilio refused it. By name."""
    return list(session.scalars(
        select(Patient)
        .where(or_(Patient.sms_opted_out_at.is_not(None), Patient.mobile_invalid_at.is_not(None)))
        .order_by(Patient.family_name, Patient.given_name, Patient.id)
    ))


def count_failed_and_unknown(session: Session) -> int:
    """How many texts the queue page lists (before its limit)."""
    return session.scalar(
        select(func.count(SmsMessage.id))
        .where(SmsMessage.status.in_(RETRYABLE_BY_STAFF), SmsMessage.dismissed_at.is_(None))
    ) or 0
