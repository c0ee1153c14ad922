"""A patient books a 1:1 appointment, moves it, then cancels it, at phone size, with axe on every page."""

from __future__ import annotations

import re

from playwright.sync_api import expect
from sqlalchemy import select

from portal.appointments.models import Appointment, AppointmentSlot
from portal.templating import local_date
from tests import factories
from tests.appointments import factories as appt
from tests.e2e.conftest import check_accessibility
from tests.e2e.test_thin_path import expect_success_banner, heading, sign_in


def _arrange(db) -> dict:
    with db.transaction() as s:
        user = factories.create_patient_user(s, tier=1)
        venue = factories.create_venue(s, name="Finsbury Health Centre", short_name="Finsbury HC",
                                       address="17 Pine Street, London EC1R 0JH")
        clinician = appt.create_clinician(s)
        first = appt.create_slots(s, 2, first=appt.days_ahead(3, 10), clinician=clinician, venue=venue)
        later = appt.create_slot(s, starts_at=appt.days_ahead(5, 14), clinician=clinician, venue=venue)
        return {"mobile": user.patient.mobile, "patient_id": user.patient_id,
                "first_day": local_date(first[0].starts_at), "later_day": local_date(later.starts_at),
                "first_slot": first[0].id, "later_slot": later.id}


def test_a_patient_books_moves_and_cancels_an_appointment(db, new_page):
    data = _arrange(db)
    page = new_page()
    sign_in(page, data["mobile"], who="appointments-patient")
    page.goto("/appointments")
    expect(heading(page)).to_have_text("My appointments")
    expect(page.get_by_text("You have no appointments booked.")).to_be_visible()
    check_accessibility(page, "appointments-none")

    # Book: service, day, time, confirm.
    page.get_by_role("link", name="Book an appointment").click()
    expect(heading(page)).to_have_text("Book an appointment")
    check_accessibility(page, "appointment-services")
    page.get_by_role("link", name="Pain management physiotherapy").click()
    expect(heading(page)).to_have_text("Choose a day")
    check_accessibility(page, "appointment-days")
    page.get_by_role("link", name=data["first_day"]).click()
    expect(heading(page)).to_have_text("Choose a time")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("alert").filter(has_text="There is a problem")).to_contain_text("Select a time")
    check_accessibility(page, "appointment-times-error")
    page.get_by_role("radio", name="10:30am").check()
    check_accessibility(page, "appointment-times")
    page.get_by_role("button", name="Continue").click()
    expect(heading(page)).to_have_text("Check and book your appointment")
    main = page.get_by_role("main")
    expect(main).to_contain_text("Finsbury Health Centre")
    expect(main).to_contain_text("10:30am to 11am")
    check_accessibility(page, "appointment-confirm")
    page.get_by_role("button", name="Book my appointment").click()
    expect(heading(page)).to_have_text("My appointments")
    expect_success_banner(page, "Your pain management physiotherapy appointment is booked")
    expect(page.get_by_role("main")).to_contain_text(data["first_day"])
    check_accessibility(page, "appointments-booked")

    # Move it to another day: the old slot is released once the new one is taken.
    page.get_by_role("link", name=re.compile(r"^Move this appointment")).click()
    expect(heading(page)).to_have_text("Choose a new day")
    check_accessibility(page, "appointment-reschedule-days")
    page.get_by_role("link", name=data["later_day"]).click()
    expect(heading(page)).to_have_text("Choose a new time")
    page.get_by_role("radio", name="2pm").check()
    check_accessibility(page, "appointment-reschedule-times")
    page.get_by_role("button", name="Move my appointment").click()
    expect_success_banner(page, "appointment has moved")
    expect(page.get_by_role("main")).to_contain_text(data["later_day"])
    check_accessibility(page, "appointments-moved")
    with db.transaction() as s:
        statuses = dict(s.execute(select(AppointmentSlot.id, AppointmentSlot.status)).all())
        assert statuses[data["later_slot"]] == "booked" and statuses[data["first_slot"] + 1] == "open"

    # Cancel it, with a reason.
    page.get_by_role("link", name=re.compile(r"^Cancel this appointment")).click()
    expect(heading(page)).to_have_text("Cancel your appointment")
    page.get_by_role("button", name="Cancel my appointment").click()
    expect(page.get_by_role("group", name="Why are you cancelling?")).to_have_accessible_description(
        re.compile("Select why you are cancelling your appointment"))
    check_accessibility(page, "appointment-cancel-error")
    page.get_by_role("radio", name="I am feeling better").check()
    page.get_by_role("button", name="Cancel my appointment").click()
    expect_success_banner(page, "appointment is cancelled")
    expect(page.get_by_text("You have no appointments booked.")).to_be_visible()
    check_accessibility(page, "appointments-cancelled")
    with db.transaction() as s:
        assert sorted(s.scalars(select(Appointment.status).where(Appointment.patient_id == data["patient_id"]))) == [
            "cancelled", "moved"]
