"""Reception at phone size: find a patient by search, open their record, move their appointment, then see the
queues and the day and week view; axe-core on every page."""

from __future__ import annotations

import re

from playwright.sync_api import expect
from sqlalchemy import select

from portal.appointments.models import Appointment
from portal.auth.models import Role
from portal.templating import local_date
from tests import factories
from tests.appointments import factories as appt
from tests.e2e.conftest import check_accessibility
from tests.e2e.test_thin_path import create_staff, expect_success_banner, heading, sign_in


def _arrange(db) -> dict:
    with db.transaction() as s:
        patient = factories.create_patient(s, given_name="Rosalind", family_name="Franklin-Reyes",
                                           interpreter_language="Spanish")
        venue = factories.create_venue(s, name="Archway Health Centre", short_name="Archway HC")
        clinician = appt.create_clinician(s)
        booked = appt.create_slot(s, starts_at=appt.days_ahead(4, 10), clinician=clinician, venue=venue)
        later = appt.create_slot(s, starts_at=appt.days_ahead(6, 14), clinician=clinician, venue=venue)
        appointment = appt.book(s, patient, booked)
        return {"patient_id": patient.id, "appointment_id": appointment.id, "later_day": local_date(later.starts_at),
                "later_slot": later.id, "nhs": patient.nhs_number_display}


def test_reception_finds_a_patient_and_moves_their_appointment(db, new_page):
    data = _arrange(db)
    email, secret = create_staff(db, Role.RECEPTION)
    page = new_page()
    sign_in(page, email, who="reception-desk", totp_secret=secret)

    page.goto("/staff")
    page.locator("#maincontent").get_by_role("link", name="Patients", exact=True).click()
    expect(heading(page)).to_have_text("Patients")
    check_accessibility(page, "reception-patients")

    # An empty search is refused next to the box.
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("alert").filter(has_text="There is a problem")).to_contain_text("Enter a name")
    check_accessibility(page, "reception-search-error")

    page.get_by_label("Search for a patient").fill("franklin")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("heading", level=2, name="1 patient found")).to_be_visible()
    check_accessibility(page, "reception-search-results")
    page.get_by_role("link", name="FRANKLIN-REYES, Rosalind").click()

    expect(heading(page)).to_have_text("Rosalind Franklin-Reyes")
    expect(page.get_by_role("main")).to_contain_text("Interpreter: Spanish")
    expect(page.get_by_role("main")).to_contain_text(data["nhs"])
    check_accessibility(page, "reception-record")
    no_overflow = page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert no_overflow, "the record is wider than the phone screen"

    page.get_by_role("link", name=re.compile(r"^Move the appointment on")).click()
    expect(heading(page)).to_have_text("Choose a new day")
    check_accessibility(page, "reception-reschedule-days")
    page.get_by_role("link", name=data["later_day"]).click()
    expect(heading(page)).to_have_text("Choose a new time")
    page.get_by_role("radio", name="2pm").check()
    check_accessibility(page, "reception-reschedule-times")
    page.get_by_role("button", name="Move the appointment").click()

    expect(heading(page)).to_have_text("Rosalind Franklin-Reyes")
    expect_success_banner(page, "appointment has moved")
    check_accessibility(page, "reception-record-moved")
    with db.transaction() as s:
        active = s.scalars(select(Appointment).where(Appointment.patient_id == data["patient_id"],
                                                     Appointment.status == "active")).one()
        assert active.slot_id == data["later_slot"]

    # The queues and the week, from the staff home.
    page.goto("/staff")
    page.locator("#maincontent").get_by_role("link", name="Queues").click()
    expect(heading(page)).to_have_text("Queues")
    check_accessibility(page, "reception-queues")
    page.get_by_role("link", name="Invitations not yet used").click()
    expect(heading(page)).to_have_text("Invitations not yet used")
    check_accessibility(page, "reception-invitations")
    page.goto("/staff")
    page.locator("#maincontent").get_by_role("link", name="Day and week view").click()
    expect(heading(page)).to_have_text(re.compile(r"^Week of "))
    check_accessibility(page, "reception-week")
