"""What the provider tells us after the fact: delivery receipts, and errors that say something about the number.

Both the dispatcher (an error in Twilio's answer) and the status webhook (an error in a receipt) come here, so a
21610 means the same wherever it is learnt.
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from portal.audit.services import SYSTEM, Actor, record
from portal.messaging import error_codes
from portal.messaging.models import RECEIPT_TRANSITIONS, SmsMessage
from portal.patients.models import Patient

STATUS_WEBHOOK_PATH = "/webhooks/twilio/status"
INBOUND_WEBHOOK_PATH = "/webhooks/twilio/inbound"
# The query parameter that carries the outbox id in each text's status callback URL (see callback_url).
OUTBOX_PARAM = "outbox"

# Twilio's MessageStatus values, as our statuses. Twilio's own queueing states all mean it has the text.
# 'canceled' (only for scheduled messages, which we never use), 'partially_delivered', 'receiving' and
# 'received' change nothing.
PROVIDER_STATUSES = {
    "accepted": "sent",
    "scheduled": "sent",
    "queued": "sent",
    "sending": "sent",
    "sent": "sent",
    "delivered": "delivered",
    "read": "delivered",
    "undelivered": "undelivered",
    "failed": "failed",
}


def status_callback_base(config: dict[str, Any]) -> str | None:
    """Where Twilio posts delivery receipts: SMS_STATUS_CALLBACK_URL if set, else the portal's own webhook
    under PUBLIC_BASE_URL (None if neither is set: texts go without a status callback)."""
    configured = str(config.get("SMS_STATUS_CALLBACK_URL") or "").strip()
    if configured:
        return configured
    public = str(config.get("PUBLIC_BASE_URL") or "").strip()
    return public.rstrip("/") + STATUS_WEBHOOK_PATH if public else None


def callback_url(base: str, message_id: int) -> str:
    """The status callback for one text: the base URL with the outbox id added.

    A receipt names the text by Twilio's SID, but a text whose send timed out ('unknown') never learnt its
    SID: the id in the URL (which Twilio signs with the rest of the URL) still finds it.
    """
    parts = urllib.parse.urlsplit(base)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    query = [(k, v) for k, v in query if k != OUTBOX_PARAM] + [(OUTBOX_PARAM, str(message_id))]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def apply_receipt(
    session: Session,
    *,
    sid: str,
    provider_status: str,
    error_code: str | None,
    outbox_id: int | None,
    now: dt.datetime,
    actor: Actor = SYSTEM,
) -> str:
    """Apply one delivery receipt; returns 'updated', 'unchanged', 'unmatched' or 'ignored'.

    One conditional UPDATE: it changes the row only from a status that RECEIPT_TRANSITIONS allows, so receipts
    that arrive twice, late or out of order (delivered before sent) never move a text out of a final state,
    even when two arrive at once.
    """
    target = PROVIDER_STATUSES.get(provider_status.strip().lower())
    if target is None:
        return "ignored"
    sources = [status for status, targets in RECEIPT_TRANSITIONS.items() if target in targets]
    match = SmsMessage.provider_sid == sid
    if outbox_id is not None:
        # The SID, or our own id on a row that never learnt its SID (a timed-out send).
        match = or_(match, and_(SmsMessage.id == outbox_id, SmsMessage.provider_sid.is_(None)))
    code = error_code.strip() if error_code and error_code.strip() not in ("", "0") else None
    values: dict[str, Any] = {
        "status": target,
        "provider_sid": sid,
        "provider": func.coalesce(SmsMessage.provider, "twilio"),
        "sent_at": func.coalesce(SmsMessage.sent_at, now),
        "updated_at": now,
    }
    if code:
        values["error_code"] = code[:20]
    rows = session.execute(
        update(SmsMessage)
        .where(match, SmsMessage.status.in_(sources))
        .values(**values)
        .returning(SmsMessage.patient_id, SmsMessage.to_number)
        .execution_options(synchronize_session=False)
    ).all()
    if not rows:
        found = session.scalar(select(SmsMessage.id).where(match).limit(1))
        return "unmatched" if found is None else "unchanged"
    if code:
        for patient_id, to_number in rows:
            apply_provider_error(session, patient_id=patient_id, to_number=to_number, code=code, now=now,
                                 actor=actor)
    return "updated"


def apply_provider_error(
    session: Session,
    *,
    patient_id: int | None,
    to_number: str,
    code: str | None,
    now: dt.datetime,
    actor: Actor = SYSTEM,
) -> list[int]:
    """Record what a Twilio error says about a number: 21610 opted out; 21211 and 21614 not a usable mobile.

    It is the number that Twilio refuses, so every patient who has it is marked (a shared family phone).
    A text to some other number than the patient's own (a code proving a new number) marks nobody.
    Returns the ids of the patients whose record changed.
    """
    if code not in error_codes.OPTED_OUT and code not in error_codes.INVALID_NUMBER:
        return []
    if patient_id is not None:
        owner = session.get(Patient, patient_id)
        if owner is None or owner.mobile != to_number:
            return []
    changed = []
    for patient in session.scalars(select(Patient).where(Patient.mobile == to_number).order_by(Patient.id)):
        if code in error_codes.OPTED_OUT:
            if patient.opt_out_of_texts(now):
                changed.append(patient.id)
                record(session, actor, "sms_opted_out", patient_id=patient.id, detail=f"Twilio error {code}")
        elif patient.mark_mobile_invalid(now):
            changed.append(patient.id)
            record(session, actor, "mobile_marked_invalid", patient_id=patient.id, detail=f"Twilio error {code}")
    session.flush()
    return changed
