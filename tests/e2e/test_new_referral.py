"""Reception records a new referral for a discharged patient, at phone width, with axe on every page: the button
on the record, a refused answer next to its field, then the record with the earlier discharge kept."""

from __future__ import annotations

import datetime as dt
import re

from playwright.sync_api import expect

from portal.auth.models import Role
from portal.dates import london_today
from portal.db import utcnow
from tests import factories
from tests.e2e.conftest import check_accessibility
from tests.e2e.test_thin_path import create_staff, expect_success_banner, fill_date, heading, sign_in

REASON = "Did not attend twice; back to the GP"


def _discharged_patient(db) -> int:
    with db.transaction() as s:
        patient = factories.create_patient(s, given_name="Nadia", family_name="Okonkwo", postcode="N19 5NF",
                                           triage_date=london_today() - dt.timedelta(days=200))
        patient.discharge(utcnow() - dt.timedelta(days=20), REASON)
        return patient.id


def test_reception_records_a_new_referral_for_a_discharged_patient(db, new_page):
    patient_id = _discharged_patient(db)
    email, secret = create_staff(db, Role.RECEPTION)
    page = new_page()
    sign_in(page, email, who="reception-referral", totp_secret=secret)

    page.goto(f"/staff/patients/{patient_id}")
    expect(heading(page)).to_have_text("Nadia Okonkwo")
    expect(page.locator("#discharge")).to_contain_text(REASON)
    check_accessibility(page, "referral-discharged-record")
    page.get_by_role("link", name=re.compile(r"^Record a new referral")).click()

    expect(heading(page)).to_have_text("Record a new referral")
    check_accessibility(page, "referral-form")
    # A triage date before the discharge is refused next to the field, and what was typed stays.
    fill_date(page, "Triage date", london_today() - dt.timedelta(days=60))
    page.get_by_role("radio", name="Tier 2").check()
    page.get_by_label("Who referred").fill("GP, Dr Shah, letter of 3 November")
    page.get_by_role("button", name="Record the new referral").click()
    summary = page.get_by_role("alert").filter(has_text="There is a problem")
    expect(summary).to_contain_text("Triage date must be on or after the discharge")
    expect(page.get_by_role("group", name="Triage date")).to_contain_text("Triage date must be on or after")
    expect(page.get_by_label("Who referred")).to_have_value("GP, Dr Shah, letter of 3 November")
    check_accessibility(page, "referral-form-error")

    fill_date(page, "Triage date", london_today() - dt.timedelta(days=1))
    page.get_by_role("button", name="Record the new referral").click()

    expect(heading(page)).to_have_text("Nadia Okonkwo")
    expect_success_banner(page, "The new referral for Nadia Okonkwo is recorded")
    main = page.get_by_role("main")
    expect(page.locator("#discharge")).to_have_count(0)
    expect(main).to_contain_text("Whittington")
    expect(page.locator("#referrals + ul")).to_contain_text(REASON)
    expect(page.get_by_role("link", name=re.compile(r"^Record a new referral"))).to_have_count(0)
    check_accessibility(page, "referral-recorded")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "wider than the phone"
