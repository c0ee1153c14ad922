import datetime as dt

import pytest
from sqlalchemy import func, select

from portal.auth.models import Invitation, Role
from portal.messaging.models import SmsMessage
from portal.patients.models import Patient
from tests import factories
from tests.pages import error_for, get_page, parse
from tests.staff.registration import VALID, post_registration

TOMORROW = dt.date.today() + dt.timedelta(days=2)


def _post(client, **changes):
    return post_registration(client, **changes)


def _count(session, model):
    return session.scalar(select(func.count()).select_from(model))


def test_reception_registers_a_patient_and_the_invitation_is_queued(reception_client, session):
    response = _post(reception_client)
    assert response.status_code == 302
    patient = session.scalars(select(Patient)).one()
    assert (patient.nhs_number, patient.postcode, patient.mobile) == ("9434765919", "N19 5NF", "+447700900456")
    assert patient.tier == 2 and patient.team == "whittington"
    assert response.headers["Location"] == f"/staff/patients/{patient.id}"
    invitation = session.scalars(select(Invitation)).one()
    message = session.scalars(select(SmsMessage)).one()
    assert message.kind == "invitation" and message.patient_id == patient.id
    assert message.to_number == "+447700900456"
    assert "https://portal.test/activate/" in message.body
    # Only a hash of the token is stored; the token itself is only in the text.
    token = message.body.rsplit("/", 1)[1]
    assert token not in invitation.token_hash
    record = get_page(reception_client, response.headers["Location"])
    assert "943 476 5919" in record.get_text()
    assert "invitation" in record.get_text()


def test_tier_2_postcode_outside_every_catchment_needs_a_team(reception_client, session):
    assert _post(reception_client, postcode="N4 3LS").status_code == 302
    patient = session.scalars(select(Patient)).one()
    assert patient.team is None and patient.needs_team
    page = get_page(reception_client, f"/staff/patients/{patient.id}")
    assert "Needs a team" in page.get_text()


def test_staff_can_override_the_computed_team(reception_client, session):
    assert _post(reception_client, team="haringey").status_code == 302
    assert session.scalars(select(Patient)).one().team == "haringey"


def test_tier_1_patients_have_no_team(reception_client, session):
    assert _post(reception_client, tier="1").status_code == 302
    assert session.scalars(select(Patient)).one().team is None


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"nhs_number": "943 476 5918"}, "nhs_number", "not a valid NHS number"),
        ({"nhs_number": ""}, "nhs_number", "Enter the NHS number"),
        ({"nhs_number": "12345"}, "nhs_number", "must be 10 digits"),
        ({"mobile": "020 7946 0000"}, "mobile", "not a mobile"),
        ({"mobile": ""}, "mobile", "Enter a mobile phone number"),
        ({"postcode": "nowhere"}, "postcode", "full UK postcode"),
        ({"date_of_birth[year]": "2999"}, "date_of_birth", "must be in the past"),
        ({"date_of_birth[day]": "31", "date_of_birth[month]": "2"}, "date_of_birth", "real date"),
        ({"date_of_birth[year]": ""}, "date_of_birth", "must include a year"),
        ({"date_of_birth[day]": "x"}, "date_of_birth", "in numbers"),
        ({"given_name": ""}, "given_name", "first name"),
        ({"given_name": "A" * 101}, "given_name", "100"),
        ({"email": "not-an-email"}, "email", "email address"),
        ({"tier": "3"}, "tier", "Select Tier 1 or Tier 2"),
        ({"tier": ""}, "tier", "Select the tier"),
        ({"tier": "1", "team": "haringey"}, "team", "Only Tier 2 patients have a team"),
        ({"team": "made-up-team"}, "team", "Select a team"),
        ({"family_name": "  "}, "family_name", "last name"),
        ({"given_name": "Ada\x00"}, "given_name", "only include letters"),
        ({"triage_date[day]": "", "triage_date[month]": "", "triage_date[year]": ""}, "triage_date",
         "Enter triage date"),
        ({"triage_date[day]": str(TOMORROW.day), "triage_date[month]": str(TOMORROW.month),
          "triage_date[year]": str(TOMORROW.year)}, "triage_date", "today or in the past"),
        ({"triage_date[year]": "1970"}, "triage_date", "after the date of birth"),
        ({"triage_date[month]": "13"}, "triage_date", "real date"),
        ({"pain_duration": ""}, "pain_duration", "how long the patient has had pain"),
        ({"pain_duration": "forever"}, "pain_duration", "from the list"),
    ],
)
def test_bad_input_is_shown_next_to_the_field_and_nothing_is_written(
    reception_client, session, changes, field, message
):
    response = _post(reception_client, **changes)
    assert response.status_code == 400
    page = parse(response)
    shown = error_for(page, field)
    assert shown is not None and message.lower() in shown.lower(), f"{field}: {shown!r}"
    assert page.select_one(".nhsuk-error-summary"), "no error summary"
    assert page.title.string.startswith("Error:")
    assert _count(session, Patient) == 0
    assert _count(session, SmsMessage) == 0


def test_the_same_nhs_number_twice_links_to_the_existing_record(reception_client, session):
    existing = factories.create_patient(session, nhs_number="9434765919")
    response = _post(reception_client)
    assert response.status_code == 400
    page = parse(response)
    assert "already registered" in error_for(page, "nhs_number")
    assert page.find("a", href=f"/staff/patients/{existing.id}")
    assert _count(session, Patient) == 1


def test_a_mobile_already_on_a_record_needs_an_email_for_the_new_patient(reception_client, session):
    factories.create_patient(session, mobile="+447700900456", nhs_number="4010232137")
    page = parse(_post(reception_client))
    message = ("Another patient is registered with this mobile number. Patients who share a mobile sign in with "
               "their email address: enter one for this patient")
    assert error_for(page, "email") == message
    assert message in page.select_one(".nhsuk-error-summary").get_text()
    assert _count(session, Patient) == 1 and _count(session, SmsMessage) == 0
    # With an email of their own, they are registered; the first patient keeps signing in with the mobile.
    assert _post(reception_client, email="ada@example.com").status_code == 302
    assert _count(session, Patient) == 2


def test_an_email_already_on_a_record_is_refused(reception_client, session):
    factories.create_patient(session, email="ada@example.com", nhs_number="4010232137")
    page = parse(_post(reception_client, email="Ada@Example.com"))
    assert error_for(page, "email") == ("Another patient is registered with this email address. Enter the "
                                        "patient's own email address, or leave it out")
    assert _count(session, Patient) == 1


def test_a_staff_accounts_email_is_refused(reception_client, session):
    factories.create_staff(session, email="clinician@test.nhs.uk")
    page = parse(_post(reception_client, email="Clinician@test.nhs.uk"))
    assert error_for(page, "email") == ("This email address belongs to a staff account. Enter the patient's own "
                                        "email address, or leave it out")
    assert _count(session, Patient) == 0


def test_entered_values_are_kept_after_an_error(reception_client):
    page = parse(_post(reception_client, mobile="bad"))
    assert page.find("input", attrs={"name": "given_name"})["value"] == "Ada"
    assert page.find("input", attrs={"name": "date_of_birth[year]"})["value"] == "1975"
    assert page.find("input", attrs={"name": "postcode"})["value"] == "n19 5nf"  # as typed
    assert page.find("input", attrs={"name": "mobile"})["value"] == "bad"


def test_facilitators_cannot_register_patients(app, session):
    from tests.conftest import sign_in

    user = factories.create_staff(session, role=Role.FACILITATOR)
    client = app.test_client()
    sign_in(client, user.email)
    assert client.get("/staff/patients/new").status_code == 403


def test_post_without_csrf_token_is_refused(reception_client, session):
    response = reception_client.post("/staff/patients/new", data=VALID)
    assert response.status_code == 400
    assert "This form has expired" in response.get_data(as_text=True)
    assert _count(session, Patient) == 0
