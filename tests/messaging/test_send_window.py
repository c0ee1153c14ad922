"""Reminders and nudges go only inside the local send window, even when they fall due outside it."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from portal.messaging.dispatch import dispatch_due
from portal.messaging.models import SmsMessage
from portal.messaging.services import enqueue_sms
from portal.patients.models import Patient
from tests.messaging.outbox import STATUS_CALLBACK, load

LONDON = ZoneInfo("Europe/London")


def _london(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=LONDON).astimezone(dt.UTC)


def _enqueue(db, patient, *, key, kind, due_at, expires_at=None) -> int:
    with db.transaction() as s:
        assert enqueue_sms(s, key=key, patient=s.get(Patient, patient.id), kind=kind, body=f"NHS: {key}.",
                           now=due_at, due_at=due_at, expires_at=expires_at)
        return s.scalar(select(SmsMessage.id).where(SmsMessage.idempotency_key == key))


def _dispatch(db, domain, client, now):
    return dispatch_due(db, client, validity_period=domain.policy.sms.validity_period_seconds,
                        max_attempts=domain.policy.sms.max_attempts, status_callback=STATUS_CALLBACK, now=now,
                        send_window=domain.policy.reminders.window)


@pytest.mark.parametrize("kind", ["reminder", "selfcare", "questionnaire_due"])
@pytest.mark.parametrize(("late", "opens"), [
    # A reminder due at 19:00 that the dispatcher only reaches at 23:30 (it was down for the evening).
    (_london(2026, 11, 24, 23, 30), _london(2026, 11, 25, 9, 0)),
    # The same in the small hours, and on the nights the clocks change: 09:00 is London time either way.
    (_london(2026, 11, 25, 3, 0), _london(2026, 11, 25, 9, 0)),
    (_london(2026, 3, 28, 23, 30), _london(2026, 3, 29, 9, 0)),
    (_london(2026, 10, 24, 23, 30), _london(2026, 10, 25, 9, 0)),
])
def test_a_planned_text_claimed_in_quiet_hours_waits_for_the_window(
    db, domain, patient, fake_twilio, twilio_client, kind, late, opens
):
    due = late.astimezone(LONDON).replace(hour=19, minute=0)
    if due > late:
        due -= dt.timedelta(days=1)
    message_id = _enqueue(db, patient, key=f"planned-{kind}", kind=kind, due_at=due.astimezone(dt.UTC),
                          expires_at=opens + dt.timedelta(hours=3))

    report = _dispatch(db, domain, twilio_client, late)

    assert (report.deferred, report.sent) == (1, 0)
    assert fake_twilio.messages == []
    row = load(db, message_id)
    assert (row.status, row.next_attempt_at, row.attempts) == ("pending", opens, 0)

    assert _dispatch(db, domain, twilio_client, opens - dt.timedelta(minutes=1)).claimed == 0
    report = _dispatch(db, domain, twilio_client, opens)
    assert report.sent == 1
    assert load(db, message_id).status == "sent"
    assert [m.body for m in fake_twilio.messages] == [f"NHS: planned-{kind}."]


def test_a_planned_text_whose_window_opens_too_late_is_not_sent(db, domain, patient, fake_twilio, twilio_client):
    # The 1-day reminder of an 08:30 appointment, reached at 23:30: by 09:00 the appointment has begun.
    late = _london(2026, 11, 24, 23, 30)
    message_id = _enqueue(db, patient, key="too-late", kind="reminder", due_at=_london(2026, 11, 24, 19, 0),
                          expires_at=_london(2026, 11, 25, 8, 30))

    _dispatch(db, domain, twilio_client, late)
    _dispatch(db, domain, twilio_client, _london(2026, 11, 25, 9, 0))

    row = load(db, message_id)
    assert (row.status, row.error_code) == ("cancelled", "expired")
    assert fake_twilio.messages == []


def test_a_text_answering_what_someone_just_did_goes_at_once_at_night(
    db, domain, patient, fake_twilio, twilio_client
):
    late = _london(2026, 11, 24, 23, 30)
    message_id = _enqueue(db, patient, key="booked", kind="appointment_booked", due_at=late)

    report = _dispatch(db, domain, twilio_client, late)

    assert (report.sent, report.deferred) == (1, 0)
    assert load(db, message_id).status == "sent"


def test_a_planned_text_inside_the_window_goes_at_once(db, domain, patient, fake_twilio, twilio_client):
    at = _london(2026, 11, 24, 19, 0)
    message_id = _enqueue(db, patient, key="edge", kind="reminder", due_at=at)

    assert _dispatch(db, domain, twilio_client, at).sent == 1
    assert load(db, message_id).status == "sent"
