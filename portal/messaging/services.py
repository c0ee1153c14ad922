"""Writing texts to the outbox, in the caller's transaction.

A state change and the text it causes are written together: a rolled-back booking sends nothing.
The dispatcher (messaging.dispatch) sends the rows after the commit.
"""

from __future__ import annotations

import datetime as dt
import functools
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from portal.db import upsert_insert
from portal.messaging.models import SmsMessage
from portal.patients.models import Patient

LONDON = ZoneInfo("Europe/London")
# Texts the portal plans ahead rather than sends because someone just did something: they are only ever sent
# inside the local send window. One planned for the window can still fall due outside it (a scheduler down for
# the evening, a backlog, a retry), so the dispatcher checks again when it sends (messaging.dispatch).
PLANNED_KINDS = frozenset({"reminder", "selfcare", "questionnaire_due"})
# Nudges to use the portal (a week of reading, a questionnaire), as opposed to texts about a booking the patient
# holds. A patient discharged back to their referrer is no longer under the service's care: they are not nudged,
# though reminders of bookings they still hold go until staff cancel those.
NUDGE_KINDS = frozenset({"selfcare", "questionnaire_due"})
# Texts that go to the number they were written for, not the patient's mobile: the code that proves a new number
# before it is saved (patients.routes.MOBILE_CHANGE). Every other text to a patient goes to their mobile as it is
# when it is sent.
SENT_TO_A_NEW_NUMBER = frozenset({"mobile_change"})


def may_nudge(patient: Patient) -> bool:
    """Whether the patient may get a nudge (NUDGE_KINDS): they take texts and have not been discharged."""
    return patient.may_text and not patient.discharged


def into_send_window(now: dt.datetime, window: tuple[dt.time, dt.time], zone: ZoneInfo = LONDON) -> dt.datetime:
    """``now``, if it is within the local send window (both ends included); otherwise when the window next
    opens, as UTC. The window's times are local wall-clock, so 09:00 stays 09:00 across the clock changes."""
    local = now.astimezone(zone)
    opens, closes = window
    if opens <= local.time() <= closes:
        return now
    day = local.date() if local.time() < opens else local.date() + dt.timedelta(days=1)
    return dt.datetime.combine(day, opens, tzinfo=zone).astimezone(dt.UTC)


def enqueue_sms(
    session: Session,
    *,
    key: str,
    patient: Patient | None,
    kind: str,
    body: str,
    now: dt.datetime,
    due_at: dt.datetime | None = None,
    booking_id: int | None = None,
    appointment_id: int | None = None,
    expires_at: dt.datetime | None = None,
    to_number: str | None = None,
) -> bool:
    """Insert one outbox row unless a row with this idempotency key exists. True if inserted.

    Patients who have not agreed to texts, or asked for none, get no row (nor, for a nudge, discharged
    patients): the caller's state change still stands.
    ``to_number`` overrides the patient's stored mobile (to prove a new number before saving it). Without a
    patient (a reply to a number that matches no single patient) ``to_number`` is required.
    ``booking_id`` or ``appointment_id`` names what the text is about: the dispatcher drops it once that ends.
    """
    if patient is not None and not (may_nudge(patient) if kind in NUDGE_KINDS else patient.may_text):
        return False
    if patient is None and not to_number:
        raise ValueError("a text to no patient needs to_number")
    due = due_at or now
    values = {
        "idempotency_key": key,
        "patient_id": patient.id if patient is not None else None,
        "booking_id": booking_id,
        "appointment_id": appointment_id,
        "kind": kind,
        "to_number": to_number or patient.mobile,
        "body": body,
        "status": "pending",
        "attempts": 0,
        "due_at": due,
        "next_attempt_at": due,
        "expires_at": expires_at,
        "created_at": now,
        "updated_at": now,
    }
    # On the session's connection (same transaction), past the ORM's DML layer: a plain insert needs none of it.
    # Flush first, so a row this text points at (a booking just added) is in the database before it.
    session.flush()
    connection = session.connection()
    return connection.execute(_insert_statement(connection.dialect.name), values).first() is not None


def texted_since(session: Session, patient_id: int, *, since: dt.datetime) -> bool:
    """Whether a text to the patient was written to the outbox at or after ``since`` (the request's ``now``): a
    page promises "we have sent you a text" only when one is really on its way (not to patients we may not text)."""
    return session.scalar(
        select(SmsMessage.id).where(SmsMessage.patient_id == patient_id, SmsMessage.created_at >= since).limit(1)
    ) is not None


@functools.cache
def _insert_statement(dialect: str):
    """INSERT ... ON CONFLICT (idempotency_key) DO NOTHING RETURNING id, built once per dialect with bound
    parameters: every text the portal sends goes through it, so it is not rebuilt per call."""
    insert = upsert_insert(dialect)
    columns = ("idempotency_key", "patient_id", "booking_id", "appointment_id", "kind", "to_number", "body",
               "status", "attempts", "due_at", "next_attempt_at", "expires_at", "created_at", "updated_at")
    return (
        insert(SmsMessage)
        .values({name: bindparam(name, type_=SmsMessage.__table__.c[name].type) for name in columns})
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        # RETURNING, not rowcount: through the ORM, PostgreSQL reports a rowcount of -1 here.
        .returning(SmsMessage.id)
    )



def messages_for_patient(session: Session, patient_id: int) -> list[SmsMessage]:
    return list(
        session.scalars(
            select(SmsMessage).where(SmsMessage.patient_id == patient_id).order_by(SmsMessage.created_at.desc())
        )
    )


def recent_messages(session: Session, *, limit: int = 100) -> list[SmsMessage]:
    return list(session.scalars(select(SmsMessage).order_by(SmsMessage.id.desc()).limit(limit)))
