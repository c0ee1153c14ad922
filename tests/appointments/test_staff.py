"""Reception books, moves and cancels for patients; admins manage clinics, leave and slots."""

import datetime as dt

import pytest
from sqlalchemy import func, select

from portal.appointments.models import Appointment, AppointmentSlot, AvailabilityTemplate, ClinicianLeave
from portal.attendance.models import Attendance
from portal.attendance.services import save_day_list
from portal.audit.models import AuditEvent
from portal.audit.services import Actor
from portal.dates import written_date
from portal.db import utcnow
from tests import factories
from tests.appointments import factories as appt
from tests.pages import csrf_token, error_for, get_page, parse


def _day(slot) -> str:
    return slot.starts_at.astimezone(appt.LONDON).date().isoformat()


def _post(client, url, data=None):
    token = csrf_token(get_page(client, url))
    return client.post(url, data={**(data or {}), "csrf_token": token})


def _audit(session, action):
    return session.scalars(select(AuditEvent).where(AuditEvent.action == action)).all()


def test_reception_books_a_staff_only_service_for_a_tier_2_patient(reception_client, session):
    patient = factories.create_patient(session, tier=2, team="whittington")
    slot = appt.create_slot(session, service_key="t2-psychology")
    base = f"/staff/patients/{patient.id}/appointments/new"
    services_page = get_page(reception_client, base)
    assert services_page.find("a", href=f"{base}/t2-psychology")
    assert not services_page.find("a", href=f"{base}/t1-physio")
    assert get_page(reception_client, f"{base}/t2-psychology").find("a", href=f"{base}/t2-psychology/{_day(slot)}")
    response = _post(reception_client, f"{base}/t2-psychology/{_day(slot)}", {"slot": str(slot.id)})
    assert response.status_code == 302 and response.headers["Location"] == f"/staff/patients/{patient.id}"
    appointment = session.scalars(select(Appointment)).one()
    assert (appointment.patient_id, appointment.booked_by_staff) == (patient.id, True)
    [event] = _audit(session, "appointment_booked")
    assert (event.actor_user_id, event.patient_id) == (reception_client.user.id, patient.id)
    assert "by staff" in event.detail


def test_reception_needs_a_reason_to_book_past_the_limit(reception_client, session):
    patient = factories.create_patient(session)
    first, second = appt.create_slots(session, 2)
    appt.book(session, patient, first)
    url = f"/staff/patients/{patient.id}/appointments/new/t1-physio/{_day(second)}"
    page = get_page(reception_client, url)
    assert page.find("textarea", attrs={"name": "override_reason"})
    response = _post(reception_client, url, {"slot": str(second.id)})
    assert response.status_code == 400
    assert error_for(parse(response), "override_reason") == "Give a reason for booking more than the limit"
    response = _post(reception_client, url, {"slot": str(second.id), "override_reason": "Two areas to treat"})
    assert response.status_code == 302
    extra = session.scalars(select(Appointment).where(Appointment.slot_id == second.id)).one()
    assert extra.override_reason == "Two areas to treat"
    assert "limit overridden: Two areas to treat" in _audit(session, "appointment_booked")[0].detail


def test_reception_cancels_inside_the_cut_off_only_with_a_reason(reception_client, session):
    patient = factories.create_patient(session)
    appointment = appt.book(session, patient, appt.create_slot(session, starts_at=utcnow() + dt.timedelta(hours=5)))
    url = f"/staff/patients/{patient.id}/appointments/{appointment.id}/cancel"
    # Before the questions, the page says why they are asked.
    assert "less than 24 hours away, inside the cut-off" in get_page(reception_client, url).find(
        id="inside-cut-off").get_text(" ", strip=True)
    response = _post(reception_client, url)
    assert response.status_code == 400
    page = parse(response)
    assert error_for(page, "reason") == "Enter why the appointment is being cancelled"
    # Every problem at once, not one after the other.
    assert error_for(page, "override_reason") == "Give a reason for cancelling inside the cut-off"
    assert error_for(page, "cancelled_by") == "Select who asked to cancel"
    # The summary lists them in the order the page shows the boxes.
    assert [a["href"] for a in page.select(".nhsuk-error-summary a")] == ["#reason", "#cancelled_by",
                                                                           "#override_reason"]
    response = _post(reception_client, url, {"reason": "Patient phoned: unwell", "cancelled_by": "patient"})
    assert error_for(parse(response), "override_reason") == "Give a reason for cancelling inside the cut-off"
    response = _post(reception_client, url, {"reason": "Patient phoned: unwell", "override_reason": "In hospital",
                                             "cancelled_by": "someone"})
    assert response.status_code == 400 and error_for(parse(response), "cancelled_by")
    session.expire_all()
    assert session.get(Appointment, appointment.id).status == "active"
    response = _post(reception_client, url, {"reason": "Patient phoned: unwell", "override_reason": "In hospital",
                                             "cancelled_by": "patient"})
    assert response.status_code == 302
    session.expire_all()
    ended = session.get(Appointment, appointment.id)
    assert (ended.status, ended.ended_by_staff, ended.override_reason) == ("cancelled", True, "In hospital")
    [event] = _audit(session, "appointment_cancelled")
    assert event.actor_user_id == reception_client.user.id and "cut-off overridden: In hospital" in event.detail
    assert "the patient asked (late cancellation)" in event.detail


def test_a_late_cancellation_the_patient_asked_for_is_recorded_as_one(reception_client, session):
    # Kept apart from a DNA (it counts in the attendance report's expected patients, never towards a review);
    # a cancellation by the service, or one with notice, leaves no mark.
    patients = [factories.create_patient(session) for _ in range(3)]
    soon = [appt.book(session, p, appt.create_slot(session, starts_at=utcnow() + dt.timedelta(hours=3 + n)))
            for n, p in enumerate(patients[:2])]
    notice = appt.book(session, patients[2], appt.create_slot(session, starts_at=appt.days_ahead(5)))
    for patient, appointment, who in zip(patients[:2], soon, ("patient", "service"), strict=True):
        response = _post(reception_client, f"/staff/patients/{patient.id}/appointments/{appointment.id}/cancel",
                         {"reason": "Phoned", "override_reason": "Same day", "cancelled_by": who})
        assert response.status_code == 302
        # The banner says which way "Who asked to cancel?" went, as it decides the mark.
        banner = get_page(reception_client, response.headers["Location"]).select_one(
            ".nhsuk-notification-banner--success").get_text(" ", strip=True)
        assert ("It is recorded as a late cancellation (not a missed appointment)." in banner) is (who == "patient")
    page = get_page(reception_client, f"/staff/patients/{patients[2].id}/appointments/{notice.id}/cancel")
    assert not page.find("input", attrs={"name": "cancelled_by"})
    assert page.find(id="inside-cut-off") is None  # with notice, nothing to explain
    assert _post(reception_client, f"/staff/patients/{patients[2].id}/appointments/{notice.id}/cancel",
                 {"reason": "Phoned", "cancelled_by": "patient"}).status_code == 302
    session.expire_all()
    [mark] = session.scalars(select(Attendance)).all()
    assert (mark.patient_id, mark.appointment_id, mark.mark, mark.recorded_by_id) == (
        patients[0].id, soon[0].id, "late_cancellation", reception_client.user.id)
    assert mark.starts_at == soon[0].starts_at
    by_patient = {e.patient_id: e.detail for e in _audit(session, "appointment_cancelled")}
    assert by_patient[patients[1].id].endswith("; the service cancelled")
    assert "cancelled" not in by_patient[patients[2].id].removeprefix(f"appointment {notice.id}, by staff: ")


def test_a_mark_taken_as_the_patient_arrived_goes_with_a_cancelled_or_moved_appointment(reception_client, session,
                                                                                        domain):
    # The day list opens half an hour early: the clinician marked the patient as they arrived, then was called
    # away, and reception cancelled (or moved) the appointment before it began.
    clinician = appt.create_clinician(session)
    patients = [factories.create_patient(session) for _ in range(2)]
    soon = [appt.book(session, p, appt.create_slot(session, clinician=clinician,
                                                   starts_at=utcnow() + dt.timedelta(minutes=10 + 10 * n)))
            for n, p in enumerate(patients)]
    later = appt.create_slot(session, clinician=clinician, starts_at=appt.days_ahead(9))
    day = soon[0].starts_at.astimezone(appt.LONDON).date()
    save_day_list(session, domain, clinician.id, day, {a.id: "attended" for a in soon},
                  actor=Actor(clinician.id, clinician.role), now=utcnow())
    session.commit()
    cancelled, moved = soon
    base = f"/staff/patients/{patients[0].id}/appointments/{cancelled.id}"
    assert _post(reception_client, f"{base}/cancel", {"reason": "Clinician called away", "cancelled_by": "service",
                                                      "override_reason": "Clinic cancelled"}).status_code == 302
    base = f"/staff/patients/{patients[1].id}/appointments/{moved.id}/reschedule/{_day(later)}"
    assert _post(reception_client, base, {"slot": str(later.id), "override_reason": "Clinic cancelled"}
                 ).status_code == 302
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Attendance)) == 0
    assert sorted((e.patient_id, e.detail) for e in _audit(session, "attendance_cleared")) == [
        (patients[0].id, f"appointment {cancelled.id} (t1-physio): attended -> not marked (appointment cancelled)"),
        (patients[1].id, f"appointment {moved.id} (t1-physio): attended -> not marked (appointment moved)"),
    ]


def test_reception_moves_an_appointment(reception_client, session):
    patient = factories.create_patient(session)
    clinician = appt.create_clinician(session)
    old_slot = appt.create_slot(session, clinician=clinician, starts_at=appt.days_ahead(2))
    new_slot = appt.create_slot(session, clinician=clinician, starts_at=appt.days_ahead(9))
    old = appt.book(session, patient, old_slot)
    base = f"/staff/patients/{patient.id}/appointments/{old.id}/reschedule"
    assert get_page(reception_client, base).find("a", href=f"{base}/{_day(new_slot)}")
    times = get_page(reception_client, f"{base}/{_day(new_slot)}").get_text(" ", strip=True)
    assert "Appointment now:" in times and "Your appointment" not in times and "You keep it" not in times
    response = _post(reception_client, f"{base}/{_day(new_slot)}", {"slot": str(new_slot.id)})
    assert response.status_code == 302
    session.expire_all()
    assert session.get(Appointment, old.id).status == "moved"
    assert session.get(AppointmentSlot, new_slot.id).status == "booked"
    assert _audit(session, "appointment_moved")[0].actor_user_id == reception_client.user.id


def test_staff_pages_answer_404_for_unknown_or_other_patients_ids(reception_client, session):
    patient, other = factories.create_patient(session), factories.create_patient(session)
    appointment = appt.book(session, other, appt.create_slot(session))
    for url in (f"/staff/patients/{patient.id}/appointments/{appointment.id}/cancel",
                f"/staff/patients/{patient.id}/appointments/{appointment.id}/reschedule",
                "/staff/patients/999999/appointments/new",
                f"/staff/patients/{patient.id}/appointments/new/t2-physio",
                f"/staff/patients/{patient.id}/appointments/new/t1-physio/not-a-day"):
        assert reception_client.get(url).status_code == 404, url


def test_facilitators_may_not_book_and_reception_may_not_administer(facilitator_client, reception_client, session):
    patient = factories.create_patient(session)
    assert facilitator_client.get(f"/staff/patients/{patient.id}/appointments/new").status_code == 403
    for url in ("/staff/admin/appointments", "/staff/admin/appointments/templates/new",
                "/staff/admin/appointments/slots"):
        assert reception_client.get(url).status_code == 403


def test_admin_adds_a_clinic_and_its_slots_are_made(admin_client, session):
    clinician = appt.create_clinician(session, display_name="Dr Amara Okafor")
    venue = factories.create_venue(session, name="Archway Centre")
    monday = utcnow().astimezone(appt.LONDON).date() + dt.timedelta(days=7)
    data = {"clinician": str(clinician.id), "service_key": "t1-physio", "team": "", "venue": str(venue.id),
            "weekday": str(monday.weekday()), "start_time": "09:00", "end_time": "10:00", "slot_minutes": "30",
            "valid_from[day]": str(monday.day), "valid_from[month]": str(monday.month),
            "valid_from[year]": str(monday.year)}
    response = _post(admin_client, "/staff/admin/appointments/templates/new", data)
    assert response.status_code == 302
    template = session.scalars(select(AvailabilityTemplate)).one()
    assert (template.clinician_id, template.start_time, template.valid_until) == (clinician.id, dt.time(9), None)
    slots = session.scalar(select(func.count()).select_from(AppointmentSlot))
    assert slots >= 2 * 7  # two a week for the weeks ahead, less any bank holiday
    assert "new slots are open for booking" in get_page(admin_client, "/staff/admin/appointments").get_text()
    assert _audit(session, "availability_template_created")


def test_the_clinic_times_do_not_ask_a_phone_for_a_keypad_without_a_colon(admin_client):
    # inputmode="numeric" gives an iPhone a keypad of 0-9 alone: "09:00" (or "9.00") could not be typed at all.
    page = get_page(admin_client, "/staff/admin/appointments/templates/new")
    assert [page.find(id=box).get("inputmode") for box in ("start_time", "end_time")] == [None, None]
    assert page.find(id="slot_minutes")["inputmode"] == "numeric"  # a number of minutes: digits are all it needs


@pytest.mark.parametrize("changes, field, message", [
    ({"start_time": "9am"}, "start_time", "Start time must be a time in 24-hour format, like 09:30"),
    ({"end_time": "08:00"}, "end_time", "End time must be after the start time"),
    ({"slot_minutes": "2"}, "slot_minutes", "Slot length must be between 5 and 240 minutes"),
    ({"slot_minutes": "90"}, "slot_minutes", "Slot length must fit between the start and end times"),
    ({"slot_minutes": "half an hour"}, "slot_minutes", "Slot length must be a whole number, like 30"),
    ({"slot_minutes": "-30"}, "slot_minutes", "Slot length must be between 5 and 240 minutes"),
    ({"slot_minutes": ""}, "slot_minutes", "Enter the slot length in minutes"),
    ({"service_key": "t2-physio"}, "team", "Select the team whose patients book Pain management physiotherapy"),
    ({"team": "whittington"}, "team",
     "Pain management physiotherapy is not booked by one team. Select ‘No team (Tier 1)’"),
    ({"clinician": "abc"}, "clinician", "Select a clinician from the list"),
    ({"weekday": ""}, "weekday", "Select a day of the week"),
    ({"valid_from[day]": "31", "valid_from[month]": "2"}, "valid_from", "First date must be a real date"),
])
def test_the_clinic_form_shows_each_problem_next_to_its_field(admin_client, session, changes, field, message):
    clinician = appt.create_clinician(session)
    venue = factories.create_venue(session)
    data = {"clinician": str(clinician.id), "service_key": "t1-physio", "team": "", "venue": str(venue.id),
            "weekday": "0", "start_time": "09:00", "end_time": "10:00", "slot_minutes": "30",
            "valid_from[day]": "1", "valid_from[month]": "3", "valid_from[year]": "2030", **changes}
    response = _post(admin_client, "/staff/admin/appointments/templates/new", data)
    assert response.status_code == 400
    assert error_for(parse(response), field) == message
    assert session.scalar(select(func.count()).select_from(AvailabilityTemplate)) == 0


def test_a_clinic_meeting_a_group_in_its_room_or_with_its_facilitator_is_refused(admin_client, session):
    facilitator = appt.create_clinician(session, display_name="Femi Ade")
    room = factories.create_venue(session, name="Busy Centre")
    cohort = factories.create_cohort(session, venue=room, first_date=utcnow().date() + dt.timedelta(days=14))
    cohort.facilitators = [facilitator]
    session.commit()
    first = cohort.sessions[0].starts_at.astimezone(appt.LONDON)  # 18:00 to 20:00 local, weekly
    other_room, other_clinician = factories.create_venue(session, name="Quiet Centre"), appt.create_clinician(session)

    def clinic(clinician, venue, start="19:00", end="21:00"):
        return {"clinician": str(clinician.id), "service_key": "t1-physio", "team": "", "venue": str(venue.id),
                "weekday": str(first.weekday()), "start_time": start, "end_time": end, "slot_minutes": "30",
                "valid_from[day]": str(first.day), "valid_from[month]": str(first.month),
                "valid_from[year]": str(first.year)}

    url = "/staff/admin/appointments/templates/new"
    response = _post(admin_client, url, clinic(facilitator, other_room))
    assert error_for(parse(response), "clinician") == (
        f"This clinician runs a group at this time on {written_date(first)}. Choose another day or time")
    response = _post(admin_client, url, clinic(other_clinician, room))
    assert error_for(parse(response), "venue") == (
        f"Busy Centre has a group at this time on {written_date(first)}. Choose another venue, day or time")
    assert session.scalar(select(func.count()).select_from(AvailabilityTemplate)) == 0
    # Once the group's session has ended, the room and the facilitator are free.
    assert _post(admin_client, url, clinic(facilitator, room, start="20:00")).status_code == 302


def test_admin_adds_leave_which_blocks_free_slots(admin_client, session):
    clinician = appt.create_clinician(session)
    slot = appt.create_slot(session, clinician=clinician, starts_at=appt.days_ahead(4))
    day = slot.starts_at.astimezone(appt.LONDON).date()
    parts = {f"{name}[{part}]": str(getattr(day, part)) for name in ("first_day", "last_day")
             for part in ("day", "month", "year")}
    response = _post(admin_client, "/staff/admin/appointments/leave/new",
                     {"clinician": str(clinician.id), "reason": "Annual leave", **parts})
    assert response.status_code == 302
    assert session.scalars(select(ClinicianLeave)).one().clinician_id == clinician.id
    session.expire_all()
    assert session.get(AppointmentSlot, slot.id).status == "blocked"
    response = _post(admin_client, "/staff/admin/appointments/leave/new", {"clinician": str(clinician.id)})
    assert error_for(parse(response), "first_day") == "Enter first day of leave"


def _leave_parts(first: dt.date, last: dt.date) -> dict[str, str]:
    return {f"{name}[{part}]": str(getattr(day, part)) for name, day in (("first_day", first), ("last_day", last))
            for part in ("day", "month", "year")}


@pytest.mark.parametrize(
    ("first", "last", "message"),
    [
        (dt.date(2027, 1, 15), dt.date(2027, 1, 14), "Last day must be the same as or after the first day"),
        (dt.date(2020, 3, 1), dt.date(2020, 3, 14), "Last day of leave must be today or in the future"),
        (dt.date(2027, 1, 14), dt.date(2099, 1, 15),
         "Leave must be 1 year or shorter. For a longer absence, end the clinician's weekly clinics"),
        (dt.date(2027, 1, 14), dt.date(2028, 1, 14),
         "Leave must be 1 year or shorter. For a longer absence, end the clinician's weekly clinics"),
    ],
)
def test_leave_out_of_bounds_is_refused_next_to_its_last_day(admin_client, session, first, last, message):
    clinician = appt.create_clinician(session)
    response = _post(admin_client, "/staff/admin/appointments/leave/new",
                     {"clinician": str(clinician.id), **_leave_parts(first, last)})
    assert response.status_code == 400
    assert error_for(parse(response), "last_day") == message
    assert session.scalar(select(func.count()).select_from(ClinicianLeave)) == 0


def test_a_year_of_leave_is_accepted(admin_client, session):
    clinician = appt.create_clinician(session)
    response = _post(admin_client, "/staff/admin/appointments/leave/new",
                     {"clinician": str(clinician.id), **_leave_parts(dt.date(2027, 1, 14), dt.date(2028, 1, 13))})
    assert response.status_code == 302


def test_removing_leave_opens_the_slots_only_it_blocked(admin_client, session):
    clinician = appt.create_clinician(session)
    on_leave, also_away, team_day = (appt.create_slot(session, clinician=clinician, starts_at=appt.days_ahead(n))
                                     for n in (4, 5, 6))
    days = [slot.starts_at.astimezone(appt.LONDON).date() for slot in (on_leave, also_away, team_day)]
    url = "/staff/admin/appointments/leave/new"
    assert _post(admin_client, url, {"clinician": str(clinician.id), **_leave_parts(days[0], days[2])}).status_code \
        == 302
    # Other leave still covers the second day, and an admin blocked the third for another reason.
    assert _post(admin_client, url, {"clinician": str(clinician.id), **_leave_parts(days[1], days[1])}).status_code \
        == 302
    session.execute(AppointmentSlot.__table__.update().where(AppointmentSlot.id == team_day.id)
                    .values(blocked_reason="Team training"))
    session.commit()
    leave_id = session.scalars(select(ClinicianLeave.id).order_by(ClinicianLeave.id)).first()
    remove = f"/staff/admin/appointments/leave/{leave_id}/remove"
    assert get_page(admin_client, "/staff/admin/appointments").find("a", href=remove)
    assert "Remove leave" in get_page(admin_client, remove).get_text()
    assert session.get(ClinicianLeave, leave_id) is not None  # the page only asks
    response = _post(admin_client, remove)
    assert response.status_code == 302
    session.expire_all()
    assert session.get(ClinicianLeave, leave_id) is None
    statuses = [session.get(AppointmentSlot, slot.id).status for slot in (on_leave, also_away, team_day)]
    assert statuses == ["open", "blocked", "blocked"]
    [event] = _audit(session, "clinician_leave_removed")
    assert f"leave {leave_id}, clinician {clinician.id}" in event.detail


def test_removing_leave_needs_its_csrf_token_and_a_real_id(admin_client, session):
    clinician = appt.create_clinician(session)
    leave = ClinicianLeave(clinician_id=clinician.id, first_day=dt.date(2030, 1, 1), last_day=dt.date(2030, 1, 2))
    session.add(leave)
    session.commit()
    assert admin_client.post(f"/staff/admin/appointments/leave/{leave.id}/remove").status_code == 400
    assert session.get(ClinicianLeave, leave.id) is not None
    get_page(admin_client, "/staff/admin/appointments/leave/999999/remove", status=404)


def test_admin_generates_slots_now(admin_client, session):
    appt.create_template(session, weekday=utcnow().astimezone(appt.LONDON).weekday())
    session.execute(AppointmentSlot.__table__.delete())
    session.commit()
    token = csrf_token(get_page(admin_client, "/staff/admin/appointments"))
    response = admin_client.post("/staff/admin/appointments/generate", data={"csrf_token": token})
    assert response.status_code == 302
    assert session.scalar(select(func.count()).select_from(AppointmentSlot)) > 0
    assert _audit(session, "slots_generated")


def test_admin_blocks_and_frees_a_slot_and_cannot_block_a_booked_one(admin_client, session):
    clinician = appt.create_clinician(session)
    free, taken = appt.create_slots(session, 2, clinician=clinician)
    appt.book(session, factories.create_patient(session), taken)
    listing = get_page(admin_client, f"/staff/admin/appointments/slots?clinician={clinician.id}&day={_day(free)}")
    assert listing.find(id=f"slot-{free.id}") and listing.find(id=f"slot-{taken.id}")
    url = f"/staff/admin/appointments/slots/{free.id}/block"
    # The title says whose slot and when, so that two slots' pages are told apart.
    title = get_page(admin_client, url).title.string
    assert title.startswith(f"Block a slot: {clinician.display_name}, ") and " at " in title
    response = _post(admin_client, url, {"reason": " "})
    assert error_for(parse(response), "reason") == "Enter why this slot is blocked"
    assert _post(admin_client, url, {"reason": "Team training"}).status_code == 302
    session.expire_all()
    assert (session.get(AppointmentSlot, free.id).status, session.get(AppointmentSlot, free.id).blocked_reason) == (
        "blocked", "Team training")
    response = _post(admin_client, f"/staff/admin/appointments/slots/{taken.id}/block", {"reason": "Training"})
    assert error_for(parse(response), "reason") == "This slot is booked: move or cancel the appointment first"
    token = csrf_token(listing)
    assert admin_client.post(f"/staff/admin/appointments/slots/{free.id}/unblock",
                             data={"csrf_token": token}).status_code == 302
    session.expire_all()
    assert session.get(AppointmentSlot, free.id).status == "open"
    assert [e.action for e in session.scalars(select(AuditEvent).where(AuditEvent.action.like("slot_%"))
                                                            .order_by(AuditEvent.id))] == [
        "slot_blocked", "slot_unblocked"]
    assert admin_client.get("/staff/admin/appointments/slots/999999/block").status_code == 404
    assert admin_client.get("/staff/admin/appointments/slots?day=nonsense").status_code == 404


def test_the_slots_page_naming_booked_patients_is_an_audited_read(admin_client, session):
    clinician = appt.create_clinician(session)
    free, taken = appt.create_slots(session, 2, clinician=clinician)
    appt.book(session, factories.create_patient(session, family_name="O'Brien"), taken)
    get_page(admin_client, f"/staff/admin/appointments/slots?clinician={clinician.id}&day={_day(free)}")
    [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "clinic_slots_viewed")).all()
    assert event.actor_user_id == admin_client.user.id
    assert event.detail == f"clinician {clinician.id} {_day(free)}: 1 booked"


def test_a_second_move_or_cancel_by_reception_says_it_already_happened(reception_client, session):
    patient = factories.create_patient(session)
    clinician = appt.create_clinician(session)
    old_slot = appt.create_slot(session, clinician=clinician, starts_at=appt.days_ahead(2))
    first, second = appt.create_slots(session, 2, clinician=clinician, first=appt.days_ahead(9))
    old = appt.book(session, patient, old_slot)
    url = f"/staff/patients/{patient.id}/appointments/{old.id}/reschedule/{_day(first)}"
    token = csrf_token(get_page(reception_client, url))
    assert reception_client.post(url, data={"slot": str(first.id), "csrf_token": token}).status_code == 302
    again = reception_client.post(url, data={"slot": str(second.id), "csrf_token": token})
    assert again.status_code == 302 and again.headers["Location"] == f"/staff/patients/{patient.id}"
    record = get_page(reception_client, again.headers["Location"]).get_text()
    assert "This appointment has already moved to a new time." in record
    new = session.scalars(select(Appointment).where(Appointment.status == "active")).one()
    cancel = f"/staff/patients/{patient.id}/appointments/{new.id}/cancel"
    data = {"reason": "Patient phoned", "csrf_token": token}
    assert reception_client.post(cancel, data=data).status_code == 302
    again = reception_client.post(cancel, data=data)
    assert again.status_code == 302 and again.headers["Location"] == f"/staff/patients/{patient.id}"
    record = get_page(reception_client, again.headers["Location"]).get_text()
    assert "This appointment is already cancelled." in record


def test_reception_is_told_when_the_patient_gets_no_text(reception_client, session):
    patient = factories.create_patient(session, sms_consent=False)
    appointment = appt.book(session, patient, appt.create_slot(session))
    url = f"/staff/patients/{patient.id}/appointments/{appointment.id}/cancel"
    assert _post(reception_client, url, {"reason": "Patient phoned"}).status_code == 302
    record = get_page(reception_client, f"/staff/patients/{patient.id}").get_text()
    assert "is cancelled. They do not get texts, so let them know another way." in record
    assert "We have texted them" not in record


def test_reception_needs_a_reason_to_book_past_the_patients_booking_window(reception_client, session):
    patient = factories.create_patient(session)
    inside = appt.create_slot(session, starts_at=appt.days_ahead(10))
    beyond = appt.create_slot(session, starts_at=appt.days_ahead(7 * 6 + 4))
    url = f"/staff/patients/{patient.id}/appointments/new/t1-physio/{_day(beyond)}"
    page = get_page(reception_client, url)
    assert "Patients can book up to 6 weeks ahead" in page.get_text()
    response = _post(reception_client, url, {"slot": str(beyond.id)})
    assert response.status_code == 400
    assert error_for(parse(response), "override_reason") == (
        "Give a reason for booking later than patients can (6 weeks ahead)")
    assert _post(reception_client, url, {"slot": str(beyond.id), "override_reason": "Surgery first"}).status_code == 302
    booked = session.scalars(select(Appointment).where(Appointment.slot_id == beyond.id)).one()
    assert booked.override_reason == "Surgery first"
    assert "booking window overridden: Surgery first" in _audit(session, "appointment_booked")[0].detail
    # Moving it back inside the window needs no reason; moving past it again does.
    move = f"/staff/patients/{patient.id}/appointments/{booked.id}/reschedule/{_day(inside)}"
    assert _post(reception_client, move, {"slot": str(inside.id)}).status_code == 302
    moved = session.scalars(select(Appointment).where(Appointment.slot_id == inside.id)).one()
    assert moved.override_reason is None
    back = f"/staff/patients/{patient.id}/appointments/{moved.id}/reschedule/{_day(beyond)}"
    assert _post(reception_client, back, {"slot": str(beyond.id)}).status_code == 400
    assert _post(reception_client, back, {"slot": str(beyond.id), "override_reason": "Asked"}).status_code == 302
    assert any("booking window overridden: Asked" in e.detail for e in _audit(session, "appointment_moved"))


def test_reception_cannot_book_a_time_from_another_day_or_service(reception_client, session):
    patient = factories.create_patient(session)
    shown = appt.create_slot(session, starts_at=appt.days_ahead(7))
    other_day = appt.create_slot(session, starts_at=appt.days_ahead(14))
    pharmacy = appt.create_slot(session, starts_at=appt.days_ahead(7, 11), service_key="t1-pharmacy")
    url = f"/staff/patients/{patient.id}/appointments/new/t1-physio/{_day(shown)}"
    for tampered in (other_day, pharmacy):
        response = _post(reception_client, url, {"slot": str(tampered.id)})
        assert response.status_code == 400 and error_for(parse(response), "slot") == "Select one of the times shown"
    assert session.scalar(select(func.count()).select_from(Appointment)) == 0
    old = appt.book(session, patient, appt.create_slot(session, starts_at=appt.days_ahead(3)))
    move = f"/staff/patients/{patient.id}/appointments/{old.id}/reschedule/{_day(shown)}"
    response = _post(reception_client, move, {"slot": str(other_day.id)})
    assert response.status_code == 400 and error_for(parse(response), "slot") == "Select one of the times shown"
    session.expire_all()
    assert session.get(Appointment, old.id).status == "active"


@pytest.mark.parametrize(("offset", "said"), [
    (-1, "has passed. Choose another day."),
    (7 * 8 + 1, "Times are set up 8 weeks ahead, and"),
])
def test_reception_going_to_a_day_outside_the_slots_goes_back_to_the_days(reception_client, session, offset, said):
    patient = factories.create_patient(session)
    appointment = appt.book(session, patient, appt.create_slot(session))
    day = (utcnow().astimezone(appt.LONDON).date() + dt.timedelta(days=offset)).isoformat()
    base = f"/staff/patients/{patient.id}/appointments"
    for url, days in ((f"{base}/new/t1-physio/{day}", f"{base}/new/t1-physio"),
                      (f"{base}/{appointment.id}/reschedule/{day}", f"{base}/{appointment.id}/reschedule")):
        response = reception_client.get(url)
        assert response.status_code == 302 and response.headers["Location"] == days
        assert said in get_page(reception_client, days).get_text()


def test_reception_may_still_open_a_day_past_the_patients_window(reception_client, session):
    patient = factories.create_patient(session)
    slot = appt.create_slot(session, starts_at=appt.days_ahead(7 * 7))
    page = get_page(reception_client, f"/staff/patients/{patient.id}/appointments/new/t1-physio/{_day(slot)}")
    assert "Patients can book up to 6 weeks ahead" in page.get_text()
