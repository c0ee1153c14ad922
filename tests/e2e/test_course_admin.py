"""Running a course in a real browser at phone size: an admin creates a cohort whose weeks include a bank
holiday, and a receptionist moves that session; the booked patient is texted. An admin changes a cohort's places
and then cancels it. axe checks every page."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

from playwright.sync_api import expect
from sqlalchemy import select, update

from portal.auth.models import Role
from portal.booking import services
from portal.booking.holidays import england_bank_holiday
from portal.booking.models import Booking, Cohort, CohortSession
from portal.dates import london_today
from portal.db import utcnow
from portal.messaging.models import SmsMessage
from portal.templating import local_date
from tests import factories
from tests.e2e.conftest import check_accessibility
from tests.e2e.test_thin_path import create_staff, expect_success_banner, fill_date, heading, sign_in

LONDON = ZoneInfo("Europe/London")


def _next_christmas() -> dt.date:
    today = london_today(utcnow())
    christmas = dt.date(today.year, 12, 25)
    return christmas if christmas - dt.timedelta(weeks=2) > today else dt.date(today.year + 1, 12, 25)


def _working_day_after(day: dt.date) -> dt.date:
    day += dt.timedelta(days=1)
    while england_bank_holiday(day) or day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return day


def test_admin_creates_a_cohort_and_reception_moves_its_bank_holiday_session(db, new_page):
    admin, admin_secret = create_staff(db, Role.ADMIN)
    reception, reception_secret = create_staff(db, Role.RECEPTION)
    with db.transaction() as s:
        factories.create_venue(s, name="Finsbury Park Centre", short_name="Finsbury Pk",
                               address="1 Seven Sisters Road, London N4 3LS")
        factories.create_staff(s, role=Role.FACILITATOR, display_name="Fran Okafor")
    christmas = _next_christmas()
    first = christmas - dt.timedelta(weeks=2)

    # a) The admin finds the courses from the staff home and creates a cohort, correcting one mistake.
    page = new_page()
    sign_in(page, admin, who="admin", totp_secret=admin_secret)
    expect(heading(page)).to_have_text("Staff home")
    page.get_by_role("link", name="Courses", exact=True).click()
    expect(heading(page)).to_have_text("Courses")
    check_accessibility(page, "courses-empty")
    page.get_by_role("link", name="Create a cohort").click()
    expect(heading(page)).to_have_text("Create a cohort")
    check_accessibility(page, "create-cohort")

    page.get_by_label("Course").select_option(label="Eight-week Pain Management Group (Tier 1)")
    page.get_by_label("Venue").select_option(label="Finsbury Park Centre")
    fill_date(page, "Date of the first session", first)
    page.get_by_label("Start time").fill("6pm")
    page.get_by_role("checkbox", name="Fran Okafor").check()
    page.get_by_role("button", name="Create cohort").click()

    expect(page).to_have_title(re.compile(r"^Error: "))
    message = "Start time must be a time in 24-hour format, like 18:00"
    expect(page.get_by_role("alert").filter(has_text="There is a problem").get_by_role(
        "link", name=message)).to_have_attribute("href", "#start_time")
    expect(page.get_by_label("Start time")).to_have_accessible_description(re.compile(re.escape(message)))
    expect(page.get_by_role("checkbox", name="Fran Okafor")).to_be_checked()
    check_accessibility(page, "create-cohort-error")
    page.get_by_label("Start time").fill("18:00")
    page.get_by_role("button", name="Create cohort").click()

    expect(page).to_have_url(re.compile(r"/staff/courses/\d+$"))
    expect(heading(page)).to_have_text(f"Cohort starting {local_date(first)}")
    expect_success_banner(page, "is ready to book")
    expect(page.get_by_text("Bank holiday: Christmas Day — move this session")).to_be_visible()
    expect(page.get_by_role("main")).to_contain_text("Fran Okafor")
    check_accessibility(page, "cohort-created")
    cohort_id = int(page.url.rsplit("/", 1)[1])

    # A patient books a place.
    with db.transaction() as s:
        patient = factories.create_patient(s, tier=1, given_name="Mina", family_name="Shah")
        s.add(Booking(patient_id=patient.id, service_key="t1-group", cohort_id=cohort_id))
        s.execute(update(Cohort).where(Cohort.id == cohort_id).values(seats_taken=1))
        christmas_session = s.scalars(select(CohortSession).where(
            CohortSession.cohort_id == cohort_id, CohortSession.number == 3)).one()
        assert christmas_session.bank_holiday == "Christmas Day"
        patient_id, session_id = patient.id, christmas_session.id

    # b) Reception moves the Christmas Day session to the next working day.
    desk = new_page()
    sign_in(desk, reception, who="reception", totp_secret=reception_secret)
    desk.goto("/staff/courses")
    check_accessibility(desk, "courses-list")
    desk.get_by_role("link", name=re.compile(f"starting {re.escape(local_date(first))}")).click()
    expect(heading(desk)).to_have_text(f"Cohort starting {local_date(first)}")
    expect(desk.get_by_role("link", name="Mina Shah")).to_have_attribute("href", f"/staff/patients/{patient_id}")
    check_accessibility(desk, "cohort-reception")
    desk.get_by_role("link", name="Move session 3").click()
    expect(heading(desk)).to_have_text("Move session 3")
    expect(desk.get_by_label("New start time")).to_have_value("18:00")
    check_accessibility(desk, "move-session")
    new_day = _working_day_after(christmas)
    fill_date(desk, "New date", new_day)
    desk.get_by_label("Why is the session moving?").fill("The centre is closed on Christmas Day")
    desk.get_by_role("button", name="Move session").click()

    expect(heading(desk)).to_have_text(f"Cohort starting {local_date(first)}")
    expect_success_banner(desk, "We have texted 1 patient.")
    expect(desk.locator("#session-3")).to_contain_text(local_date(new_day))
    expect(desk.locator("#session-3")).to_contain_text("The centre is closed on Christmas Day")
    expect(desk.get_by_text("Bank holiday: Christmas Day — move this session")).to_have_count(0)
    check_accessibility(desk, "session-moved")

    with db.transaction() as s:
        moved = s.get(CohortSession, session_id)
        assert moved.starts_at == dt.datetime.combine(new_day, dt.time(18), tzinfo=LONDON).astimezone(dt.UTC)
        [text] = s.scalars(select(SmsMessage).where(SmsMessage.kind == "session_moved")).all()
        assert text.patient_id == patient_id and "has moved to" in text.body


def test_admin_changes_a_cohorts_places_then_cancels_it_on_a_phone(db, new_page, session, domain):
    admin, admin_secret = create_staff(db, Role.ADMIN)
    cohort = factories.create_cohort(session, capacity=4)
    for name in ("Ola", "Priya", "Sam"):
        patient = factories.create_patient(session, given_name=name, family_name="Booked")
        services.book_seat(session, domain, patient, cohort.id, now=utcnow())
    session.commit()
    cohort_id, first = cohort.id, cohort.first_date

    page = new_page()
    sign_in(page, admin, who="admin", totp_secret=admin_secret)
    page.goto(f"/staff/courses/{cohort_id}")
    expect(heading(page)).to_have_text(f"Cohort starting {local_date(first)}")
    check_accessibility(page, "cohort-admin")

    # a) Fewer places than are booked: refused, with the numbers next to the field.
    page.get_by_role("link", name="Change the number of places").click()
    expect(heading(page)).to_have_text("Change the number of places")
    check_accessibility(page, "cohort-places")
    page.get_by_label("Number of places").fill("2")
    page.get_by_role("button", name="Save number of places").click()
    expect(page).to_have_title(re.compile(r"^Error: "))
    message = "Number of places must be 3 or more: 3 places are booked"
    expect(page.get_by_label("Number of places")).to_have_accessible_description(re.compile(re.escape(message)))
    check_accessibility(page, "cohort-places-error")
    page.get_by_label("Number of places").fill("6")
    page.get_by_role("button", name="Save number of places").click()
    expect_success_banner(page, "The cohort now has 6 places.")
    expect(page.get_by_role("main")).to_contain_text("3 of 6")

    # b) Cancelling: the confirmation says who will be texted; a missing reason is asked for.
    page.get_by_role("button", name="Cancel this cohort").click()
    expect(heading(page)).to_have_text("Cancel this cohort")
    expect(page.get_by_role("main")).to_contain_text("We will text 3 patients booked on this cohort")
    check_accessibility(page, "cancel-cohort")
    page.get_by_role("button", name="Cancel this cohort").click()
    expect(page).to_have_title(re.compile(r"^Error: "))
    check_accessibility(page, "cancel-cohort-error")
    page.get_by_label("Why is the cohort cancelled?").fill("The facilitators are both on leave")
    page.get_by_role("button", name="Cancel this cohort").click()
    expect_success_banner(page, "We have texted 3 patients.")
    expect(page.get_by_role("main")).to_contain_text("This cohort is cancelled.")
    expect(page.get_by_role("button", name="Cancel this cohort")).to_have_count(0)
    check_accessibility(page, "cohort-cancelled")

    session.expire_all()
    assert session.get(Cohort, cohort_id).status == "cancelled"
    texted = session.scalars(select(SmsMessage.body).where(SmsMessage.kind == "booking_cancelled")).all()
    assert len(texted) == 3 and all("is cancelled" in body for body in texted)
