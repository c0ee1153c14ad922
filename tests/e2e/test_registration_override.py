"""Reception registers a patient despite eligibility warnings, places them with a team, and resends their link.

In Chromium at phone width, by accessible names, with axe on every page (the warning page above all).
"""

from __future__ import annotations

import datetime as dt
import re

from playwright.sync_api import Page, expect
from sqlalchemy import select, update

from portal.auth.models import Invitation, Role
from portal.db import utcnow
from portal.demo_data import demo_nhs_numbers
from portal.patients.models import Patient
from tests.e2e.conftest import check_accessibility
from tests.e2e.test_thin_path import create_staff, expect_success_banner, fill_date, heading, sign_in

NHS_NUMBERS = demo_nhs_numbers(start=720_000)
REASON = "Transition from the paediatric pain service, agreed with the consultant"


def sixteen_years_ago() -> dt.date:
    today = utcnow().date()
    return today.replace(year=today.year - 16, day=min(today.day, 28))


def fill_registration(page: Page, *, nhs_number: str) -> None:
    page.get_by_label("NHS number").fill(nhs_number)
    page.get_by_label("First name").fill("Robin")
    page.get_by_label("Last name").fill("Young")
    fill_date(page, "Date of birth", sixteen_years_ago())
    page.get_by_label("Mobile number").fill("07700 900 321")
    page.get_by_label("Postcode").fill("N4 3LS")  # in the area, in neither team's catchment
    fill_date(page, "Triage date", utcnow().date() - dt.timedelta(days=3))
    page.get_by_role("radio", name="Tier 2").check()
    page.get_by_role("radio", name="Less than 6 months").check()
    for item in ("Diagnosis recorded", "Relevant investigations", "Treatment to date"):
        page.get_by_role("checkbox", name=item).check()


def test_reception_overrides_warnings_assigns_a_team_and_resends_the_link(db, new_page):
    reception, secret = create_staff(db, Role.RECEPTION)
    page = new_page()
    sign_in(page, reception, who="reception", totp_secret=secret)
    expect(heading(page)).to_have_text("Staff home")
    page.get_by_role("link", name="Register a triaged patient").click()
    expect(heading(page)).to_have_text("Register a triaged patient")
    fill_registration(page, nhs_number=next(NHS_NUMBERS))
    page.get_by_role("button", name="Register and send invitation").click()

    # The warnings: next to their fields, summarised at the top, and a box for the reason.
    expect(heading(page)).to_have_text("Register a triaged patient")
    callout = page.get_by_role("heading", name=re.compile("Check the referral"))
    expect(callout).to_be_visible()
    age_warning = "The patient is 16. The service is for adults aged 18 and over"
    pain_warning = "The service is for people who have had pain for more than 6 months"
    expect(page.get_by_role("group", name="Date of birth")).to_have_accessible_description(
        re.compile(re.escape(age_warning)))
    expect(page.get_by_role("group", name="How long has the patient had pain?")).to_have_accessible_description(
        re.compile(re.escape(pain_warning)))
    expect(page.get_by_role("link", name=age_warning)).to_have_attribute("href", "#date_of_birth-day")
    expect(page.get_by_label("First name")).to_have_value("Robin")  # nothing typed is lost
    check_accessibility(page, "register-patient-warnings")

    page.get_by_label("Reason for overriding the warning").fill(REASON)
    page.get_by_role("button", name="Register and send invitation").click()

    expect(heading(page)).to_have_text("Robin Young")
    expect_success_banner(page, "Robin Young is registered")
    main = page.get_by_role("main")
    expect(main).to_contain_text("Registered despite eligibility warnings")
    expect(main).to_contain_text(REASON)
    expect(main).to_contain_text("Needs a team")
    check_accessibility(page, "patient-record-override")
    patient_id = int(page.url.rsplit("/", 1)[1])

    # The "needs a team" queue, from the staff home.
    page.goto("/staff")
    page.get_by_role("link", name="Patients who need a team").click()
    expect(heading(page)).to_have_text("Patients who need a team")
    check_accessibility(page, "needs-a-team")
    page.get_by_role("link", name="Assign a team for Robin Young").click()
    expect(heading(page)).to_have_text("Assign a team")
    check_accessibility(page, "assign-team")
    page.get_by_label("Which team will see Robin Young?").select_option("haringey")
    page.get_by_role("button", name="Assign team").click()
    expect(heading(page)).to_have_text("Patients who need a team")
    expect_success_banner(page, "Robin Young is now with the Haringey Community Pain Service")
    expect(page.get_by_text("No patients need a team.")).to_be_visible()
    check_accessibility(page, "needs-a-team-empty")

    # Resend the invitation from the record, the next day (a press within a minute of a link sends nothing).
    with db.transaction() as s:
        s.execute(update(Invitation).where(Invitation.patient_id == patient_id)
                  .values(created_at=utcnow() - dt.timedelta(days=1)))
    page.goto(f"/staff/patients/{patient_id}")
    expect(main).to_contain_text("Haringey Community Pain Service")
    page.get_by_role("button", name="Resend invitation").click()
    expect_success_banner(page, "We have texted Robin Young a new link")
    check_accessibility(page, "patient-record-resent")

    with db.transaction() as s:
        patient = s.get(Patient, patient_id)
        assert (patient.team, patient.warning_codes, patient.override_reason) == (
            "haringey", ["under-18", "pain-under-6-months"], REASON)
        invitations = s.scalars(select(Invitation).where(Invitation.patient_id == patient_id)).all()
        assert len(invitations) == 2 and sum(i.revoked_at is None for i in invitations) == 1
