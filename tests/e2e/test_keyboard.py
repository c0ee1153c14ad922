"""Keyboard-only, with scripts off: the portal runs no JavaScript of its own, so what NHS.UK's scripts would
do for the skip link and the error summary must come from the markup alone."""

from __future__ import annotations

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


def test_an_error_summary_link_takes_focus_to_the_wrong_box_of_an_optional_date(db, new_page):
    with db.transaction() as s:
        admin = factories.create_staff(s, role=Role.ADMIN)
        email, secret = admin.email, admin.totp_secret
    page = new_page(javascript=False)
    page.goto("/sign-in")
    page.get_by_label("Email address or mobile number").fill(email)
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label("Security code").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Continue").click()
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
