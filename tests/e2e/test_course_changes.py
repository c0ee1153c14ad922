"""In a real browser at phone size: a full group, its waiting list and the offer; moving group; the
calendar; cancelling; and reception doing the same for a patient. axe runs on every page."""

from __future__ import annotations

from urllib.parse import urlsplit

from playwright.sync_api import expect
from sqlalchemy import select

from portal.auth.models import Role
from portal.booking import services
from portal.booking.models import Booking, Cohort
from portal.db import utcnow
from portal.patients.models import Patient
from tests import factories
from tests.e2e.conftest import check_accessibility
from tests.e2e.test_thin_path import create_cohort, create_patient_user, create_staff, sign_in


def fill_cohort(db, domain, cohort_id: int) -> list[int]:
    """Book other patients into every seat; their booking ids."""
    ids = []
    with db.transaction() as s:
        capacity = s.get(Cohort, cohort_id).capacity
        for _ in range(capacity):
            ids.append(services.book_seat(s, domain, factories.create_patient(s), cohort_id, now=utcnow()).id)
    return ids


def test_waiting_list_offer_move_calendar_and_cancel(db, domain, new_page):
    full = create_cohort(db, team=None, service_key="t1-group", weeks_ahead=2, venue="Finsbury Health Centre")
    later = create_cohort(db, team=None, service_key="t1-group", weeks_ahead=6, venue="Hornsey Central")
    holders = fill_cohort(db, domain, full["id"])
    patient = create_patient_user(db, tier=1)
    page = new_page()
    sign_in(page, patient["mobile"], who="patient")

    page.goto("/services/t1-group")
    check_accessibility(page, "courses-one-full")
    page.get_by_role("link", name="Join the waiting list").first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("This group is full")
    check_accessibility(page, "cohort-full-waiting-list")
    page.get_by_role("button", name="Join the waiting list").click()
    expect(page.get_by_text("There is a problem")).to_be_visible()
    check_accessibility(page, "waiting-list-error")
    page.get_by_label("Only this group").check()
    page.get_by_role("button", name="Join the waiting list").click()
    expect(page.get_by_text("number 1 on the waiting list", exact=False).first).to_be_visible()
    check_accessibility(page, "bookings-waiting")

    # Someone gives up their seat: the patient is offered it, and sees so on the home page.
    with db.transaction() as s:
        holder = s.get(Booking, holders[0])
        services.withdraw_seat(s, domain, s.get(Patient, holder.patient_id), holder.id, reason="x", now=utcnow())
    page.goto("/")
    page.get_by_role("link", name="Answer the offer").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("A place is free for you")
    check_accessibility(page, "offer")
    page.get_by_label("Yes, book me on this group").check()
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_text("You are booked on the group")).to_be_visible()

    # Move to the later group: it is booked before the old place goes. A full one shows, but cannot be chosen.
    other_full = create_cohort(db, team=None, service_key="t1-group", weeks_ahead=4, venue="Laurels Healthy Living")
    fill_cohort(db, domain, other_full["id"])
    page.get_by_role("link", name="Move to another group").click()
    expect(page.get_by_label(f"Group starting {other_full['starts']}")).to_be_disabled()
    check_accessibility(page, "move-group")
    page.get_by_label(f"Group starting {later['starts']}").check()
    page.get_by_role("button", name="Move my place").click()
    expect(page.get_by_text("You have moved to the new group")).to_be_visible()
    expect(page.get_by_text("Hornsey Central").first).to_be_visible()

    page.get_by_role("link", name="Add your bookings to your phone's calendar").click()
    check_accessibility(page, "calendar-settings")
    page.get_by_role("button", name="Make my calendar address").click()
    expect(page.get_by_role("link", name="Subscribe in your calendar app")).to_be_visible()
    check_accessibility(page, "calendar-address")
    feed = page.locator("code").inner_text()
    # The address is the portal's public one (PUBLIC_BASE_URL): fetch its path from the server under test.
    response = page.request.get(urlsplit(feed).path)
    assert response.ok and "TZID=Europe/London" in response.text()

    page.goto("/bookings")
    page.get_by_role("link", name="Cancel this place").click()
    check_accessibility(page, "cancel-place")
    page.get_by_role("button", name="Cancel my place").click()
    expect(page.get_by_text("Select why you are cancelling your place").first).to_be_visible()
    check_accessibility(page, "cancel-place-error")
    page.get_by_label("I cannot make the dates").check()
    page.get_by_role("button", name="Cancel my place").click()
    expect(page.get_by_text("is cancelled")).to_be_visible()
    with db.transaction() as s:
        assert s.scalar(select(Cohort.seats_taken).where(Cohort.id == later["id"])) == 0


def test_reception_books_moves_and_reorders_for_a_patient(db, domain, new_page):
    soon = create_cohort(db, team=None, service_key="t1-group", weeks_ahead=3, venue="Laurels Healthy Living")
    later = create_cohort(db, team=None, service_key="t1-group", weeks_ahead=7, venue="Whittington Hospital")
    with db.transaction() as s:
        patient = factories.create_patient(s, tier=1)
        patient_id, name = patient.id, patient.full_name
    email, secret = create_staff(db, Role.RECEPTION)
    page = new_page()
    sign_in(page, email, who="reception", totp_secret=secret)
    page.goto(f"/staff/patients/{patient_id}")
    page.get_by_role("link", name="Courses and waiting lists").click()
    check_accessibility(page, "staff-courses")
    page.get_by_role("link", name="Book a place on the Eight-week Pain Management Group").click()
    page.get_by_label(f"Group starting {soon['starts']}", exact=False).check()
    check_accessibility(page, "staff-book")
    page.get_by_role("button", name="Book a place").click()
    expect(page.get_by_text(f"{name} is booked")).to_be_visible()
    page.get_by_role("link", name="Move to another group").click()
    page.get_by_label(f"Group starting {later['starts']}", exact=False).check()
    page.get_by_role("button", name="Move to another group").click()
    expect(page.get_by_text(f"{name} has moved")).to_be_visible()
    check_accessibility(page, "staff-moved")
    page.goto("/staff/waiting-lists")
    check_accessibility(page, "staff-waiting-lists")
