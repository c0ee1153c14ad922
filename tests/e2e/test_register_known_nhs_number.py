"""Reception types an NHS number already registered, at phone width, with axe on the page: the offer to update names
whose record it is, and a name or date of birth that is not that patient's is flagged before anything is overwritten
(a mistyped NHS number can be another patient's)."""

from __future__ import annotations

import datetime as dt

from playwright.sync_api import expect

from portal.auth.models import Role
from tests import factories
from tests.e2e.conftest import check_accessibility
from tests.e2e.test_thin_path import create_staff, fill_registration, heading, sign_in


def test_a_known_nhs_number_typed_with_another_persons_details_is_flagged(db, new_page):
    with db.transaction() as s:
        patient = factories.create_patient(s, given_name="Ada", family_name="Lovelace",
                                           date_of_birth=dt.date(1975, 12, 10))
        nhs_number, patient_id = patient.nhs_number, patient.id
    email, secret = create_staff(db, Role.RECEPTION)
    page = new_page()
    sign_in(page, email, who="reception-known-nhs", totp_secret=secret)

    page.goto("/staff/patients/new")
    fill_registration(page, nhs_number=nhs_number, date_of_birth=dt.date(1980, 3, 4))

    expect(heading(page)).to_have_text("Register a triaged patient")
    expect(page.locator("#duplicate")).to_contain_text(
        "This NHS number is already registered to Ada Lovelace, born 10 December 1975.")
    warning = page.locator("#not-the-same-person")
    expect(warning).to_contain_text("Check the NHS number")
    expect(warning).to_contain_text("The name and date of birth you typed are not Ada Lovelace's.")
    expect(page.get_by_role("button", name="Update the existing record")).to_be_visible()
    expect(page.get_by_label("First name")).to_have_value("Grace")  # what was typed stays
    check_accessibility(page, "register-known-nhs-number-not-the-same")
    expect(page.get_by_role("link", name="Open the existing record")).to_have_attribute(
        "href", f"/staff/patients/{patient_id}")
