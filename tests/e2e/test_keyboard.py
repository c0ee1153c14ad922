"""Keyboard-only, with scripts off: the portal runs no JavaScript of its own, so what NHS.UK's scripts would
do for the skip link and the error summary must come from the markup alone."""

from __future__ import annotations

import re

import pyotp
from playwright.sync_api import Page, expect

from portal.auth.models import Role
from tests import factories
from tests.e2e.test_thin_path import heading


def _focused(page: Page) -> str:
    return page.evaluate("() => document.activeElement.tagName.toLowerCase() + '#' + document.activeElement.id")


def _tab_to(page: Page, name: str) -> None:
    """Press Tab until the link or control named ``name`` has focus, as a keyboard user would."""
    for _ in range(60):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.textContent.trim()") == name:
            return
    raise AssertionError(f"Tab never reached {name!r}")


def test_the_skip_link_takes_focus_to_the_main_content(new_page):
    # Without NHS.UK's script, a skip link to a <main> that cannot take focus only scrolls: focus stays behind,
    # and VoiceOver on iOS goes on reading from the skip link.
    page = new_page(javascript=False)
    page.goto("/sign-in")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to main content")).to_be_focused()
    page.keyboard.press("Enter")
    assert _focused(page) == "main#maincontent"
    page.keyboard.press("Tab")
    expect(page.get_by_label("Email address or mobile number")).to_be_focused()


def _sign_in(page: Page, identifier: str, *, totp_secret: str | None = None) -> None:
    # As tests/e2e/test_thin_path.sign_in, less the axe check: axe is a script, and scripts are off.
    page.goto("/sign-in")
    page.get_by_label("Email address or mobile number").fill(identifier)
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    if totp_secret:
        page.get_by_label("Security code").fill(pyotp.TOTP(totp_secret).now())
        page.get_by_role("button", name="Continue").click()


def test_a_patient_books_a_seat_and_focus_starts_on_what_happened(db, new_page):
    with db.transaction() as s:
        mobile = factories.create_patient_user(s, tier=1).patient.mobile
        factories.create_cohort(s)
    page = new_page(javascript=False)
    _sign_in(page, mobile)
    page.goto("/services/t1-group")
    page.get_by_role("link", name=re.compile(r"^Choose this group")).first.click()
    page.get_by_role("button", name="Book my place").click()
    expect(heading(page)).to_have_text("My bookings")
    # NHS.UK's script would focus the banner; with none, the banner must take focus itself.
    expect(page.get_by_role("alert").filter(has_text="Success")).to_be_focused()


def test_an_error_summary_link_takes_focus_to_the_wrong_box_of_an_optional_date(db, new_page):
    with db.transaction() as s:
        admin = factories.create_staff(s, role=Role.ADMIN)
        email, secret = admin.email, admin.totp_secret
    page = new_page(javascript=False)
    _sign_in(page, email, totp_secret=secret)
    expect(heading(page)).to_have_text("Staff home")

    page.goto("/staff/admin/appointments/templates/new")
    page.get_by_role("group", name="Last date (optional)").get_by_label("Month").fill("14")
    page.get_by_role("button", name="Add clinic").click()
    # Focus starts on the summary (autofocus, no script), so Tab reaches its links first.
    expect(page.locator(".nhsuk-error-summary")).to_be_focused()
    message = page.locator(".nhsuk-error-summary a[href^='#valid_until']").inner_text().strip()
    _tab_to(page, message)
    page.keyboard.press("Enter")
    assert _focused(page) == "input#valid_until-day"
