"""Eligibility warnings on the registration form: shown next to their field, overridden only with a reason."""

import pytest
from sqlalchemy import func, select

from portal.audit.models import AuditEvent
from portal.messaging.models import SmsMessage
from portal.patients.models import Patient
from tests import factories
from tests.pages import error_for, get_page, parse
from tests.staff.registration import date_fields, post_registration, years_ago

UNDER_18 = date_fields("date_of_birth", years_ago(18, days=1))  # 18 tomorrow
OUTSIDE = {"postcode": "E1 6AN"}
SHORT_PAIN = {"pain_duration": "under-6-months"}

CASES = [
    pytest.param(UNDER_18, "date_of_birth", "The patient is 17. The service is for adults aged 18 and over",
                 "under-18", id="under-18"),
    pytest.param(SHORT_PAIN, "pain_duration", "The service is for people who have had pain for more than 6 months",
                 "pain-under-6-months", id="pain-under-6-months"),
    pytest.param(OUTSIDE, "postcode", "E1 is outside Haringey and Islington", "outside-area", id="outside-area"),
]


def warning_for(page, field_id: str) -> str | None:
    """The eligibility warning shown next to a field (inside its form group), or None."""
    anchor = page.find(id=field_id) or page.find(id=f"{field_id}-day")
    group = anchor.find_parent(class_="nhsuk-form-group") if anchor else None
    warning = group.find(id=f"{field_id}-warning") if group else None
    return warning.get_text(" ", strip=True).removeprefix("Warning:").strip() if warning else None


def _count(session, model):
    return session.scalar(select(func.count()).select_from(model))


def _events(session, action):
    return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


@pytest.mark.parametrize(("changes", "field", "message", "code"), CASES)
def test_a_warning_stops_registration_until_a_reason_is_given(reception_client, session, changes, field, message,
                                                              code):
    response = post_registration(reception_client, **changes)
    assert response.status_code == 400
    page = parse(response)
    assert warning_for(page, field) == message
    callout = page.find(id="eligibility-warnings")
    assert callout and message in callout.get_text(" ", strip=True)
    link = callout.find("a", string=message)
    assert link["href"] in (f"#{field}", f"#{field}-day")
    # The reason box appears, empty and without an error: the person has not been asked yet.
    reason = page.find("textarea", attrs={"name": "override_reason"})
    assert reason is not None and reason.get_text() == ""
    assert error_for(page, "override_reason") is None
    assert not page.select_one(".nhsuk-error-summary")
    # The warning is in the field's hint, which the field (or its fieldset) is described by.
    hint = page.find(id=f"{field}-warning").find_parent(class_="nhsuk-hint")
    group = hint.find_parent(class_="nhsuk-form-group")
    assert group.find(attrs={"aria-describedby": lambda v: v and hint["id"] in v.split()})
    assert _count(session, Patient) == 0 and _count(session, SmsMessage) == 0

    response = post_registration(reception_client, **changes, override_reason="Consultant letter confirms it.")
    assert response.status_code == 302
    patient = session.scalars(select(Patient)).one()
    assert patient.warning_codes == [code]
    assert patient.override_reason == "Consultant letter confirms it."
    assert _count(session, SmsMessage) == 1
    [event] = _events(session, "eligibility_warnings_overridden")
    assert (event.patient_id, event.detail) == (patient.id, code)
    assert "Consultant" not in event.detail  # free text stays on the record, out of the trail

    record = get_page(reception_client, response.headers["Location"]).get_text(" ", strip=True)
    assert "Registered despite eligibility warnings" in record
    assert "Reason given: Consultant letter confirms it." in record


def test_all_three_warnings_at_once_are_stored_together(reception_client, session):
    changes = {**UNDER_18, **OUTSIDE, **SHORT_PAIN}
    page = parse(post_registration(reception_client, **changes))
    assert warning_for(page, "date_of_birth") and warning_for(page, "postcode") and warning_for(page, "pain_duration")
    assert len(page.find(id="eligibility-warnings").find_all("li")) == 3

    assert post_registration(reception_client, **changes, override_reason="Agreed at MDT").status_code == 302
    patient = session.scalars(select(Patient)).one()
    assert patient.warning_codes == ["under-18", "pain-under-6-months", "outside-area"]
    assert patient.warning_labels == [
        "Under 18", "Pain for less than 6 months", "Postcode outside Haringey and Islington"]
    # Tier 2, outside both catchments: staff will choose the team.
    assert patient.tier == 2 and patient.team is None


def test_a_blank_reason_once_asked_for_is_an_error(reception_client, session):
    response = post_registration(reception_client, **UNDER_18, override_reason="   ")
    assert response.status_code == 400
    page = parse(response)
    assert "Give a reason" in error_for(page, "override_reason")
    assert page.select_one(".nhsuk-error-summary a[href='#override_reason']")
    assert page.title.string.startswith("Error:")
    assert warning_for(page, "date_of_birth")
    assert _count(session, Patient) == 0


def test_a_reason_that_is_too_long_is_refused(reception_client, session):
    page = parse(post_registration(reception_client, **UNDER_18, override_reason="x" * 501))
    assert "500 characters" in error_for(page, "override_reason")
    assert page.find("textarea", attrs={"name": "override_reason"}).get_text() == "x" * 501
    assert _count(session, Patient) == 0


def test_warnings_and_errors_show_together_and_nothing_is_written(reception_client, session):
    page = parse(post_registration(reception_client, **UNDER_18, mobile="020 7946 0000", override_reason="MDT"))
    assert "not a mobile" in error_for(page, "mobile")
    assert warning_for(page, "date_of_birth")
    assert _count(session, Patient) == 0 and _count(session, SmsMessage) == 0


def test_eighteen_today_is_an_adult(reception_client, session):
    assert post_registration(reception_client, **date_fields("date_of_birth", years_ago(18))).status_code == 302
    assert session.scalars(select(Patient)).one().warning_codes == []


def test_a_reason_without_a_warning_is_not_stored(reception_client, session):
    assert post_registration(reception_client, override_reason="Just in case").status_code == 302
    patient = session.scalars(select(Patient)).one()
    assert (patient.eligibility_warnings, patient.override_reason) == ("", None)
    assert _events(session, "eligibility_warnings_overridden") == []


def test_a_warning_cleared_by_correcting_the_details_registers_without_a_reason(reception_client, session):
    assert post_registration(reception_client, **OUTSIDE).status_code == 400
    # Reception checks the referral: the postcode was mistyped. The empty reason box goes back too.
    assert post_registration(reception_client, postcode="N19 5NF", override_reason="").status_code == 302
    assert session.scalars(select(Patient)).one().warning_codes == []


def test_postcode_in_the_area_but_in_no_catchment_warns_nobody_and_waits_for_a_team(reception_client, session):
    # N4 straddles Haringey and Islington: inside the service area, in neither team's catchment.
    assert post_registration(reception_client, postcode="N4 3LS").status_code == 302
    patient = session.scalars(select(Patient)).one()
    assert patient.warning_codes == [] and patient.needs_team


def test_a_known_nhs_number_is_refused_before_any_warning(reception_client, session):
    existing = factories.create_patient(session, nhs_number="9434765919")
    page = parse(post_registration(reception_client, **UNDER_18))
    assert "already registered" in error_for(page, "nhs_number")
    assert page.find("a", href=f"/staff/patients/{existing.id}")
    assert warning_for(page, "date_of_birth") is None
    assert page.find("textarea") is None
