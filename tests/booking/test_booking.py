import datetime as dt

import pytest
from sqlalchemy import func, select

from portal.booking import services
from portal.booking import sessions as course_sessions
from portal.booking.holidays import england_bank_holiday
from portal.booking.models import Booking, Cohort
from portal.db import utcnow
from portal.messaging import texts
from portal.messaging.models import SmsMessage
from tests import factories
from tests.conftest import sign_in
from tests.pages import csrf_token, get_page, parse


def _signed_in(app, session, **kw):
    user = factories.create_patient_user(session, **kw)
    client = app.test_client()
    assert sign_in(client, user.patient.mobile).status_code == 302
    client.user = user
    return client


def _book(client, cohort_id):
    page = get_page(client, f"/cohorts/{cohort_id}")
    return client.post(f"/cohorts/{cohort_id}", data={"csrf_token": csrf_token(page)})


def test_tier_1_patient_sees_tier_1_services_only(patient_client, domain):
    page = get_page(patient_client, "/services")
    text = page.get_text()
    assert "Eight-week Pain Management Group" in text
    assert "Pharmacy-led medication review" in text
    assert "12-week Pain Management Programme" not in text and "Acupuncture" not in text


def test_tier_2_patient_sees_only_their_own_teams_cohorts(app, session):
    client = _signed_in(app, session, tier=2, team="whittington")
    own = factories.create_cohort(session, service_key="t2-programme", team="whittington")
    other = factories.create_cohort(session, service_key="t2-programme", team="haringey")
    page = get_page(client, "/services/t2-programme")
    assert page.find("a", href=f"/cohorts/{own.id}")
    assert not page.find("a", href=f"/cohorts/{other.id}")
    assert client.get(f"/cohorts/{other.id}").status_code == 404


def test_tier_2_patient_without_a_team_sees_no_cohorts(app, session):
    client = _signed_in(app, session, tier=2, team=None, postcode="N4 3LS")
    factories.create_cohort(session, service_key="t2-programme", team="whittington")
    page = get_page(client, "/services/t2-programme")
    assert "still deciding which of the Tier 2 pain teams" in page.get_text()
    assert not page.select("a[href^='/cohorts/']")


def test_tier_1_patient_cannot_open_the_tier_2_course(patient_client):
    assert patient_client.get("/services/t2-programme").status_code == 404
    assert patient_client.get("/services/unknown").status_code == 404


def test_cohort_list_shows_dates_venue_and_places_left(patient_client, session):
    cohort = factories.create_cohort(session, capacity=12, seats_taken=9)
    page = get_page(patient_client, "/services/t1-group")
    card = page.find(id=f"cohort-{cohort.id}").find_parent("section")
    text = card.get_text(" ", strip=True)
    assert "3 of 12" in text
    assert "Test Health Centre" in text and "Step-free" in text
    assert len(card.select(".portal-session-list li")) == 8


def _next_bank_holiday_after(day: dt.date) -> tuple[dt.date, str]:
    while (name := england_bank_holiday(day)) is None:
        day += dt.timedelta(days=1)
    return day, name


def test_a_session_on_a_bank_holiday_is_marked_and_may_move(patient_client, session):
    # A group whose third session falls on the next bank holiday more than a month away (Christmas and New
    # Year's Day can bring a second).
    holiday, _ = _next_bank_holiday_after(utcnow().date() + dt.timedelta(days=30))
    cohort = factories.create_cohort(session, first_date=holiday - dt.timedelta(weeks=2))
    names = [name for s in cohort.sessions if (name := england_bank_holiday(s.local_date))]
    card = get_page(patient_client, "/services/t1-group").find(id=f"cohort-{cohort.id}").find_parent("section")
    marked = [li for li in card.select(".portal-session-list li") if "Bank holiday" in li.get_text()]
    assert len(marked) == len(names) and f"{holiday.day} " in marked[0].get_text()
    said = (f"A session falls on a bank holiday ({names[0]}). We may move it" if len(names) == 1 else
            f"Sessions fall on bank holidays ({', '.join(names)}). We may move them")
    assert f"{said}, and will tell you if we do." in card.get_text(" ", strip=True)
    # Sessions staff cancel are no longer marked.
    for s in cohort.sessions:
        if england_bank_holiday(s.local_date):
            s.status = "cancelled"
    session.commit()
    card = get_page(patient_client, "/services/t1-group").find(id=f"cohort-{cohort.id}").find_parent("section")
    assert "Bank holiday" not in card.get_text()
    assert "may move" not in card.get_text()


def test_groups_starting_on_the_same_day_have_names_of_their_own(patient_client, session):
    """A screen reader's list of regions and links tells them apart: the time and place are in the names."""
    morning = factories.create_cohort(session, start_time=dt.time(10, 0))
    evening = factories.create_cohort(session, start_time=dt.time(18, 0), venue=factories.create_venue(
        session, name="Archway Centre"))
    page = get_page(patient_client, "/services/t1-group")
    headings = [page.find(id=f"cohort-{c.id}").get_text(" ", strip=True) for c in (morning, evening)]
    assert headings[0].endswith("at 10am, Test Health Centre") and headings[1].endswith("at 6pm, Archway Centre")
    buttons = [a.get_text(" ", strip=True) for a in page.select("a.nhsuk-button")]
    assert len(buttons) == len(set(buttons)) == 2
    assert all(b.startswith("Choose this group starting ") for b in buttons)


def test_patient_books_a_seat_and_the_confirmation_is_queued_with_it(patient_client, session):
    cohort = factories.create_cohort(session, seats_taken=3)
    response = _book(patient_client, cohort.id)
    assert response.status_code == 302 and response.headers["Location"] == "/bookings"
    session.expire_all()
    booking = session.scalars(select(Booking)).one()
    assert booking.patient_id == patient_client.user.patient_id and booking.status == "active"
    assert session.get(Cohort, cohort.id).seats_taken == 4
    message = session.scalars(select(SmsMessage)).one()
    assert message.booking_id == booking.id and message.kind == "booking_confirmation"
    assert "Test HC" in message.body and "pain" not in message.body.lower()
    bookings = get_page(patient_client, "/bookings")
    assert "You are booked on the Eight-week Pain Management Group" in bookings.get_text()
    home = get_page(patient_client, "/")
    first = cohort.sessions[0].starts_at
    assert f"{first.astimezone(dt.timezone(dt.timedelta(0))).day}" in home.get_text()
    assert "session 1 of 8" in home.get_text()


def test_a_full_cohort_answers_with_the_next_best_option(patient_client, session):
    full = factories.create_cohort(session, capacity=5, seats_taken=4)
    later = factories.create_cohort(session, first_date=utcnow().date() + dt.timedelta(days=40))
    page = get_page(patient_client, f"/cohorts/{full.id}")
    token = csrf_token(page)
    # Someone else takes the last seat while this patient is looking at the confirm page.
    full.seats_taken = 5
    session.commit()
    response = patient_client.post(f"/cohorts/{full.id}", data={"csrf_token": token})
    assert response.status_code == 409
    text = parse(response).get_text()
    assert "filled up while you were looking" in text
    assert parse(response).find("a", href=f"/cohorts/{later.id}")
    # ...and the waiting list, as the next best thing.
    assert parse(response).find("form", action=f"/cohorts/{full.id}/waiting-list")
    assert session.scalar(select(func.count()).select_from(Booking)) == 0
    assert session.scalar(select(func.count()).select_from(SmsMessage)) == 0


def test_one_seat_per_course(patient_client, session):
    first = factories.create_cohort(session)
    second = factories.create_cohort(session, first_date=utcnow().date() + dt.timedelta(days=30))
    assert _book(patient_client, first.id).status_code == 302
    response = patient_client.get(f"/cohorts/{second.id}")
    assert response.status_code == 200
    page = get_page(patient_client, "/services/t1-group")
    assert "You already have a place on this course" in page.get_text()
    token = csrf_token(get_page(patient_client, f"/cohorts/{second.id}"))
    assert patient_client.post(f"/cohorts/{second.id}", data={"csrf_token": token}).headers["Location"] == "/bookings"
    assert session.scalar(select(func.count()).select_from(Booking)) == 1
    session.expire_all()
    assert session.get(Cohort, second.id).seats_taken == 0


@pytest.mark.parametrize("cohort_id", ["999999", "0", "-1", "abc", "1e3"])
def test_tampered_cohort_ids_answer_404(patient_client, cohort_id):
    assert patient_client.get(f"/cohorts/{cohort_id}").status_code == 404


def test_cohorts_that_have_started_cannot_be_booked(patient_client, session):
    started = factories.create_cohort(session, first_date=utcnow().date() - dt.timedelta(days=7))
    assert patient_client.get(f"/cohorts/{started.id}").status_code == 404
    assert not get_page(patient_client, "/services/t1-group").find("a", href=f"/cohorts/{started.id}")


def test_patients_see_only_their_own_bookings(app, session):
    cohort = factories.create_cohort(session)
    alice = _signed_in(app, session)
    bob = _signed_in(app, session)
    assert _book(alice, cohort.id).status_code == 302
    assert "Eight-week" not in get_page(bob, "/bookings").select_one("main").get_text().split("My bookings", 1)[1]
    assert alice.user.patient.family_name not in get_page(bob, "/bookings").get_text()


def test_book_seat_service_refuses_a_second_seat(session, domain):
    patient = factories.create_patient(session)
    cohort = factories.create_cohort(session)
    services.book_seat(session, domain, patient, cohort.id, now=utcnow())
    session.commit()
    with pytest.raises(services.AlreadyBooked):
        services.book_seat(session, domain, patient, cohort.id, now=utcnow())
    session.rollback()


def test_staff_cannot_use_patient_booking_pages(reception_client, session):
    cohort = factories.create_cohort(session)
    assert reception_client.get("/services").status_code == 403
    assert reception_client.get(f"/cohorts/{cohort.id}").status_code == 403


def test_the_confirmation_names_the_first_session_going_ahead_when_week_one_is_cancelled(session, domain):
    """Week 1 cancelled (a facilitator ill), then someone books: their text must not send them to it."""
    cohort = factories.create_cohort(session)
    week_one, week_two = cohort.sessions[0], cohort.sessions[1]
    course_sessions.cancel_session(session, domain, week_one, reason="Facilitator ill", now=utcnow())
    session.commit()
    patient = factories.create_patient(session)

    services.book_seat(session, domain, patient, cohort.id, now=utcnow())
    session.commit()

    body = session.scalar(select(SmsMessage.body).where(SmsMessage.kind == "booking_confirmation"))
    assert texts.short_datetime(week_two.starts_at) in body
    assert texts.short_datetime(week_one.starts_at) not in body
