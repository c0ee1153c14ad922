"""The call list: reception and admins see the reminders to give by phone, and record each call."""

import pytest
from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.auth.models import Role
from portal.db import utcnow
from tests import factories
from tests.appointments import factories as appointment_factories
from tests.conftest import sign_in
from tests.pages import csrf_token, get_page, parse
from tests.reminders.helpers import calls, plan

URL = "/staff/call-list"


def _staff(app, session, role):
    user = factories.create_staff(session, role=role)
    client = app.test_client()
    assert sign_in(client, user.email).status_code == 302
    client.user = user
    return client


@pytest.fixture
def to_call(db, session):
    """A patient who takes no texts, with interpreter needs, and an appointment in 3 days at 10am."""
    patient = factories.create_patient(session, no_texts=True, interpreter_language="Turkish",
                                       given_name="Ayse", family_name="Yilmaz")
    slot = appointment_factories.create_slot(session, starts_at=appointment_factories.days_ahead(3, 10))
    appointment_factories.book(session, patient, slot)
    plan(db, utcnow())
    [call] = calls(session)
    return call


def test_reception_sees_who_to_call_when_about_what_and_their_needs(app, session, reception_client, to_call):
    page = get_page(reception_client, URL)
    [row] = page.select("tbody tr")
    text = row.get_text(" ", strip=True)
    for expected in ("Ayse Yilmaz", to_call.patient.mobile_display, "Appointment", "Pain management physiotherapy",
                     "Test HC", "Interpreter: Turkish", "No texts: contact by phone or letter"):
        assert expected in text, expected
    assert [b.get_text(" ", strip=True) for b in row.select("button")] == [
        "Called : Ayse Yilmaz", "No answer : Ayse Yilmaz"]
    [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "call_list_viewed")).all()
    assert event.detail == "1 calls"


def test_called_records_who_and_when_and_takes_the_call_off_the_list(session, reception_client, to_call):
    page = get_page(reception_client, URL)
    response = reception_client.post(f"{URL}/{to_call.id}/called",
                                     data={"csrf_token": csrf_token(page), "outcome": "reached"})
    assert response.status_code == 302 and response.headers["Location"] == URL
    [call] = calls(session)
    assert (call.status, call.outcome, call.attempts, call.called_by_id) == (
        "called", "reached", 1, reception_client.user.id)
    assert abs((utcnow() - call.called_at).total_seconds()) < 60
    [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "reminder_call_recorded")).all()
    assert (event.patient_id, event.actor_user_id, event.detail) == (
        call.patient_id, reception_client.user.id, f"call {call.id}: reached")
    page = get_page(reception_client, URL)
    assert "No reminder calls to make." in page.get_text()
    # Pressed again (a second tab): nothing changes.
    again = reception_client.post(f"{URL}/{call.id}/called", follow_redirects=True,
                                  data={"csrf_token": csrf_token(page), "outcome": "reached"})
    assert "no longer on the list" in parse(again).get_text()
    assert calls(session)[0].attempts == 1


def test_no_answer_keeps_the_call_on_the_list(session, reception_client, to_call):
    page = get_page(reception_client, URL)
    reception_client.post(f"{URL}/{to_call.id}/called", data={"csrf_token": csrf_token(page), "outcome": "no_answer"})
    [call] = calls(session)
    assert (call.status, call.outcome, call.attempts) == ("open", "no_answer", 1)
    assert "1 try, no answer" in get_page(reception_client, URL).get_text(" ", strip=True)


def test_a_bad_outcome_or_no_token_is_refused(session, reception_client, to_call):
    page = get_page(reception_client, URL)
    assert reception_client.post(f"{URL}/{to_call.id}/called",
                                 data={"csrf_token": csrf_token(page), "outcome": "maybe"}).status_code == 400
    assert reception_client.post(f"{URL}/{to_call.id}/called", data={"outcome": "reached"}).status_code == 400
    assert reception_client.post(f"{URL}/999999/called",
                                 data={"csrf_token": csrf_token(page), "outcome": "reached"}).status_code == 404
    assert calls(session)[0].status == "open"


@pytest.mark.parametrize("role", [Role.FACILITATOR])
def test_facilitators_do_not_see_the_call_list(app, session, role, to_call):
    client = _staff(app, session, role)
    assert client.get(URL).status_code == 403
    assert client.post(f"{URL}/{to_call.id}/called", data={"outcome": "reached"}).status_code in (400, 403)


def test_patients_and_visitors_do_not_see_it(app, patient_client):
    assert patient_client.get(URL).status_code == 403
    anonymous = app.test_client().get(URL)
    assert anonymous.status_code == 302 and "/sign-in" in anonymous.headers["Location"]


def test_admins_see_it_and_the_staff_home_links_to_it(app, session, to_call):
    admin = _staff(app, session, Role.ADMIN)
    assert "Ayse Yilmaz" in get_page(admin, URL).get_text()
    home = get_page(admin, "/staff")
    assert home.find("a", href=URL) is not None
