"""The "Record a new referral" page: reception and admins only, on a discharged patient's record; field errors for
bad answers, 409 for a patient not discharged; the register form and the patient's home page around it."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from portal.auth.models import Role
from portal.dates import london_today
from portal.db import utcnow
from portal.messaging.models import SmsMessage
from portal.patients.models import Patient, PatientReferral
from tests import factories
from tests.conftest import sign_in
from tests.pages import csrf_token, error_for, get_page, parse
from tests.staff.registration import date_fields, post_registration

REASON = "Did not attend twice; back to the GP"


def _client(app, session, role: Role):
    user = factories.create_staff(session, role=role)
    client = app.test_client()
    assert sign_in(client, user.email).status_code == 302
    return client


def _discharged(session, *, days_ago: int = 10, **kw) -> Patient:
    patient = kw.pop("patient", None) or factories.create_patient(session, **kw)
    patient.discharge(utcnow() - dt.timedelta(days=days_ago), REASON)
    session.commit()
    return patient


def _answers(**changes) -> dict:
    answers = {**date_fields("triage_date", london_today() - dt.timedelta(days=1)), "tier": "2", "team": "postcode",
               "note": "GP, Dr Shah, letter of 3 November"}
    answers.update(changes)
    return answers


def _post(client, patient_id: int, **changes):
    page = get_page(client, f"/staff/patients/{patient_id}")
    return client.post(f"/staff/patients/{patient_id}/referral", data={**_answers(**changes),
                                                                       "csrf_token": csrf_token(page)})


@pytest.mark.parametrize("role", [Role.RECEPTION, Role.ADMIN])
def test_reception_records_a_new_referral_from_the_discharged_patients_record(app, session, role):
    client = _client(app, session, role)
    patient = _discharged(session, postcode="N19 5NF")
    record = get_page(client, f"/staff/patients/{patient.id}")
    button = record.find("a", href=f"/staff/patients/{patient.id}/referral")
    assert button is not None and "Record a new referral" in button.get_text()
    form = get_page(client, f"/staff/patients/{patient.id}/referral")
    assert form.h1.get_text(strip=True) == "Record a new referral"
    assert "Whittington" in form.get_text()  # the team the postcode gives

    response = _post(client, patient.id)
    assert response.status_code == 302 and response.headers["Location"] == f"/staff/patients/{patient.id}"
    session.expire_all()
    patient = session.get(Patient, patient.id)
    assert not patient.discharged and (patient.tier, patient.team) == (2, "whittington")
    assert session.scalars(select(SmsMessage.kind).where(SmsMessage.patient_id == patient.id)).all() == [
        "referred_again"]
    page = get_page(client, f"/staff/patients/{patient.id}")
    words = page.get_text(" ", strip=True)
    assert "is recorded: they can book again. We have texted them." in words
    history = page.find(id="referrals").find_next("ul").get_text(" ", strip=True)
    assert REASON in history and "GP, Dr Shah, letter of 3 November" in history and "Tier 2" in history
    assert page.find("a", href=f"/staff/patients/{patient.id}/referral") is None  # nothing more to record


@pytest.mark.parametrize("role", [Role.FACILITATOR, Role.CLINICIAN])
def test_staff_who_are_not_reception_see_no_button_and_are_refused(app, session, role):
    client = _client(app, session, role)
    patient = _discharged(session)
    record = get_page(client, f"/staff/patients/{patient.id}")
    assert record.find("a", href=f"/staff/patients/{patient.id}/referral") is None
    assert client.get(f"/staff/patients/{patient.id}/referral").status_code == 403
    response = client.post(f"/staff/patients/{patient.id}/referral",
                           data={**_answers(), "csrf_token": csrf_token(record)})
    assert response.status_code == 403
    session.expire_all()
    assert session.get(Patient, patient.id).discharged


def test_a_patient_cannot_record_a_referral_for_themselves_or_anyone(app, session, patient_client):
    own = _discharged(session, patient=patient_client.user.patient)
    other = _discharged(session)
    token = csrf_token(get_page(patient_client, "/contact"))
    for patient_id in (own.id, other.id):
        assert patient_client.get(f"/staff/patients/{patient_id}/referral").status_code == 403
        response = patient_client.post(f"/staff/patients/{patient_id}/referral",
                                       data={**_answers(), "csrf_token": token})
        assert response.status_code == 403
    session.expire_all()
    assert session.get(Patient, own.id).discharged and session.get(Patient, other.id).discharged


@pytest.mark.parametrize("path", ["/staff/patients/999999/referral", "/staff/patients/0/referral",
                                  "/staff/patients/99999999999/referral"])
def test_no_such_patient_is_404(reception_client, session, path):
    assert reception_client.get(path).status_code == 404
    token = csrf_token(get_page(reception_client, "/staff"))
    assert reception_client.post(path, data={**_answers(), "csrf_token": token}).status_code == 404


def test_a_patient_who_is_not_discharged_has_no_button_and_a_post_is_409(reception_client, session):
    patient = factories.create_patient(session)
    record = get_page(reception_client, f"/staff/patients/{patient.id}")
    assert record.find("a", href=f"/staff/patients/{patient.id}/referral") is None
    response = _post(reception_client, patient.id)
    assert response.status_code == 409
    page = parse(response)
    assert page.h1.get_text(strip=True) == "No new referral to record"
    assert page.find("a", href=f"/staff/patients/{patient.id}")
    assert page.select_one("a.nhsuk-back-link")["href"] == f"/staff/patients/{patient.id}"
    assert reception_client.get(f"/staff/patients/{patient.id}/referral").status_code == 409
    assert session.scalars(select(PatientReferral)).all() == []


def test_pressing_save_twice_records_one_referral(reception_client, session):
    patient = _discharged(session)
    assert _post(reception_client, patient.id).status_code == 302
    assert _post(reception_client, patient.id).status_code == 409
    assert len(session.scalars(select(PatientReferral)).all()) == 1


@pytest.mark.parametrize(("changes", "field", "message"), [
    ({"triage_date[day]": "", "triage_date[month]": "", "triage_date[year]": ""}, "triage_date",
     "Enter triage date"),
    (date_fields("triage_date", london_today() + dt.timedelta(days=1)), "triage_date",
     "Triage date must be today or in the past"),
    (date_fields("triage_date", london_today() - dt.timedelta(days=30)), "triage_date",
     "Triage date must be on or after the discharge on"),
    ({"triage_date[month]": "13"}, "triage_date", "Triage date must be a real date"),
    ({"tier": ""}, "tier", "Select the tier the referral was triaged to"),
    ({"tier": "3"}, "tier", "Select the tier the referral was triaged to"),
    ({"tier": "1", "team": "whittington"}, "team", "Only Tier 2 patients have a team"),
    ({"team": "nowhere"}, "team", "Select a team from the list"),
    ({"note": "  "}, "note", "Enter who referred the patient"),
    ({"note": "x" * 201}, "note", "Who referred must be 200 characters or fewer"),
])
def test_bad_answers_get_a_message_next_to_the_field(reception_client, session, changes, field, message):
    patient = _discharged(session)
    response = _post(reception_client, patient.id, **changes)
    assert response.status_code == 400
    page = parse(response)
    assert page.find(class_="nhsuk-error-summary") is not None
    assert (error_for(page, field) or "").startswith(message), error_for(page, field)
    session.expire_all()
    assert session.get(Patient, patient.id).discharged


def test_registering_a_discharged_patients_nhs_number_again_points_to_the_new_referral(reception_client, session):
    patient = _discharged(session, nhs_number="9434765919")
    response = post_registration(reception_client)
    assert response.status_code == 400
    page = parse(response)
    assert "was discharged" in error_for(page, "nhs_number")
    assert page.find(id="duplicate").find("a", href=f"/staff/patients/{patient.id}/referral")
    # Newer details would leave them discharged: no update is offered, and one posted anyway changes nothing.
    assert page.find("button", attrs={"name": "update_existing"}) is None
    response = post_registration(reception_client, update_existing=str(patient.id))  # Tier 2 details
    assert response.status_code == 400 and "was discharged" in error_for(parse(response), "nhs_number")
    session.expire_all()
    assert session.get(Patient, patient.id).tier == 1 and session.get(Patient, patient.id).discharged
    # A patient not discharged: the message is as before, with the record.
    session.expire_all()
    session.get(Patient, patient.id).discharged_at = None
    session.commit()
    page = parse(post_registration(reception_client))
    assert error_for(page, "nhs_number") == "A patient with this NHS number is already registered"
    assert page.find(id="duplicate").find("a", href=f"/staff/patients/{patient.id}")
    assert page.find("a", href=f"/staff/patients/{patient.id}/referral") is None
    assert page.find("button", attrs={"name": "update_existing"}) is not None


def test_the_home_page_asks_for_no_questionnaire_while_discharged_and_again_after_a_new_referral(
        app, session, patient_client):
    home = get_page(patient_client, "/")
    assert home.find(id="questionnaire-due") is not None  # the baseline, due on the day of activation
    patient = _discharged(session, patient=patient_client.user.patient, days_ago=3)
    home = get_page(patient_client, "/")
    assert home.find(id="questionnaire-due") is None
    assert "speak to your GP" in home.get_text()
    overview = get_page(patient_client, "/questionnaires").get_text(" ", strip=True)
    assert "no questionnaires to fill in" in overview and "We will send you a text" not in overview

    reception = _client(app, session, Role.RECEPTION)
    assert _post(reception, patient.id, tier="1", team="postcode").status_code == 302
    home = get_page(patient_client, "/")
    assert home.find(id="questionnaire-due") is not None


def test_a_discharged_patients_nhs_number_typed_with_another_name_asks_to_check_it(reception_client, session):
    """The new-referral link is for the record's patient: another person's name beside it is flagged first."""
    _discharged(session, nhs_number="9434765919", date_of_birth=dt.date(1975, 12, 10))  # as the form's
    page = parse(post_registration(reception_client, given_name="Grace", family_name="Hopper"))
    warning = page.find(id="not-the-same-person").get_text(" ", strip=True)
    assert "The name you typed is not " in warning and "If the NHS number is mistyped, correct it." in warning
    assert "Updating the record" not in warning  # no update is offered for a discharged patient
