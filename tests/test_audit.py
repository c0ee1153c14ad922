import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DatabaseError

from portal.audit.models import AuditEvent, AuditTrailIsAppendOnly
from tests import factories
from tests.conftest import sign_in
from tests.pages import accessible_name, csrf_token, get_page


def _events(session):
    return session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()


def test_sign_in_sign_out_and_failures_are_recorded(app, session):
    user = factories.create_patient_user(session)
    client = app.test_client()
    sign_in(client, user.patient.mobile, "wrong password")
    sign_in(client, user.patient.mobile)
    page = get_page(client, "/")
    client.post("/sign-out", data={"csrf_token": csrf_token(page)})
    actions = [(e.action, e.actor_user_id, e.patient_id) for e in _events(session)]
    assert actions == [
        # Anonymous actor; the account tried is recorded, so a patient's trail shows attempts on it.
        ("sign_in_failed", None, user.patient_id),
        ("sign_in", user.id, user.patient_id),
        ("sign_out", user.id, user.patient_id),
    ]
    assert all(e.ip == "127.0.0.1" and e.request_id for e in _events(session))


def test_staff_views_of_a_patient_record_are_recorded(reception_client, session):
    patient = factories.create_patient(session)
    response = reception_client.get(f"/staff/patients/{patient.id}", headers={"X-Request-ID": "trace-12345678"})
    assert response.headers["X-Request-ID"] == "trace-12345678"
    viewed = [e for e in _events(session) if e.action == "patient_record_viewed"]
    assert len(viewed) == 1
    assert (viewed[0].patient_id, viewed[0].actor_user_id, viewed[0].actor_role) == (
        patient.id, reception_client.user.id, "reception")
    assert viewed[0].request_id == "trace-12345678"


def test_audit_never_holds_passwords_or_message_bodies(app, session):
    user = factories.create_patient_user(session, password="my secret phrase 42")
    client = app.test_client()
    sign_in(client, user.patient.mobile, "my secret phrase 42")
    sign_in(app.test_client(), user.patient.mobile, "another guess 99")
    dump = " ".join(f"{e.action} {e.detail}" for e in _events(session))
    assert "secret phrase" not in dump and "another guess" not in dump


def test_audit_events_cannot_be_changed(session, db):
    factories.create_patient_user(session)
    with db.transaction() as s:
        from portal.audit.services import SYSTEM, record

        record(s, SYSTEM, "test_event")
    event = _events(session)[0]
    event.detail = "tampered"
    with pytest.raises(AuditTrailIsAppendOnly):
        session.flush()
    session.rollback()
    with pytest.raises(DatabaseError, match="append-only"):
        with db.transaction() as s:
            s.execute(text("UPDATE audit_event SET detail = 'tampered'"))


def test_staff_filter_the_trail_by_patient(reception_client, session):
    first, second = factories.create_patient(session), factories.create_patient(session)
    reception_client.get(f"/staff/patients/{first.id}")
    reception_client.get(f"/staff/patients/{second.id}")
    page = get_page(reception_client, f"/staff/audit?patient={first.id}")
    rows = page.select("tbody tr")
    links = {a["href"] for a in page.select("tbody a")}
    assert links == {f"/staff/patients/{first.id}"}
    # Named for a screen reader's list of links, where "#12" alone says nothing.
    assert {accessible_name(a) for a in page.select("tbody a")} == {f"Patient record #{first.id}"}
    assert len(rows) >= 1
    bad = get_page(reception_client, "/staff/audit?patient=abc&since=yesterday")
    assert bad.select_one(".nhsuk-error-summary")


def test_patients_and_facilitators_cannot_read_the_trail(patient_client, app, session):
    from portal.auth.models import Role

    assert patient_client.get("/staff/audit").status_code == 403
    facilitator = factories.create_staff(session, role=Role.FACILITATOR)
    client = app.test_client()
    sign_in(client, facilitator.email)
    assert client.get("/staff/audit").status_code == 403
