"""The reception queues page with its counts, and the queue of invitations not yet used, with resend."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from portal.auth.models import Invitation, Role
from portal.auth.services import invite_patient
from portal.db import utcnow
from portal.messaging.models import SmsMessage
from tests import factories
from tests.conftest import sign_in
from tests.pages import csrf_token, error_for, get_page, parse


def _invite(session, patient, *, days_ago: float = 0, **changes) -> Invitation:
    invitation = invite_patient(session, factories.domain(), patient, base_url="https://portal.test",
                                now=utcnow() - dt.timedelta(days=days_ago))
    for name, value in changes.items():
        setattr(invitation, name, value)
    session.commit()
    return invitation


def _count(page, queue: str) -> int:
    return int(page.find(id=f"queue-{queue}").find(attrs={"data-count": True})["data-count"])


def test_the_queues_page_counts_each_queue_and_is_on_the_dashboard(reception_client, session):
    factories.create_patient(session, tier=2, team=None)
    stale = factories.create_patient(session)
    _invite(session, stale, days_ago=5)
    fresh = factories.create_patient(session)
    _invite(session, fresh)
    page = get_page(reception_client, "/staff/queues")
    assert _count(page, "needs-a-team") == 1
    assert _count(page, "invitations") == 1
    assert _count(page, "messages") == 0
    assert _count(page, "call-list") == 0
    for href in ("/staff/queues/needs-a-team", "/staff/queues/invitations", "/staff/messages", "/staff/call-list"):
        assert page.find("a", href=href)
    assert get_page(reception_client, "/staff").find("a", href="/staff/queues")


def test_the_invitation_queue_lists_expired_locked_and_old_links_only(reception_client, session):
    expired = factories.create_patient(session, family_name="Expired")
    _invite(session, expired, days_ago=30)
    locked = factories.create_patient(session, family_name="Locked")
    _invite(session, locked, failed_attempts=3)
    old = factories.create_patient(session, family_name="Oldlink")
    _invite(session, old, days_ago=4)
    fresh = factories.create_patient(session, family_name="Freshlink")
    _invite(session, fresh, days_ago=1)
    resent = factories.create_patient(session, family_name="Resent")
    _invite(session, resent, days_ago=20)
    _invite(session, resent)  # the newest link is fresh: not waiting
    used = factories.create_patient_user(session, family_name="Activated").patient
    _invite(session, used, days_ago=10, used_at=utcnow())

    page = get_page(reception_client, "/staff/queues/invitations")
    listed = {card["id"] for card in page.select("[id^=invitation-]")}
    assert listed == {f"invitation-{p.id}" for p in (expired, locked, old)}
    assert "Locked" in page.find(id=f"invitation-{locked.id}").get_text()
    assert "Expired" in page.find(id=f"invitation-{expired.id}").get_text()

    wider = get_page(reception_client, "/staff/queues/invitations?days=0")
    assert f"invitation-{fresh.id}" in {card["id"] for card in wider.select("[id^=invitation-]")}


def test_resend_from_the_queue_texts_a_new_link_once(reception_client, session):
    patient = factories.create_patient(session)
    first = _invite(session, patient, days_ago=30)
    page = get_page(reception_client, "/staff/queues/invitations")
    form = page.find(id=f"invitation-{patient.id}").find("form")
    response = reception_client.post(form["action"], data={"csrf_token": csrf_token(page)})
    assert response.status_code == 302 and response.headers["Location"].startswith("/staff/queues/invitations")
    after = get_page(reception_client, response.headers["Location"])
    assert "We have texted" in after.get_text()
    assert not after.find(id=f"invitation-{patient.id}")
    session.expire_all()
    invitations = session.scalars(select(Invitation).where(Invitation.patient_id == patient.id)).all()
    assert len(invitations) == 2 and session.get(Invitation, first.id).revoked_at is not None

    # The same button pressed again (a double click): no second text.
    again = reception_client.post(form["action"], data={"csrf_token": csrf_token(page)})
    assert again.status_code == 302
    assert "Nothing was sent again" in get_page(reception_client, again.headers["Location"]).get_text()
    assert session.scalar(select(func.count()).select_from(SmsMessage).where(
        SmsMessage.patient_id == patient.id, SmsMessage.kind == "invitation")) == 2


def test_resend_needs_a_token_and_a_real_patient(reception_client, session):
    patient = factories.create_patient(session)
    _invite(session, patient, days_ago=30)
    assert reception_client.post(f"/staff/queues/invitations/{patient.id}/resend").status_code == 400
    page = get_page(reception_client, "/staff/queues/invitations")
    token = csrf_token(page)
    assert reception_client.post("/staff/queues/invitations/999999/resend",
                                 data={"csrf_token": token}).status_code == 404
    assert reception_client.post("/staff/queues/invitations/99999999999999999/resend",
                                 data={"csrf_token": token}).status_code == 404


def test_a_bad_number_of_days_gets_a_message(reception_client):
    for days in ("abc", "-1", "9999", "1.5"):
        response = reception_client.get(f"/staff/queues/invitations?days={days}")
        assert response.status_code == 400
        assert error_for(parse(response), "days") == "Enter a number of days from 0 to 365"


def test_facilitators_and_patients_are_refused(app, session, patient_client):
    user = factories.create_staff(session, role=Role.FACILITATOR)
    client = app.test_client()
    assert sign_in(client, user.email).status_code == 302
    for url in ("/staff/queues", "/staff/queues/invitations"):
        assert client.get(url).status_code == 403
        assert patient_client.get(url).status_code == 403
