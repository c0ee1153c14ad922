"""The sweep of texts left in 'sending' by a scheduler that died mid-batch."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import update

from portal.db import utcnow
from portal.messaging.clients import SmsClient
from portal.messaging.dispatch import DispatchReport, Pacer, claim_due, dispatch_due
from portal.messaging.models import SmsMessage
from portal.messaging.sweep import SweepReport, sweep_stuck_sending
from portal.scheduler import JOBS
from tests.messaging.outbox import enqueue, load

STUCK_AFTER = dt.timedelta(minutes=15)
MAX_ATTEMPTS = 5


def _claimed(db, message_id: int, at: dt.datetime, **values) -> None:
    values.setdefault("attempts", 1)
    with db.transaction() as s:
        s.execute(update(SmsMessage).where(SmsMessage.id == message_id)
                  .values(status="sending", updated_at=at, **values))


def test_old_sending_rows_go_back_to_the_dispatcher_or_become_sent_and_recent_ones_are_left(db, patient):
    now = utcnow()
    old = now - STUCK_AFTER - dt.timedelta(seconds=1)
    never_answered = enqueue(db, patient, key="stuck-1", body="NHS: stuck one")
    twilio_has_it = enqueue(db, patient, key="stuck-2", body="NHS: stuck two")
    in_flight = enqueue(db, patient, key="stuck-3", body="NHS: in flight")
    waiting = enqueue(db, patient, key="stuck-4", body="NHS: waiting")
    last_try = enqueue(db, patient, key="stuck-5", body="NHS: stuck on its last attempt")
    _claimed(db, never_answered, old)
    _claimed(db, twilio_has_it, old, provider_sid="SM" + "1" * 32)
    _claimed(db, in_flight, now - STUCK_AFTER + dt.timedelta(seconds=5))
    _claimed(db, last_try, old, attempts=MAX_ATTEMPTS)

    report = sweep_stuck_sending(db, now=now, stuck_after=STUCK_AFTER, max_attempts=MAX_ATTEMPTS)

    assert report == SweepReport(retried=1, unknown=1, sent=1)
    retried = load(db, never_answered)
    # Due at once; the claim's attempt still counts, so the next claim asks Twilio first.
    assert (retried.status, retried.error_code, retried.next_attempt_at, retried.attempts) == (
        "pending", "stuck", now, 1)
    sent = load(db, twilio_has_it)
    assert (sent.status, sent.sent_at) == ("sent", old)
    unknown = load(db, last_try)
    assert (unknown.status, unknown.error_code, unknown.updated_at) == ("unknown", "stuck", now)
    assert load(db, in_flight).status == "sending"
    assert load(db, waiting).status == "pending"
    # Idempotent: a second run finds nothing more to do.
    assert sweep_stuck_sending(db, now=now, stuck_after=STUCK_AFTER, max_attempts=MAX_ATTEMPTS) == SweepReport(
        retried=0, unknown=0, sent=0)


def test_a_stuck_text_twilio_took_is_recorded_as_sent_and_one_it_never_got_is_sent_once(
    db, domain, patient, fake_twilio, twilio_client
):
    """What a scheduler killed mid-batch leaves: one text Twilio took before the kill, one it never got."""
    t0 = utcnow()
    taken = enqueue(db, patient, key="stuck-taken", body="NHS: Twilio took this one", now=t0)
    lost = enqueue(db, patient, key="stuck-lost", body="NHS: this one never reached Twilio", now=t0)
    before = twilio_client.send(to=patient.mobile, body="NHS: Twilio took this one", validity_period=60,
                                status_callback=None)
    _claimed(db, taken, t0)
    _claimed(db, lost, t0)
    now = t0 + STUCK_AFTER + dt.timedelta(seconds=1)
    assert sweep_stuck_sending(db, now=now, stuck_after=STUCK_AFTER, max_attempts=MAX_ATTEMPTS).retried == 2

    report = dispatch_due(db, twilio_client, validity_period=domain.policy.sms.validity_period_seconds,
                          max_attempts=MAX_ATTEMPTS, status_callback=None, now=now)

    assert report == DispatchReport(claimed=2, sent=2)
    assert (load(db, taken).status, load(db, taken).provider_sid) == ("sent", before.sid)
    assert load(db, lost).status == "sent"
    assert sorted(m.body for m in fake_twilio.messages) == [
        "NHS: Twilio took this one", "NHS: this one never reached Twilio"]


def test_the_sweep_is_a_scheduled_job_with_a_configured_threshold(domain):
    assert "sweep_stuck_sending" in {job.name for job in JOBS}
    # Far above the longest batch: 20 texts that each time out after 10 s.
    assert domain.policy.sms.stuck_after_seconds >= 20 * 10


def test_a_batch_that_stalls_past_the_sweep_does_not_send_a_text_handed_back_meanwhile(
    db, domain, patient, fake_twilio, twilio_client
):
    """A dispatcher paused mid-batch (a frozen process, a slow provider) for longer than the sweep waits: the rows it
    had not reached go back to the queue and another claim sends them. When the paused batch wakes it must not
    send them too; it has only the claim it made before the pause."""
    t0 = utcnow()
    first = enqueue(db, patient, key="stall-1", body="NHS: sent before the pause", now=t0)
    second = enqueue(db, patient, key="stall-2", body="NHS: handed back during the pause", now=t0)
    later = t0 + STUCK_AFTER + dt.timedelta(seconds=1)
    meanwhile: list[tuple[SweepReport, DispatchReport]] = []

    def paused(_seconds: float) -> None:
        # The pacer's wait before the second text: the pause, while the rest of the service carries on.
        swept = sweep_stuck_sending(db, now=later, stuck_after=STUCK_AFTER, max_attempts=MAX_ATTEMPTS)
        meanwhile.append((swept, dispatch_due(db, twilio_client, validity_period=60, max_attempts=MAX_ATTEMPTS,
                                              now=later)))

    stalled = dispatch_due(db, twilio_client, validity_period=60, max_attempts=MAX_ATTEMPTS, now=t0,
                           pacer=Pacer(1, clock=lambda: 0.0, sleep=paused))

    assert meanwhile == [(SweepReport(retried=1, unknown=0, sent=0), DispatchReport(claimed=1, sent=1))]
    assert sorted(m.body for m in fake_twilio.messages) == [
        "NHS: handed back during the pause", "NHS: sent before the pause"]
    assert load(db, first).status == load(db, second).status == "sent"
    assert load(db, second).attempts == 2
    assert stalled == DispatchReport(claimed=2, sent=1, lost=1)



class _StallsWhileSending(SmsClient):
    """The real client, with a stall inside the request to the provider, during which ``meanwhile`` runs."""

    name = "twilio"

    def __init__(self, inner: SmsClient, meanwhile) -> None:
        self.inner, self.meanwhile = inner, meanwhile

    def _send(self, **kwargs):
        self.meanwhile()
        return self.inner.send(**kwargs)


def test_a_batch_that_stalls_inside_the_send_does_not_record_over_a_later_claim(
    db, patient, fake_twilio, twilio_client
):
    """The stall comes after the batch renewed its claim, so it sends; the sweep and a later claim have the row by
    the time it answers. What the row says is the later claim's to record, not the stalled batch's."""
    t0 = utcnow()
    message_id = enqueue(db, patient, key="stall-in-send", body="NHS: stalled in the send", now=t0)
    later = t0 + STUCK_AFTER + dt.timedelta(seconds=1)

    def meanwhile() -> None:
        assert sweep_stuck_sending(db, now=later, stuck_after=STUCK_AFTER, max_attempts=MAX_ATTEMPTS).retried == 1
        [reclaimed] = claim_due(db, now=later, limit=5)  # another dispatcher, about to ask Twilio
        assert reclaimed.attempts == 2

    stalled = dispatch_due(db, _StallsWhileSending(twilio_client, meanwhile), validity_period=60,
                           max_attempts=MAX_ATTEMPTS, now=t0)

    assert stalled == DispatchReport(claimed=1, sent=1)
    row = load(db, message_id)
    # Left as the later claim holds it; that claim will find this send at Twilio and record it.
    assert (row.status, row.attempts, row.provider_sid) == ("sending", 2, None)
    assert len(fake_twilio.messages) == 1
