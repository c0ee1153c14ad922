"""The item-9 safety path in a real browser at phone size, with axe on every page.

A patient answers their baseline questionnaires (leaving one question out first), says "several days" to
PHQ-9 question 9 and at once sees urgent support. A clinician signs in with their authenticator app, sees
the urgent flag, acknowledges it with a note of the action taken (trying without one first), and it leaves
the list; the patient's scores page shows the answers.
"""

from __future__ import annotations

from playwright.sync_api import Page, expect
from sqlalchemy import select

from portal.auth.models import Role
from portal.questionnaires.instruments import PHQ9
from portal.questionnaires.models import UrgentFlag
from tests import factories
from tests.e2e.conftest import check_accessibility
from tests.e2e.test_thin_path import create_staff, expect_success_banner, heading, sign_in


def answer_frequency_page(page: Page, answers: dict[int, str]) -> None:
    for item in PHQ9.scored_items:
        number = int(item.key.rsplit("_", 1)[1])
        group = page.get_by_role("group", name=f"{number}. {item.text}")
        group.get_by_label(answers.get(number, "Not at all"), exact=True).check()


def test_item_9_shows_urgent_support_and_a_clinician_acknowledges_the_flag(db, new_page):
    with db.transaction() as s:
        user = factories.create_patient_user(s, tier=1)
        mobile, name, patient_id = user.patient.mobile, user.patient.full_name, user.patient_id

    # The patient opens their due questionnaires.
    patient = new_page()
    sign_in(patient, mobile, who="patient")
    expect(heading(patient)).to_contain_text("Hello")
    patient.goto("/questionnaires")
    expect(heading(patient)).to_have_text("Your questionnaires")
    check_accessibility(patient, "questionnaires-overview")
    # Named in full in the browser's accessibility tree, not just "Start".
    patient.get_by_role("link", name="Start your questionnaires: Your pain", exact=True).click()

    # Pain rating: sent with no answer first, then answered.
    expect(heading(patient)).to_have_text("Your pain")
    check_accessibility(patient, "questionnaire-pain")
    patient.get_by_role("button", name="Send my answers").click()
    expect(patient.get_by_role("alert")).to_contain_text("Select how bad your pain has been on average")
    check_accessibility(patient, "questionnaire-pain-error")
    patient.get_by_label("6", exact=True).check()
    patient.get_by_role("button", name="Send my answers").click()

    expect(heading(patient)).to_have_text("How pain affects your life")
    for legend in ("your day-to-day activities", "your sleep", "your mood", "work, study or jobs around the home"):
        group = patient.get_by_role("group", name=f"how much has pain got in the way of {legend}?")
        group.get_by_label("5", exact=True).check()
    patient.get_by_role("button", name="Send my answers").click()

    # PHQ-9, with "several days" to question 9.
    expect(heading(patient)).to_have_text("How you have been feeling")
    check_accessibility(patient, "questionnaire-phq9")
    answer_frequency_page(patient, {2: "More than half the days", 9: "Several days"})
    patient.get_by_role("button", name="Send my answers").click()

    # Urgent support, at once.
    expect(heading(patient)).to_have_text("Thank you for your answers")
    urgent = patient.get_by_role("heading", name="Urgent advice: Get help now if you need it")
    expect(urgent).to_be_visible()
    main = patient.get_by_role("main")
    expect(main).to_contain_text("choose option 2")
    expect(main).to_contain_text("116 123")
    emergency = patient.get_by_role("heading", name="Immediate action required: Call 999 or go to A&E now if")
    expect(emergency).to_be_visible()
    expect(patient.get_by_role("link", name="116 123")).to_have_attribute("href", "tel:116123")
    check_accessibility(patient, "questionnaire-urgent-support")
    patient.get_by_role("link", name="Continue to the next questions").click()
    expect(heading(patient)).to_have_text("Worry and anxiety")

    with db.transaction() as s:
        [flag] = s.scalars(select(UrgentFlag).where(UrgentFlag.patient_id == patient_id)).all()
        flag_id = flag.id

    # A clinician sees the flag and acknowledges it.
    email, secret = create_staff(db, Role.FACILITATOR)
    staff = new_page()
    sign_in(staff, email, who="facilitator", totp_secret=secret)
    expect(heading(staff)).to_have_text("Staff home")
    staff.goto("/staff/urgent")
    expect(heading(staff)).to_have_text("Urgent flags")
    row = staff.locator(f"#flag-{flag_id}")
    expect(row).to_contain_text(name)
    expect(row).to_contain_text("Several days")
    check_accessibility(staff, "urgent-flags")
    staff.get_by_role("link", name=f"Acknowledge the flag for {name}").click()

    expect(heading(staff)).to_have_text("Acknowledge urgent flag")
    check_accessibility(staff, "acknowledge-flag")
    staff.get_by_role("button", name="Acknowledge flag").click()
    expect(staff.get_by_role("alert")).to_contain_text("Enter the action you took")
    check_accessibility(staff, "acknowledge-flag-error")
    staff.get_by_label("What action did you take?").fill("Phoned the patient; safety plan agreed; GP informed.")
    staff.get_by_role("button", name="Acknowledge flag").click()

    expect(heading(staff)).to_have_text("Urgent flags")
    expect_success_banner(staff, f"Urgent flag for {name} acknowledged.")
    expect(staff.locator(f"#flag-{flag_id}")).to_have_count(0)
    expect(staff.get_by_text("No open urgent flags.")).to_be_visible()
    expect(staff.get_by_role("main")).to_contain_text("Phoned the patient; safety plan agreed; GP informed.")
    check_accessibility(staff, "urgent-flags-acknowledged")

    staff.goto(f"/staff/patients/{patient_id}/questionnaires")
    expect(heading(staff)).to_have_text("Questionnaire scores")
    expect(staff.get_by_role("main")).to_contain_text("PHQ-9 (depression)")
    check_accessibility(staff, "questionnaire-scores")
