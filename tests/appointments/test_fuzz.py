"""Appointment forms fed arbitrary text never answer 500 and never leave a slot and its appointment apart."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update

from portal.appointments.models import Appointment, AppointmentSlot, AvailabilityTemplate, ClinicianLeave
from tests import factories
from tests.appointments import factories as appt
from tests.pages import csrf_token, get_page

TEXT = st.one_of(
    st.just(""),
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=120),
    st.sampled_from(["0", "-1", "1", "99999999999", "2147483648", "1e3", " 7 ", "other", "better", "09:00",
                     "a\x00b", "\x00"]),
)
FUZZ = settings(max_examples=30, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.data_too_large])
OK = (200, 302, 400, 404, 409)


def _consistent(session) -> None:
    session.expire_all()
    booked = session.scalar(select(func.count()).select_from(AppointmentSlot).where(AppointmentSlot.status == "booked"))
    active = session.scalar(select(func.count()).select_from(Appointment).where(Appointment.status == "active"))
    assert booked == active


@pytest.fixture
def arranged(session, patient_client):
    """Two free slots and one booked by the signed-in patient; reset before each example."""
    clinician = appt.create_clinician(session)
    slots = appt.create_slots(session, 3, clinician=clinician)
    booked = appt.book(session, patient_client.user.patient, slots[0])
    return {"slots": slots, "appointment": booked}


def _reset(session, arranged):
    first = arranged["slots"][0]
    session.execute(update(Appointment).where(Appointment.id != arranged["appointment"].id).values(status="cancelled"))
    session.execute(update(Appointment).where(Appointment.id == arranged["appointment"].id).values(status="active"))
    session.execute(update(AppointmentSlot).values(status="open"))
    session.execute(update(AppointmentSlot).where(AppointmentSlot.id == first.id).values(status="booked"))
    session.commit()


PATIENT_FORMS = {"cancel": ["reason", "detail"], "reschedule": ["slot"], "time": ["slot"]}


@FUZZ
@given(form=st.sampled_from(sorted(PATIENT_FORMS)), data=st.data())
def test_patient_appointment_forms(patient_client, session, arranged, form, data):
    _reset(session, arranged)
    values = data.draw(st.fixed_dictionaries({name: TEXT for name in PATIENT_FORMS[form]}))
    appointment = arranged["appointment"]
    day = arranged["slots"][1].starts_at.astimezone(appt.LONDON).date().isoformat()
    url = {"cancel": f"/appointments/{appointment.id}/cancel",
           "reschedule": f"/appointments/{appointment.id}/reschedule/{day}",
           "time": f"/appointments/book/t1-pharmacy/{day}"}[form]
    token = csrf_token(get_page(patient_client, url))
    response = patient_client.post(url, data={**values, "csrf_token": token})
    assert response.status_code in OK
    _consistent(session)


@FUZZ
@given(values=st.fixed_dictionaries({"slot": TEXT, "override_reason": TEXT}))
def test_reception_booking_form(reception_client, session, values):
    patient = factories.create_patient(session)
    slot = appt.create_slot(session)
    url = f"/staff/patients/{patient.id}/appointments/new/t1-physio/" \
          f"{slot.starts_at.astimezone(appt.LONDON).date().isoformat()}"
    token = csrf_token(get_page(reception_client, url))
    response = reception_client.post(url, data={**values, "csrf_token": token})
    assert response.status_code in OK
    _consistent(session)


TEMPLATE_FIELDS = ["clinician", "service_key", "team", "venue", "weekday", "start_time", "end_time", "slot_minutes",
                   "valid_from[day]", "valid_from[month]", "valid_from[year]", "valid_until[day]",
                   "valid_until[month]", "valid_until[year]"]


@FUZZ
@given(values=st.fixed_dictionaries({name: TEXT for name in TEMPLATE_FIELDS}))
def test_clinic_form(admin_client, session, values):
    before = session.scalar(select(func.count()).select_from(AvailabilityTemplate))
    token = csrf_token(get_page(admin_client, "/staff/admin/appointments/templates/new"))
    response = admin_client.post("/staff/admin/appointments/templates/new", data={**values, "csrf_token": token})
    assert response.status_code in (302, 400)
    after = session.scalar(select(func.count()).select_from(AvailabilityTemplate))
    assert after == before + (response.status_code == 302)


LEAVE_FIELDS = ["clinician", "first_day[day]", "first_day[month]", "first_day[year]", "last_day[day]",
                "last_day[month]", "last_day[year]", "reason"]


@FUZZ
@given(values=st.fixed_dictionaries({name: TEXT for name in LEAVE_FIELDS}))
def test_leave_form(admin_client, session, values):
    before = session.scalar(select(func.count()).select_from(ClinicianLeave))
    token = csrf_token(get_page(admin_client, "/staff/admin/appointments/leave/new"))
    response = admin_client.post("/staff/admin/appointments/leave/new", data={**values, "csrf_token": token})
    assert response.status_code in (302, 400)
    assert session.scalar(select(func.count()).select_from(ClinicianLeave)) == before + (response.status_code == 302)


@FUZZ
@given(reason=TEXT, clinician=TEXT, day=TEXT)
def test_block_form_and_slot_filter(admin_client, session, reason, clinician, day):
    slot = appt.create_slot(session)
    token = csrf_token(get_page(admin_client, f"/staff/admin/appointments/slots/{slot.id}/block"))
    response = admin_client.post(f"/staff/admin/appointments/slots/{slot.id}/block",
                                 data={"reason": reason, "csrf_token": token})
    assert response.status_code in (302, 400)
    session.expire_all()
    assert session.get(AppointmentSlot, slot.id).status == ("blocked" if response.status_code == 302 else "open")
    filtered = admin_client.get("/staff/admin/appointments/slots", query_string={"clinician": clinician, "day": day})
    assert filtered.status_code in (200, 404)
