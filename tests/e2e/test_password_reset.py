"""Forgotten password in a real browser at phone size, and the answer a locked account gets, with axe on
every page."""

from __future__ import annotations

import datetime as dt
import re

from playwright.sync_api import Page, expect
from sqlalchemy import select, update

from portal.auth.models import User
from portal.db import utcnow
from portal.messaging.models import SmsMessage
from tests import factories
from tests.e2e.conftest import check_accessibility

REFUSED = "Your email address, mobile number or password is not right"


def heading(page: Page):
    return page.get_by_role("heading", level=1)


def create_patient_user(db, **kw) -> dict:
    with db.transaction() as s:
        user = factories.create_patient_user(s, **kw)
        return {"id": user.id, "patient_id": user.patient_id, "mobile": user.patient.mobile,
                "given_name": user.patient.given_name}


def texted_code(db, patient_id: int) -> str:
    with db.transaction() as s:
        body = s.scalars(select(SmsMessage.body).where(
            SmsMessage.patient_id == patient_id, SmsMessage.kind == "password_reset")).one()
    match = re.search(r"\b(\d{6})\b", body)
    assert match, f"no code in the text: {body!r}"
    return match.group(1)


def expect_error(page: Page, label: str, message: str) -> None:
    """The message sits next to its field (as its accessible description) and in the summary."""
    expect(page).to_have_title(re.compile(r"^Error: "))
    expect(page.get_by_label(label, exact=True)).to_have_accessible_description(re.compile(re.escape(message)))
    summary = page.get_by_role("alert").filter(has_text="There is a problem")
    expect(summary.get_by_role("link", name=message)).to_be_visible()


def test_forgotten_password_code_new_password_signed_in(db, new_page):
    patient = create_patient_user(db)
    page = new_page()

    page.goto("/sign-in")
    expect(heading(page)).to_have_text("Sign in")
    check_accessibility(page, "reset-sign-in")
    page.get_by_role("link", name="Forgotten your password?").click()

    expect(heading(page)).to_have_text("Reset your password")
    check_accessibility(page, "reset-ask")
    page.get_by_role("button", name="Send me a code").click()
    expect_error(page, "Mobile number or email address", "Enter your mobile number or email address")
    check_accessibility(page, "reset-ask-empty")
    page.get_by_label("Mobile number or email address").fill("07700 " + patient["mobile"][-6:])
    page.get_by_role("button", name="Send me a code").click()

    expect(heading(page)).to_have_text("Enter the code we sent you")
    expect(page.get_by_text("If the details match an account, we have sent a 6-digit code")).to_be_visible()
    check_accessibility(page, "reset-code")
    code = texted_code(db, patient["patient_id"])
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    page.get_by_label("Code", exact=True).fill(wrong)
    page.get_by_role("button", name="Continue").click()
    expect_error(page, "Code", "The code is not right, or it has expired. Check the text, or ask for a new code")
    check_accessibility(page, "reset-code-wrong")
    page.get_by_label("Code", exact=True).fill(code)
    page.get_by_role("button", name="Continue").click()

    expect(heading(page)).to_have_text("Choose a new password")
    check_accessibility(page, "reset-new-password")
    page.get_by_label("New password").fill("password1")
    page.get_by_label("Type your password again").fill("password1")
    page.get_by_role("button", name="Save password and sign in").click()
    expect_error(page, "New password",
                 "Lots of people use this password. Try 3 or more random words you will remember.")
    check_accessibility(page, "reset-new-password-weak")
    page.get_by_label("New password").fill("violet harbour lantern")
    page.get_by_label("Type your password again").fill("violet harbour lantern")
    page.get_by_role("button", name="Save password and sign in").click()

    expect(heading(page)).to_have_text(f"Hello {patient['given_name']}")
    expect(page.get_by_role("alert").filter(has_text="Success")).to_contain_text(
        "Your password has been changed. You are signed in.")
    check_accessibility(page, "reset-signed-in")

    page.get_by_role("link", name="Your account").click()
    expect(heading(page)).to_have_text("Your account")
    expect(page.get_by_role("button", name="Sign out of all devices")).to_be_visible()
    check_accessibility(page, "account")
    page.get_by_role("link", name="Change password").click()
    expect(heading(page)).to_have_text("Change your password")
    check_accessibility(page, "change-password")


def test_a_locked_account_gets_the_usual_sign_in_message(db, new_page):
    patient = create_patient_user(db)
    with db.transaction() as s:
        s.execute(update(User).where(User.id == patient["id"]).values(
            failed_sign_ins=5, locked_until=utcnow() + dt.timedelta(minutes=10)))

    page = new_page()
    page.goto("/sign-in")
    check_accessibility(page, "locked-sign-in")
    page.get_by_label("Email address or mobile number").fill(patient["mobile"])
    page.get_by_label("Password").fill(factories.PASSWORD)  # the right password: still refused while locked
    page.get_by_role("button", name="Sign in").click()

    expect(heading(page)).to_have_text("Sign in")
    expect_error(page, "Password", REFUSED)
    expect(page.get_by_role("link", name="Forgotten your password?")).to_be_visible()
    check_accessibility(page, "locked-sign-in-refused")
