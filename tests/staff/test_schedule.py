"""The day and week view per venue and service, and moving the patients of a cancelled session in one step."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from portal.auth.models import Role
from portal.booking.models import Booking, Cohort
from portal.booking.services import book_seat
from portal.booking.sessions import cancel_session
from portal.db import utcnow
from portal.messaging.models import SmsMessage
from tests import factories
from tests.appointments import factories as appointment_factories
from tests.conftest import sign_in
from tests.pages import csrf_token, error_for, get_page, parse

LONDON = ZoneInfo("Europe/London")


def _client(app, session, role: Role):
    user = factories.create_staff(session, role=role)
    client = app.test_client()
    assert sign_in(client, user.email).status_code == 302
    return client


def _booked_cohort(session, count: int, **kw) -> tuple[Cohort, list[Booking]]:
    cohort = factories.create_cohort(session, **kw)
    seats = []
    for _ in range(count):
        patient = factories.create_patient(session, tier=2 if kw.get("service_key") == "t2-programme" else 1)
        seats.append(book_seat(session, factories.domain(), patient, cohort.id, now=utcnow()))
    session.commit()
    return cohort, seats


def _cancel(session, cohort: Cohort, number: int = 3):
    cohort_session = cohort.sessions[number - 1]
    cancel_session(session, factories.domain(), cohort_session, reason="Room flooded", now=utcnow())
    session.commit()
    return cohort_session


def _local_day(when: dt.datetime) -> str:
    return when.astimezone(LONDON).date().isoformat()


# --- The view ---------------------------------------------------------------------------------------------------


def test_the_week_lists_sessions_and_slots_with_counts_and_cancellations(reception_client, session):
    venue = factories.create_venue(session, name="Hornsey Rise Health Centre", short_name="Hornsey")
    cohort, _ = _booked_cohort(session, 2, venue=venue)
    cancelled = _cancel(session, cohort, 1)
    patient = factories.create_patient(session, given_name="Ada", family_name="Slotted", needs_bsl_interpreter=True)
    slot = appointment_factories.create_slot(session, venue=venue, starts_at=cohort.sessions[0].starts_at
                                             + dt.timedelta(hours=-5))
    appointment_factories.book(session, patient, slot)
    free = appointment_factories.create_slot(session, venue=venue, starts_at=slot.starts_at + dt.timedelta(hours=1))

    page = get_page(reception_client, f"/staff/schedule?venue={venue.id}&week={_local_day(cancelled.starts_at)}")
    card = page.find(id=f"session-{cancelled.id}")
    assert "2 of 12 places booked" in card.get_text(" ", strip=True)
    assert "Cancelled" in card.get_text() and "Room flooded" in card.get_text()
    assert card.find("a", href=f"/staff/schedule/sessions/{cancelled.id}/move-patients")
    booked = page.find(id=f"slot-{slot.id}")
    assert booked.find("a", href=f"/staff/patients/{patient.id}").get_text() == "Ada Slotted"
    assert "BSL interpreter" in booked.get_text()
    assert "Free" in page.find(id=f"slot-{free.id}").get_text()
    assert "1 of 2 booked" in page.get_text()
    assert len(page.select("section[id^=day-section-]")) == 7


def test_filters_by_venue_and_service_and_shows_one_day(reception_client, session):
    here = factories.create_venue(session, name="Here")
    there = factories.create_venue(session, name="There")
    mine, _ = _booked_cohort(session, 0, venue=here)
    other, _ = _booked_cohort(session, 0, venue=there)
    day = _local_day(mine.sessions[0].starts_at)

    page = get_page(reception_client, f"/staff/schedule?venue={here.id}&week={day}&view=day")
    assert page.find(id=f"session-{mine.sessions[0].id}")
    assert not page.find(id=f"session-{other.sessions[0].id}")
    assert len(page.select("section[id^=day-section-]")) == 1

    physio = get_page(reception_client, f"/staff/schedule?service=t1-physio&week={day}")
    assert not physio.find(id=f"session-{mine.sessions[0].id}")
    group = get_page(reception_client, f"/staff/schedule?service=t1-group&week={day}")
    assert group.find(id=f"session-{mine.sessions[0].id}") and group.find(id=f"session-{other.sessions[0].id}")


@pytest.mark.parametrize(("query", "field", "message"), [
    ("venue=abc", "venue", "Select a venue from the list"),
    ("venue=99999999999999", "venue", "Select a venue from the list"),
    ("service=nope", "service", "Select a service from the list"),
    ("week=31/02/2026", "date", "The day in the page's address is not a real date: enter the day in the boxes"),
    ("week=2026-02-31", "date", "The day in the page's address is not a real date: enter the day in the boxes"),
    ("week=9999-01-01", "date", "The day in the page's address is not a real date: enter the day in the boxes"),
    ("date[day]=31&date[month]=2&date[year]=2026", "date", "The day must be a real date"),
    ("date[day]=30&date[month]=3&date[year]=26", "date", "The day must include a year with 4 numbers"),
    ("date[day]=30&date[month]=&date[year]=2026", "date", "The day must include a month"),
    ("date[day]=1&date[month]=1&date[year]=2101", "date", "The day must be between 2000 and 2100"),
    ("date[day]=3rd&date[month]=1&date[year]=2026", "date", "The day must be a real date, in numbers"),
    ("date[day]=%D9%A3&date[month]=2&date[year]=2101", "date", "The day must be between 2000 and 2100"),
])
def test_bad_filters_get_a_message_not_a_500(reception_client, query, field, message):
    response = reception_client.get(f"/staff/schedule?{query}")
    assert response.status_code == 400
    assert error_for(parse(response), field) == message


def test_the_day_typed_in_the_boxes_chooses_the_week_and_stays_in_the_boxes(reception_client, session):
    cohort, _ = _booked_cohort(session, 0)
    day = dt.date.fromisoformat(_local_day(cohort.sessions[0].starts_at))
    page = get_page(reception_client,
                    f"/staff/schedule?date[day]={day.day}&date[month]={day.month}&date[year]={day.year}&view=day")
    assert page.find(id=f"session-{cohort.sessions[0].id}")
    assert page.find(id="date-day")["value"] == str(day.day)
    assert page.find(id="date-year")["value"] == str(day.year)
    # The page's own links carry the day in its short form, and the boxes show it.
    following = get_page(reception_client, f"/staff/schedule?week={(day + dt.timedelta(days=1)).isoformat()}")
    assert following.find(id="date-day")["value"] == str((day + dt.timedelta(days=1)).day)
    assert not following.find(class_="nhsuk-error-message")


def test_a_refused_day_keeps_what_was_typed(reception_client):
    page = parse(reception_client.get("/staff/schedule?date[day]=31&date[month]=2&date[year]=2026"))
    assert page.find(id="date-day")["value"] == "31"
    assert "nhsuk-input--error" in page.find(id="date-day")["class"]
    assert page.select_one(".nhsuk-error-summary a")["href"] == "#date-day"


def test_facilitators_read_the_view_but_cannot_move_patients(app, session):
    cohort, _ = _booked_cohort(session, 1)
    cancelled = _cancel(session, cohort)
    client = _client(app, session, Role.FACILITATOR)
    page = get_page(client, f"/staff/schedule?week={_local_day(cancelled.starts_at)}")
    assert page.find(id=f"session-{cancelled.id}")
    assert not page.find("a", href=f"/staff/schedule/sessions/{cancelled.id}/move-patients")
    assert client.get(f"/staff/schedule/sessions/{cancelled.id}/move-patients").status_code == 403


# --- Moving the patients of a cancelled session ----------------------------------------------------------------


def _move(client, session_id: int, cohort_id: int | str, reason: str = "Session 3 cancelled: flood"):
    page = get_page(client, f"/staff/schedule/sessions/{session_id}/move-patients")
    return client.post(f"/staff/schedule/sessions/{session_id}/move-patients",
                       data={"cohort": str(cohort_id), "reason": reason, "csrf_token": csrf_token(page)})


def _texts(session, kind: str = "booking_moved") -> int:
    return session.scalar(select(func.count()).select_from(SmsMessage).where(SmsMessage.kind == kind))


def test_all_patients_move_in_one_step_with_a_text_each_and_a_repeat_moves_nobody(reception_client, session):
    cohort, seats = _booked_cohort(session, 3)
    cancelled = _cancel(session, cohort)
    target = factories.create_cohort(session, first_date=cohort.first_date + dt.timedelta(days=28))

    response = _move(reception_client, cancelled.id, target.id)
    assert response.status_code == 200
    page = parse(response)
    assert page.h1.get_text(strip=True) == "3 patients moved"
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Booking).where(
        Booking.cohort_id == target.id, Booking.status == "active")) == 3
    assert {b.status for b in session.scalars(select(Booking).where(Booking.id.in_([s.id for s in seats])))} == {
        "cancelled"}
    assert session.get(Cohort, target.id).seats_taken == 3
    assert session.get(Cohort, cohort.id).seats_taken == 0
    assert _texts(session) == 3

    again = _move(reception_client, cancelled.id, target.id)
    assert parse(again).h1.get_text(strip=True) == "Nobody left to move"
    session.expire_all()
    assert _texts(session) == 3
    assert session.get(Cohort, target.id).seats_taken == 3


def test_patients_who_do_not_fit_stay_and_are_listed(reception_client, session):
    cohort, seats = _booked_cohort(session, 3)
    cancelled = _cancel(session, cohort)
    target = factories.create_cohort(session, capacity=2, first_date=cohort.first_date + dt.timedelta(days=28))

    page = parse(_move(reception_client, cancelled.id, target.id))
    assert page.h1.get_text(strip=True) == "2 patients moved"
    not_moved = page.find(id="not-moved").get_text(" ", strip=True)
    assert "1 patient not moved" in not_moved and "No place left in the chosen group" in not_moved
    session.expire_all()
    last = session.get(Booking, seats[-1].id)
    assert last.status == "active" and last.cohort_id == cohort.id  # kept, whole: nothing half-written
    assert last.patient.full_name in not_moved
    assert session.get(Cohort, cohort.id).seats_taken == 1
    assert _texts(session) == 2


def test_the_form_offers_only_open_groups_of_the_same_course_and_team(reception_client, session):
    cohort, _ = _booked_cohort(session, 1, service_key="t2-programme", team="whittington")
    cancelled = _cancel(session, cohort)
    same = factories.create_cohort(session, service_key="t2-programme", team="whittington",
                                   first_date=cohort.first_date + dt.timedelta(days=21))
    other_team = factories.create_cohort(session, service_key="t2-programme", team="haringey",
                                         first_date=cohort.first_date + dt.timedelta(days=21))
    other_course = factories.create_cohort(session, first_date=cohort.first_date + dt.timedelta(days=21))
    page = get_page(reception_client, f"/staff/schedule/sessions/{cancelled.id}/move-patients")
    offered = {radio["value"] for radio in page.select("input[name=cohort]")}
    assert offered == {str(same.id)}

    for wrong in (other_team.id, other_course.id, cohort.id, "x", ""):
        response = _move(reception_client, cancelled.id, wrong)
        assert response.status_code == 400
        assert error_for(parse(response), "cohort") in ("Select one of the groups shown",
                                                         "Select the group to move the patients to")
    session.expire_all()
    assert session.get(Cohort, other_team.id).seats_taken == 0


def test_a_reason_is_needed(reception_client, session):
    cohort, _ = _booked_cohort(session, 1)
    cancelled = _cancel(session, cohort)
    target = factories.create_cohort(session, first_date=cohort.first_date + dt.timedelta(days=28))
    response = _move(reception_client, cancelled.id, target.id, reason="  ")
    assert response.status_code == 400
    assert error_for(parse(response), "reason") == "Enter why the patients are moving"
    assert _texts(session) == 0


def test_only_a_cancelled_session_has_patients_to_move(reception_client, session):
    cohort, _ = _booked_cohort(session, 1)
    assert reception_client.get(f"/staff/schedule/sessions/{cohort.sessions[0].id}/move-patients").status_code == 404
    assert reception_client.get("/staff/schedule/sessions/999999/move-patients").status_code == 404
    assert reception_client.get("/staff/schedule/sessions/99999999999999999/move-patients").status_code == 404


def test_patients_cannot_see_the_schedule(patient_client):
    assert patient_client.get("/staff/schedule").status_code == 403
