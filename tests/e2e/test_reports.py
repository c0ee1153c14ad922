"""Service reports in a real browser at phone size (390×844): a receptionist opens every report from the staff
home, filters one, and meets a filter mistake. axe checks every page, and no page scrolls sideways."""

from __future__ import annotations

from playwright.sync_api import expect

from portal import synth
from portal.auth.models import Role
from portal.reports.forms import MONTHS_AHEAD
from portal.reports.pages import PAGES
from tests.e2e.conftest import check_accessibility
from tests.e2e.test_thin_path import create_staff, heading, sign_in


def test_reception_reads_every_report_on_a_phone(db, domain, page):
    with db.transaction() as s:
        synth.generate(s, 150, seed=5, domain=domain)
    email, secret = create_staff(db, Role.RECEPTION)
    sign_in(page, email, who="reception", totp_secret=secret)
    expect(heading(page)).to_have_text("Staff home")
    page.get_by_role("link", name="Service reports").click()
    expect(heading(page)).to_have_text("Service reports")
    check_accessibility(page, "reports-index")

    for name, report in PAGES.items():
        page.goto(f"/staff/reports/{name}")
        expect(heading(page)).to_have_text(report.title)
        chart = page.locator(".portal-chart-box svg").first
        expect(chart).to_have_attribute("role", "img")
        table = page.get_by_role("region", name=f"{report.title}: every figure")
        expect(table).to_be_visible()
        check_accessibility(page, f"report-{name}")

    # Filter the texts report to one team, from last month: the table shows two months.
    page.goto("/staff/reports/texts")
    page.get_by_label("Team").select_option(label="Haringey")
    this_month = page.get_by_label("From").locator("option").count() - 1 - MONTHS_AHEAD
    page.get_by_label("From").select_option(index=this_month - 1)
    page.get_by_role("button", name="Show the report").click()
    expect(page.get_by_role("region", name="Texts sent and their cost: every figure").locator("tbody tr")
           ).to_have_count(2)
    check_accessibility(page, "report-texts-filtered")

    # A range that ends before it starts: the message sits next to the field, and in the summary.
    page.get_by_label("From").select_option(index=this_month)
    page.get_by_label("To").select_option(index=this_month - 2)
    page.get_by_role("button", name="Show the report").click()
    expect(page.locator(".nhsuk-error-summary")).to_contain_text("The last month must be the same as the first")
    expect(page.locator("#last_month-error")).to_contain_text("The last month must be the same as the first")
    check_accessibility(page, "report-texts-error")
