"""A staff form posted empty is shown again with its errors and answers 400, as the patients' forms do.

Some once answered 200, so a refused post looked like a page that worked to anything watching the status
(monitoring, the browser tests, an assistive tool reading the title aside)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import update

from portal.auth.models import Role
from portal.booking import services as booking
from portal.booking.sessions import cancel_session
from portal.db import utcnow
from portal.messaging.models import SmsMessage
from tests import factories
from tests.appointments import factories as appt
from tests.conftest import sign_in
from tests.messaging.outbox import enqueue
from tests.pages import csrf_token, get_page


@pytest.fixture
def forms(session, db, domain) -> list[str]:
    """The address of every staff form that is shown again when refused, with what it needs in the database."""
    venue = factories.create_venue(session)
    facilitator = factories.create_staff(session, role=Role.FACILITATOR)
    cohort = factories.create_cohort(session)
    unteamed = factories.create_patient(session, tier=2, team=None)
    patient = factories.create_patient(session)
    seat = booking.book_seat(session, domain, patient, cohort.id, now=utcnow())
    appointment = appt.book(session, patient, appt.create_slot(session))
    free = appt.create_slot(session, starts_at=appt.days_ahead(5))
    day = free.starts_at.astimezone(appt.LONDON).date().isoformat()
    moving = factories.create_cohort(session, first_date=utcnow().date() + dt.timedelta(days=3))
    factories.create_cohort(session, first_date=utcnow().date() + dt.timedelta(days=28))
    cancel_session(session, domain, moving.sessions[2], reason="Room flooded", now=utcnow())
    session.commit()
    text = enqueue(db, patient, key="refusals-unknown")
    with db.transaction() as s:
        s.execute(update(SmsMessage).where(SmsMessage.id == text).values(status="unknown", error_code="timeout"))
    p = f"/staff/patients/{patient.id}"
    return [
        "/staff/admin/venues/new", f"/staff/admin/venues/{venue.id}", "/staff/admin/staff-accounts/invite",
        f"/staff/admin/staff-accounts/{facilitator.id}/role",
        "/staff/courses/new", f"/staff/courses/{cohort.id}/capacity", f"/staff/courses/{cohort.id}/cancel",
        f"/staff/courses/{cohort.id}/sessions/{cohort.sessions[0].id}/move",
        f"/staff/courses/{cohort.id}/sessions/{cohort.sessions[0].id}/cancel",
        "/staff/patients/new", f"/staff/patients/{unteamed.id}/team",
        f"{p}/courses/t1-group/book", f"{p}/bookings/{seat.id}/move", f"{p}/bookings/{seat.id}/cancel",
        f"{p}/courses/t1-group/waiting-list", f"/staff/schedule/sessions/{moving.sessions[2].id}/move-patients",
        "/staff/admin/appointments/templates/new", "/staff/admin/appointments/leave/new",
        f"/staff/admin/appointments/slots/{free.id}/block", f"{p}/appointments/{appointment.id}/cancel",
        f"{p}/appointments/new/t1-physio/{day}", f"{p}/appointments/{appointment.id}/reschedule/{day}",
        f"/staff/messages/{text}/retry",
    ]


def test_every_staff_form_posted_empty_answers_400(app, session, forms):
    admin = factories.create_staff(session, role=Role.ADMIN)
    session.commit()
    client = app.test_client()
    assert sign_in(client, admin.email).status_code == 302
    token = csrf_token(get_page(client, "/contact"))
    answers = {url: client.post(url, data={"csrf_token": token}).status_code for url in forms}
    assert {url: status for url, status in answers.items() if status != 400} == {}
    # A button the account page refuses (an admin cannot deactivate their own account) is a conflict: 409.
    assert client.post(f"/staff/admin/staff-accounts/{admin.id}/deactivate",
                       data={"csrf_token": token}).status_code == 409
