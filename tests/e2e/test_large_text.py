"""A patient, or a staff member, who has set their phone's text size to 200% (WCAG 1.4.4 on a 320 CSS px screen,
WCAG 1.4.10's width): no page scrolls sideways. The design system sizes its text in rem, so doubling the root font
size is what a browser's text size setting does."""

from __future__ import annotations

from portal.auth.models import Role
from tests import factories
from tests.e2e.test_thin_path import sign_in

PAGES = ["/", "/services", "/services/t1-group", "/bookings", "/appointments", "/self-care", "/questionnaires",
         "/diary", "/goals/new", "/flare-up-plan", "/profile", "/account"]


def _too_wide(page) -> int:
    page.evaluate("() => { document.documentElement.style.fontSize = '200%'; }")
    return page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")


def test_no_patient_page_scrolls_sideways_at_double_text_size_on_a_small_phone(db, new_page):
    with db.transaction() as s:
        user = factories.create_patient_user(s)
        factories.create_cohort(s)
        mobile = user.patient.mobile
    page = new_page()
    page.set_viewport_size({"width": 320, "height": 800})
    page.goto("/sign-in")
    too_wide = {"/sign-in": _too_wide(page)}
    sign_in(page, mobile, who="large-text-patient")
    for url in PAGES:
        page.goto(url)
        too_wide[url] = _too_wide(page)
    assert {url: px for url, px in too_wide.items() if px > 0} == {}


STAFF_PAGES = ["/staff", "/staff/patients", "/staff/admin/venues", "/staff/admin/staff-accounts",
               "/staff/admin/configuration", "/staff/courses", "/staff/waiting-lists"]


def test_no_staff_page_with_a_table_scrolls_sideways_at_double_text_size_on_a_small_phone(db, new_page):
    with db.transaction() as s:
        admin = factories.create_staff(s, role=Role.ADMIN)
        factories.create_cohort(s)
        # Communication needs show as a warning card on the record and as tags in lists.
        patient = factories.create_patient(s, family_name="Kelly", needs_large_print=True,
                                           interpreter_language="Kurdish (Sorani) and Arabic")
        email, secret = admin.email, admin.totp_secret
        pages = [*STAFF_PAGES, f"/staff/patients/{patient.id}", "/staff/patients?q=kelly"]
    page = new_page()
    page.set_viewport_size({"width": 320, "height": 800})
    sign_in(page, email, who="large-text-admin", totp_secret=secret)
    too_wide = {}
    for url in pages:
        page.goto(url)
        too_wide[url] = _too_wide(page)
    assert {url: px for url, px in too_wide.items() if px > 0} == {}


def test_a_stacked_table_cell_keeps_its_line_breaks_on_a_phone(db, new_page):
    """A service's name, a <br> and its key: the key starts a line of its own below the name."""
    with db.transaction() as s:
        admin = factories.create_staff(s, role=Role.ADMIN)
        email, secret = admin.email, admin.totp_secret
    page = new_page()
    sign_in(page, email, who="stacked-cells-admin", totp_secret=secret)
    page.goto("/staff/admin/configuration")
    cell = page.locator("main table tbody td").filter(has=page.locator("code")).first
    heading_box = cell.locator(".nhsuk-table-responsive__heading").bounding_box()
    key_box = cell.locator("code").bounding_box()
    assert key_box["y"] >= heading_box["y"] + heading_box["height"] - 1
