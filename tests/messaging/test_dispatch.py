"""The dispatcher sending outbox rows through the real twilio library to the fake Twilio server."""

from __future__ import annotations

import datetime as dt
import re
import time

import pytest

from portal.db import utcnow
from portal.messaging.clients import SendResult, TwilioSmsClient
from portal.messaging.dispatch import BACKOFF_BASE_SECONDS, DispatchReport, dispatch_due
from portal.patients.models import Patient
from tests import factories
from tests.fixtures.fake_twilio import FakeTwilio
from tests.messaging.outbox import STATUS_CALLBACK, enqueue, load

SECOND = dt.timedelta(seconds=1)


def dispatch(db, domain, client, **kwargs) -> DispatchReport:
    kwargs.setdefault("max_attempts", domain.policy.sms.max_attempts)
    kwargs.setdefault("status_callback", STATUS_CALLBACK)
    return dispatch_due(db, client, validity_period=domain.policy.sms.validity_period_seconds, **kwargs)


def test_a_due_text_is_sent_and_the_twilio_sid_recorded(app, db, domain, patient, fake_twilio, twilio_client):
    body = "NHS: you are booked on a weekly group starting Tue 6 Jan at 6pm."
    message_id = enqueue(db, patient, key="sent", body=body)

    report = dispatch(db, domain, twilio_client)

    assert report == DispatchReport(claimed=1, sent=1)
    [accepted] = fake_twilio.messages
    row = load(db, message_id)
    assert row.status == "sent"
    assert row.provider == "twilio"
    assert row.provider_sid == accepted.sid
    assert re.fullmatch(r"SM[0-9a-f]{32}", row.provider_sid)
    assert row.attempts == 1
    assert row.error_code is None
    assert row.sent_at is not None
    assert accepted.to == patient.mobile
    assert accepted.from_ == app.config["TWILIO_FROM"]
    assert accepted.body == body
    assert accepted.validity_period == domain.policy.sms.validity_period_seconds == 14400
    # Each text's callback carries its outbox id, so a receipt finds it even if the send timed out.
    assert accepted.status_callback == f"{STATUS_CALLBACK}?outbox={message_id}"
    [request] = fake_twilio.requests
    assert request.method == "POST"
    assert request.path == f"/2010-04-01/Accounts/{app.config['TWILIO_ACCOUNT_SID']}/Messages.json"
    assert request.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    assert request.authorized
    assert request.response_status == 201
    assert request.form == {
        "To": patient.mobile,
        "From": "NHS Appts",
        "Body": body,
        "ValidityPeriod": "14400",
        "StatusCallback": f"{STATUS_CALLBACK}?outbox={message_id}",
    }


def test_no_status_callback_is_sent_when_none_is_configured(db, domain, patient, fake_twilio, twilio_client):
    enqueue(db, patient, key="no-callback")

    assert dispatch(db, domain, twilio_client, status_callback=None).sent == 1

    [request] = fake_twilio.requests
    assert "StatusCallback" not in request.form
    assert fake_twilio.messages[0].status_callback is None


def test_a_text_not_yet_due_is_left_alone(db, domain, patient, fake_twilio, twilio_client):
    now = utcnow()
    message_id = enqueue(db, patient, key="later", now=now, due_at=now + dt.timedelta(hours=1))

    assert dispatch(db, domain, twilio_client, now=now).claimed == 0

    assert load(db, message_id).status == "pending"
    assert fake_twilio.requests == []


def test_one_dispatch_claims_no_more_than_its_batch(db, domain, patient, fake_twilio, twilio_client):
    now = utcnow()
    ids = [enqueue(db, patient, key=f"batch-limit-{n}", body=f"NHS: text {n:02d}", now=now) for n in range(30)]

    report = dispatch(db, domain, twilio_client, now=now, batch=10)

    assert report == DispatchReport(claimed=10, sent=10)
    assert [load(db, i).status for i in ids] == ["sent"] * 10 + ["pending"] * 20  # oldest first
    assert sorted(m.body for m in fake_twilio.messages) == [f"NHS: text {n:02d}" for n in range(10)]


@pytest.mark.parametrize(
    ("status", "code", "problem_details"),
    [(500, 20500, False), (503, 20503, False), (429, 20429, False), (503, 20503, True)],
    ids=["500", "503", "429", "503-rfc9457"],
)
def test_server_errors_and_rate_limits_are_retried_with_exponential_backoff(
    db, domain, patient, fake_twilio, twilio_client, status, code, problem_details
):
    t0 = utcnow()
    message_id = enqueue(db, patient, key="retry", now=t0)
    fake_twilio.fail_next(2, status=status, code=code, problem_details=problem_details)

    assert dispatch(db, domain, twilio_client, now=t0) == DispatchReport(claimed=1, retried=1)
    row = load(db, message_id)
    assert (row.status, row.attempts, row.error_code) == ("pending", 1, str(code))
    assert row.next_attempt_at == t0 + BACKOFF_BASE_SECONDS * SECOND

    # Not due again until the backoff has passed.
    assert dispatch(db, domain, twilio_client, now=row.next_attempt_at - SECOND).claimed == 0

    t1 = row.next_attempt_at
    assert dispatch(db, domain, twilio_client, now=t1) == DispatchReport(claimed=1, retried=1)
    row = load(db, message_id)
    assert (row.status, row.attempts, row.error_code) == ("pending", 2, str(code))
    assert row.next_attempt_at == t1 + 2 * BACKOFF_BASE_SECONDS * SECOND

    assert dispatch(db, domain, twilio_client, now=row.next_attempt_at) == DispatchReport(claimed=1, sent=1)
    row = load(db, message_id)
    assert (row.status, row.attempts, row.error_code) == ("sent", 3, None)
    # Before each retry it asks Twilio whether the last attempt went after all (it had not).
    assert [(r.method, r.response_status) for r in fake_twilio.requests] == [
        ("POST", status), ("GET", 200), ("POST", status), ("GET", 200), ("POST", 201)]
    assert [m.sid for m in fake_twilio.messages] == [row.provider_sid]


@pytest.mark.parametrize("status", [500, 502, 504])
def test_a_text_twilio_took_before_answering_a_server_error_is_not_sent_twice(
    db, domain, patient, fake_twilio, twilio_client, status
):
    t0 = utcnow()
    message_id = enqueue(db, patient, key="took-it", now=t0)
    fake_twilio.fail_next(1, status=status, code=20500, accept=True)
    assert dispatch(db, domain, twilio_client, now=t0) == DispatchReport(claimed=1, retried=1)
    [taken] = fake_twilio.messages
    row = load(db, message_id)
    assert dispatch(db, domain, twilio_client, now=row.next_attempt_at) == DispatchReport(claimed=1, sent=1)
    row = load(db, message_id)
    assert (row.status, row.provider_sid, row.error_code) == ("sent", taken.sid, None)
    assert [m.sid for m in fake_twilio.messages] == [taken.sid]
    assert [r.method for r in fake_twilio.requests] == ["POST", "GET"]


def test_the_earlier_attempt_is_found_however_many_texts_the_number_had_since(
    db, domain, patient, fake_twilio, twilio_client, monkeypatch
):
    monkeypatch.setattr(TwilioSmsClient, "LOOKUP_PAGE_SIZE", 3)
    t0 = utcnow()
    message_id = enqueue(db, patient, key="took-it", now=t0)
    fake_twilio.fail_next(1, status=500, accept=True)
    assert dispatch(db, domain, twilio_client, now=t0).retried == 1
    for n in range(7):  # newer texts to the same number push the earlier attempt onto the third page
        enqueue(db, patient, key=f"newer-{n}", body=f"NHS: newer text {n}", now=t0)
    assert dispatch(db, domain, twilio_client, now=t0).sent == 7

    assert dispatch(db, domain, twilio_client, now=load(db, message_id).next_attempt_at).sent == 1

    row = load(db, message_id)
    assert row.provider_sid == fake_twilio.messages[0].sid
    assert [m.body for m in fake_twilio.messages].count(row.body) == 1
    pages = [r.path for r in fake_twilio.requests if r.method == "GET"]
    assert len(pages) == 3


def test_an_attempt_that_cannot_ask_twilio_waits_and_asks_again(db, domain, patient, fake_twilio, twilio_client):
    t0 = utcnow()
    message_id = enqueue(db, patient, key="ask-again", now=t0)
    fake_twilio.fail_next(1, status=500, accept=True)
    assert dispatch(db, domain, twilio_client, now=t0).retried == 1
    fake_twilio.fail_next_lists(1)

    assert dispatch(db, domain, twilio_client, now=load(db, message_id).next_attempt_at).retried == 1
    assert (load(db, message_id).status, load(db, message_id).error_code) == ("pending", "lookup")
    assert dispatch(db, domain, twilio_client, now=load(db, message_id).next_attempt_at).sent == 1

    assert load(db, message_id).provider_sid == fake_twilio.messages[0].sid
    assert len(fake_twilio.messages) == 1  # never sent blind while Twilio could not say


def test_a_last_attempt_that_cannot_ask_twilio_is_unknown_not_failed(db, domain, patient, fake_twilio, twilio_client):
    t0 = utcnow()
    message_id = enqueue(db, patient, key="cannot-ask", now=t0)
    fake_twilio.fail_next(1, status=500, accept=True)
    assert dispatch(db, domain, twilio_client, now=t0, max_attempts=2).retried == 1
    fake_twilio.fail_next_lists(1)

    report = dispatch(db, domain, twilio_client, now=load(db, message_id).next_attempt_at, max_attempts=2)

    # Twilio took the first attempt, and could not say so: "failed" would tell staff it never went.
    assert report == DispatchReport(claimed=1, unknown=1)
    row = load(db, message_id)
    assert (row.status, row.error_code) == ("unknown", "lookup")
    assert len(fake_twilio.messages) == 1


def test_an_earlier_text_with_another_body_is_not_taken_for_this_one(
    db, domain, patient, fake_twilio, twilio_client
):
    t0 = utcnow()
    other = enqueue(db, patient, key="other", now=t0, body="Another text")
    assert dispatch(db, domain, twilio_client, now=t0).sent == 1
    message_id = enqueue(db, patient, key="this", now=t0)
    fake_twilio.fail_next(1, status=500)
    assert dispatch(db, domain, twilio_client, now=t0).retried == 1
    assert dispatch(db, domain, twilio_client, now=load(db, message_id).next_attempt_at).sent == 1
    assert load(db, message_id).provider_sid not in {load(db, other).provider_sid, None}
    assert len(fake_twilio.messages) == 2


def test_a_text_fails_for_good_after_max_attempts(db, domain, patient, fake_twilio, twilio_client):
    now = utcnow()
    message_id = enqueue(db, patient, key="give-up", now=now)
    fake_twilio.fail_next(10, status=500)
    waits = []

    for _ in range(3):
        report = dispatch(db, domain, twilio_client, now=now, max_attempts=3)
        row = load(db, message_id)
        waits.append(row.next_attempt_at - now)
        now = row.next_attempt_at

    assert report == DispatchReport(claimed=1, failed=1)
    assert (row.status, row.attempts, row.error_code) == ("failed", 3, "20500")
    assert waits[:2] == [30 * SECOND, 60 * SECOND]
    assert dispatch(db, domain, twilio_client, now=now + dt.timedelta(days=1), max_attempts=3).claimed == 0
    assert [r.method for r in fake_twilio.requests] == ["POST", "GET", "POST", "GET", "POST"]
    assert fake_twilio.messages == []


def test_an_invalid_number_error_fails_at_once_and_is_not_retried(db, domain, patient, fake_twilio, twilio_client):
    now = utcnow()
    message_id = enqueue(db, patient, key="invalid", now=now)
    fake_twilio.fail_next(1, status=400, code=21211, message="Invalid 'To' Phone Number")

    assert dispatch(db, domain, twilio_client, now=now) == DispatchReport(claimed=1, failed=1)

    row = load(db, message_id)
    assert (row.status, row.attempts, row.error_code) == ("failed", 1, "21211")
    assert dispatch(db, domain, twilio_client, now=now + dt.timedelta(days=1)).claimed == 0
    assert len(fake_twilio.requests) == 1
    assert fake_twilio.messages == []


def test_a_number_twilio_rejects_is_failed_with_its_error_code(db, session, domain, fake_twilio, twilio_client):
    patient = factories.create_patient(session, mobile="+44123")  # too short for E.164: Twilio says 21211
    message_id = enqueue(db, patient, key="short-number")

    assert dispatch(db, domain, twilio_client) == DispatchReport(claimed=1, failed=1)

    assert load(db, message_id).error_code == "21211"
    assert [r.response_status for r in fake_twilio.requests] == [400]


def test_bad_credentials_keep_the_text_for_a_later_try(db, domain, patient, fake_twilio, make_twilio_client):
    now = utcnow()
    message_id = enqueue(db, patient, key="auth", now=now)

    report = dispatch(db, domain, make_twilio_client(auth_token="rotated-token"), now=now)

    assert report == DispatchReport(claimed=1, retried=1)
    row = load(db, message_id)
    assert (row.status, row.error_code) == ("pending", "20003")
    [request] = fake_twilio.requests
    assert (request.authorized, request.response_status) == (False, 401)
    assert fake_twilio.messages == []
    # With the right token the same text goes once.
    assert dispatch(db, domain, make_twilio_client(), now=row.next_attempt_at).sent == 1
    assert len(fake_twilio.messages) == 1


def test_a_hang_past_the_client_timeout_is_unknown_and_never_resent(
    db, domain, patient, fake_twilio, make_twilio_client
):
    now = utcnow()
    message_id = enqueue(db, patient, key="hang", now=now)
    fake_twilio.hang_next(seconds=3.0)
    client = make_twilio_client(timeout=0.5)

    started = time.monotonic()
    report = dispatch(db, domain, client, now=now)
    elapsed = time.monotonic() - started

    assert report == DispatchReport(claimed=1, unknown=1)
    assert elapsed < 2.5, "the client should give up after its 0.5 s timeout, not wait for the answer"
    row = load(db, message_id)
    assert (row.status, row.attempts, row.error_code, row.provider_sid) == ("unknown", 1, "timeout", None)
    # Twilio had the message all along: sending again would text the patient twice.
    fake_twilio.wait_idle(timeout=10)
    assert len(fake_twilio.messages) == 1
    assert dispatch(db, domain, client, now=now + dt.timedelta(days=1)).claimed == 0
    assert len(fake_twilio.requests) == 1


def test_a_connection_dropped_after_the_request_is_unknown_and_never_resent(
    db, domain, patient, fake_twilio, twilio_client
):
    now = utcnow()
    message_id = enqueue(db, patient, key="dropped", now=now)
    fake_twilio.drop_next()

    assert dispatch(db, domain, twilio_client, now=now) == DispatchReport(claimed=1, unknown=1)

    row = load(db, message_id)
    assert (row.status, row.error_code) == ("unknown", "dropped")
    assert len(fake_twilio.messages) == 1
    assert dispatch(db, domain, twilio_client, now=now + dt.timedelta(days=1)).claimed == 0
    assert len(fake_twilio.messages) == 1


def test_a_slow_answer_within_the_timeout_is_a_normal_send(db, domain, patient, fake_twilio, make_twilio_client):
    message_id = enqueue(db, patient, key="slow")
    fake_twilio.slow(0.3)

    started = time.monotonic()
    report = dispatch(db, domain, make_twilio_client(timeout=5))

    assert time.monotonic() - started >= 0.3
    assert report == DispatchReport(claimed=1, sent=1)
    assert load(db, message_id).provider_sid == fake_twilio.messages[0].sid


def test_connection_refused_is_retried_and_then_sent(db, domain, patient, fake_twilio, make_twilio_client):
    closed = FakeTwilio().start()
    dead_url = closed.base_url
    closed.stop()  # nothing listens there now: the connection is refused
    now = utcnow()
    message_id = enqueue(db, patient, key="refused", now=now)

    report = dispatch(db, domain, make_twilio_client(api_base=dead_url), now=now)

    assert report == DispatchReport(claimed=1, retried=1)
    row = load(db, message_id)
    assert (row.status, row.attempts, row.error_code) == ("pending", 1, "connection")
    assert row.next_attempt_at == now + BACKOFF_BASE_SECONDS * SECOND
    assert dispatch(db, domain, make_twilio_client(), now=row.next_attempt_at).sent == 1
    assert (load(db, message_id).status, load(db, message_id).attempts) == ("sent", 2)
    assert len(fake_twilio.messages) == 1


def test_consent_withdrawn_after_enqueue_cancels_the_text(db, session, domain, patient, fake_twilio, twilio_client):
    message_id = enqueue(db, patient, key="withdrawn")
    session.get(Patient, patient.id).sms_consent = False
    session.commit()

    assert dispatch(db, domain, twilio_client) == DispatchReport(claimed=1, cancelled=1)

    assert load(db, message_id).status == "cancelled"
    assert fake_twilio.requests == []


def test_no_texts_asked_for_after_enqueue_cancels_the_text(db, session, domain, patient, fake_twilio, twilio_client):
    message_id = enqueue(db, patient, key="no-texts")
    session.get(Patient, patient.id).no_texts = True
    session.commit()

    assert dispatch(db, domain, twilio_client) == DispatchReport(claimed=1, cancelled=1)

    assert load(db, message_id).status == "cancelled"
    assert fake_twilio.requests == []


def test_an_expired_text_is_cancelled_not_sent(db, domain, patient, fake_twilio, twilio_client):
    now = utcnow()
    message_id = enqueue(db, patient, key="expired", now=now - dt.timedelta(hours=2),
                         expires_at=now - dt.timedelta(minutes=1))

    assert dispatch(db, domain, twilio_client, now=now) == DispatchReport(claimed=1, cancelled=1)

    assert load(db, message_id).status == "cancelled"
    assert fake_twilio.requests == []


def test_a_text_still_in_date_is_sent(db, domain, patient, fake_twilio, twilio_client):
    now = utcnow()
    enqueue(db, patient, key="in-date", now=now, expires_at=now + dt.timedelta(minutes=1))

    assert dispatch(db, domain, twilio_client, now=now).sent == 1


class _BreaksOn(TwilioSmsClient):
    """The real client, except that one body raises something no provider answer explains."""

    def __init__(self, breaking_body: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.breaking_body = breaking_body

    def _send(self, *, to: str, body: str, validity_period: int, status_callback: str | None) -> SendResult:
        if body == self.breaking_body:
            raise RuntimeError("garbled answer")
        return super()._send(to=to, body=body, validity_period=validity_period, status_callback=status_callback)


def test_an_unexpected_error_on_one_text_does_not_strand_the_rest_of_the_batch(
    app, db, domain, patient, fake_twilio
):
    ids = [enqueue(db, patient, key=f"batch-{n}", body=f"NHS: text {n}") for n in range(3)]
    client = _BreaksOn(
        "NHS: text 1", account_sid=app.config["TWILIO_ACCOUNT_SID"], auth_token=app.config["TWILIO_AUTH_TOKEN"],
        sender=app.config["TWILIO_FROM"], api_base=fake_twilio.base_url,
    )

    report = dispatch(db, domain, client)

    assert report == DispatchReport(claimed=3, sent=2, unknown=1)
    assert [load(db, i).status for i in ids] == ["sent", "unknown", "sent"]
    assert load(db, ids[1]).error_code == "error"
    assert sorted(m.body for m in fake_twilio.messages) == ["NHS: text 0", "NHS: text 2"]
