"""Reception books, moves and cancels course places for a patient, and runs the waiting lists."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from portal.audit.models import AuditEvent
from portal.booking import cohort_changes, services, waitlist
from portal.booking.models import Booking, Cohort, WaitlistEntry
from portal.db import utcnow
from portal.messaging.models import SmsMessage
from tests import factories
from tests.pages import csrf_token, error_for, get_page, parse


def _audit(session, action):
    return session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)).all()


def test_reception_books_a_place_from_the_record(reception_client, session):
    patient = factories.create_patient(session)
    cohort = factories.create_cohort(session)
    record = get_page(reception_client, f"/staff/patients/{patient.id}")
    assert record.find("a", href=f"/staff/patients/{patient.id}/courses")
    courses = get_page(reception_client, f"/staff/patients/{patient.id}/courses")
    assert courses.find("a", href=f"/staff/patients/{patient.id}/courses/t1-group/book")
    page = get_page(reception_client, f"/staff/patients/{patient.id}/courses/t1-group/book")
    token = csrf_token(page)
    blank = reception_client.post(f"/staff/patients/{patient.id}/courses/t1-group/book", data={"csrf_token": token})
    assert blank.status_code == 400 and error_for(parse(blank), "cohort") == "Select a group"
    done = reception_client.post(f"/staff/patients/{patient.id}/courses/t1-group/book",
                                 data={"csrf_token": token, "cohort": str(cohort.id)})
    assert done.status_code == 302
    booking = session.scalars(select(Booking)).one()
    assert booking.booked_by_staff and booking.patient_id == patient.id
    event = _audit(session, "seat_booked_by_staff")[0]
    assert event.actor_user_id == reception_client.user.id and event.patient_id == patient.id


def _banner(client, url) -> str:
    return get_page(client, url).select_one(".nhsuk-notification-banner").get_text(" ", strip=True)


@pytest.mark.parametrize(("settings", "said"), [
    ({}, "We have texted them."),
    ({"no_texts": True}, "They do not get texts, so let them know another way."),
])
def test_reception_is_told_whether_the_patient_was_texted_about_each_change(reception_client, session, settings,
                                                                            said):
    # A patient who takes no texts (a communication need) must be told another way, so the desk says so.
    patient = factories.create_patient(session, **settings)
    first, later = factories.create_cohort(session), factories.create_cohort(
        session, first_date=utcnow().date() + dt.timedelta(days=28))
    record = f"/staff/patients/{patient.id}"
    url = f"{record}/courses/t1-group/book"
    reception_client.post(url, data={"csrf_token": csrf_token(get_page(reception_client, url)),
                                     "cohort": str(first.id)})
    assert _banner(reception_client, record).endswith(f"is booked on the Eight-week Pain Management Group. {said}")
    seat = session.scalars(select(Booking).where(Booking.status == "active")).one()
    url = f"{record}/bookings/{seat.id}/move"
    reception_client.post(url, data={"csrf_token": csrf_token(get_page(reception_client, url)),
                                     "cohort": str(later.id)})
    assert said in _banner(reception_client, record)
    session.expire_all()
    seat = session.scalars(select(Booking).where(Booking.status == "active")).one()
    url = f"{record}/bookings/{seat.id}/cancel"
    reception_client.post(url, data={"csrf_token": csrf_token(get_page(reception_client, url)),
                                     "reason": "Phoned: moving away"})
    assert _banner(reception_client, record).endswith(f"is cancelled. {said}")
    texted = session.scalar(select(func.count()).select_from(SmsMessage).where(SmsMessage.patient_id == patient.id))
    assert texted == (0 if settings else 3)


def test_booking_after_self_booking_closed_needs_a_reason(reception_client, session):
    patient = factories.create_patient(session)
    starts = (utcnow() + dt.timedelta(hours=3)).astimezone(ZoneInfo("Europe/London"))
    soon = factories.create_cohort(session, first_date=starts.date(), start_time=starts.time().replace(second=0,
                                                                                                       microsecond=0))
    url = f"/staff/patients/{patient.id}/courses/t1-group/book"
    page = get_page(reception_client, url)
    assert "Self-booking has closed" in page.get_text()
    token = csrf_token(page)
    missing = reception_client.post(url, data={"csrf_token": token, "cohort": str(soon.id)})
    assert missing.status_code == 400
    assert error_for(parse(missing), "reason").startswith("Enter a reason: booking for this group has closed")
    assert session.scalar(select(Booking.id)) is None
    done = reception_client.post(url, data={"csrf_token": token, "cohort": str(soon.id),
                                            "reason": "Patient phoned; GP letter delayed"})
    assert done.status_code == 302
    assert "override: Patient phoned" in _audit(session, "seat_booked_by_staff")[0].detail


def test_reception_moves_and_cancels_with_reasons(reception_client, session, domain):
    patient = factories.create_patient(session)
    first = factories.create_cohort(session)
    later = factories.create_cohort(session, first_date=utcnow().date() + dt.timedelta(days=40))
    seat = services.book_seat(session, domain, patient, first.id, now=utcnow())
    session.commit()
    move_url = f"/staff/patients/{patient.id}/bookings/{seat.id}/move"
    token = csrf_token(get_page(reception_client, move_url))
    assert reception_client.post(move_url, data={"csrf_token": token, "cohort": str(later.id)}).status_code == 302
    new = session.scalars(select(Booking).where(Booking.status == "active")).one()
    assert new.cohort_id == later.id
    cancel_url = f"/staff/patients/{patient.id}/bookings/{new.id}/cancel"
    token = csrf_token(get_page(reception_client, cancel_url))
    blank = reception_client.post(cancel_url, data={"csrf_token": token, "reason": "  "})
    assert error_for(parse(blank), "reason") == "Enter why the place is being cancelled"
    done = reception_client.post(cancel_url, data={"csrf_token": token, "reason": "Hospital admission"})
    assert done.status_code == 302
    session.expire_all()
    assert session.get(Booking, new.id).status == "cancelled" and session.get(Booking, new.id).cancelled_by_staff
    assert session.get(Cohort, later.id).seats_taken == 0
    assert "Hospital admission" in _audit(session, "seat_cancelled_by_staff")[0].detail


def test_reception_manages_waiting_lists_with_a_reason(reception_client, session, domain):
    cohort = factories.create_cohort(session, capacity=1, seats_taken=1)
    patients = [factories.create_patient(session) for _ in range(3)]
    for p in patients:
        url = f"/staff/patients/{p.id}/courses/t1-group/waiting-list"
        token = csrf_token(get_page(reception_client, url))
        assert reception_client.post(url, data={"csrf_token": token, "cohort": "any"}).status_code == 302
    lists = get_page(reception_client, "/staff/waiting-lists")
    assert all(p.family_name in lists.get_text() for p in patients)
    assert len(lists.select("a[href^='/staff/waiting-lists/']")) == 3  # "Change order", for each
    entry = session.scalars(select(WaitlistEntry).where(WaitlistEntry.patient_id == patients[2].id)).one()
    url = f"/staff/waiting-lists/{entry.id}"
    token = csrf_token(get_page(reception_client, url))
    no_reason = reception_client.post(url, data={"csrf_token": token, "direction": "up"})
    assert error_for(parse(no_reason), "reason") == "Enter why you are changing the order"
    assert reception_client.post(url, data={"csrf_token": token, "direction": "up",
                                            "reason": "Clinically urgent"}).status_code == 302
    order = [e.patient_id for e in waitlist.queue_for_course(session, "t1-group")]
    assert order == [patients[0].id, patients[2].id, patients[1].id]
    assert "Clinically urgent" in _audit(session, "waitlist_reordered")[0].detail
    assert cohort.id  # the queue is for the course, whichever cohort frees a seat


def test_a_facilitator_and_a_patient_cannot_use_the_desk(app, session, patient_client):
    from portal.auth.models import Role
    from tests.conftest import sign_in

    patient = factories.create_patient(session)
    facilitator = factories.create_staff(session, role=Role.FACILITATOR)
    client = app.test_client()
    assert sign_in(client, facilitator.email).status_code == 302
    for c in (client, patient_client):
        assert c.get(f"/staff/patients/{patient.id}/courses").status_code == 403
        assert c.get("/staff/waiting-lists").status_code == 403


def test_unknown_patient_booking_or_entry_answers_404(reception_client, session, domain):
    patient = factories.create_patient(session)
    other = factories.create_patient(session)
    cohort = factories.create_cohort(session)
    seat = services.book_seat(session, domain, other, cohort.id, now=utcnow())
    session.commit()
    assert reception_client.get("/staff/patients/999999/courses").status_code == 404
    assert reception_client.get(f"/staff/patients/{patient.id}/courses/t2-programme/book").status_code == 404
    # Another patient's booking through this patient's URL is not found.
    assert reception_client.get(f"/staff/patients/{patient.id}/bookings/{seat.id}/cancel").status_code == 404
    assert reception_client.get("/staff/waiting-lists/999999").status_code == 404


def test_a_reason_with_control_characters_is_refused_next_to_the_field(reception_client, session, domain):
    patient = factories.create_patient(session)
    seat = services.book_seat(session, domain, patient, factories.create_cohort(session).id, now=utcnow())
    session.commit()
    cancel_url = f"/staff/patients/{patient.id}/bookings/{seat.id}/cancel"
    token = csrf_token(get_page(reception_client, cancel_url))
    refused = reception_client.post(cancel_url, data={"csrf_token": token, "reason": "Moved\x00away"})
    assert refused.status_code < 500
    assert error_for(parse(refused), "reason") == "Why the place is being cancelled must not include hidden characters"
    assert session.scalars(select(Booking.status)).one() == "active"


def test_a_waiting_list_of_one_offers_no_change_of_order(reception_client, session, domain):
    factories.create_cohort(session, capacity=1, seats_taken=1)
    patient = factories.create_patient(session)
    url = f"/staff/patients/{patient.id}/courses/t1-group/waiting-list"
    assert reception_client.post(url, data={"csrf_token": csrf_token(get_page(reception_client, url)),
                                            "cohort": "any"}).status_code == 302
    lists = get_page(reception_client, "/staff/waiting-lists")
    assert patient.family_name in lists.get_text()
    assert lists.select("a[href^='/staff/waiting-lists/']") == []  # no "Change order"


def test_two_patients_of_the_same_name_are_told_apart_on_the_waiting_lists(reception_client, session, domain):
    cohort = factories.create_cohort(session, capacity=1, seats_taken=1)
    twins = [factories.create_patient(session, given_name="Testy", family_name="Probe") for _ in range(2)]
    for twin in twins:
        waitlist.join(session, domain, twin, domain.catalogue.get("t1-group"), cohort=cohort, now=utcnow())
    session.commit()
    rows = get_page(reception_client, "/staff/waiting-lists").select("tbody tr")
    shown = [row.get_text(" ", strip=True) for row in rows]
    for twin in twins:
        assert len([text for text in shown if twin.nhs_number_display in text]) == 1
    links = [a.get_text(" ", strip=True) for row in rows for a in row.select("a[href^='/staff/waiting-lists/']")]
    assert len(set(links)) == 2  # "Change order for Testy Probe, NHS number ..." names which one


def test_moving_a_patient_out_of_a_running_group_needs_a_reason(reception_client, session, domain):
    patient = factories.create_patient(session)
    running = factories.create_cohort(session, first_date=utcnow().date() - dt.timedelta(days=7))
    seat = services.book_seat(session, domain, patient, running.id, now=utcnow() - dt.timedelta(days=30))
    later = factories.create_cohort(session, first_date=utcnow().date() + dt.timedelta(days=40))
    session.commit()
    move_url = f"/staff/patients/{patient.id}/bookings/{seat.id}/move"
    page = get_page(reception_client, move_url)
    assert "This group has started" in page.get_text()
    token = csrf_token(page)
    bare = reception_client.post(move_url, data={"csrf_token": token, "cohort": str(later.id)})
    assert bare.status_code == 400 and "already started" in error_for(parse(bare), "reason")
    session.expire_all()
    assert session.get(Booking, seat.id).status == "active"
    done = reception_client.post(move_url, data={"csrf_token": token, "cohort": str(later.id),
                                                 "reason": "Changed shifts, GP agreed"})
    assert done.status_code == 302
    detail = _audit(session, "seat_moved_by_staff")[0].detail
    assert "moved after the group started" in detail and "Changed shifts, GP agreed" in detail


def test_a_place_on_a_finished_group_cannot_be_cancelled_but_can_be_moved(reception_client, session, domain):
    patient = factories.create_patient(session)
    finished = factories.create_cohort(session, first_date=utcnow().date() - dt.timedelta(days=70))
    seat = services.book_seat(session, domain, patient, finished.id, now=utcnow() - dt.timedelta(days=80))
    later = factories.create_cohort(session, first_date=utcnow().date() + dt.timedelta(days=40))
    session.commit()
    courses_url = f"/staff/patients/{patient.id}/courses"
    cancel_url = f"/staff/patients/{patient.id}/bookings/{seat.id}/cancel"
    page = get_page(reception_client, courses_url)
    assert "This group has finished" in page.get_text()
    assert not page.find("a", href=cancel_url)
    assert page.find("a", href=f"/staff/patients/{patient.id}/bookings/{seat.id}/move")
    token = csrf_token(page)
    refused = reception_client.post(cancel_url, data={"csrf_token": token, "reason": "Tidying up"})
    assert refused.status_code == 302 and refused.headers["Location"] == courses_url
    assert "has finished, so there is no place to cancel" in get_page(reception_client, courses_url).get_text()
    session.expire_all()
    assert session.get(Booking, seat.id).status == "active"
    assert session.scalar(select(func.count()).select_from(SmsMessage).where(
        SmsMessage.kind == "booking_cancelled")) == 0
    with pytest.raises(services.CourseFinished):
        services.withdraw_seat(session, domain, patient, seat.id, reason="Tidying up", now=utcnow())
    session.rollback()
    # A clinician's "offer a later cohort": the place moves on, with a reason.
    move_url = f"/staff/patients/{patient.id}/bookings/{seat.id}/move"
    done = reception_client.post(move_url, data={"csrf_token": token, "cohort": str(later.id),
                                                 "reason": "DNA review: offered a later group"})
    assert done.status_code == 302
    assert session.scalars(select(Booking).where(Booking.status == "active")).one().cohort_id == later.id


def test_the_waiting_lists_and_a_patient_s_courses_are_audited_reads(reception_client, session, domain):
    cohort = factories.create_cohort(session, capacity=1, seats_taken=1)
    patient = factories.create_patient(session, given_name="Zoë", family_name="Nguyễn")
    waitlist.join(session, domain, patient, domain.catalogue.get(cohort.service_key), cohort=None, now=utcnow())
    session.commit()
    page = get_page(reception_client, "/staff/waiting-lists")
    assert "Zoë Nguyễn" in page.get_text()
    get_page(reception_client, f"/staff/patients/{patient.id}/courses")
    [lists] = _audit(session, "waiting_lists_viewed")
    assert lists.actor_user_id == reception_client.user.id and "t1-group: 1" in lists.detail
    [courses] = _audit(session, "patient_courses_viewed")
    assert courses.patient_id == patient.id


def test_taking_a_patient_off_a_waiting_list_is_asked_first_with_a_reason(reception_client, session, domain):
    cohort = factories.create_cohort(session, capacity=1, seats_taken=1)
    patient = factories.create_patient(session)
    entry = waitlist.join(session, domain, patient, domain.catalogue.get("t1-group"), cohort=cohort, now=utcnow())
    session.commit()
    courses = get_page(reception_client, f"/staff/patients/{patient.id}/courses")
    url = f"/staff/patients/{patient.id}/waiting-list/{entry.id}/leave"
    assert courses.find("a", href=url) is not None  # a link to the question, not a button that acts at once
    page = get_page(reception_client, url)
    assert page.h1.get_text(strip=True) == "Take off the waiting list"
    bare = reception_client.post(url, data={"csrf_token": csrf_token(page), "reason": "  "})
    assert bare.status_code == 400
    assert error_for(parse(bare), "reason") == "Enter why they are coming off the waiting list"
    assert session.get(WaitlistEntry, entry.id, populate_existing=True).status == "waiting"
    done = reception_client.post(url, data={"csrf_token": csrf_token(page), "reason": "Has moved out of area"})
    assert done.status_code == 302
    assert session.get(WaitlistEntry, entry.id, populate_existing=True).status != "waiting"
    assert "Has moved out of area" in _audit(session, "waitlist_left_by_staff")[0].detail
    # The form again (Back, a second tab): the patient's record says they are already off it.
    again = reception_client.get(url)
    assert again.status_code == 302 and again.headers["Location"].startswith(f"/staff/patients/{patient.id}")


def test_reception_accepting_an_offer_whose_group_was_cancelled_meanwhile_books_nothing(
    reception_client, session, domain
):
    """The patient's page showed the offer in one group; that group is cancelled and the same place in the queue is
    offered a seat in another before reception presses accept. Nothing is booked: the patient agreed to other dates."""
    cohort = factories.create_cohort(session, capacity=1)
    holder = factories.create_patient(session)
    seat = services.book_seat(session, domain, holder, cohort.id, now=utcnow())
    patient = factories.create_patient(session)
    entry = waitlist.join(session, domain, patient, domain.catalogue.get("t1-group"), cohort=None, now=utcnow())
    services.withdraw_seat(session, domain, holder, seat.id, reason="x", now=utcnow())
    session.commit()
    page = get_page(reception_client, f"/staff/patients/{patient.id}/courses")
    other = factories.create_cohort(session, capacity=2, first_date=cohort.first_date + dt.timedelta(days=21))
    cohort_changes.cancel_cohort(session, domain, session.get(Cohort, cohort.id), reason="Venue closed", now=utcnow())
    session.commit()

    response = reception_client.post(f"/staff/patients/{patient.id}/offers/{entry.id}/accept",
                                      data={"csrf_token": csrf_token(page), "cohort": str(cohort.id)})

    assert response.status_code == 302
    session.expire_all()
    assert (session.get(WaitlistEntry, entry.id).status, session.get(WaitlistEntry, entry.id).offer_cohort_id) == (
        "offered", other.id)
    assert session.scalar(select(Booking.id).where(Booking.patient_id == patient.id)) is None
    assert "check its dates with them" in get_page(reception_client, f"/staff/patients/{patient.id}/courses").get_text()
    # The form on the page carried the group it showed.
    form = page.find("form", action=f"/staff/patients/{patient.id}/offers/{entry.id}/accept")
    assert form.find("input", {"name": "cohort"})["value"] == str(cohort.id)
