"""Staff pages to run courses: create a cohort, see its sessions and roster, move or cancel one session."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update

from portal.appointments import availability
from portal.appointments.models import AvailabilityTemplate
from portal.attendance.models import Attendance
from portal.attendance.services import save_register
from portal.audit.models import AuditEvent
from portal.audit.services import Actor
from portal.auth.models import Role
from portal.booking import services
from portal.booking.holidays import england_bank_holiday
from portal.booking.models import Booking, Cohort, CohortSession, Venue
from portal.booking.services import CohortClashes, create_cohort
from portal.booking.sessions import (
    NonexistentLocalTime,
    SessionChangeRefused,
    cancel_session,
    move_session,
    wall_clock_to_utc,
)
from portal.booking.waitlist import join as join_waitlist
from portal.dates import london_today, written_date
from portal.db import utcnow
from portal.messaging.models import SmsMessage
from portal.templating import local_datetime
from tests import factories
from tests.conftest import sign_in
from tests.pages import csrf_token, error_for, get_page, parse
from tests.races import count_together

LONDON = ZoneInfo("Europe/London")
NEW = "/staff/courses/new"


# Arranging.

def _staff_client(app, session, role: Role):
    user = factories.create_staff(session, role=role)
    client = app.test_client()
    assert sign_in(client, user.email).status_code == 302
    client.user = user
    return client


@pytest.fixture
def admin_client(app, session):
    return _staff_client(app, session, Role.ADMIN)


@pytest.fixture
def facilitator_client(app, session):
    return _staff_client(app, session, Role.FACILITATOR)


def _today() -> dt.date:
    return london_today(utcnow())


def _date_fields(name: str, day: dt.date | None) -> dict[str, str]:
    if day is None:
        return {f"{name}[day]": "", f"{name}[month]": "", f"{name}[year]": ""}
    return {f"{name}[day]": str(day.day), f"{name}[month]": str(day.month), f"{name}[year]": str(day.year)}


def _valid_cohort(venue_id: int, **changes) -> dict:
    first = changes.pop("first_date", _today() + dt.timedelta(days=21))
    values = {
        "service": "t1-group",
        "team": "",
        "venue": str(venue_id),
        "online_link": "",
        **_date_fields("first_date", first),
        "start_time": "18:00",
        "session_minutes": "120",
        "capacity": "12",
    }
    values.update(changes)
    return values


def _post_new(client, values: dict):
    page = get_page(client, NEW)
    return client.post(NEW, data={**values, "csrf_token": csrf_token(page)})


def _book(session, cohort: Cohort, **patient_kw) -> Booking:
    patient = factories.create_patient(session, tier=2 if cohort.team else 1, **patient_kw)
    booking = Booking(patient_id=patient.id, service_key=cohort.service_key, cohort_id=cohort.id)
    session.add(booking)
    session.execute(update(Cohort).where(Cohort.id == cohort.id).values(seats_taken=Cohort.seats_taken + 1))
    session.commit()
    return booking


def _texts(session, kind: str) -> list[SmsMessage]:
    return list(session.scalars(select(SmsMessage).where(SmsMessage.kind == kind).order_by(SmsMessage.id)))


def _audit(session, action: str) -> list[AuditEvent]:
    return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def _session_url(cohort_id: int, session_id: int, what: str) -> str:
    return f"/staff/courses/{cohort_id}/sessions/{session_id}/{what}"


def _post_change(client, url: str, values: dict):
    page = get_page(client, url)
    return client.post(url, data={**values, "csrf_token": csrf_token(page)})


def _move_values(day: dt.date | None, time: str = "18:00", reason: str = "The venue is closed") -> dict:
    return {**_date_fields("date", day), "time": time, "reason": reason}


def _summary(page) -> list[str]:
    """The messages of the error summary at the top of the page."""
    return [a.get_text(" ", strip=True) for a in page.select(".nhsuk-error-summary a")]


def _local(value: dt.datetime) -> dt.datetime:
    return value.astimezone(LONDON)


def _next_holiday(name: str) -> dt.date:
    """The next England bank holiday of that name at least a day away."""
    today = _today()
    for year in (today.year, today.year + 1, today.year + 2):
        for day, holiday in sorted(holidays.country_holidays("GB", subdiv="ENG", years=year).items()):
            if holiday == name and day > today + dt.timedelta(days=1):
                return day
    raise AssertionError(f"no {name} ahead")


def _next_clock_change(month: int, *, weeks_before: int) -> dt.date:
    """The next last Sunday of ``month`` (3: clocks forward, 10: back) far enough ahead to start a group before."""
    today = _today()
    for year in (today.year, today.year + 1, today.year + 2):
        last = dt.date(year, month, 31)
        sunday = last - dt.timedelta(days=(last.weekday() - 6) % 7)
        if sunday - dt.timedelta(weeks=weeks_before) > today:
            return sunday
    raise AssertionError("no clock change ahead")


# Creating a cohort.

def test_admin_creates_a_team_programme_and_lands_on_its_page(admin_client, session):
    venue = factories.create_venue(session, name="Archway Centre")
    runner = factories.create_staff(session, role=Role.FACILITATOR, display_name="Fran Facilitator")
    factories.create_staff(session, role=Role.FACILITATOR, display_name="Other Facilitator")
    first = _today() + dt.timedelta(days=30)

    page = get_page(admin_client, NEW)
    assert page.select_one("a.nhsuk-back-link")["href"] == "/staff/courses"
    # Creating offers the places to the waiting list at once: the admin is told before pressing the button.
    assert ("As soon as you create it, its places are offered, in their order, to patients on the waiting list for "
            "any group of the course") in page.get_text(" ", strip=True)
    assert [o["value"] for o in page.select("select[name=service] option")] == ["", "t1-group", "t2-programme"]
    assert [o["value"] for o in page.select("select[name=team] option")] == ["", "whittington", "haringey"]
    assert page.find("input", attrs={"name": "facilitators", "value": str(runner.id)})
    response = admin_client.post(NEW, data={
        **_valid_cohort(venue.id, service="t2-programme", team="whittington", first_date=first,
                        start_time="17:30", session_minutes="90", capacity="10"),
        "facilitators": [str(runner.id)], "csrf_token": csrf_token(page),
    })

    cohort = session.scalars(select(Cohort)).one()
    assert response.status_code == 302
    assert response.headers["Location"] == f"/staff/courses/{cohort.id}"
    assert (cohort.service_key, cohort.team, cohort.venue_id, cohort.first_date, cohort.weekday) == (
        "t2-programme", "whittington", venue.id, first, first.weekday())
    assert (cohort.start_time, cohort.session_minutes, cohort.capacity, cohort.online_link) == (
        dt.time(17, 30), 90, 10, None)
    assert [u.id for u in cohort.facilitators] == [runner.id]
    assert len(cohort.sessions) == 12
    assert all(_local(s.starts_at).time() == dt.time(17, 30) for s in cohort.sessions)
    assert all(s.ends_at - s.starts_at == dt.timedelta(minutes=90) for s in cohort.sessions)
    [event] = _audit(session, "cohort_created")
    assert event.detail == f"cohort {cohort.id}: t2-programme (whittington) from {first}"

    page = get_page(admin_client, response.headers["Location"])
    text = page.get_text(" ", strip=True)
    assert "is ready to book" in text
    assert "Whittington Health" in text
    assert "Fran Facilitator" in text and "Other Facilitator" not in text
    assert "10 of 10" in text
    assert len(page.select("tbody tr[id^=session-]")) == 12


def test_a_new_group_offers_its_places_to_patients_waiting_for_any_group_first(admin_client, session, domain):
    full = factories.create_cohort(session, capacity=1, seats_taken=1)
    service = domain.catalogue.get("t1-group")
    waiting = [join_waitlist(session, domain, factories.create_patient(session), service, cohort=None, now=utcnow())
               for _ in range(3)]
    session.commit()

    response = _post_new(admin_client, _valid_cohort(factories.create_venue(session).id, capacity="2"))

    assert response.status_code == 302
    cohort = session.scalars(select(Cohort).where(Cohort.id != full.id)).one()
    session.expire_all()
    assert [(e.status, e.offer_cohort_id) for e in waiting] == [
        ("offered", cohort.id), ("offered", cohort.id), ("waiting", None)]  # in queue order
    assert cohort.seats_taken == 2
    assert sorted(t.patient_id for t in _texts(session, "place_offered")) == sorted(e.patient_id for e in waiting[:2])
    [event] = _audit(session, "cohort_created")
    assert event.detail.endswith(", 2 offered to the waiting list")
    banner = get_page(admin_client, response.headers["Location"]).get_text(" ", strip=True)
    assert ("2 of its places are offered to patients waiting for any group of this course, held for them until "
            f"{local_datetime(waiting[0].offer_expires_at)}.") in banner


def test_an_online_venue_is_labelled_online_once(admin_client, session):
    factories.create_venue(session, name="Video call", short_name="Online", address="Online", is_online=True)
    factories.create_venue(session, name="Online group (video call)", short_name="Online 2", address="Online",
                           is_online=True)
    labels = [o.get_text(strip=True) for o in get_page(admin_client, NEW).select("select[name=venue] option")]
    assert "Video call (online)" in labels and "Online group (video call)" in labels


def test_an_online_cohort_keeps_its_joining_link(admin_client, session):
    online = factories.create_venue(session, name="Video call", short_name="Online", address="Online",
                                    is_online=True)
    response = _post_new(admin_client, _valid_cohort(online.id, online_link=" https://meet.nhs.net/abc-123 "))
    assert response.status_code == 302
    cohort = session.scalars(select(Cohort)).one()
    assert cohort.online_link == "https://meet.nhs.net/abc-123"
    page = get_page(admin_client, f"/staff/courses/{cohort.id}")
    assert page.find("a", href="https://meet.nhs.net/abc-123")


def test_a_tier_1_group_with_a_team_chosen_is_refused_not_silently_changed(admin_client, session):
    venue = factories.create_venue(session)
    page = parse(_post_new(admin_client, _valid_cohort(venue.id, team="haringey")))
    assert error_for(page, "team") == (
        "The Eight-week Pain Management Group is not run by one team. Select ‘No team (Tier 1)’")
    assert session.scalars(select(Cohort.team)).all() == []
    assert _post_new(admin_client, _valid_cohort(venue.id, team="")).status_code == 302
    assert session.scalars(select(Cohort.team)).one() is None


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"service": ""}, "service", "Select a course"),
        ({"service": "t1-physio"}, "service", "Select a course"),
        ({"service": "t2-programme"}, "team",
         "Select the team that runs the 12-week Pain Management Programme"),
        ({"service": "t2-programme", "team": "camden"}, "team", "Select a team from the list"),
        ({"venue": ""}, "venue", "Select a venue"),
        ({"venue": "999999"}, "venue", "Select a venue"),
        ({"venue": "not-a-number"}, "venue", "Select a venue"),
        ({"online_link": "https://meet.nhs.net/x"}, "online_link",
         "Only an online venue has a joining link. Delete the link or choose an online venue"),
        ({"first_date": None}, "first_date", "Enter date of the first session"),
        ({"first_date[day]": "31", "first_date[month]": "2", "first_date[year]": "2027"}, "first_date",
         "Date of the first session must be a real date"),
        ({"first_date": dt.date(2020, 1, 7)}, "first_date",
         "Date of the first session must be today or in the future"),
        ({"first_date[year]": "3026"}, "first_date", "Date of the first session must be within the next 2 years"),
        ({"start_time": ""}, "start_time", "Enter start time"),
        ({"start_time": "6pm"}, "start_time", "Start time must be a time in 24-hour format, like 18:00"),
        ({"start_time": "24:00"}, "start_time", "Start time must be a time in 24-hour format, like 18:00"),
        ({"session_minutes": ""}, "session_minutes", "Enter session length, like 120"),
        ({"session_minutes": "29"}, "session_minutes", "Session length must be between 30 and 240 minutes"),
        ({"session_minutes": "241"}, "session_minutes", "Session length must be between 30 and 240 minutes"),
        ({"session_minutes": "1.5"}, "session_minutes", "Session length must be a whole number, like 120"),
        ({"session_minutes": "١٢٠٠"}, "session_minutes", "Session length must be between 30 and 240 minutes"),
        ({"capacity": "0"}, "capacity", "Number of places must be between 1 and 40"),
        ({"capacity": "41"}, "capacity", "Number of places must be between 1 and 40"),
        ({"capacity": "ten"}, "capacity", "Number of places must be a whole number, like 12"),
        ({"capacity": "-5"}, "capacity", "Number of places must be between 1 and 40"),
        ({"capacity": "99999999999999999999999"}, "capacity", "Number of places must be between 1 and 40"),
        ({"start_time": "23:30", "session_minutes": "240"}, "session_minutes",
         "A session must end by midnight. Enter a shorter length or an earlier start time"),
        ({"facilitators": "999999"}, "facilitators", "Select facilitators from the list"),
    ],
)
def test_each_problem_is_shown_next_to_its_field(admin_client, session, changes, field, message):
    factories.create_staff(session, role=Role.FACILITATOR)  # so the facilitator checkboxes are on the page
    venue = factories.create_venue(session)
    values = _valid_cohort(venue.id, **changes)
    response = _post_new(admin_client, values)

    assert response.status_code == 400
    page = parse(response)
    assert page.title.string.startswith("Error: ")
    assert error_for(page, field) == message
    assert message in _summary(page)
    assert session.scalar(select(func.count()).select_from(Cohort)) == 0


@pytest.mark.parametrize(
    ("link", "message"),
    [
        ("", "Enter the joining link for the video call"),
        ("http://meet.nhs.net/abc", "Enter a joining link that starts with https://, like https://meet.nhs.net/abc"),
        ("javascript:alert(1)", "Enter a joining link that starts with https://, like https://meet.nhs.net/abc"),
        ("https://", "Enter a joining link that starts with https://, like https://meet.nhs.net/abc"),
        ("https://[meet", "Enter a joining link that starts with https://, like https://meet.nhs.net/abc"),
        ("https://meet.nhs.net/a b", "Enter a joining link that starts with https://, like https://meet.nhs.net/abc"),
        ("https://meet.nhs.net/\x00", "Enter a joining link that starts with https://, like https://meet.nhs.net/abc"),
        ("https://meet.nhs.net/é", "Enter a joining link that starts with https://, like https://meet.nhs.net/abc"),
        ("https://meet.nhs.net/" + "a" * 300, "Joining link must be 300 characters or fewer"),
    ],
)
def test_an_online_venue_needs_an_https_joining_link(admin_client, session, link, message):
    online = factories.create_venue(session, name="Video call", short_name="Online", address="Online",
                                    is_online=True)
    response = _post_new(admin_client, _valid_cohort(online.id, online_link=link))
    assert response.status_code == 400
    assert error_for(parse(response), "online_link") == message
    assert session.scalar(select(func.count()).select_from(Cohort)) == 0


def test_a_start_time_the_clocks_skip_is_refused(admin_client, session):
    venue = factories.create_venue(session)
    spring = _next_clock_change(3, weeks_before=2)
    response = _post_new(admin_client, _valid_cohort(venue.id, first_date=spring - dt.timedelta(weeks=2),
                                                     start_time="01:30"))
    assert response.status_code == 400
    assert error_for(parse(response), "start_time") == (
        f"The clocks go forward at this time on {spring.day} {spring:%B %Y}. Enter another start time")
    assert session.scalar(select(func.count()).select_from(Cohort)) == 0


@pytest.mark.parametrize(("month", "start_time", "minutes"), [
    (10, "01:30", "60"),  # in the hour the clocks go back: it would read "1:30am to 1:30am"
    (3, "00:30", "120"),  # over the hour the clocks go forward: two hours would read "12:30am to 3:30am"
])
def test_a_session_the_clocks_change_during_is_refused(admin_client, session, month, start_time, minutes):
    venue = factories.create_venue(session)
    change = _next_clock_change(month, weeks_before=2)
    response = _post_new(admin_client, _valid_cohort(venue.id, first_date=change - dt.timedelta(weeks=2),
                                                     start_time=start_time, session_minutes=minutes))
    assert response.status_code == 400
    assert error_for(parse(response), "start_time") == (
        f"The clocks change during this session on {change.day} {change:%B %Y}. Enter another start time")
    assert session.scalar(select(func.count()).select_from(Cohort)) == 0


def test_a_first_session_earlier_today_is_refused(admin_client, session):
    venue = factories.create_venue(session)
    response = _post_new(admin_client, _valid_cohort(venue.id, first_date=_today(), start_time="00:00"))
    assert response.status_code == 400
    assert error_for(parse(response), "start_time") == "The first session must start later than now"


def test_a_form_posted_without_its_fields_shows_errors_not_a_crash(admin_client, reception_client, session):
    factories.create_venue(session)
    response = admin_client.post(NEW, data={"csrf_token": csrf_token(get_page(admin_client, NEW))})
    assert response.status_code == 400
    page = parse(response)
    assert error_for(page, "first_date") == "Enter date of the first session"
    assert error_for(page, "service") == "Select a course"
    cohort = factories.create_cohort(session)
    url = _session_url(cohort.id, cohort.sessions[1].id, "move")
    response = reception_client.post(url, data={"csrf_token": csrf_token(get_page(reception_client, url))})
    assert response.status_code == 400
    assert error_for(parse(response), "date") == "Enter new date"
    assert error_for(parse(response), "reason") == "Enter why the session is moving"


def test_the_form_keeps_what_was_typed(admin_client, session):
    venue = factories.create_venue(session)
    runner = factories.create_staff(session, role=Role.FACILITATOR)
    response = _post_new(admin_client, {**_valid_cohort(venue.id, capacity="99", start_time="19:15"),
                                        "facilitators": str(runner.id)})
    page = parse(response)
    assert page.find("input", attrs={"name": "start_time"})["value"] == "19:15"
    assert page.find("input", attrs={"name": "capacity"})["value"] == "99"
    assert page.select_one(f"input[name=facilitators][value='{runner.id}']").has_attr("checked")
    assert page.select_one(f"select[name=venue] option[value='{venue.id}']").has_attr("selected")


# Sessions: bank holidays and the clock changes.

@pytest.mark.parametrize("holiday", ["Christmas Day", "Spring Bank Holiday"])
def test_a_session_on_a_bank_holiday_is_flagged(reception_client, session, holiday):
    day = _next_holiday(holiday)
    # The holiday is the cohort's third week, or its first if it is too near for that.
    first = day - dt.timedelta(weeks=2) if day - dt.timedelta(weeks=2) > _today() else day
    cohort = factories.create_cohort(session, service_key="t1-group", first_date=first)

    page = get_page(reception_client, f"/staff/courses/{cohort.id}")
    flagged = [row["id"] for row in page.select("tbody tr[id^=session-]")
               if row.select_one(".portal-bank-holiday")]
    expected = [f"session-{s.number}" for s in cohort.sessions if s.bank_holiday]
    assert day in [s.local_date for s in cohort.sessions]
    assert flagged == expected and len(flagged) >= 1
    tag = page.select_one(f"#session-{[s.number for s in cohort.sessions if s.local_date == day][0]} "
                          ".portal-bank-holiday")
    assert tag.get_text(" ", strip=True) == f"Bank holiday: {holiday} — move this session"
    assert "nhsuk-tag--orange" in tag["class"]
    assert "Sessions on a bank holiday" in page.get_text()
    listing = get_page(reception_client, "/staff/courses")
    assert "on a bank holiday" in listing.get_text()


def test_a_session_moved_off_the_bank_holiday_is_no_longer_flagged(reception_client, session):
    christmas = _next_holiday("Christmas Day")
    cohort = factories.create_cohort(session, service_key="t1-group", first_date=christmas)
    working_day = christmas + dt.timedelta(days=1)
    while england_bank_holiday(working_day):  # Boxing Day, and the days off in lieu
        working_day += dt.timedelta(days=1)
    first = cohort.sessions[0]
    response = _post_change(reception_client, _session_url(cohort.id, first.id, "move"), _move_values(working_day))
    assert response.status_code == 302
    page = get_page(reception_client, f"/staff/courses/{cohort.id}")
    assert page.select_one("#session-1 .portal-bank-holiday") is None
    assert "Moved" in page.select_one("#session-1").get_text()


@pytest.mark.parametrize("month", [3, 10], ids=["clocks-forward", "clocks-back"])
def test_sessions_stay_at_six_pm_local_across_a_clock_change(admin_client, session, month):
    change = _next_clock_change(month, weeks_before=3)
    first = change - dt.timedelta(days=19)  # a Thursday, three weeks before the change
    venue = factories.create_venue(session)
    response = _post_new(admin_client, _valid_cohort(venue.id, first_date=first))
    assert response.status_code == 302

    cohort = session.scalars(select(Cohort)).one()
    assert [_local(s.starts_at).time() for s in cohort.sessions] == [dt.time(18, 0)] * 8
    assert [_local(s.starts_at).date() for s in cohort.sessions] == [
        first + dt.timedelta(weeks=w) for w in range(8)]
    utc_hours = {s.starts_at.hour for s in cohort.sessions}
    assert utc_hours == {17, 18}  # 18:00 GMT is 18:00 UTC; 18:00 BST is 17:00 UTC
    page = get_page(admin_client, response.headers["Location"])
    times = [row.get_text(" ", strip=True) for row in page.select("tbody tr[id^=session-]")]
    assert all("6pm to 8pm" in t for t in times), times


def test_the_spring_forward_day_is_dst_safe_in_the_service():
    # 28 March 2027: 01:00 GMT jumps to 02:00 BST.
    assert wall_clock_to_utc(dt.date(2027, 3, 27), dt.time(18), "Europe/London") == dt.datetime(
        2027, 3, 27, 18, tzinfo=dt.UTC)
    assert wall_clock_to_utc(dt.date(2027, 3, 29), dt.time(18), "Europe/London") == dt.datetime(
        2027, 3, 29, 17, tzinfo=dt.UTC)
    with pytest.raises(NonexistentLocalTime):
        wall_clock_to_utc(dt.date(2027, 3, 28), dt.time(1, 30), "Europe/London")
    # The repeated hour in October means its first occurrence (still BST).
    assert wall_clock_to_utc(dt.date(2027, 10, 31), dt.time(1, 30), "Europe/London") == dt.datetime(
        2027, 10, 31, 0, 30, tzinfo=dt.UTC)


# The cohort page and the list.

def test_the_cohort_page_lists_the_booked_patients_and_seats_left(facilitator_client, session):
    cohort = factories.create_cohort(session, capacity=5)
    first = _book(session, cohort, given_name="Zed", family_name="Zebra")
    second = _book(session, cohort, given_name="Amy", family_name="Aardvark")
    gone = _book(session, cohort, given_name="Gone", family_name="Away")
    gone.status = "cancelled"
    session.execute(update(Cohort).where(Cohort.id == cohort.id).values(seats_taken=2))
    session.commit()

    page = get_page(facilitator_client, f"/staff/courses/{cohort.id}")
    names = [a.get_text(strip=True) for a in page.select("a[href^='/staff/patients/']")]
    assert names == ["Amy Aardvark", "Zed Zebra"]
    assert page.find("a", href=f"/staff/patients/{second.patient_id}", string="Amy Aardvark")
    assert page.find("a", href=f"/staff/patients/{first.patient_id}")
    assert "3 of 5" in page.get_text(" ", strip=True)
    assert "Gone Away" not in page.get_text()
    # Facilitators read; they do not move or cancel.
    assert not page.find("a", href=lambda h: h and h.endswith("/move"))
    [event] = _audit(session, "course_roster_viewed")
    assert event.detail == f"cohort {cohort.id}: 2 patients"


def test_the_cohort_page_says_which_places_are_held_for_waiting_list_offers(reception_client, session, domain):
    # One place, booked; the patient withdraws and it is offered to the first on the waiting list.
    cohort = factories.create_cohort(session, capacity=1)
    leaving = factories.create_patient(session)
    seat = services.book_seat(session, domain, leaving, cohort.id, now=utcnow())
    waiting = factories.create_patient(session, given_name="Siobhán", family_name="O'Brien-Nguyễn")
    join_waitlist(session, domain, waiting, domain.catalogue.get(cohort.service_key), cohort=None, now=utcnow())
    services.withdraw_seat(session, domain, leaving, seat.id, reason="Moving away", now=utcnow())
    session.commit()
    page = get_page(reception_client, f"/staff/courses/{cohort.id}").get_text(" ", strip=True)
    # 0 of 1 left and nobody on the roster: the place is not lost, it waits for Siobhán's answer.
    assert "0 of 1" in page
    assert "1 more is held for a patient offered a place from the waiting list" in page


def test_reception_sees_move_and_cancel_links_only_for_sessions_to_come(reception_client, session):
    cohort = factories.create_cohort(session)
    past = cohort.sessions[0]
    session.execute(update(CohortSession).where(CohortSession.id == past.id).values(
        starts_at=utcnow() - dt.timedelta(hours=3), ends_at=utcnow() - dt.timedelta(hours=1)))
    session.commit()
    page = get_page(reception_client, f"/staff/courses/{cohort.id}")
    assert not page.find("a", href=_session_url(cohort.id, past.id, "move"))
    for s in cohort.sessions[1:]:
        assert page.find("a", href=_session_url(cohort.id, s.id, "move"))
        assert page.find("a", href=_session_url(cohort.id, s.id, "cancel"))


def test_the_list_filters_by_course_and_status(reception_client, session):
    group = factories.create_cohort(session, service_key="t1-group")
    programme = factories.create_cohort(session, service_key="t2-programme")
    closed = factories.create_cohort(session, service_key="t1-group")
    closed.status = "closed"
    session.commit()

    def listed(query: str) -> set[int]:
        page = get_page(reception_client, f"/staff/courses{query}")
        return {int(a["href"].rsplit("/", 1)[1]) for a in page.select("tbody a[href^='/staff/courses/']")}

    assert listed("") == {group.id, programme.id, closed.id}
    assert listed("?service=t2-programme") == {programme.id}
    assert listed("?service=t1-group&status=open") == {group.id}
    assert listed("?status=closed") == {closed.id}
    page = get_page(reception_client, "/staff/courses?service=nope&status=<script>")
    assert error_for(page, "service") == "Select a course from the list"
    assert error_for(page, "status") == "Select a status from the list"
    assert listed("?service=nope") == {group.id, programme.id, closed.id}


def test_the_staff_home_links_to_the_courses(facilitator_client):
    assert get_page(facilitator_client, "/staff").find("a", href="/staff/courses", string="Courses")


def test_only_admins_see_the_create_button(admin_client, reception_client):
    assert get_page(admin_client, "/staff/courses").find("a", href=NEW)
    assert not get_page(reception_client, "/staff/courses").find("a", href=NEW)


# Moving and cancelling a session.

def _cohort_with_patients(session, *, first_date: dt.date | None = None):
    cohort = factories.create_cohort(session, first_date=first_date)
    texted = [_book(session, cohort), _book(session, cohort)]
    _book(session, cohort, no_texts=True)
    cancelled = _book(session, cohort)
    cancelled.status = "cancelled"
    session.commit()
    return cohort, texted


def test_moving_a_session_texts_each_booked_patient_once(reception_client, session):
    spring = _next_clock_change(3, weeks_before=3)
    # Session 2 is on the Friday before the clocks go forward, session 3 on the Friday after.
    cohort, texted = _cohort_with_patients(session, first_date=spring - dt.timedelta(days=9))
    second = cohort.sessions[1]
    old_start = second.starts_at
    new_day = spring + dt.timedelta(days=1)  # after the clocks go forward
    url = _session_url(cohort.id, second.id, "move")

    page = get_page(reception_client, url)
    assert page.find("input", attrs={"name": "time"})["value"] == "18:00"
    assert "We will text the 3 patients booked on this cohort." in page.get_text(" ", strip=True)
    response = reception_client.post(url, data={**_move_values(new_day, "18:30", "Room flooded"),
                                                "csrf_token": csrf_token(page)})
    assert response.status_code == 302 and response.headers["Location"] == f"/staff/courses/{cohort.id}"

    session.expire_all()
    moved = session.get(CohortSession, second.id)
    new_start = dt.datetime.combine(new_day, dt.time(18, 30), tzinfo=LONDON).astimezone(dt.UTC)
    assert moved.starts_at == new_start and new_start.hour == 17  # BST
    assert moved.ends_at == new_start + dt.timedelta(minutes=120)
    assert (moved.moved_from, moved.change_reason, moved.status) == (old_start, "Room flooded", "scheduled")
    rows = _texts(session, "session_moved")
    assert sorted((r.patient_id, r.booking_id) for r in rows) == sorted((b.patient_id, b.id) for b in texted)
    assert sorted(r.idempotency_key for r in rows) == sorted(
        f"session-moved:{second.id}:{new_start.isoformat()}:{b.id}" for b in texted)
    assert all(r.expires_at == new_start for r in rows)
    assert "has moved to" in rows[0].body and "6:30pm" in rows[0].body
    [event] = _audit(session, "session_moved")
    assert event.detail.startswith(f"cohort {cohort.id} session 2: ") and event.detail.endswith("2 texts")
    assert "Room flooded" not in event.detail  # free text stays on the session, not in the trail

    record = get_page(reception_client, f"/staff/courses/{cohort.id}")
    text = record.get_text(" ", strip=True)
    assert "has moved to" in text and "We have texted 2 patients. 1 booked patient does not accept texts" in text
    assert "Moved from" in record.select_one("#session-2").get_text(" ", strip=True)
    assert "Room flooded" in record.select_one("#session-2").get_text(" ", strip=True)

    # The same form sent again (a double click, or the back button) changes and texts nothing.
    again = reception_client.post(url, data={**_move_values(new_day, "18:30", "Room flooded"),
                                             "csrf_token": csrf_token(page)})
    assert again.status_code == 302
    assert len(_texts(session, "session_moved")) == 2
    assert len(_audit(session, "session_moved")) == 1
    assert "had already moved" in get_page(reception_client, f"/staff/courses/{cohort.id}").get_text()
    session.expire_all()
    assert session.get(CohortSession, second.id).moved_from == old_start


def test_moving_a_session_twice_keeps_where_it_was_first_planned(reception_client, session):
    cohort, texted = _cohort_with_patients(session)
    third = cohort.sessions[2]
    planned = third.starts_at
    url = _session_url(cohort.id, third.id, "move")
    day = _local(planned).date()
    assert _post_change(reception_client, url, _move_values(day + dt.timedelta(days=1))).status_code == 302
    assert _post_change(reception_client, url, _move_values(day + dt.timedelta(days=2))).status_code == 302
    session.expire_all()
    assert session.get(CohortSession, third.id).moved_from == planned
    # Each move is news to the patients: one text per move per patient.
    assert len(_texts(session, "session_moved")) == 2 * len(texted)


def test_a_session_may_be_moved_to_end_at_midnight_exactly(reception_client, session):
    cohort = factories.create_cohort(session)
    second = cohort.sessions[1]
    day = _local(second.starts_at).date() + dt.timedelta(days=1)
    url = _session_url(cohort.id, second.id, "move")
    assert _post_change(reception_client, url, _move_values(day, time="22:00")).status_code == 302
    session.expire_all()
    assert _local(session.get(CohortSession, second.id).ends_at).time() == dt.time(0, 0)


def test_cancelling_a_session_texts_each_booked_patient_once(reception_client, session):
    cohort, texted = _cohort_with_patients(session)
    fourth = cohort.sessions[3]
    url = _session_url(cohort.id, fourth.id, "cancel")
    page = get_page(reception_client, url)
    response = reception_client.post(url, data={"reason": "  Facilitator ill ", "csrf_token": csrf_token(page)})
    assert response.status_code == 302

    session.expire_all()
    cancelled = session.get(CohortSession, fourth.id)
    assert (cancelled.status, cancelled.change_reason) == ("cancelled", "Facilitator ill")
    rows = _texts(session, "session_cancelled")
    assert sorted(r.booking_id for r in rows) == sorted(b.id for b in texted)
    assert sorted(r.idempotency_key for r in rows) == sorted(f"session-cancelled:{fourth.id}:{b.id}" for b in texted)
    assert all(r.expires_at == fourth.starts_at for r in rows)
    assert "is cancelled" in rows[0].body
    assert len(_audit(session, "session_cancelled")) == 1

    again = reception_client.post(url, data={"reason": "Facilitator ill", "csrf_token": csrf_token(page)})
    assert again.status_code == 302
    assert len(_texts(session, "session_cancelled")) == len(texted)
    assert len(_audit(session, "session_cancelled")) == 1
    cohort_page = get_page(reception_client, f"/staff/courses/{cohort.id}")
    row = cohort_page.select_one("#session-4").get_text(" ", strip=True)
    assert "Cancelled" in row and "Facilitator ill" in row
    assert not cohort_page.find("a", href=_session_url(cohort.id, fourth.id, "move"))


@pytest.mark.parametrize("change", ["move", "cancel"])
def test_marks_taken_as_people_arrived_go_when_the_session_is_moved_or_cancelled(reception_client, session, domain,
                                                                                 change):
    # The register opens half an hour early. Two patients were marked as they arrived; then the facilitator
    # phoned in sick and reception moved (or cancelled) the session before it began.
    cohort, (ana, ben) = _cohort_with_patients(session)
    first = cohort.sessions[0]
    first.starts_at = utcnow() + dt.timedelta(minutes=20)
    first.ends_at = first.starts_at + dt.timedelta(hours=2)
    facilitator = factories.create_staff(session, role=Role.FACILITATOR, enrolled=False)
    session.commit()
    with_marks = {ana.patient_id: "attended", ben.patient_id: "could_not_attend"}
    save_register(session, domain, first.id, with_marks, actor=Actor(facilitator.id, facilitator.role),
                  now=utcnow())
    session.commit()
    url = _session_url(cohort.id, first.id, change)
    values = (_move_values(_local(first.starts_at).date() + dt.timedelta(days=3)) if change == "move"
              else {"reason": "Facilitator ill"})
    assert _post_change(reception_client, url, values).status_code == 302
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Attendance)) == 0
    done = "moved" if change == "move" else "cancelled"
    assert sorted((e.patient_id, e.detail) for e in _audit(session, "attendance_cleared")) == sorted(
        (patient_id, f"cohort {cohort.id} session 1 ({first.id}): {mark} -> not marked (session {done})")
        for patient_id, mark in with_marks.items())


def test_a_cancelled_session_cannot_be_moved(reception_client, session):
    cohort = factories.create_cohort(session)
    s = cohort.sessions[1]
    s.status = "cancelled"
    session.commit()
    response = _post_change(reception_client, _session_url(cohort.id, s.id, "move"),
                            _move_values(_today() + dt.timedelta(days=60)))
    assert response.status_code == 400
    assert error_for(parse(response), "date") == "This session is cancelled, so it cannot be moved"


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        (_move_values(None), "date", "Enter new date"),
        ({**_move_values(dt.date(2027, 1, 1)), "date[month]": "13"}, "date", "New date must be a real date"),
        (_move_values(dt.date(2021, 1, 5)), "date", "The new date and time must be in the future"),
        (_move_values(dt.date(2099, 1, 6), time=""), "time", "Enter new start time"),
        (_move_values(dt.date(2099, 1, 6), time="7:60"), "time",
         "New start time must be a time in 24-hour format, like 18:00"),
        (_move_values(dt.date(2099, 1, 6), reason="   "), "reason", "Enter why the session is moving"),
        (_move_values(dt.date(2099, 1, 6), reason="x" * 501), "reason",
         "Why the session is moving must be 500 characters or fewer"),
        (_move_values(dt.date(2099, 1, 6), reason="Closed\x00"), "reason",
         "Why the session is moving must not include hidden characters"),
        (_move_values(dt.date(2099, 3, 29), time="01:30"), "time",
         "The clocks go forward on that date, so 01:30 does not exist. Enter another time"),
        (_move_values(dt.date(2099, 10, 25), time="01:00"), "time",
         "The clocks change during the session on that date. Enter another time"),
        (_move_values(dt.date(2099, 3, 29), time="00:30"), "time",
         "The clocks change during the session on that date. Enter another time"),
        # The factory's sessions last two hours: from 22:30 a session would end at 00:30 the next day.
        (_move_values(dt.date(2099, 1, 6), time="22:30"), "time",
         "A session must end by midnight. Enter an earlier start time"),
    ],
)
def test_move_problems_are_shown_next_to_their_fields(reception_client, session, values, field, message):
    cohort = factories.create_cohort(session)
    _book(session, cohort)
    s = cohort.sessions[1]
    response = _post_change(reception_client, _session_url(cohort.id, s.id, "move"), values)
    assert response.status_code == 400
    page = parse(response)
    assert error_for(page, field) == message
    assert message in _summary(page)
    session.expire_all()
    assert session.get(CohortSession, s.id).starts_at == s.starts_at
    assert _texts(session, "session_moved") == []


def test_moving_to_where_the_session_already_is_is_refused(reception_client, session):
    cohort = factories.create_cohort(session)
    s = cohort.sessions[1]
    response = _post_change(reception_client, _session_url(cohort.id, s.id, "move"),
                            _move_values(_local(s.starts_at).date()))
    assert error_for(parse(response), "date") == "The session is already at this date and time. Enter a new one"


def test_a_session_that_has_started_cannot_be_moved_or_cancelled(reception_client, session):
    cohort = factories.create_cohort(session)
    _book(session, cohort)
    s = cohort.sessions[0]
    now = utcnow()
    session.execute(update(CohortSession).where(CohortSession.id == s.id).values(
        starts_at=now - dt.timedelta(minutes=5), ends_at=now + dt.timedelta(minutes=115)))
    session.commit()

    move_url = _session_url(cohort.id, s.id, "move")
    assert "has already started" in get_page(reception_client, move_url).get_text()
    response = _post_change(reception_client, move_url, _move_values(_today() + dt.timedelta(days=3)))
    assert response.status_code == 400
    assert error_for(parse(response), "date") == "This session has already started, so it cannot be moved"
    response = _post_change(reception_client, _session_url(cohort.id, s.id, "cancel"), {"reason": "Too late"})
    assert response.status_code == 400
    assert error_for(parse(response), "reason") == "This session has already started, so it cannot be cancelled"
    session.expire_all()
    assert session.get(CohortSession, s.id).status == "scheduled"
    assert _texts(session, "session_moved") == _texts(session, "session_cancelled") == []


def test_cancelling_needs_a_reason(reception_client, session):
    cohort = factories.create_cohort(session)
    s = cohort.sessions[1]
    response = _post_change(reception_client, _session_url(cohort.id, s.id, "cancel"), {"reason": ""})
    assert response.status_code == 400
    assert error_for(parse(response), "reason") == "Enter why the session is cancelled"
    session.expire_all()
    assert session.get(CohortSession, s.id).status == "scheduled"


def test_a_form_without_its_csrf_token_changes_nothing(reception_client, session):
    cohort = factories.create_cohort(session)
    s = cohort.sessions[1]
    response = reception_client.post(_session_url(cohort.id, s.id, "cancel"), data={"reason": "x"})
    assert response.status_code in (200, 400)
    session.expire_all()
    assert session.get(CohortSession, s.id).status == "scheduled"


# Tampered ids and who may do what.

def test_tampered_ids_are_not_found(reception_client, admin_client, session):
    cohort = factories.create_cohort(session)
    other = factories.create_cohort(session)
    foreign = other.sessions[0].id
    for url in ("/staff/courses/999999", "/staff/courses/0", "/staff/courses/abc",
                _session_url(cohort.id, foreign, "move"), _session_url(cohort.id, foreign, "cancel"),
                _session_url(cohort.id, 999999, "move"), _session_url(999999, cohort.sessions[0].id, "cancel"),
                f"/staff/courses/{cohort.id}/sessions/x/move"):
        assert reception_client.get(url).status_code == 404, url
    token = csrf_token(get_page(reception_client, f"/staff/courses/{cohort.id}/sessions/{cohort.sessions[1].id}/move"))
    response = reception_client.post(_session_url(cohort.id, foreign, "cancel"),
                                      data={"reason": "tampered", "csrf_token": token})
    assert response.status_code == 404
    session.expire_all()
    assert session.get(CohortSession, foreign).status == "scheduled"


def test_who_may_do_what(app, session, patient_client, facilitator_client, reception_client, admin_client):
    cohort = factories.create_cohort(session)
    s = cohort.sessions[1]
    read = ["/staff/courses", f"/staff/courses/{cohort.id}"]
    change = [_session_url(cohort.id, s.id, "move"), _session_url(cohort.id, s.id, "cancel")]
    expected = {
        "patient": {**dict.fromkeys(read, 403), **dict.fromkeys(change, 403), NEW: 403},
        "facilitator": {**dict.fromkeys(read, 200), **dict.fromkeys(change, 403), NEW: 403},
        "reception": {**dict.fromkeys(read, 200), **dict.fromkeys(change, 200), NEW: 403},
        "admin": {**dict.fromkeys(read, 200), **dict.fromkeys(change, 200), NEW: 200},
    }
    clients = {"patient": patient_client, "facilitator": facilitator_client, "reception": reception_client,
               "admin": admin_client}
    for who, urls in expected.items():
        for url, status in urls.items():
            assert clients[who].get(url).status_code == status, (who, url)
            if status == 403 and url not in read:
                assert clients[who].post(url, data={"reason": "x"}).status_code in (400, 403), (who, url)
    anonymous = app.test_client()
    for url in [*read, *change, NEW]:
        response = anonymous.get(url)
        assert response.status_code == 302 and "/sign-in" in response.headers["Location"], url
    session.expire_all()
    assert session.get(CohortSession, s.id).status == "scheduled"
    assert session.scalar(select(func.count()).select_from(Cohort)) == 1


# Arbitrary input never answers 500 and never writes half a change.

TEXT = st.one_of(st.just(""), st.text(max_size=40), st.text(alphabet=st.characters(codec="utf-8"), max_size=300))
FUZZ = settings(max_examples=30, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.data_too_large])
CREATE_FIELDS = ["service", "team", "venue", "online_link", "first_date[day]", "first_date[month]",
                 "first_date[year]", "start_time", "session_minutes", "capacity", "facilitators"]


@FUZZ
@given(values=st.fixed_dictionaries({name: TEXT for name in CREATE_FIELDS}))
def test_fuzz_create_cohort(admin_client, session, values):
    before = session.scalar(select(func.count()).select_from(Cohort))
    response = _post_new(admin_client, values)
    assert response.status_code == 400  # arbitrary text never names a course and a venue
    assert session.scalar(select(func.count()).select_from(Cohort)) == before


@FUZZ
@given(values=st.fixed_dictionaries({name: TEXT for name in ["date[day]", "date[month]", "date[year]", "time",
                                                              "reason"]}))
def test_fuzz_move_session(reception_client, session, values):
    cohort = factories.create_cohort(session)
    s = cohort.sessions[1]
    response = _post_change(reception_client, _session_url(cohort.id, s.id, "move"), values)
    assert response.status_code in (400, 302)
    session.expire_all()
    moved = session.get(CohortSession, s.id)
    assert (moved.starts_at == s.starts_at) == (response.status_code == 400)


@FUZZ
@given(reason=TEXT)
def test_fuzz_cancel_session(reception_client, session, reason):
    cohort = factories.create_cohort(session)
    s = cohort.sessions[1]
    response = _post_change(reception_client, _session_url(cohort.id, s.id, "cancel"), {"reason": reason})
    assert response.status_code in (400, 302)
    session.expire_all()
    assert (session.get(CohortSession, s.id).status == "cancelled") == (response.status_code == 302)


@FUZZ
@given(values=st.fixed_dictionaries({"service": TEXT, "status": TEXT}))
def test_fuzz_cohort_filters(reception_client, values):
    assert reception_client.get("/staff/courses", query_string=values).status_code == 200


# Two members of staff, or one double click, at the same moment.

def _race(db, count: int, change) -> Counter:
    """Run ``change(session)`` in ``count`` threads, each in its own transaction, released together."""
    def attempt():
        try:
            with db.transaction() as s:
                return "changed" if change(s).changed else "unchanged"
        except SessionChangeRefused as refused:
            return f"refused: {refused}"
    return count_together([attempt] * count)


def test_the_same_move_sent_ten_times_at_once_moves_once_and_texts_once(session, race_db, domain):
    cohort, texted = _cohort_with_patients(session)
    target = cohort.sessions[1]
    new_day = _local(target.starts_at).date() + dt.timedelta(days=1)

    def move(s):
        return move_session(s, domain, s.get(CohortSession, target.id), new_date=new_day, new_time=dt.time(18),
                            reason="Room booked", now=utcnow())

    outcomes = _race(race_db, 10, move)
    assert outcomes == {"changed": 1, "unchanged": 9}, outcomes
    assert len(_texts(session, "session_moved")) == len(texted)


def test_the_same_cohort_created_ten_times_at_once_is_made_once(session, race_db, domain):
    venue_id = factories.create_venue(session, is_online=True).id  # read here: the racers share no session
    first = _today() + dt.timedelta(days=21)

    def create():
        with race_db.transaction() as s:
            create_cohort(s, domain, service_key="t1-group", team=None, venue=s.get(Venue, venue_id),
                          first_date=first, start_time=dt.time(18), session_minutes=120, capacity=12,
                          online_link="https://meet.nhs.net/group")
        return "created"

    outcomes = count_together([create] * 10)
    assert outcomes == {"created": 1, "DuplicateCohort": 9}, outcomes
    assert session.scalar(select(func.count()).select_from(Cohort)) == 1


def test_the_service_itself_refuses_a_group_in_a_room_already_taken(session, domain):
    """Not only the form: any caller of ``create_cohort`` (an import, a script) gets the clash check."""
    room = factories.create_venue(session)
    first = _today() + dt.timedelta(days=21)
    plan = {"service_key": "t1-group", "team": None, "venue": room, "start_time": dt.time(18),
            "session_minutes": 120, "capacity": 12}
    create_cohort(session, domain, first_date=first, **plan)
    with pytest.raises(CohortClashes) as refused:
        create_cohort(session, domain, first_date=first + dt.timedelta(weeks=2), **plan)
    assert [clash.field for clash in refused.value.clashes] == ["venue"]
    assert session.scalar(select(func.count()).select_from(Cohort)) == 1


def test_the_same_cancellation_sent_ten_times_at_once_texts_once(session, race_db, domain):
    cohort, texted = _cohort_with_patients(session)
    target = cohort.sessions[1]

    def cancel(s):
        return cancel_session(s, domain, s.get(CohortSession, target.id), reason="Ill", now=utcnow())

    outcomes = _race(race_db, 10, cancel)
    assert outcomes == {"changed": 1, "unchanged": 9}, outcomes
    assert len(_texts(session, "session_cancelled")) == len(texted)


def test_a_group_that_would_share_a_room_or_a_facilitator_with_another_is_refused(admin_client, session):
    facilitator = factories.create_staff(session, role=Role.FACILITATOR, display_name="Femi Ade")
    room, other_room = factories.create_venue(session), factories.create_venue(session)
    first = _today() + dt.timedelta(days=21)
    assert _post_new(admin_client, _valid_cohort(room.id, first_date=first,
                                                 facilitators=str(facilitator.id))).status_code == 302
    # Four weeks later, at 7pm, the first group's week 5 is still running (6pm to 8pm).
    later = first + dt.timedelta(weeks=4)
    page = parse(_post_new(admin_client, _valid_cohort(room.id, first_date=later, start_time="19:00")))
    assert error_for(page, "venue") == (f"{room.name} has another group at that time on {written_date(later)}. "
                                        "Choose another venue, date or time")
    page = parse(_post_new(admin_client, _valid_cohort(other_room.id, first_date=later, start_time="19:00",
                                                       facilitators=str(facilitator.id))))
    assert error_for(page, "facilitators") == (
        f"Femi Ade runs another group at that time on {written_date(later)}. Choose other facilitators, or another "
        "date or time")
    assert session.scalar(select(func.count()).select_from(Cohort)) == 1
    # Another room with other facilitators, or the same room once the first group's session has ended, is fine.
    assert _post_new(admin_client, _valid_cohort(other_room.id, first_date=later, start_time="19:00")).status_code \
        == 302
    assert _post_new(admin_client, _valid_cohort(room.id, first_date=later, start_time="20:00")).status_code == 302


def test_a_group_that_would_meet_a_weekly_clinic_in_its_room_or_of_its_facilitator_is_refused(admin_client,
                                                                                              session):
    facilitator = factories.create_staff(session, role=Role.FACILITATOR, display_name="Femi Ade")
    room, other_room = factories.create_venue(session, name="Busy Centre"), factories.create_venue(session)
    first = _today() + dt.timedelta(days=21)
    session.add(AvailabilityTemplate(clinician_id=facilitator.id, service_key="t1-physio", venue_id=room.id,
                                     weekday=first.weekday(), start_time=dt.time(17), end_time=dt.time(19),
                                     slot_minutes=30, valid_from=first))
    session.commit()
    page = parse(_post_new(admin_client, _valid_cohort(room.id, first_date=first)))
    assert error_for(page, "venue") == (f"Busy Centre has a weekly clinic at that time on {written_date(first)}. "
                                        "Choose another venue, date or time")
    page = parse(_post_new(admin_client, _valid_cohort(other_room.id, first_date=first,
                                                       facilitators=str(facilitator.id))))
    assert error_for(page, "facilitators") == (
        f"Femi Ade holds a weekly clinic at that time on {written_date(first)}. Choose other facilitators, or "
        "another date or time")
    assert session.scalar(select(func.count()).select_from(Cohort)) == 0
    # From 19:00, when the clinic has ended, both are free.
    assert _post_new(admin_client, _valid_cohort(room.id, first_date=first, start_time="19:00",
                                                 facilitators=str(facilitator.id))).status_code == 302


def test_online_groups_may_run_at_the_same_time(admin_client, session):
    online = factories.create_venue(session, is_online=True)
    values = _valid_cohort(online.id, online_link="https://meet.nhs.net/group")
    assert _post_new(admin_client, values).status_code == 302
    assert _post_new(admin_client, {**values, "start_time": "18:30"}).status_code == 302


def test_the_same_cohort_sent_twice_is_made_once(admin_client, session):
    online = factories.create_venue(session, is_online=True, name="Video group")
    first = _today() + dt.timedelta(days=21)
    values = _valid_cohort(online.id, first_date=first, online_link="https://meet.nhs.net/group")
    assert _post_new(admin_client, values).status_code == 302
    # The same form, token and all, sent again (a double click, or the back button and send).
    page = get_page(admin_client, NEW)
    token = csrf_token(page)
    response = admin_client.post(NEW, data={**values, "csrf_token": token})
    assert response.status_code == 400
    message = (f"The Eight-week Pain Management Group at Video group starting {written_date(first)} at 18:00 "
               "already exists. Enter another date or start time, or use the existing group")
    page = parse(response)
    assert error_for(page, "start_time") == message
    assert message in _summary(page)
    assert admin_client.post(NEW, data={**values, "csrf_token": token}).status_code == 400
    assert session.scalar(select(func.count()).select_from(Cohort)) == 1


def test_a_cancelled_twin_does_not_stop_a_cohort(admin_client, session):
    online = factories.create_venue(session, is_online=True)
    values = _valid_cohort(online.id, online_link="https://meet.nhs.net/group")
    assert _post_new(admin_client, values).status_code == 302
    session.execute(update(Cohort).values(status="cancelled"))
    session.commit()
    assert _post_new(admin_client, values).status_code == 302


def test_a_group_without_facilitators_says_nobody_can_take_its_register(admin_client, session):
    cohort = factories.create_cohort(session)
    warning = "Nobody can take this group's register until it has a facilitator."
    assert warning in get_page(admin_client, f"/staff/courses/{cohort.id}").get_text()
    cohort.facilitators = [factories.create_staff(session, role=Role.FACILITATOR)]
    session.commit()
    assert warning not in get_page(admin_client, f"/staff/courses/{cohort.id}").get_text()


def test_a_session_is_not_moved_onto_another_group_in_its_room_or_with_its_facilitator(reception_client, session):
    facilitator = factories.create_staff(session, role=Role.FACILITATOR, display_name="Femi Ade")
    room = factories.create_venue(session)
    first = _today() + dt.timedelta(days=21)
    moving = factories.create_cohort(session, first_date=first, venue=room)
    # Another group in the same room two days later, and one elsewhere run by the moving group's facilitator.
    factories.create_cohort(session, first_date=first + dt.timedelta(days=2), venue=room)
    elsewhere = factories.create_cohort(session, first_date=first + dt.timedelta(days=3),
                                        venue=factories.create_venue(session))
    elsewhere.facilitators = [facilitator]
    moving.facilitators = [facilitator]
    session.commit()
    url = _session_url(moving.id, moving.sessions[0].id, "move")
    for day, message in (
        (first + dt.timedelta(days=2), f"{room.name} has another group at that time on "
                                       f"{written_date(first + dt.timedelta(days=2))}. Choose another date or time"),
        (first + dt.timedelta(days=3), "Femi Ade runs another group at that time on "
                                       f"{written_date(first + dt.timedelta(days=3))}. Choose another date or time"),
    ):
        page = parse(_post_change(reception_client, url, _move_values(day)))
        assert error_for(page, "date") == message
    session.expire_all()
    assert session.get(CohortSession, moving.sessions[0].id).moved_from is None
    # A free evening is fine.
    assert _post_change(reception_client, url, _move_values(first + dt.timedelta(days=1))).status_code == 302


def test_a_session_keeps_its_place_in_the_course(reception_client, session):
    cohort = factories.create_cohort(session)
    first, second, third = cohort.sessions[:3]
    url = _session_url(cohort.id, second.id, "move")
    cases = [
        (_local(first.starts_at).date(), f"Session 2 must be after session 1, on {written_date(first.starts_at)}"),
        (_local(third.starts_at).date(), f"Session 2 must be before session 3, on {written_date(third.starts_at)}"),
        (_local(cohort.sessions[-1].starts_at).date() + dt.timedelta(days=7), "Session 2 must be before session 3"),
    ]
    for day, message in cases:
        error = error_for(parse(_post_change(reception_client, url, _move_values(day))), "date")
        assert error is not None and error.startswith(message), error
    session.expire_all()
    assert session.get(CohortSession, second.id).starts_at == second.starts_at
    # A day between its neighbours is fine.
    between = _local(second.starts_at).date() + dt.timedelta(days=2)
    assert _post_change(reception_client, url, _move_values(between)).status_code == 302


def test_sessions_already_over_do_not_hold_the_order(session, domain):
    """A course put out of order before the rule (session 3 held before session 2) can still have session 2
    moved."""
    cohort = factories.create_cohort(session)
    first, second, third = cohort.sessions[:3]
    now = utcnow()
    for held, days_ago in ((first, 3), (third, 2)):
        held.starts_at = now - dt.timedelta(days=days_ago)
        held.ends_at = held.starts_at + dt.timedelta(hours=2)
    session.commit()
    local = _local(second.starts_at)
    moved = move_session(session, domain, second, new_date=local.date(),
                         new_time=(local + dt.timedelta(hours=1)).time(), reason="Room", now=now)
    assert moved.changed
    session.rollback()


def test_a_twin_at_a_room_is_called_a_twin_not_a_group_in_the_room(admin_client, session):
    room = factories.create_venue(session, name="Finsbury Health Centre")
    first = _today() + dt.timedelta(days=21)
    values = _valid_cohort(room.id, first_date=first)
    assert _post_new(admin_client, values).status_code == 302
    page = parse(_post_new(admin_client, values))
    assert error_for(page, "start_time") == (
        f"The Eight-week Pain Management Group at Finsbury Health Centre starting {written_date(first)} at 18:00 "
        "already exists. Enter another date or start time, or use the existing group")
    assert error_for(page, "venue") is None
    assert session.scalar(select(func.count()).select_from(Cohort)) == 1


def test_a_session_is_not_moved_onto_a_weekly_clinic_in_its_room_or_of_its_facilitator(reception_client, session):
    facilitator = factories.create_staff(session, role=Role.FACILITATOR, display_name="Femi Ade")
    room = factories.create_venue(session, name="Busy Centre")
    first = _today() + dt.timedelta(days=21)
    moving = factories.create_cohort(session, first_date=first, venue=room)
    moving.facilitators = [facilitator]
    # 5pm to 7pm: a clinic in the room two days after the first session, and one of the facilitator elsewhere
    # three days after.
    for days, clinician, venue in ((2, factories.create_staff(session, role=Role.FACILITATOR), room),
                                   (3, facilitator, factories.create_venue(session))):
        session.add(AvailabilityTemplate(
            clinician_id=clinician.id, service_key="t1-physio", venue_id=venue.id,
            weekday=(first + dt.timedelta(days=days)).weekday(), start_time=dt.time(17), end_time=dt.time(19),
            slot_minutes=30, valid_from=first))
    session.commit()
    url = _session_url(moving.id, moving.sessions[0].id, "move")
    for days, message in (
        (2, f"Busy Centre has a weekly clinic at that time on {written_date(first + dt.timedelta(days=2))}. "
            "Choose another date or time"),
        (3, f"Femi Ade holds a weekly clinic at that time on {written_date(first + dt.timedelta(days=3))}. "
            "Choose another date or time"),
    ):
        page = parse(_post_change(reception_client, url, _move_values(first + dt.timedelta(days=days))))
        assert error_for(page, "date") == message
    session.expire_all()
    assert session.get(CohortSession, moving.sessions[0].id).moved_from is None
    # After the clinic ends, the same evening is fine.
    assert _post_change(reception_client, url,
                        _move_values(first + dt.timedelta(days=3), time="19:00")).status_code == 302


@pytest.mark.parametrize("shared", ["room", "facilitator"])
def test_a_group_and_a_weekly_clinic_sent_together_for_one_room_or_person_are_not_both_made(app, session, race_db,
                                                                                          domain, shared):
    """Five admins send the same group and five the same clinic, at once: one of the twenty-minute overlaps
    stands, whichever came first, and nothing else."""
    femi = factories.create_staff(session, role=Role.FACILITATOR, display_name="Femi Ade")
    room = factories.create_venue(session)
    clinic_room = room.id if shared == "room" else factories.create_venue(session).id
    clinician = femi.id if shared == "facilitator" else factories.create_staff(session, role=Role.FACILITATOR).id
    first = _today() + dt.timedelta(days=21)
    values = _valid_cohort(room.id, first_date=first, facilitators=str(femi.id))
    senders = []
    for _ in range(5):
        client = _staff_client(app, session, Role.ADMIN)
        senders.append((client, csrf_token(get_page(client, NEW))))

    def send_group(client, token):
        def job():
            return "group made" if client.post(NEW, data={**values, "csrf_token": token}).status_code == 302 \
                else "group refused"
        return job

    def add_clinic():
        try:
            with race_db.transaction() as s:
                availability.create_template(
                    s, domain, clinician_id=clinician, service_key="t1-physio", team=None, venue_id=clinic_room,
                    weekday=first.weekday(), start_time=dt.time(19, 40), end_time=dt.time(21), slot_minutes=20,
                    valid_from=first, valid_until=None)
        except availability.AvailabilityError:
            return "clinic refused"
        return "clinic made"

    # Connections opened now, as the app's pool has them from the sign-ins: a racer that first connects starts late.
    for connection in [race_db.engine.connect() for _ in range(5)]:
        connection.close()
    outcomes = count_together([send_group(*sender) for sender in senders] + [add_clinic] * 5)
    made = session.scalar(select(func.count()).select_from(Cohort)) + session.scalar(
        select(func.count()).select_from(AvailabilityTemplate))
    assert made == 1 and outcomes["group made"] + outcomes["clinic made"] == 1, outcomes
    assert outcomes["group refused"] + outcomes["clinic refused"] == 9, outcomes


def test_a_session_moved_while_its_facilitator_is_given_a_clinic_then_is_not_both(session, race_db, domain):
    """Five copies of one move and five of one clinic, at once: the move or the clinic stands, not both."""
    femi = factories.create_staff(session, role=Role.FACILITATOR, display_name="Femi Ade")
    cohort = factories.create_cohort(session)
    cohort.facilitators = [femi]
    session.commit()
    target = cohort.sessions[1]
    day = _local(target.starts_at).date() + dt.timedelta(days=1)
    elsewhere = factories.create_venue(session).id

    def move(s):
        return move_session(s, domain, s.get(CohortSession, target.id), new_date=day, new_time=dt.time(18),
                            reason="Room booked", now=utcnow(), others=availability.clinic_check(domain))

    def add_clinic():
        try:
            with race_db.transaction() as s:
                availability.create_template(
                    s, domain, clinician_id=femi.id, service_key="t1-physio", team=None, venue_id=elsewhere,
                    weekday=day.weekday(), start_time=dt.time(17), end_time=dt.time(19), slot_minutes=30,
                    valid_from=day, valid_until=day)
        except availability.AvailabilityError:
            return "clinic refused"
        return "clinic made"

    def attempt_move():
        try:
            with race_db.transaction() as s:
                return "moved" if move(s).changed else "already moved"
        except SessionChangeRefused:
            return "move refused"

    for connection in [race_db.engine.connect() for _ in range(10)]:  # no racer starts late by connecting
        connection.close()
    outcomes = count_together([attempt_move] * 5 + [add_clinic] * 5)
    session.expire_all()
    moved = session.get(CohortSession, target.id).moved_from is not None
    clinics = session.scalar(select(func.count()).select_from(AvailabilityTemplate))
    assert moved != (clinics == 1) and clinics <= 1, outcomes
    assert outcomes in ({"moved": 1, "already moved": 4, "clinic refused": 5},
                        {"clinic made": 1, "clinic refused": 4, "move refused": 5}), outcomes


def test_the_cohort_page_and_its_session_pages_lead_back_from_the_top(admin_client, session):
    """On a phone the cohort page runs to thousands of pixels: its way back was only at the very bottom."""
    cohort = factories.create_cohort(session)
    later = cohort.sessions[1].id
    back = {f"/staff/courses/{cohort.id}": "/staff/courses",
            f"/staff/courses/{cohort.id}/sessions/{later}/move": f"/staff/courses/{cohort.id}",
            f"/staff/courses/{cohort.id}/sessions/{later}/cancel": f"/staff/courses/{cohort.id}"}
    for path, href in back.items():
        assert get_page(admin_client, path).select_one("a.nhsuk-back-link")["href"] == href, path
