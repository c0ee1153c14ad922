"""The sweep of texts left in 'sending' by a scheduler that died mid-batch."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import update

from portal.db import utcnow
from portal.messaging.models import SmsMessage
from portal.messaging.sweep import sweep_stuck_sending
from portal.scheduler import JOBS
from tests.messaging.outbox import enqueue, load

STUCK_AFTER = dt.timedelta(minutes=15)


def _claimed(db, message_id: int, at: dt.datetime, **values) -> None:
    with db.transaction() as s:
        s.execute(update(SmsMessage).where(SmsMessage.id == message_id)
                  .values(status="sending", attempts=1, updated_at=at, **values))


def test_old_sending_rows_become_unknown_or_sent_and_recent_ones_are_left(db, patient):
    now = utcnow()
    old = now - STUCK_AFTER - dt.timedelta(seconds=1)
    never_answered = enqueue(db, patient, key="stuck-1", body="NHS: stuck one")
    twilio_has_it = enqueue(db, patient, key="stuck-2", body="NHS: stuck two")
    in_flight = enqueue(db, patient, key="stuck-3", body="NHS: in flight")
    waiting = enqueue(db, patient, key="stuck-4", body="NHS: waiting")
    _claimed(db, never_answered, old)
    _claimed(db, twilio_has_it, old, provider_sid="SM" + "1" * 32)
    _claimed(db, in_flight, now - STUCK_AFTER + dt.timedelta(seconds=5))

    report = sweep_stuck_sending(db, now=now, stuck_after=STUCK_AFTER)

    assert (report.unknown, report.sent) == (1, 1)
    swept = load(db, never_answered)
    assert (swept.status, swept.error_code, swept.updated_at) == ("unknown", "stuck", now)
    sent = load(db, twilio_has_it)
    assert (sent.status, sent.sent_at) == ("sent", old)
    assert load(db, in_flight).status == "sending"
    assert load(db, waiting).status == "pending"
    # Idempotent: a second run finds nothing more to do.
    assert sweep_stuck_sending(db, now=now, stuck_after=STUCK_AFTER) == report.__class__(unknown=0, sent=0)


def test_the_sweep_is_a_scheduled_job_with_a_configured_threshold(domain):
    assert "sweep_stuck_sending" in {job.name for job in JOBS}
    # Far above the longest batch: 20 texts that each time out after 10 s.
    assert domain.policy.sms.stuck_after_seconds >= 20 * 10
