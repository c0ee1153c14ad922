"""Weekly self-management reading at phone size, with axe on every page: a patient reads this week's item,
marks it done, goes back to catch up on an earlier week and finds a later one shut; a facilitator sees what
they read, from the cohort's reading page to the patient's; an admin sees the content review list."""

from __future__ import annotations

import datetime as dt

from playwright.sync_api import expect

from portal.auth.models import Role
from portal.db import utcnow
from tests import factories
from tests.e2e.conftest import check_accessibility
from tests.e2e.test_thin_path import create_staff, expect_success_banner, heading, sign_in
from tests.selfcare.helpers import LONDON, activated_patient, seat


def _arrange(db) -> dict:
    today = dt.datetime.now(LONDON).date()
    with db.transaction() as s:
        cohort = factories.create_cohort(s, first_date=today - dt.timedelta(days=8), start_time=dt.time(18))
        user = activated_patient(s, activated_at=utcnow() - dt.timedelta(days=60), given_name="Rosa")
        seat(s, user.patient_id, cohort)
        return {"mobile": user.patient.mobile, "name": user.patient.full_name, "cohort_id": cohort.id}


def test_a_patient_reads_marks_done_and_catches_up_and_staff_see_it(db, new_page):
    data = _arrange(db)
    page = new_page()
    sign_in(page, data["mobile"], who="selfcare-patient")
    expect(heading(page)).to_have_text("Hello Rosa")
    expect(page.get_by_role("heading", name="This week's reading")).to_be_visible()
    page.get_by_role("link", name="See all your weekly reading").click()

    expect(heading(page)).to_have_text("Your weekly reading")
    main = page.get_by_role("main")
    expect(main).to_contain_text("This reading goes with the Eight-week Pain Management Group")
    expect(main).to_contain_text("Not open yet")
    expect(page.get_by_role("heading", name="When to get urgent help")).to_be_visible()
    check_accessibility(page, "selfcare-weeks")

    page.get_by_role("link", name="Week 2: Pacing and finding your baseline").click()
    expect(heading(page)).to_have_text("Pacing and finding your baseline")
    expect(page.get_by_role("heading", name="Your task this week")).to_be_visible()
    expect(page.get_by_role("heading", name="When to get urgent help")).to_be_visible()
    expect(page.get_by_role("link", name="NHS 111 online")).to_have_attribute("href", "https://111.nhs.uk")
    check_accessibility(page, "selfcare-item")
    page.get_by_role("button", name="Mark as done").click()
    expect_success_banner(page, "Week 2 is marked as done.")
    expect(page.get_by_role("main")).to_contain_text("You marked this week as done")
    check_accessibility(page, "selfcare-item-done")

    # Back to catch up on week 1.
    page.get_by_role("navigation", name="Other weeks").get_by_role("link", name="Previous").click()
    expect(heading(page)).to_have_text("Welcome to the group, and how persistent pain works")
    expect(page.get_by_role("main")).to_contain_text("Catch up")
    page.get_by_role("link", name="All your weekly reading").click()
    expect(page.get_by_role("listitem").filter(has_text="Week 2:")).to_contain_text("Done")
    expect(page.get_by_role("listitem").filter(has_text="Week 1:")).to_contain_text("Catch up")

    # A later week is shut, and says when it opens.
    page.goto("/self-care/tier-1-group/week-03")
    expect(heading(page)).to_have_text("This reading is not open yet")
    check_accessibility(page, "selfcare-not-open")

    # A facilitator sees it: the cohort's reading, then the patient's week by week.
    facilitator, secret = create_staff(db, Role.FACILITATOR)
    staff = new_page()
    sign_in(staff, facilitator, who="selfcare-facilitator", totp_secret=secret)
    staff.goto(f"/staff/courses/{data['cohort_id']}/self-care")
    expect(heading(staff)).to_have_text("Self-care reading")
    row = staff.get_by_role("row").filter(has_text=data["name"])
    expect(row).to_contain_text("Tier 1 group, week 2 of 8")
    check_accessibility(staff, "selfcare-staff-cohort")
    staff.get_by_role("link", name=data["name"]).click()
    expect(heading(staff)).to_have_text("Self-care reading")
    expect(staff.get_by_role("main")).to_contain_text("Week 2 of 8")
    expect(staff.get_by_role("row").filter(has_text="Pacing and finding your baseline")).to_contain_text("Done")
    check_accessibility(staff, "selfcare-staff-patient")

    # An admin sees the content and when each item is due for review.
    admin_email, admin_secret = create_staff(db, Role.ADMIN)
    admin = new_page()
    sign_in(admin, admin_email, who="selfcare-admin", totp_secret=admin_secret)
    admin.goto("/staff/admin/self-care-content")
    expect(heading(admin)).to_have_text("Self-care content review")
    expect(admin.get_by_role("row").filter(has_text="Week 12: Keeping your progress going")).to_contain_text("2027")
    check_accessibility(admin, "selfcare-content-review")
