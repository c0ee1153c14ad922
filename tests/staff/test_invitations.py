"""The invitation on the patient record: its status, and resending it (which kills old links and unlocks)."""

import datetime as dt

import pytest
from sqlalchemy import func, select

from portal.audit.models import AuditEvent
from portal.auth import services as auth
from portal.auth.models import Invitation, Role
from portal.db import utcnow
from portal.messaging.models import SmsMessage
from tests import factories
from tests.conftest import sign_in
from tests.pages import csrf_token, get_page

BORN = dt.date(1968, 3, 9)


@pytest.fixture
def invited(session, domain):
    """A Tier 1 patient with one invitation sent two days ago; returns (patient, token of the link texted)."""
    patient = factories.create_patient(session, date_of_birth=BORN)
    auth.invite_patient(session, domain, patient, base_url="https://portal.test",
                        now=utcnow() - dt.timedelta(days=2))
    session.commit()
    return patient, _tokens(session, patient.id)[-1]


def _tokens(session, patient_id):
    bodies = session.scalars(select(SmsMessage.body).where(
        SmsMessage.patient_id == patient_id, SmsMessage.kind == "invitation").order_by(SmsMessage.id))
    return [body.rsplit("/", 1)[1] for body in bodies]


def _status(page) -> str:
    for row in page.select(".nhsuk-summary-list__row"):
        if row.dt.get_text(strip=True) == "Status":
            return row.dd.get_text(" ", strip=True)
    raise AssertionError("no invitation status on the record")


def _resend(client, patient_id):
    page = get_page(client, f"/staff/patients/{patient_id}")
    return client.post(f"/staff/patients/{patient_id}/invitation", data={"csrf_token": csrf_token(page)})


def _staff_client(app, session, role):
    user = factories.create_staff(session, role=role)
    client = app.test_client()
    assert sign_in(client, user.email).status_code == 302
    return client


def test_a_fresh_invitation_shows_as_sent(reception_client, invited):
    patient, _ = invited
    page = get_page(reception_client, f"/staff/patients/{patient.id}")
    assert _status(page) == "Sent"
    text = page.get_text(" ", strip=True)
    assert "Link expires" in text and "Not set up yet" in text
    assert page.find("button", string=lambda s: s and "Resend invitation" in s)


def test_an_account_made_without_a_link_needs_no_invitation(reception_client, session):
    patient = factories.create_patient_user(session).patient
    page = get_page(reception_client, f"/staff/patients/{patient.id}")
    assert _status(page) == "Not needed: account set up"
    assert not page.find("button", string=lambda s: s and "invitation" in s.lower())
    assert page.find("button", string=lambda s: s and "Send a new set-up link" in s)
    assert "set a new password" in page.get_text(" ", strip=True)


def test_a_patient_never_invited_shows_not_sent_and_can_be_sent_one(reception_client, session):
    patient = factories.create_patient(session)
    page = get_page(reception_client, f"/staff/patients/{patient.id}")
    assert _status(page) == "Not sent"
    assert page.find("button", string=lambda s: s and "Send invitation" in s)
    assert _resend(reception_client, patient.id).status_code == 302
    assert len(_tokens(session, patient.id)) == 1
    assert _status(get_page(reception_client, f"/staff/patients/{patient.id}")) == "Sent"


def test_an_expired_invitation_shows_as_expired(reception_client, session, invited):
    patient, _ = invited
    session.execute(Invitation.__table__.update().values(expires_at=utcnow() - dt.timedelta(hours=1)))
    session.commit()
    page = get_page(reception_client, f"/staff/patients/{patient.id}")
    assert _status(page) == "Expired"
    assert "Link expired" in page.get_text(" ", strip=True)


def test_a_used_invitation_shows_the_account_is_set_up(reception_client, session, invited):
    patient, _ = invited
    # As activation leaves it: the link used, and an account for the patient.
    session.execute(Invitation.__table__.update().values(used_at=utcnow()))
    factories.create_patient_user(session, patient=patient)
    page = get_page(reception_client, f"/staff/patients/{patient.id}")
    assert _status(page) == "Used: account set up"
    assert "Account Set up" in page.get_text(" ", strip=True)


def test_three_wrong_dates_of_birth_lock_the_link(app, reception_client, session, invited):
    patient, token = invited
    # As three wrong dates of birth (or postcodes) on the activation page leave it.
    session.execute(Invitation.__table__.update().values(failed_attempts=Invitation.MAX_FAILED_ATTEMPTS))
    session.commit()
    assert app.test_client().get(f"/activate/{token}").status_code == 410
    page = get_page(reception_client, f"/staff/patients/{patient.id}")
    assert _status(page) == "Locked after 3 failed identity checks"
    text = page.get_text(" ", strip=True)
    assert "Failed identity checks 3" in text and "unlocks set-up" in text


def test_resending_kills_the_old_link_unlocks_and_the_new_link_works(app, reception_client, session, invited):
    patient, old_token = invited
    session.execute(Invitation.__table__.update().values(failed_attempts=Invitation.MAX_FAILED_ATTEMPTS))
    session.commit()
    assert app.test_client().get(f"/activate/{old_token}").status_code == 410  # locked

    response = _resend(reception_client, patient.id)
    assert response.status_code == 302 and response.headers["Location"] == f"/staff/patients/{patient.id}"
    record = get_page(reception_client, response.headers["Location"])
    assert "Earlier links no longer work" in record.get_text(" ", strip=True)
    assert _status(record) == "Sent"

    tokens = _tokens(session, patient.id)
    assert len(tokens) == 2 and tokens[0] == old_token
    new_token = tokens[1]
    visitor = app.test_client()
    assert visitor.get(f"/activate/{old_token}").status_code == 410
    assert visitor.get(f"/activate/{new_token}").status_code == 200
    session.expire_all()
    new = auth.find_usable_invitation(session, new_token, now=utcnow())
    assert (new.patient_id, new.failed_attempts) == (patient.id, 0)
    old = session.scalars(select(Invitation).where(Invitation.id != new.id)).one()
    assert old.revoked_at is not None

    [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "invitation_resent"))
    assert event.patient_id == patient.id


def test_resend_pressed_twice_sends_one_new_link(reception_client, session, invited):
    patient, _ = invited
    _resend(reception_client, patient.id)
    response = _resend(reception_client, patient.id)
    assert response.status_code == 302
    page = get_page(reception_client, response.headers["Location"])
    assert "less than a minute ago. Nothing was sent again" in page.get_text(" ", strip=True)
    assert len(_tokens(session, patient.id)) == 2
    assert session.scalar(select(func.count()).select_from(Invitation).where(Invitation.revoked_at.is_(None))) == 1
    assert session.scalar(select(func.count()).select_from(AuditEvent)
                          .where(AuditEvent.action == "invitation_resent")) == 1


def test_resending_to_a_patient_who_refuses_texts_says_so(reception_client, session, invited):
    patient, _ = invited
    patient.sms_consent = False
    session.commit()
    response = _resend(reception_client, patient.id)
    page = get_page(reception_client, response.headers["Location"])
    assert "does not accept texts, so none was sent" in page.get_text(" ", strip=True)
    assert len(_tokens(session, patient.id)) == 1


def test_resend_needs_a_csrf_token(reception_client, session, invited):
    patient, _ = invited
    assert reception_client.post(f"/staff/patients/{patient.id}/invitation").status_code == 400
    assert session.scalar(select(func.count()).select_from(Invitation)) == 1


def test_resend_for_an_unknown_patient_is_404(reception_client):
    page = get_page(reception_client, "/staff")
    response = reception_client.post("/staff/patients/999999/invitation", data={"csrf_token": csrf_token(page)})
    assert response.status_code == 404


def test_facilitators_see_the_status_but_cannot_resend(app, session, invited):
    patient, _ = invited
    client = _staff_client(app, session, Role.FACILITATOR)
    page = get_page(client, f"/staff/patients/{patient.id}")
    assert _status(page) == "Sent"
    assert page.find("button", string=lambda s: s and "invitation" in s) is None
    response = client.post(f"/staff/patients/{patient.id}/invitation", data={"csrf_token": csrf_token(page)})
    assert response.status_code == 403
    assert session.scalar(select(func.count()).select_from(Invitation)) == 1


def test_patients_cannot_resend(patient_client, session, invited):
    patient, _ = invited
    page = get_page(patient_client, "/")
    response = patient_client.post(f"/staff/patients/{patient.id}/invitation", data={"csrf_token": csrf_token(page)})
    assert response.status_code == 403
    assert session.scalar(select(func.count()).select_from(Invitation)) == 1


def test_admins_can_resend(app, session, invited):
    patient, _ = invited
    client = _staff_client(app, session, Role.ADMIN)
    assert _resend(client, patient.id).status_code == 302
    assert len(_tokens(session, patient.id)) == 2
