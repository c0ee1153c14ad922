"""A patient discharged back to their referrer (a clinician's recorded decision) books nothing new, and is
told why; what they still hold they can see and cancel."""

from __future__ import annotations

from sqlalchemy import func, select

from portal.appointments.models import Appointment
from portal.booking.models import Booking
from portal.db import utcnow
from tests import factories
from tests.appointments import factories as appt
from tests.pages import csrf_token, get_page


def _discharge(session, client):
    patient = client.user.patient
    session.merge(patient).discharge(utcnow(), "Did not attend twice; back to GP")
    session.commit()


def test_a_discharged_patient_is_refused_every_new_booking_with_the_reason(patient_client, session):
    cohort = factories.create_cohort(session)
    slot = appt.create_slot(session)
    token = csrf_token(get_page(patient_client, f"/cohorts/{cohort.id}"))
    _discharge(session, patient_client)
    for url in ("/services", f"/services/{cohort.service_key}", f"/cohorts/{cohort.id}", "/appointments/book",
                f"/appointments/book/{slot.service_key}", f"/appointments/slots/{slot.id}"):
        response = patient_client.get(url)
        assert response.status_code == 403, url
        assert "You cannot book with this service now" in response.get_data(as_text=True), url
    refused = patient_client.post(f"/cohorts/{cohort.id}", data={"csrf_token": token})
    assert refused.status_code == 403
    refused = patient_client.post(f"/appointments/slots/{slot.id}", data={"csrf_token": token})
    assert refused.status_code == 403
    assert session.scalar(select(func.count()).select_from(Booking)) == 0
    assert session.scalar(select(func.count()).select_from(Appointment)) == 0
    # What they hold stays in view, and the home page says what happened.
    assert patient_client.get("/bookings").status_code == 200
    assert patient_client.get("/appointments").status_code == 200
    home = get_page(patient_client, "/").get_text()
    assert "passed your care back" in home and "Book the" not in home


def test_a_patient_not_discharged_still_books(patient_client, session):
    cohort = factories.create_cohort(session)
    assert patient_client.get(f"/cohorts/{cohort.id}").status_code == 200
    assert patient_client.get("/services").status_code == 200
