"""Staff second factor in a real browser at phone size, with axe on every page: setting up the app,
typing its codes (a wrong one first), a recovery code, and an admin's reset with its set-up link."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pyotp
from playwright.sync_api import Page, expect

from portal.auth.mfa import time_step
from portal.auth.models import Role
from portal.db import utcnow
from tests import factories
from tests.e2e.conftest import check_accessibility


def heading(page: Page):
    return page.get_by_role("heading", level=1)


def password_step(page: Page, email: str) -> None:
    page.goto("/sign-in")
    page.get_by_label("Email address or mobile number").fill(email)
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def sign_out(page: Page) -> None:
    page.get_by_role("button", name="Sign out").click()
    expect(heading(page)).to_have_text("Sign in")


def a_wrong_code(secret: str) -> str:
    totp = pyotp.TOTP(secret)
    near = {totp.generate_otp(time_step(utcnow()) + offset) for offset in range(-3, 4)}
    return next(code for code in ("000000", "111111", "222222") if code not in near)


def test_staff_set_up_an_app_then_sign_in_with_its_codes_or_a_recovery_code(db, new_page):
    with db.transaction() as s:
        email = factories.create_staff(s, role=Role.FACILITATOR, enrolled=False).email

    # Setting up the app, straight after the password.
    page = new_page()
    password_step(page, email)
    expect(heading(page)).to_have_text("Set up your authenticator app")
    qr_code = page.get_by_role("img", name=re.compile("QR code for your authenticator app"))
    expect(qr_code).to_be_visible()
    expect(qr_code).to_have_attribute("src", re.compile(r"^data:image/svg\+xml"))
    check_accessibility(page, "mfa-set-up")
    secret = page.locator("#setup-key").inner_text().replace(" ", "")
    code_field = page.get_by_label("Enter the 6-digit code from your app")

    code_field.fill(a_wrong_code(secret))
    page.get_by_role("button", name="Continue").click()
    expect(heading(page)).to_have_text("Set up your authenticator app")
    expect(code_field).to_have_accessible_description(re.compile("The code is not right"))
    check_accessibility(page, "mfa-set-up-wrong-code")

    used_step = time_step(utcnow())
    code_field.fill(pyotp.TOTP(secret).generate_otp(used_step))
    page.get_by_role("button", name="Continue").click()
    expect(heading(page)).to_have_text("Save your recovery codes")
    codes = page.get_by_role("list", name="Your recovery codes").get_by_role("listitem")
    expect(codes).to_have_count(10)
    recovery_codes = codes.all_inner_texts()
    expect(page.get_by_text("You will not see these codes again")).to_be_visible()
    check_accessibility(page, "mfa-recovery-codes")
    page.get_by_role("link", name="I have saved my codes, continue").click()
    expect(heading(page)).to_have_text("Staff home")
    sign_out(page)

    # Next time: the password, then a code from the app (a mistyped one first).
    password_step(page, email)
    expect(heading(page)).to_have_text("Enter the code from your authenticator app")
    check_accessibility(page, "mfa-code")
    page.get_by_label("Security code").fill(a_wrong_code(secret))
    page.get_by_role("button", name="Continue").click()
    expect(page).to_have_title(re.compile(r"^Error: "))
    expect(page.get_by_label("Security code")).to_have_accessible_description(
        re.compile("The code is not right. Check it and try again. You have 4 more tries."))
    expect(page.get_by_role("alert").filter(has_text="There is a problem")).to_contain_text("The code is not right")
    check_accessibility(page, "mfa-code-wrong")
    # The code used to set up the app is spent: the app's next one (accepted a step early) works.
    next_step = max(time_step(utcnow()), used_step + 1)
    page.get_by_label("Security code").fill(pyotp.TOTP(secret).generate_otp(next_step))
    page.get_by_role("button", name="Continue").click()
    expect(heading(page)).to_have_text("Staff home")
    sign_out(page)

    # Without the phone: a recovery code.
    password_step(page, email)
    page.get_by_role("link", name="I cannot use my app: use a recovery code").click()
    expect(heading(page)).to_have_text("Use a recovery code")
    check_accessibility(page, "mfa-recovery-code")
    page.get_by_label("Recovery code").fill(recovery_codes[0])
    page.get_by_role("button", name="Continue").click()
    expect(heading(page)).to_have_text("Staff home")
    expect(page.get_by_role("main")).to_contain_text("You used a recovery code. You have 9 left.")
    check_accessibility(page, "staff-home-after-recovery-code")


def test_an_admin_resets_a_second_factor(db, new_page):
    with db.transaction() as s:
        admin = factories.create_staff(s, role=Role.ADMIN)
        rita = factories.create_staff(s, role=Role.RECEPTION, display_name="Rita Reception")
        admin_email, admin_secret, rita_email = admin.email, admin.totp_secret, rita.email

    page = new_page()
    password_step(page, admin_email)
    page.get_by_label("Security code").fill(pyotp.TOTP(admin_secret).now())
    page.get_by_role("button", name="Continue").click()
    expect(heading(page)).to_have_text("Staff home")
    page.get_by_role("link", name="Admin tasks").click()
    page.get_by_role("link", name="Staff accounts").click()
    expect(heading(page)).to_have_text("Staff accounts")
    check_accessibility(page, "staff-accounts")
    page.get_by_role("link", name="Rita Reception").click()
    expect(heading(page)).to_have_text("Rita Reception")

    # The reset takes the password too, and gives a set-up link to pass on in person or by phone.
    page.get_by_role("button", name="Reset second factor").click()
    expect(heading(page)).to_have_text("Give Rita Reception their set-up link")
    banner = page.get_by_role("alert").filter(has_text="Success")
    expect(banner).to_contain_text("The second factor of Rita Reception is reset")
    expect(page.get_by_role("main")).to_contain_text("Give this link to Rita Reception in person or by phone")
    check_accessibility(page, "staff-reset-set-up-link")
    link = page.locator("#set-up-link").inner_text()
    # Refreshing the page sends the reset again: nothing more is done, and the page says so.
    page.reload()
    expect(heading(page)).to_have_text("A set-up link for Rita Reception was made already")
    expect(page.locator("#set-up-link")).to_have_count(0)
    check_accessibility(page, "staff-set-up-link-made-already")
    page.get_by_role("link", name="Back to Rita Reception").click()
    expect(page.get_by_role("main")).to_contain_text("Waiting for set-up")
    expect(page.get_by_role("main")).to_contain_text("Not set up")
    expect(page.get_by_role("button", name="Make a new set-up link")).to_be_visible()
    check_accessibility(page, "staff-account-after-reset")

    # Whoever has the old password gets no further than the sign-in page.
    stranger = new_page()
    password_step(stranger, rita_email)
    expect(heading(stranger)).to_have_text("Sign in")
    expect(stranger.get_by_role("main")).to_contain_text("Your email address, mobile number or password is not right")

    # Rita, with the link: a new password, then a new app.
    rita_page = new_page()
    rita_page.goto(urlsplit(link).path)
    expect(heading(rita_page)).to_have_text("Set up your staff account")
    rita_page.get_by_label("Create a password").fill("orange harbour lantern")
    rita_page.get_by_label("Type your password again").fill("orange harbour lantern")
    rita_page.get_by_role("button", name="Save password and continue").click()
    expect(heading(rita_page)).to_have_text("Set up your authenticator app")
    secret = rita_page.locator("#setup-key").inner_text().replace(" ", "")
    rita_page.get_by_label("Enter the 6-digit code from your app").fill(pyotp.TOTP(secret).now())
    rita_page.get_by_role("button", name="Continue").click()
    expect(heading(rita_page)).to_have_text("Save your recovery codes")
    rita_page.get_by_role("link", name="I have saved my codes, continue").click()
    expect(heading(rita_page)).to_have_text("Staff home")
