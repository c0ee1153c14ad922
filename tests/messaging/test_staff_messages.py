"""Staff screens for texts: the queue of failed and unknown texts, each patient's message log, and who we cannot
text. Reception and admins only."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from portal.audit.models import AuditEvent
from portal.auth.models import Role
from portal.db import utcnow
from portal.messaging.models import SmsInbound, SmsMessage
from portal.patients.models import Patient
from tests import factories
from tests.conftest import sign_in
from tests.messaging.outbox import enqueue, load
from tests.pages import csrf_token, error_for, get_page, parse


def _with(db, message_id: int, **values) -> None:
    with db.transaction() as s:
        s.execute(update(SmsMessage).where(SmsMessage.id == message_id).values(**values))


def _staff(app, session, role: Role):
    user = factories.create_staff(session, role=role)
    client = app.test_client()
    assert sign_in(client, user.email).status_code == 302
    return client


@pytest.fixture
def admin_client(app, session):
    return _staff(app, session, Role.ADMIN)


def _actions(session) -> list[str]:
    return [e.action for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))]


# -- the queue ------------------------------------------------------------------------------------------


def test_the_queue_lists_failed_and_unknown_texts_with_their_problem_in_words(reception_client, db, patient):
    failed = enqueue(db, patient, key="q-failed")
    unknown = enqueue(db, patient, key="q-unknown")
    sent = enqueue(db, patient, key="q-sent")
    dismissed = enqueue(db, patient, key="q-dismissed")
    _with(db, failed, status="failed", error_code="30003")
    _with(db, unknown, status="unknown", error_code="timeout")
    _with(db, sent, status="sent")
    _with(db, dismissed, status="failed", error_code="21211", dismissed_at=utcnow())

    page = get_page(reception_client, "/staff/messages")

    rows = page.select("tbody tr")
    assert len(rows) == 2
    text = page.get_text(" ", strip=True)
    assert "The phone was switched off or out of signal until the text expired" in text
    assert "Twilio did not answer in time: the text may or may not have gone" in text
    assert patient.full_name in text
    assert {a["href"] for a in page.select("tbody a") if "retry" in a["href"]} == {
        f"/staff/messages/{failed}/retry", f"/staff/messages/{unknown}/retry"}


def test_the_dashboard_links_the_queue_for_reception(reception_client):
    assert get_page(reception_client, "/staff").find("a", href="/staff/messages")


def test_retrying_a_failed_text_queues_it_again_as_a_new_attempt(reception_client, db, session, patient):
    message_id = enqueue(db, patient, key="retry-failed")
    _with(db, message_id, status="failed", error_code="30003", attempts=5, provider_sid="SM" + "1" * 32)
    page = get_page(reception_client, f"/staff/messages/{message_id}/retry")
    assert not page.find("input", attrs={"name": "checked_not_received"})  # a failed text needs no check

    response = reception_client.post(f"/staff/messages/{message_id}/retry", data={"csrf_token": csrf_token(page)})

    assert response.status_code == 302
    row = load(db, message_id)
    assert (row.status, row.attempts, row.error_code, row.provider_sid) == ("pending", 0, None, None)
    assert "sms_retried" in _actions(session)


def test_retrying_an_unknown_text_needs_the_box_ticked(reception_client, db, patient):
    message_id = enqueue(db, patient, key="retry-unknown")
    _with(db, message_id, status="unknown", error_code="timeout")
    page = get_page(reception_client, f"/staff/messages/{message_id}/retry")
    assert page.find("input", attrs={"name": "checked_not_received"})
    assert "It may have gone already" in page.get_text()

    refused = reception_client.post(f"/staff/messages/{message_id}/retry", data={"csrf_token": csrf_token(page)})

    assert refused.status_code == 400
    soup = parse(refused)
    assert error_for(soup, "checked_not_received") == "Confirm you have checked the patient did not get this text"
    assert soup.title.string.startswith("Error:")
    assert load(db, message_id).status == "unknown"

    accepted = reception_client.post(f"/staff/messages/{message_id}/retry",
                                     data={"csrf_token": csrf_token(page), "checked_not_received": "y"})

    assert accepted.status_code == 302
    assert load(db, message_id).status == "pending"


def test_a_text_for_a_patient_who_stopped_texts_cannot_be_retried(reception_client, db, session, patient):
    message_id = enqueue(db, patient, key="retry-stopped")
    _with(db, message_id, status="failed", error_code="21610")
    session.get(Patient, patient.id).opt_out_of_texts(utcnow())
    session.commit()

    page = get_page(reception_client, f"/staff/messages/{message_id}/retry")
    assert "does not take texts now" in page.get_text()
    response = reception_client.post(f"/staff/messages/{message_id}/retry", data={"csrf_token": csrf_token(page)})

    assert response.status_code == 409
    assert load(db, message_id).status == "failed"


def test_a_text_to_a_refused_number_goes_to_the_corrected_number(reception_client, db, session, patient):
    message_id = enqueue(db, patient, key="retry-new-number")
    _with(db, message_id, status="failed", error_code="21211")
    record = session.get(Patient, patient.id)
    record.mark_mobile_invalid(utcnow())
    session.commit()
    page = get_page(reception_client, f"/staff/messages/{message_id}/retry")
    assert "Correct the number" in page.get_text()

    record.set_mobile("+447700900444")
    session.commit()
    page = get_page(reception_client, f"/staff/messages/{message_id}/retry")
    reception_client.post(f"/staff/messages/{message_id}/retry", data={"csrf_token": csrf_token(page)})

    row = load(db, message_id)
    assert (row.status, row.to_number) == ("pending", "+447700900444")


def test_an_out_of_date_text_cannot_be_retried(reception_client, db, patient):
    now = utcnow()
    message_id = enqueue(db, patient, key="retry-expired", expires_at=now)
    _with(db, message_id, status="failed")

    assert "out of date" in get_page(reception_client, f"/staff/messages/{message_id}/retry").get_text()


def test_dismissing_keeps_the_status_and_takes_it_off_the_queue(reception_client, db, session, patient):
    message_id = enqueue(db, patient, key="dismiss")
    _with(db, message_id, status="unknown", error_code="timeout")
    page = get_page(reception_client, "/staff/messages")

    response = reception_client.post(f"/staff/messages/{message_id}/dismiss", data={"csrf_token": csrf_token(page)})

    assert response.status_code == 302
    row = load(db, message_id)
    assert (row.status, row.dismissed_at is not None) == ("unknown", True)
    assert get_page(reception_client, "/staff/messages").select("tbody tr") == []
    assert "sms_dismissed" in _actions(session)
    # Once off the queue, neither dismissed again nor retried.
    reception_client.post(f"/staff/messages/{message_id}/dismiss", data={"csrf_token": csrf_token(page)})
    assert "only a failed or unknown text that is still on the queue" in get_page(
        reception_client, f"/staff/messages/{message_id}/retry").get_text().lower()


def test_a_delivered_text_cannot_be_dismissed_or_retried(reception_client, db, patient):
    message_id = enqueue(db, patient, key="delivered-stays")
    _with(db, message_id, status="delivered")
    page = get_page(reception_client, "/staff/messages")

    reception_client.post(f"/staff/messages/{message_id}/dismiss", data={"csrf_token": csrf_token(page)})
    reception_client.post(f"/staff/messages/{message_id}/retry", data={"csrf_token": csrf_token(page)})

    row = load(db, message_id)
    assert (row.status, row.dismissed_at) == ("delivered", None)


def test_a_post_without_a_csrf_token_changes_nothing(reception_client, db, patient):
    message_id = enqueue(db, patient, key="no-csrf")
    _with(db, message_id, status="failed")

    assert reception_client.post(f"/staff/messages/{message_id}/dismiss").status_code == 400
    reception_client.post(f"/staff/messages/{message_id}/retry")
    assert (load(db, message_id).status, load(db, message_id).dismissed_at) == ("failed", None)


def test_an_unknown_text_id_is_404(reception_client):
    get_page(reception_client, "/staff/messages/999999/retry", status=404)
    get_page(reception_client, "/staff/messages/99999999999/retry", status=404)


# -- the patient's message log, and who we cannot text ----------------------------------------------------


def test_the_patient_log_shows_every_text_both_ways_with_times_and_problems(admin_client, db, session, patient):
    sent = enqueue(db, patient, key="log-sent", body="NHS: your appointment is booked.")
    failed = enqueue(db, patient, key="log-failed", body="NHS: a reminder.")
    _with(db, sent, status="delivered", sent_at=utcnow())
    _with(db, failed, status="failed", error_code="30005")
    session.add(SmsInbound(message_sid="SM" + "2" * 32, from_number=patient.mobile, body="Yes please",
                           patient_id=patient.id, action="confirmed", received_at=utcnow()))
    session.commit()

    page = get_page(admin_client, f"/staff/patients/{patient.id}/messages")

    text = page.get_text(" ", strip=True)
    for expected in ("NHS: your appointment is booked.", "Delivered", "NHS: a reminder.", "Failed",
                     "The number is unknown or no longer in use", "(30005)", "Yes please",
                     "Confirmed their next appointment", "Sent "):
        assert expected in text
    assert page.find("a", href=f"/staff/messages/{failed}/retry")
    assert "patient_messages_viewed" in _actions(session)


def test_the_patient_record_links_the_log(reception_client, patient):
    assert get_page(reception_client, f"/staff/patients/{patient.id}").find(
        "a", href=f"/staff/patients/{patient.id}/messages")


def test_the_record_and_log_say_when_a_number_was_refused_or_stopped(reception_client, session, patient):
    record = session.get(Patient, patient.id)
    record.mark_mobile_invalid(utcnow())
    record.opt_out_of_texts(utcnow())
    session.commit()

    assert "their number replied STOP" in get_page(reception_client, f"/staff/patients/{patient.id}").get_text()
    log_text = get_page(reception_client, f"/staff/patients/{patient.id}/messages").get_text()
    assert "replied STOP" in log_text and "Twilio refused their mobile number" in log_text


def test_the_cannot_text_list_links_each_patient(reception_client, session, patient):
    stopped = factories.create_patient(session, sms_opted_out_at=utcnow())
    refused = factories.create_patient(session, mobile_invalid_at=utcnow())

    page = get_page(reception_client, "/staff/messages/cannot-text")

    links = {a["href"] for a in page.select("tbody a")}
    assert links == {f"/staff/patients/{stopped.id}", f"/staff/patients/{refused.id}"}
    text = page.get_text(" ", strip=True)
    assert "Replied STOP on" in text and "Number refused by Twilio on" in text
    assert get_page(reception_client, "/staff/messages").find("a", href="/staff/messages/cannot-text")


# -- who may see them -------------------------------------------------------------------------------------


def _urls(message_id: int, patient_id: int) -> list[tuple[str, str]]:
    return [("GET", "/staff/messages"), ("GET", f"/staff/messages/{message_id}/retry"),
            ("POST", f"/staff/messages/{message_id}/retry"), ("POST", f"/staff/messages/{message_id}/dismiss"),
            ("GET", "/staff/messages/cannot-text"), ("GET", f"/staff/patients/{patient_id}/messages")]


@pytest.mark.parametrize("who", ["patient", "facilitator"])
def test_patients_and_facilitators_are_refused(app, db, session, patient, who):
    message_id = enqueue(db, patient, key=f"access-{who}")
    _with(db, message_id, status="failed")
    if who == "patient":
        user = factories.create_patient_user(session, patient=session.get(Patient, patient.id))
        client = app.test_client()
        assert sign_in(client, user.patient.mobile).status_code == 302
    else:
        client = _staff(app, session, Role.FACILITATOR)
    token = csrf_token(parse(client.get("/contact")))

    for method, url in _urls(message_id, patient.id):
        response = client.get(url) if method == "GET" else client.post(
            url, data={"csrf_token": token, "checked_not_received": "y"})
        assert response.status_code == 403, f"{who} {method} {url}: {response.status_code}"

    assert (load(db, message_id).status, load(db, message_id).dismissed_at) == ("failed", None)


def test_anonymous_visitors_are_sent_to_sign_in(client, db, patient):
    message_id = enqueue(db, patient, key="access-anonymous")
    for method, url in _urls(message_id, patient.id):
        response = client.get(url) if method == "GET" else client.post(url)
        assert response.status_code in (302, 400), f"{method} {url}"
        if response.status_code == 302:
            assert "/sign-in" in response.headers["Location"]
