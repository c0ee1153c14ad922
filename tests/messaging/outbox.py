"""Helpers for writing and reading outbox rows in tests, each in its own committed transaction."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from portal.db import Database, utcnow
from portal.messaging.models import SmsMessage
from portal.messaging.services import enqueue_sms
from portal.patients.models import Patient

STATUS_CALLBACK = "https://portal.test/sms/status"


def enqueue(
    db: Database,
    patient: Patient,
    *,
    key: str,
    body: str = "NHS: a test text.",
    now: dt.datetime | None = None,
    due_at: dt.datetime | None = None,
    expires_at: dt.datetime | None = None,
) -> int:
    """Write one outbox row in its own committed transaction; returns its id."""
    with db.transaction() as s:
        assert enqueue_sms(s, key=key, patient=s.get(Patient, patient.id), kind="test", body=body,
                           now=now or utcnow(), due_at=due_at, expires_at=expires_at)
        return s.scalar(select(SmsMessage.id).where(SmsMessage.idempotency_key == key))


def load(db: Database, message_id: int) -> SmsMessage:
    with db.transaction() as s:
        return s.get(SmsMessage, message_id)
