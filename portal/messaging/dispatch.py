"""Sending the outbox: claim due rows in one committed statement, send outside any transaction.

At-least-once: a row is 'sending' from its claim until the provider's answer is recorded. A row left in
'sending' by a crash is swept back later (issue 5); a read timeout is recorded as 'unknown' rather than
sent twice.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import select, update

from portal.db import Database, utcnow
from portal.messaging.clients import SendFailed, SmsClient
from portal.messaging.models import SmsMessage
from portal.patients.models import Patient

log = logging.getLogger(__name__)
BACKOFF_BASE_SECONDS = 30


@dataclass(frozen=True)
class Claimed:
    id: int
    to_number: str
    body: str
    attempts: int
    patient_id: int | None
    expires_at: dt.datetime | None


@dataclass
class DispatchReport:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    unknown: int = 0
    cancelled: int = 0


def claim_due(db: Database, *, now: dt.datetime, limit: int) -> list[Claimed]:
    """Move up to ``limit`` due pending rows to 'sending' and return them, in one transaction."""
    due = (
        select(SmsMessage.id)
        .where(SmsMessage.status == "pending", SmsMessage.next_attempt_at <= now)
        .order_by(SmsMessage.next_attempt_at, SmsMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    with db.transaction() as session:
        rows = session.execute(
            update(SmsMessage)
            .where(SmsMessage.id.in_(due.scalar_subquery()))
            .values(status="sending", attempts=SmsMessage.attempts + 1, updated_at=now)
            .returning(
                SmsMessage.id, SmsMessage.to_number, SmsMessage.body, SmsMessage.attempts,
                SmsMessage.patient_id, SmsMessage.expires_at,
            )
            .execution_options(synchronize_session=False)
        ).all()
    return sorted((Claimed(*row) for row in rows), key=lambda c: c.id)


def _still_wanted(db: Database, claimed: Claimed, now: dt.datetime) -> bool:
    """Re-check, just before sending, that the patient still takes texts and the text is not stale."""
    if claimed.expires_at is not None and claimed.expires_at <= now:
        return False
    if claimed.patient_id is None:
        return True
    with db.transaction() as session:
        consent = session.scalar(select(Patient.sms_consent).where(Patient.id == claimed.patient_id))
    return bool(consent)


def _record(db: Database, message_id: int, **values) -> None:
    with db.transaction() as session:
        session.execute(
            update(SmsMessage)
            .where(SmsMessage.id == message_id, SmsMessage.status == "sending")
            .values(updated_at=utcnow(), **values)
            .execution_options(synchronize_session=False)
        )


def dispatch_due(
    db: Database,
    client: SmsClient,
    *,
    validity_period: int,
    max_attempts: int,
    status_callback: str | None = None,
    batch: int = 50,
    now: dt.datetime | None = None,
) -> DispatchReport:
    """Send one batch of due texts. Returns what happened, for logs and tests."""
    report = DispatchReport()
    now = now or utcnow()
    claimed = claim_due(db, now=now, limit=batch)
    report.claimed = len(claimed)
    for message in claimed:
        if not _still_wanted(db, message, utcnow()):
            _record(db, message.id, status="cancelled")
            report.cancelled += 1
            continue
        try:
            result = client.send(
                to=message.to_number, body=message.body, validity_period=validity_period,
                status_callback=status_callback,
            )
        except SendFailed as exc:
            if exc.outcome_unknown:
                _record(db, message.id, status="unknown", error_code=exc.code)
                report.unknown += 1
            elif exc.retryable and message.attempts < max_attempts:
                delay = dt.timedelta(seconds=BACKOFF_BASE_SECONDS * 2 ** (message.attempts - 1))
                _record(db, message.id, status="pending", error_code=exc.code, next_attempt_at=utcnow() + delay)
                report.retried += 1
            else:
                _record(db, message.id, status="failed", error_code=exc.code)
                report.failed += 1
            continue
        status = "delivered" if result.status == "delivered" else "sent"
        _record(db, message.id, status=status, provider=client.name, provider_sid=result.sid, sent_at=utcnow(),
                error_code=None)
        report.sent += 1
    if report.claimed:
        log.info("dispatch: %s", report)
    return report
