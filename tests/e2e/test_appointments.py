"""A patient books a 1:1 appointment, moves it, then cancels it, at phone size, with axe on every page."""

from __future__ import annotations

import datetime as dt
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


def test_admin_sets_up_a_clinic_and_reception_books_past_the_limit(db, new_page):
    from portal.auth.models import Role
    from tests.e2e.test_thin_path import create_staff

    admin, admin_secret = create_staff(db, Role.ADMIN)
    reception, reception_secret = create_staff(db, Role.RECEPTION)
    with db.transaction() as s:
        clinician = appt.create_clinician(s, display_name="Dr Amara Okafor")
        factories.create_venue(s, name="Whittington Hospital, Jenner Building")
        patient = factories.create_patient(s, tier=2, team="whittington", given_name="Grace", family_name="Hopper")
        booked = appt.create_slot(s, service_key="t2-physio", starts_at=appt.days_ahead(2, 9), clinician=clinician)
        first = appt.book(s, patient, booked)
        free = appt.create_slot(s, service_key="t2-physio", starts_at=booked.starts_at + dt.timedelta(minutes=30),
                                clinician=clinician)
        patient_id, clinician_id, appointment_id = patient.id, clinician.id, first.id

    # The admin adds a weekly clinic (after one mistake), and sees its slots.
    page = new_page()
    sign_in(page, admin, who="admin", totp_secret=admin_secret)
    page.goto("/staff/admin/appointments")
    expect(heading(page)).to_have_text("Clinics and appointment slots")
    check_accessibility(page, "admin-clinics-empty")
    page.get_by_role("link", name="Add a weekly clinic").click()
    page.get_by_label("Clinician").select_option(label="Dr Amara Okafor")
    page.get_by_label("Service").select_option(label="Tier 2: Pain management physiotherapy")
    page.get_by_label("Venue").select_option(label="Whittington Hospital, Jenner Building")
    page.get_by_role("radio", name="Thursday").check()
    page.get_by_label("Start time").fill("13:00")
    page.get_by_label("End time").fill("12:00")
    page.get_by_label("Slot length in minutes").fill("45")
    group = page.get_by_role("group", name="First date")
    today = appt.days_ahead(0).astimezone(appt.LONDON).date()
    group.get_by_label("Day").fill(str(today.day))
    group.get_by_label("Month").fill(str(today.month))
    group.get_by_label("Year").fill(str(today.year))
    page.get_by_role("button", name="Add clinic").click()
    expect(page.get_by_label("End time")).to_have_accessible_description(
        re.compile("End time must be after the start time"))
    expect(page.get_by_label("Team", exact=True)).to_have_accessible_description(re.compile("Select the team"))
    check_accessibility(page, "admin-clinic-errors")
    page.get_by_label("Team", exact=True).select_option(label="Whittington Health Secondary Care Pain Team")
    page.get_by_label("End time").fill("16:00")
    page.get_by_role("button", name="Add clinic").click()
    expect_success_banner(page, "Clinic added")
    expect(page.get_by_role("table")).to_contain_text("Thursday 13:00 to 16:00, 45-minute slots")
    check_accessibility(page, "admin-clinics")
    day = booked.starts_at.astimezone(appt.LONDON).date()
    page.goto(f"/staff/admin/appointments/slots?clinician={clinician_id}&day={day}")
    expect(page.get_by_role("main")).to_contain_text("Grace Hopper")
    check_accessibility(page, "admin-slots")
    page.locator(f"#slot-{free.id}").get_by_role("link", name=re.compile(r"^Block")).click()
    expect(heading(page)).to_have_text("Block a slot")
    check_accessibility(page, "admin-block-slot")
    page.get_by_label("Why is this slot blocked?").fill("Team training")
    page.get_by_role("button", name="Block slot").click()
    expect_success_banner(page, "is blocked")
    expect(page.locator(f"#slot-{free.id}")).to_contain_text("Team training")
    check_accessibility(page, "admin-slots-blocked")
    page.goto("/staff/admin/appointments/leave/new")
    page.get_by_role("button", name="Add leave").click()
    expect(page.get_by_role("group", name="First day of leave")).to_have_accessible_description(
        re.compile("Enter first day of leave"))
    check_accessibility(page, "admin-leave-errors")

    # Reception books the patient a second physiotherapy appointment: past the limit, so with a reason.
    staff = new_page()
    sign_in(staff, reception, who="reception", totp_secret=reception_secret)
    staff.goto(f"/staff/patients/{patient_id}/appointments/new")
    expect(heading(staff)).to_have_text("Book an appointment")
    check_accessibility(staff, "reception-appointment-services")
    staff.get_by_role("link", name="Pain management physiotherapy").click()
    check_accessibility(staff, "reception-appointment-days")
    staff.get_by_role("main").get_by_role("link").nth(0).click()
    expect(heading(staff)).to_have_text("Choose a time")
    staff.get_by_role("radio").first.check()
    staff.get_by_role("button", name="Book this appointment").click()
    expect(staff.get_by_label("Reason for overriding")).to_have_accessible_description(
        re.compile("Give a reason for booking more than the limit"))
    check_accessibility(staff, "reception-appointment-limit")
    staff.get_by_role("radio").first.check()
    staff.get_by_label("Reason for overriding").fill("Clinician asked for a follow-up this week")
    staff.get_by_role("button", name="Book this appointment").click()
    expect(heading(staff)).to_have_text("Grace Hopper")
    expect_success_banner(staff, "Pain management physiotherapy booked for Grace Hopper")
    staff.goto(f"/staff/patients/{patient_id}/appointments/{appointment_id}/reschedule")
    expect(heading(staff)).to_have_text("Choose a new day")
    check_accessibility(staff, "reception-reschedule-days")
    staff.goto(f"/staff/patients/{patient_id}/appointments/{appointment_id}/cancel")
    expect(heading(staff)).to_have_text("Cancel the appointment")
    staff.get_by_role("button", name="Cancel the appointment").click()
    expect(staff.get_by_label("Why is the appointment being cancelled?")).to_have_accessible_description(
        re.compile("Enter why the appointment is being cancelled"))
    check_accessibility(staff, "reception-cancel-errors")
    with db.transaction() as s:
        reasons = s.scalars(select(Appointment.override_reason).where(Appointment.patient_id == patient_id)).all()
        assert sorted(r or "" for r in reasons) == ["", "Clinician asked for a follow-up this week"]


def test_reception_cancels_inside_the_cut_off_and_says_who_asked(db, new_page):
    from portal.attendance.models import Attendance
    from portal.auth.models import Role
    from portal.db import utcnow
    from tests.e2e.test_thin_path import create_staff

    reception, secret = create_staff(db, Role.RECEPTION)
    with db.transaction() as s:
        patient = factories.create_patient(s, given_name="Ada", family_name="Byron")
        soon = appt.book(s, patient, appt.create_slot(s, starts_at=utcnow() + dt.timedelta(hours=4)))
        patient_id, appointment_id = patient.id, soon.id
    page = new_page()
    sign_in(page, reception, who="reception", totp_secret=secret)
    page.goto(f"/staff/patients/{patient_id}/appointments/{appointment_id}/cancel")
    page.get_by_role("button", name="Cancel the appointment").click()
    expect(page.get_by_role("group", name="Who asked to cancel?")).to_have_accessible_description(
        re.compile("Select who asked to cancel"))
    check_accessibility(page, "reception-late-cancel-errors")
    page.get_by_label("Why is the appointment being cancelled?").fill("Phoned this morning: car broke down")
    page.get_by_label("Reason for overriding").fill("Same-day call")
    page.get_by_role("radio", name="The patient").check()
    page.get_by_role("button", name="Cancel the appointment").click()
    expect_success_banner(page, "appointment is cancelled")
    expect(page.get_by_role("main")).to_contain_text("late cancellation 1")
    check_accessibility(page, "reception-late-cancel-done")
    with db.transaction() as s:
        assert s.scalars(select(Attendance.mark).where(Attendance.appointment_id == appointment_id)).all() == [
            "late_cancellation"]
