"""Forms fed arbitrary text never answer 500 and never write half a record."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from portal.auth.models import Invitation, User
from portal.messaging.models import SmsMessage
from portal.patients.models import Patient
from tests.pages import csrf_token, get_page

# Text of every kind: empty, unicode (including surrogate-free astral), control characters, very long.
TEXT = st.one_of(
    st.just(""),
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=120),
    st.integers(min_value=1000, max_value=6000).map(lambda n: "\u00e9\U0001f600" * n),
)
FUZZ = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.data_too_large])
REGISTRATION_FIELDS = ["given_name", "family_name", "nhs_number", "date_of_birth[day]", "date_of_birth[month]",
                       "date_of_birth[year]", "mobile", "email", "postcode", "tier", "team", "triage_date[day]",
                       "triage_date[month]", "triage_date[year]", "pain_duration", "diagnosis_recorded",
                       "override_reason"]


def _counts(session):
    return tuple(session.scalar(select(func.count()).select_from(m)) for m in (Patient, User, Invitation, SmsMessage))


@FUZZ
@given(values=st.fixed_dictionaries({name: TEXT for name in REGISTRATION_FIELDS}))
def test_registration_form(reception_client, session, values):
    before = _counts(session)
    token = csrf_token(get_page(reception_client, "/staff/patients/new"))
    response = reception_client.post("/staff/patients/new", data={**values, "csrf_token": token})
    assert response.status_code in (400, 302)
    after = _counts(session)
    # Either nothing was written, or a whole patient with their invitation and its text.
    assert after == before or (response.status_code == 302 and after[0] == before[0] + 1 and after[2] == before[2] + 1)


@FUZZ
@given(identifier=TEXT, password=TEXT)
def test_sign_in_form(client, identifier, password):
    token = csrf_token(get_page(client, "/sign-in"))
    response = client.post("/sign-in", data={"identifier": identifier, "password": password, "csrf_token": token})
    assert response.status_code == 200  # never signed in, never an error


@pytest.fixture
def activation_token(session, domain):
    from portal.auth.services import invite_patient
    from portal.db import utcnow
    from tests import factories

    patient = factories.create_patient(session)
    invite_patient(session, domain, patient, base_url="https://portal.test", now=utcnow())
    session.commit()
    return session.scalars(select(SmsMessage.body)).one().rsplit("/", 1)[1]


@FUZZ
@given(values=st.fixed_dictionaries({name: TEXT for name in
                                      ["date_of_birth[day]", "date_of_birth[month]", "date_of_birth[year]",
                                       "postcode", "password", "confirm_password"]}))
def test_activation_form(app, session, activation_token, values):
    client = app.test_client()
    page = client.get(f"/activate/{activation_token}")
    if page.status_code == 410:  # three wrong dates of birth locked it: that is correct behaviour
        assert session.scalar(select(func.count()).select_from(User)) == 0
        return
    token = csrf_token(get_page(client, f"/activate/{activation_token}"))
    response = client.post(f"/activate/{activation_token}", data={**values, "csrf_token": token})
    assert response.status_code in (200, 410)
    assert session.scalar(select(func.count()).select_from(User)) == 0


@FUZZ
@given(values=st.fixed_dictionaries({name: TEXT for name in ["current_password", "password", "confirm_password"]}))
def test_change_password_form(patient_client, session, values):
    before = session.scalars(select(User.password_hash).where(User.id == patient_client.user.id)).one()
    token = csrf_token(get_page(patient_client, "/account/password"))
    response = patient_client.post("/account/password", data={**values, "csrf_token": token})
    assert response.status_code in (200, 302)
    session.expire_all()
    after = session.scalars(select(User.password_hash).where(User.id == patient_client.user.id)).one()
    assert after == before  # arbitrary text never knows the current password


@FUZZ
@given(identifier=TEXT)
def test_forgotten_password_form(app, identifier, monkeypatch):
    monkeypatch.setitem(app.config, "PASSWORD_RESET_ANSWER_SECONDS", 0)
    client = app.test_client()
    token = csrf_token(get_page(client, "/forgot-password"))
    response = client.post("/forgot-password", data={"identifier": identifier, "csrf_token": token})
    assert response.status_code in (200, 302)


@FUZZ
@given(code=TEXT)
def test_reset_code_form(app, code, monkeypatch):
    monkeypatch.setitem(app.config, "PASSWORD_RESET_ANSWER_SECONDS", 0)
    client = app.test_client()
    token = csrf_token(get_page(client, "/forgot-password"))
    client.post("/forgot-password", data={"identifier": "07700 900999", "csrf_token": token})
    assert client.get("/forgot-password/code").status_code == 200
    response = client.post("/forgot-password/code", data={"code": code, "csrf_token": csrf_token(get_page(
        client, "/forgot-password/code"))})
    assert response.status_code in (200, 302)


@FUZZ
@given(team=TEXT)
def test_assign_team_form(reception_client, session, team):
    from tests import factories

    patient = factories.create_patient(session, tier=2, team=None, postcode="N4 3LS")
    token = csrf_token(get_page(reception_client, f"/staff/patients/{patient.id}/team"))
    response = reception_client.post(f"/staff/patients/{patient.id}/team", data={"team": team, "csrf_token": token})
    assert response.status_code in (400, 302)
    session.expire_all()
    assert session.get(Patient, patient.id).team in (None, "whittington", "haringey")


@FUZZ
@given(values=st.fixed_dictionaries({name: TEXT for name in ["patient", "user", "since", "until"]}))
def test_audit_filter_form(reception_client, values):
    response = reception_client.get("/staff/audit", query_string=values)
    assert response.status_code == 200


PROFILE_FORMS = {
    "/profile/email": ["email"],
    "/profile/texts": ["sms_consent"],
    "/profile/communication-needs": ["needs_large_print", "needs_easy_read", "needs_bsl_interpreter",
                                     "needs_interpreter", "interpreter_language", "has_carer", "carer_name",
                                     "carer_phone", "no_texts"],
    "/profile/mobile": ["mobile", "password"],
}


@FUZZ
@given(form=st.sampled_from(sorted(PROFILE_FORMS)), data=st.data())
def test_profile_forms(patient_client, session, form, data):
    values = data.draw(st.fixed_dictionaries({name: TEXT for name in PROFILE_FORMS[form]}))
    mobile_before = session.scalars(select(Patient.mobile).where(Patient.id == patient_client.user.patient_id)).one()
    token = csrf_token(get_page(patient_client, form))
    response = patient_client.post(form, data={**values, "csrf_token": token})
    assert response.status_code in (200, 302)
    session.expire_all()
    # Only a code sent to the new number changes the mobile: arbitrary text never does.
    assert session.scalars(select(Patient.mobile).where(Patient.id == patient_client.user.patient_id)).one() == (
        mobile_before)


@FUZZ
@given(code=TEXT)
def test_staff_second_step_form(app, session, code):
    from portal.auth.models import Role
    from tests import factories

    staff = factories.create_staff(session, role=Role.RECEPTION)
    client = app.test_client()
    token = csrf_token(get_page(client, "/sign-in"))
    first = client.post("/sign-in",
                        data={"identifier": staff.email, "password": factories.PASSWORD, "csrf_token": token})
    assert first.status_code == 302 and "/sign-in/code" in first.headers["Location"]
    step_token = csrf_token(get_page(client, "/sign-in/code"))
    response = client.post("/sign-in/code", data={"code": code, "csrf_token": step_token})
    assert response.status_code in (200, 302)
    assert client.get("/staff").status_code != 200  # arbitrary text is never a valid second factor


# Course booking forms: whatever is typed, seats stay consistent with bookings and held offers.
BOOKING_FORMS = {
    "cancel": ["reason", "detail"],
    "move": ["cohort"],
    "waiting-list": ["which"],
}


@FUZZ
@given(form=st.sampled_from(sorted(BOOKING_FORMS)), data=st.data())
def test_course_booking_forms(patient_client, session, form, data):
    from sqlalchemy import update

    from portal.booking.models import Booking, WaitlistEntry
    from portal.booking.services import book_seat
    from portal.db import utcnow
    from tests import factories
    from tests.booking.helpers import seats_consistent

    values = data.draw(st.fixed_dictionaries({name: TEXT for name in BOOKING_FORMS[form]}))
    patient = patient_client.user.patient
    # Hypothesis reuses the signed-in patient across examples: clear what the last example left.
    session.execute(update(Booking).where(Booking.patient_id == patient.id).values(status="cancelled"))
    session.execute(update(WaitlistEntry).where(WaitlistEntry.patient_id == patient.id).values(status="left"))
    cohort = factories.create_cohort(session)
    full = factories.create_cohort(session, capacity=1)
    book_seat(session, factories.domain(), factories.create_patient(session), full.id, now=utcnow())
    if form == "waiting-list":
        url = f"/cohorts/{full.id}/waiting-list"
        token = csrf_token(get_page(patient_client, f"/cohorts/{full.id}"))
    else:
        seat = book_seat(session, factories.domain(), patient, cohort.id, now=utcnow())
        session.commit()
        url = f"/bookings/{seat.id}/{form}"
        token = csrf_token(get_page(patient_client, url))
    response = patient_client.post(url, data={**values, "csrf_token": token})
    assert response.status_code in (200, 302, 400, 409)
    assert seats_consistent(session, cohort.id) and seats_consistent(session, full.id)


STAFF_BOOKING_FORMS = {
    "book": ["cohort", "reason"],
    "cancel": ["reason"],
    "waiting-list": ["cohort", "reason"],
    "reorder": ["direction", "reason"],
}


@FUZZ
@given(form=st.sampled_from(sorted(STAFF_BOOKING_FORMS)), data=st.data())
def test_staff_course_desk_forms(reception_client, session, form, data):
    from portal.booking import waitlist
    from portal.booking.services import book_seat
    from portal.db import utcnow
    from tests import factories
    from tests.booking.helpers import seats_consistent

    values = data.draw(st.fixed_dictionaries({name: TEXT for name in STAFF_BOOKING_FORMS[form]}))
    patient = factories.create_patient(session)
    cohort = factories.create_cohort(session)
    domain = factories.domain()
    if form == "book":
        url = f"/staff/patients/{patient.id}/courses/t1-group/book"
    elif form == "waiting-list":
        url = f"/staff/patients/{patient.id}/courses/t1-group/waiting-list"
    elif form == "cancel":
        seat = book_seat(session, domain, patient, cohort.id, now=utcnow())
        url = f"/staff/patients/{patient.id}/bookings/{seat.id}/cancel"
    else:
        full = factories.create_cohort(session, capacity=1, seats_taken=1)
        entries = [waitlist.join(session, domain, p, domain.catalogue.get("t1-group"), cohort=full, now=utcnow())
                   for p in (patient, factories.create_patient(session))]
        url = f"/staff/waiting-lists/{entries[1].id}"
    session.commit()
    token = csrf_token(get_page(reception_client, url))
    response = reception_client.post(url, data={**values, "csrf_token": token})
    assert response.status_code in (200, 302, 400)
    assert seats_consistent(session, cohort.id)


@FUZZ
@given(values=st.fixed_dictionaries({"checked_not_received": TEXT}))
def test_retry_text_form(reception_client, session, values):
    from portal.db import utcnow
    from portal.messaging.services import enqueue_sms
    from tests import factories

    patient = factories.create_patient(session)
    enqueue_sms(session, key=f"fuzz:{patient.id}", patient=patient, kind="test", body="NHS: test",
                now=utcnow())
    message = session.scalars(select(SmsMessage).where(SmsMessage.patient_id == patient.id)).one()
    message.status = "unknown"
    session.commit()
    url = f"/staff/messages/{message.id}/retry"
    token = csrf_token(get_page(reception_client, url))
    response = reception_client.post(url, data={**values, "csrf_token": token})
    assert response.status_code in (200, 302, 400)
    session.expire_all()
    # Any text at all ticks a checkbox in HTML; either way the row is unknown or queued again, never lost.
    assert session.get(SmsMessage, message.id).status in ("unknown", "pending")
