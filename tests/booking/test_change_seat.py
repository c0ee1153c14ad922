"""Giving up a seat and moving to another group: one step each, and never losing the old seat on failure."""

import datetime as dt

import pytest
from sqlalchemy import func, select

from portal.booking import services
from portal.booking.models import Booking, Cohort
from portal.db import utcnow
from portal.messaging.models import SmsMessage
from tests import factories
from tests.booking.helpers import seats_consistent, signed_in
from tests.pages import csrf_token, error_for, get_page, parse


def _later(session, days=40, **kw):
    return factories.create_cohort(session, first_date=utcnow().date() + dt.timedelta(days=days), **kw)


def test_move_to_a_later_cohort_in_one_step(session, domain):
    patient = factories.create_patient(session)
    first = factories.create_cohort(session)
    later = _later(session)
    old = services.book_seat(session, domain, patient, first.id, now=utcnow())
    new = services.move_seat(session, domain, patient, old.id, later.id, now=utcnow())
    session.commit()
    session.expire_all()
    assert session.get(Booking, old.id).status == "cancelled"
    assert session.get(Booking, old.id).cancel_reason == "Moved to another group"
    assert session.get(Booking, new.id).cohort_id == later.id
    assert session.get(Cohort, first.id).seats_taken == 0 and session.get(Cohort, later.id).seats_taken == 1
    kinds = session.scalars(select(SmsMessage.kind).order_by(SmsMessage.id)).all()
    assert kinds == ["booking_confirmation", "booking_moved"]


def test_a_failed_move_keeps_the_old_seat(session, domain):
    patient = factories.create_patient(session)
    first = factories.create_cohort(session)
    full = _later(session, capacity=4, seats_taken=4)
    old = services.book_seat(session, domain, patient, first.id, now=utcnow())
    session.commit()
    with pytest.raises(services.CohortFull):
        services.move_seat(session, domain, patient, old.id, full.id, now=utcnow())
    session.commit()
    session.expire_all()
    assert session.get(Booking, old.id).status == "active"
    assert session.get(Cohort, first.id).seats_taken == 1 and session.get(Cohort, full.id).seats_taken == 4
    assert session.scalar(select(func.count()).select_from(SmsMessage)) == 1


def test_moving_to_another_course_or_the_same_cohort_is_refused(session, domain):
    patient = factories.create_patient(session)
    first = factories.create_cohort(session)
    old = services.book_seat(session, domain, patient, first.id, now=utcnow())
    for target in (first.id, 999_999):
        with pytest.raises(services.CohortNotFound):
            services.move_seat(session, domain, patient, old.id, target, now=utcnow())
    session.rollback()


def test_withdrawing_frees_the_seat_once_and_texts(session, domain):
    patient = factories.create_patient(session)
    cohort = factories.create_cohort(session)
    seat = services.book_seat(session, domain, patient, cohort.id, now=utcnow())
    services.withdraw_seat(session, domain, patient, seat.id, reason="I cannot make the dates", now=utcnow())
    session.commit()
    with pytest.raises(services.BookingNotFound):
        services.withdraw_seat(session, domain, patient, seat.id, reason="again", now=utcnow())
    session.rollback()
    session.expire_all()
    assert session.get(Cohort, cohort.id).seats_taken == 0
    assert session.get(Booking, seat.id).cancel_reason == "I cannot make the dates"
    assert session.scalars(select(SmsMessage.kind).order_by(SmsMessage.id)).all()[-1] == "booking_cancelled"
    assert seats_consistent(session, cohort.id)


def test_another_patients_booking_cannot_be_changed(app, session, domain):
    client = signed_in(app, session)
    other = factories.create_patient(session)
    cohort = factories.create_cohort(session)
    seat = services.book_seat(session, domain, other, cohort.id, now=utcnow())
    session.commit()
    for path in (f"/bookings/{seat.id}/cancel", f"/bookings/{seat.id}/move", f"/bookings/{seat.id}/calendar.ics"):
        response = client.get(path)
        assert response.status_code == 404 and other.family_name not in response.get_data(as_text=True)
    token = csrf_token(get_page(client, "/bookings"))
    client.post(f"/bookings/{seat.id}/cancel", data={"csrf_token": token, "reason": "dates"})
    session.expire_all()
    assert session.get(Booking, seat.id).status == "active"


def test_patient_cancels_with_a_reason(app, session):
    client = signed_in(app, session)
    cohort = factories.create_cohort(session)
    page = get_page(client, f"/cohorts/{cohort.id}")
    client.post(f"/cohorts/{cohort.id}", data={"csrf_token": csrf_token(page)})
    seat = session.scalars(select(Booking)).one()
    page = get_page(client, f"/bookings/{seat.id}/cancel")
    token = csrf_token(page)
    blank = client.post(f"/bookings/{seat.id}/cancel", data={"csrf_token": token})
    assert blank.status_code == 200 and error_for(parse(blank), "reason") == "Select why you are cancelling your place"
    other = client.post(f"/bookings/{seat.id}/cancel", data={"csrf_token": token, "reason": "other", "detail": " "})
    assert error_for(parse(other), "detail") == "Tell us why you are cancelling your place"
    for detail, message in (("x" * 501, "Tell us more must be 500 characters or fewer"),
                            ("Moving\x00", "Tell us more must not include hidden characters")):
        refused = client.post(f"/bookings/{seat.id}/cancel",
                              data={"csrf_token": token, "reason": "other", "detail": detail})
        assert error_for(parse(refused), "detail") == message
    done = client.post(f"/bookings/{seat.id}/cancel", data={"csrf_token": token, "reason": "other", "detail": "Moving"})
    assert done.status_code == 302
    session.expire_all()
    assert session.get(Booking, seat.id).cancel_reason == "Another reason: Moving"
    assert session.get(Cohort, cohort.id).seats_taken == 0


def test_patient_moves_group_and_a_stale_choice_says_what_happened(app, session):
    client = signed_in(app, session)
    cohort = factories.create_cohort(session)
    later = _later(session, capacity=5, seats_taken=4)
    spare = _later(session, days=60)
    client.post(f"/cohorts/{cohort.id}", data={"csrf_token": csrf_token(get_page(client, f"/cohorts/{cohort.id}"))})
    seat = session.scalars(select(Booking)).one()
    page = get_page(client, f"/bookings/{seat.id}/move")
    assert page.find("input", attrs={"value": str(later.id)})
    assert not page.find("input", attrs={"value": str(cohort.id)})
    token = csrf_token(page)
    later.seats_taken = 5  # filled while the patient was choosing
    session.commit()
    stale = client.post(f"/bookings/{seat.id}/move", data={"csrf_token": token, "cohort": str(later.id)})
    assert stale.status_code == 409
    assert "just filled up" in error_for(parse(stale), "cohort")
    assert parse(stale).find("input", attrs={"value": str(spare.id)})
    tampered = client.post(f"/bookings/{seat.id}/move", data={"csrf_token": token, "cohort": "99999999999"})
    assert tampered.status_code == 400 and error_for(parse(tampered), "cohort") == "Select one of the groups shown"
    moved = client.post(f"/bookings/{seat.id}/move", data={"csrf_token": token, "cohort": str(spare.id)})
    assert moved.status_code == 302
    session.expire_all()
    assert session.scalars(select(Booking).where(Booking.status == "active")).one().cohort_id == spare.id
    assert seats_consistent(session, cohort.id) and seats_consistent(session, spare.id)


def _seat_in_running_group(session, domain, patient):
    """A seat booked weeks ago in a group whose first session was last week."""
    running = factories.create_cohort(session, first_date=utcnow().date() - dt.timedelta(days=7))
    seat = services.book_seat(session, domain, patient, running.id, now=utcnow() - dt.timedelta(days=30))
    session.commit()
    return running, seat


def test_a_seat_in_a_group_that_has_started_cannot_be_moved(session, domain):
    patient = factories.create_patient(session)
    running, seat = _seat_in_running_group(session, domain, patient)
    later = _later(session)
    with pytest.raises(services.CourseStarted):
        services.move_seat(session, domain, patient, seat.id, later.id, now=utcnow())
    session.rollback()
    session.expire_all()
    assert session.get(Booking, seat.id).status == "active"
    assert session.get(Cohort, later.id).seats_taken == 0


def test_staff_may_move_a_seat_out_of_a_running_group_as_an_override(session, domain):
    patient = factories.create_patient(session)
    running, seat = _seat_in_running_group(session, domain, patient)
    later = _later(session)
    new = services.move_seat(session, domain, patient, seat.id, later.id, now=utcnow(), by_staff=True,
                             override_started=True)
    session.commit()
    assert new.cohort_id == later.id and seats_consistent(session, running.id)


def test_patient_is_told_a_running_group_cannot_be_moved(app, session, domain):
    client = signed_in(app, session)
    running, seat = _seat_in_running_group(session, domain, client.user.patient)
    later = _later(session)
    cancel = get_page(client, f"/bookings/{seat.id}/cancel")
    assert not cancel.find("a", href=f"/bookings/{seat.id}/move")
    page = get_page(client, f"/bookings/{seat.id}/move")
    assert page.h1.get_text(strip=True) == "Your group has already started"
    assert not page.find("input", attrs={"name": "cohort"})
    token = csrf_token(get_page(client, "/bookings"))
    posted = client.post(f"/bookings/{seat.id}/move", data={"csrf_token": token, "cohort": str(later.id)})
    assert posted.status_code == 409 and "already started" in posted.get_data(as_text=True)
    session.expire_all()
    assert session.get(Booking, seat.id).status == "active"


def test_a_patient_cannot_cancel_a_place_on_a_group_that_has_finished(app, session, domain):
    client = signed_in(app, session)
    patient = client.user.patient
    finished = factories.create_cohort(session, first_date=utcnow().date() - dt.timedelta(days=70))
    seat = services.book_seat(session, domain, patient, finished.id, now=utcnow() - dt.timedelta(days=80))
    session.commit()
    page = get_page(client, "/bookings")
    assert "This group has finished" in page.get_text()
    assert not page.find("a", href=f"/bookings/{seat.id}/cancel")
    token = csrf_token(page)
    refused = client.post(f"/bookings/{seat.id}/cancel", data={"csrf_token": token, "reason": "other",
                                                               "detail": "Done it"})
    assert refused.status_code == 302 and refused.headers["Location"] == "/bookings"
    assert "has finished, so there is no place to cancel" in get_page(client, "/bookings").get_text()
    session.expire_all()
    assert session.get(Booking, seat.id).status == "active"
    assert session.scalar(select(func.count()).select_from(SmsMessage).where(
        SmsMessage.kind == "booking_cancelled")) == 0


def test_a_second_cancel_or_move_says_the_place_has_already_gone(app, session, domain):
    client = signed_in(app, session)
    cohort = factories.create_cohort(session)
    later = _later(session)
    spare = _later(session, days=60)
    moved = services.book_seat(session, domain, client.user.patient, cohort.id, now=utcnow())
    session.commit()
    token = csrf_token(get_page(client, f"/bookings/{moved.id}/move"))
    first = client.post(f"/bookings/{moved.id}/move", data={"csrf_token": token, "cohort": str(later.id)})
    assert first.status_code == 302
    again = client.post(f"/bookings/{moved.id}/move", data={"csrf_token": token, "cohort": str(spare.id)})
    assert again.status_code == 302 and again.headers["Location"] == "/bookings"
    assert "This place has already moved to another group." in get_page(client, "/bookings").get_text()
    seat = session.scalars(select(Booking).where(Booking.status == "active")).one()
    data = {"csrf_token": token, "reason": "other", "detail": "Moving"}
    assert client.post(f"/bookings/{seat.id}/cancel", data=data).status_code == 302
    for again in (client.post(f"/bookings/{seat.id}/cancel", data=data), client.get(f"/bookings/{seat.id}/cancel")):
        assert again.status_code == 302 and again.headers["Location"] == "/bookings"
    assert "This place is already cancelled." in get_page(client, "/bookings").get_text()
    assert seats_consistent(session, later.id) and seats_consistent(session, spare.id)


def test_another_patients_cancelled_place_still_answers_404(app, session, domain):
    client = signed_in(app, session)
    other = factories.create_patient(session)
    seat = services.book_seat(session, domain, other, factories.create_cohort(session).id, now=utcnow())
    services.withdraw_seat(session, domain, other, seat.id, reason="dates", now=utcnow())
    session.commit()
    for path in (f"/bookings/{seat.id}/cancel", f"/bookings/{seat.id}/move"):
        response = client.get(path)
        assert response.status_code == 404 and "already" not in response.get_data(as_text=True)


def test_cancelling_a_place_promises_a_text_only_to_patients_we_text(app, session, domain):
    for consent, promised in ((True, True), (False, False)):
        client = signed_in(app, session, sms_consent=consent)
        seat = services.book_seat(session, domain, client.user.patient, factories.create_cohort(session).id,
                                  now=utcnow())
        session.commit()
        token = csrf_token(get_page(client, f"/bookings/{seat.id}/cancel"))
        client.post(f"/bookings/{seat.id}/cancel", data={"csrf_token": token, "reason": "other", "detail": "Away"})
        shown = get_page(client, "/bookings").get_text()
        assert "is cancelled." in shown and ("We have sent you a text" in shown) is promised
