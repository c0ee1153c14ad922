"""Admin tasks in a real browser at phone size, with axe on every page: an admin adds a venue (a clinical
short name first), invites a clinician, who sets a password and an authenticator app from the one-time
link; then the admin finds them on the staff accounts and reads the configuration."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pyotp
from playwright.sync_api import expect
from sqlalchemy import select

from portal.auth.models import Role, User
from portal.booking.models import Venue
from tests.e2e.conftest import check_accessibility
from tests.e2e.test_thin_path import create_staff, expect_success_banner, heading, sign_in

NEW_PASSWORD = "orange harbour lantern"


def test_an_admin_adds_a_venue_and_invites_a_clinician_who_sets_up(db, new_page):
    admin, admin_secret = create_staff(db, Role.ADMIN)
    page = new_page()
    sign_in(page, admin, who="admin", totp_secret=admin_secret)
    expect(heading(page)).to_have_text("Staff home")
    page.get_by_role("link", name="Admin tasks").click()
    expect(heading(page)).to_have_text("Admin tasks")
    check_accessibility(page, "admin-hub")

    # a) A venue: the short name goes into texts, so a clinical word is refused next to the field.
    page.get_by_role("link", name="Venues", exact=True).click()
    expect(heading(page)).to_have_text("Venues")
    check_accessibility(page, "admin-venues-empty")
    page.get_by_role("link", name="Add a venue").click()
    expect(heading(page)).to_have_text("Add a venue")
    check_accessibility(page, "admin-venue-new")
    page.get_by_label("Name", exact=True).fill("Archway Centre")
    page.get_by_label("Short name for texts").fill("Archway Pain Clinic")
    page.get_by_label("Address").fill("1 Junction Road\nLondon N19 5QT")
    page.get_by_label("Access notes (optional)").fill("Step-free entrance on Junction Road.")
    page.get_by_role("button", name="Save venue").click()
    expect(page).to_have_title(re.compile(r"^Error: "))
    message = "Short name must not say anything clinical"
    expect(page.get_by_role("alert").filter(has_text="There is a problem").get_by_role(
        "link", name=re.compile(message))).to_have_attribute("href", "#short_name")
    expect(page.get_by_label("Short name for texts")).to_have_accessible_description(re.compile(message))
    expect(page.get_by_label("Address")).to_have_value("1 Junction Road\nLondon N19 5QT")
    check_accessibility(page, "admin-venue-error")
    page.get_by_label("Short name for texts").fill("Archway Ctr")
    page.get_by_role("button", name="Save venue").click()
    expect(heading(page)).to_have_text("Venues")
    expect_success_banner(page, "Archway Centre is added")
    expect(page.get_by_role("row").filter(has_text="Archway Centre")).to_contain_text("Archway Ctr")
    check_accessibility(page, "admin-venues")
    page.get_by_role("link", name="Archway Centre").click()
    expect(heading(page)).to_have_text("Change Archway Centre")
    expect(page.get_by_role("button", name="Delete venue")).to_be_visible()
    check_accessibility(page, "admin-venue-edit")
    with db.transaction() as s:
        venue = s.scalars(select(Venue)).one()
        assert (venue.short_name, venue.is_online) == ("Archway Ctr", False)

    # b) Invite a clinician (a mistyped email first); the link is shown once.
    page.goto("/staff/admin")
    page.get_by_role("link", name="Staff accounts").click()
    expect(heading(page)).to_have_text("Staff accounts")
    check_accessibility(page, "admin-staff-accounts")
    page.get_by_role("link", name="Invite a staff member").click()
    expect(heading(page)).to_have_text("Invite a staff member")
    expect(page.get_by_role("main")).to_contain_text("The portal cannot send email")
    check_accessibility(page, "admin-invite")
    page.get_by_label("Full name").fill("Cleo Clinician")
    page.get_by_label("Email address").fill("cleo.clinician@nhs")
    page.get_by_role("radio", name="Clinician").check()
    page.get_by_role("button", name="Create account and set-up link").click()
    expect(page).to_have_title(re.compile(r"^Error: "))
    expect(page.get_by_label("Email address")).to_have_accessible_description(
        re.compile("Enter an email address like name@nhs.net"))
    expect(page.get_by_role("radio", name="Clinician")).to_be_checked()
    check_accessibility(page, "admin-invite-error")
    page.get_by_label("Email address").fill("cleo.clinician@nhs.net")
    page.get_by_role("button", name="Create account and set-up link").click()
    expect(heading(page)).to_have_text("Send Cleo Clinician their set-up link")
    expect(page.get_by_role("main")).to_contain_text("You will not see this link again")
    check_accessibility(page, "admin-set-up-link")
    link = page.locator("#set-up-link").inner_text()
    assert re.fullmatch(r"https?://\S+/activate/staff/[A-Za-z0-9_-]+", link), link

    # c) The clinician, in their own browser: a password, then the authenticator app.
    cleo = new_page()
    cleo.goto(urlsplit(link).path)
    expect(heading(cleo)).to_have_text("Set up your staff account")
    expect(cleo.get_by_role("main")).to_contain_text("cleo.clinician@nhs.net")
    check_accessibility(cleo, "staff-set-up")
    cleo.get_by_label("Create a password").fill(NEW_PASSWORD)
    cleo.get_by_label("Type your password again").fill(NEW_PASSWORD)
    cleo.get_by_role("button", name="Save password and continue").click()
    expect(heading(cleo)).to_have_text("Set up your authenticator app")
    expect(cleo.get_by_role("main")).to_contain_text("Your password is saved")
    check_accessibility(cleo, "staff-set-up-app")
    secret = cleo.locator("#setup-key").inner_text().replace(" ", "")
    cleo.get_by_label("Enter the 6-digit code from your app").fill(pyotp.TOTP(secret).now())
    cleo.get_by_role("button", name="Continue").click()
    expect(heading(cleo)).to_have_text("Save your recovery codes")
    cleo.get_by_role("link", name="I have saved my codes, continue").click()
    expect(heading(cleo)).to_have_text("Staff home")
    expect(cleo.get_by_role("main")).to_contain_text("Cleo Clinician (clinician)")
    check_accessibility(cleo, "staff-home-new-clinician")
    # The link worked once.
    cleo.goto(urlsplit(link).path)
    expect(heading(cleo)).to_have_text("Sign out to use this link")

    # d) The admin sees the account set up, then the configuration.
    page.goto("/staff/admin/staff-accounts")
    row = page.get_by_role("row").filter(has_text="Cleo Clinician")
    expect(row).to_contain_text("Active")
    row.get_by_role("link", name="Cleo Clinician").click()
    expect(heading(page)).to_have_text("Cleo Clinician")
    expect(page.get_by_role("radio", name="Clinician")).to_be_checked()
    check_accessibility(page, "admin-staff-account")
    with db.transaction() as s:
        user = s.scalars(select(User).where(User.email == "cleo.clinician@nhs.net")).one()
        assert (user.role, user.is_active) == ("clinician", True)

    page.goto("/staff/admin")
    page.get_by_role("link", name="Service configuration").click()
    expect(heading(page)).to_have_text("Service configuration")
    expect(page.get_by_role("main")).to_contain_text("Eight-week Pain Management Group")
    check_accessibility(page, "admin-configuration")
