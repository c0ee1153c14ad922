"""Sending the outbox: claim due rows in one committed statement, send outside any transaction.

At-least-once: a row is 'sending' from its claim until the provider's answer is recorded. A row left in
'sending' by a crash is swept back later (issue 5); a read timeout is recorded as 'unknown' rather than
sent twice.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
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
    # Rows whose outcome could not be recorded (a database error): left in 'sending' for the sweep.
    errors: int = 0


def claim_due(db: Database, *, now: dt.datetime, limit: int) -> list[Claimed]:
    """Move up to ``limit`` due pending rows to 'sending' and return them, in one committed statement.

    The due rows are picked in a MATERIALIZED CTE so the locking subquery runs exactly once. As a plain
    ``IN (subquery)`` PostgreSQL may plan a nested-loop semi join that re-runs the subquery for every outer
    row; each re-run skips the rows this statement has just claimed and locks the next ones, so one claim
    took the whole outbox whatever the limit, and a second dispatcher got nothing.
    """
    due = (
        select(SmsMessage.id)
        .where(SmsMessage.status == "pending", SmsMessage.next_attempt_at <= now)
        .order_by(SmsMessage.next_attempt_at, SmsMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .cte("due")
        .prefix_with("MATERIALIZED")
    )
    with db.transaction() as session:
        rows = session.execute(
            update(SmsMessage)
            # The status test again on the outer statement: a row is claimed only from 'pending'.
            .where(SmsMessage.id.in_(select(due.c.id)), SmsMessage.status == "pending")
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
        patient = session.get(Patient, claimed.patient_id)
        return patient is not None and patient.may_text


def _record(db: Database, message_id: int, now: dt.datetime, **values) -> None:
    with db.transaction() as session:
        session.execute(
            update(SmsMessage)
            .where(SmsMessage.id == message_id, SmsMessage.status == "sending")
            .values(updated_at=now, **values)
            .execution_options(synchronize_session=False)
        )


def _dispatch_one(
    db: Database,
    client: SmsClient,
    message: Claimed,
    *,
    clock: Callable[[], dt.datetime],
    validity_period: int,
    max_attempts: int,
    status_callback: str | None,
) -> str:
    """Send one claimed row and record the outcome; returns the DispatchReport field to count."""
    if not _still_wanted(db, message, clock()):
        _record(db, message.id, clock(), status="cancelled")
        return "cancelled"
    try:
        result = client.send(
            to=message.to_number, body=message.body, validity_period=validity_period,
            status_callback=status_callback,
        )
    except SendFailed as exc:
        if exc.outcome_unknown:
            _record(db, message.id, clock(), status="unknown", error_code=exc.code)
            return "unknown"
        if exc.retryable and message.attempts < max_attempts:
            now = clock()
            delay = dt.timedelta(seconds=BACKOFF_BASE_SECONDS * 2 ** (message.attempts - 1))
            _record(db, message.id, now, status="pending", error_code=exc.code, next_attempt_at=now + delay)
            return "retried"
        _record(db, message.id, clock(), status="failed", error_code=exc.code)
        return "failed"
    except Exception:
        # Not a known provider answer (a garbled response, a bug): the text may have gone out, so it is
        # not sent again blindly, and the rest of the batch still goes.
        log.exception("sms %s: unexpected error while sending; recorded as unknown", message.id)
        _record(db, message.id, clock(), status="unknown", error_code="error")
        return "unknown"
    now = clock()
    status = "delivered" if result.status == "delivered" else "sent"
    _record(db, message.id, now, status=status, provider=client.name, provider_sid=result.sid, sent_at=now,
            error_code=None)
    return "sent"


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
    """Send one batch of due texts. Returns what happened, for logs and tests.

    ``now`` fixes the clock for the whole batch (claiming, expiry, backoff); by default each step reads
    the real time.
    """
    clock: Callable[[], dt.datetime] = (lambda: now) if now is not None else utcnow
    report = DispatchReport()
    claimed = claim_due(db, now=clock(), limit=batch)
    report.claimed = len(claimed)
    for message in claimed:
        try:
            outcome = _dispatch_one(
                db, client, message, clock=clock, validity_period=validity_period, max_attempts=max_attempts,
                status_callback=status_callback,
            )
        except Exception:
            log.exception("sms %s: could not record the outcome; left in 'sending'", message.id)
            report.errors += 1
            continue
        setattr(report, outcome, getattr(report, outcome) + 1)
    if report.claimed:
        log.info("dispatch: %s", report)
    return report
