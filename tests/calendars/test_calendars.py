"""Calendar files and the private feed: Europe/London times, stable UIDs, revocable addresses."""

import datetime as dt
from zoneinfo import ZoneInfo

from icalendar import Calendar
from sqlalchemy import func, select

from portal.booking import services, sessions
from portal.booking.models import Booking, CalendarFeed
from portal.calendars import services as calendars
from portal.calendars.services import course_events
from portal.db import utcnow
from tests import factories
from tests.booking.helpers import signed_in
from tests.pages import csrf_token, get_page, parse

LONDON = ZoneInfo("Europe/London")


def _book(client, cohort):
    page = get_page(client, f"/cohorts/{cohort.id}")
    assert client.post(f"/cohorts/{cohort.id}", data={"csrf_token": csrf_token(page)}).status_code == 302


def _events(body: bytes):
    return [c for c in Calendar.from_ical(body).walk("VEVENT")]


def test_a_course_downloads_as_one_file_with_every_session_at_london_time(app, session):
    client = signed_in(app, session)
    # Starts before the March clock change and runs past it: 18:00 GMT, then 18:00 BST.
    cohort = factories.create_cohort(session, first_date=dt.date(2027, 3, 16), start_time=dt.time(18, 0))
    seat = services.book_seat(session, factories.domain(), client.user.patient, cohort.id,
                              now=dt.datetime(2027, 3, 1, tzinfo=dt.UTC))
    session.commit()
    response = client.get(f"/bookings/{seat.id}/calendar.ics")
    assert response.status_code == 200 and response.mimetype == "text/calendar"
    body = response.data
    assert b"BEGIN:VTIMEZONE" in body and b"TZID:Europe/London" in body
    assert b"DTSTART;TZID=Europe/London:20270316T180000" in body
    assert b"DTSTART;TZID=Europe/London:20270330T180000" in body  # after the change, still 18:00 local
    events = _events(body)
    assert len(events) == 8
    assert len({str(e["UID"]) for e in events}) == 8
    for event in events:
        assert event.decoded("DTSTART").tzinfo is not None
        assert "pain" not in str(event["SUMMARY"]).lower()
    starts = sorted(e.decoded("DTSTART").astimezone(dt.UTC).hour for e in events)
    assert starts[0] == 17 and starts[-1] == 18  # 18:00 BST is 17:00 UTC, 18:00 GMT is 18:00 UTC


def test_the_feed_follows_changes_and_stops_when_revoked(app, session, domain):
    client = signed_in(app, session)
    first = factories.create_cohort(session)
    later = factories.create_cohort(session, first_date=utcnow().date() + dt.timedelta(days=40))
    _book(client, first)
    page = get_page(client, "/calendar")
    made = client.post("/calendar", data={"csrf_token": csrf_token(page)}, follow_redirects=True)
    address = made.get_data(as_text=True).split("<code>", 1)[1].split("</code>", 1)[0]
    path = address.split("://", 1)[1].split("/", 1)[1]
    feed = client.get("/" + path)
    assert feed.status_code == 200
    events = _events(feed.data)
    assert len(events) == 8 and all(str(e["STATUS"]) == "CONFIRMED" for e in events)
    # Another browser with no session reads it too: the address is the key.
    assert app.test_client().get("/" + path).status_code == 200

    seat = session.scalars(select(Booking)).one()
    services.move_seat(session, domain, client.user.patient, seat.id, later.id, now=utcnow())
    session.commit()
    events = _events(app.test_client().get("/" + path).data)
    cancelled = [e for e in events if str(e["STATUS"]) == "CANCELLED"]
    confirmed = [e for e in events if str(e["STATUS"]) == "CONFIRMED"]
    assert len(cancelled) == 8 and len(confirmed) == 8
    assert all(int(e["SEQUENCE"]) > 0 for e in cancelled)

    revoke = client.post("/calendar/revoke", data={"csrf_token": csrf_token(get_page(client, "/calendar"))})
    assert revoke.status_code == 302
    assert app.test_client().get("/" + path).status_code == 404


def test_a_new_address_replaces_the_old_one_and_guesses_find_nothing(app, session):
    client = signed_in(app, session)
    token = csrf_token(get_page(client, "/calendar"))
    first = client.post("/calendar", data={"csrf_token": token}, follow_redirects=True).get_data(as_text=True)
    second = client.post("/calendar", data={"csrf_token": token}, follow_redirects=True).get_data(as_text=True)
    old = first.split("<code>", 1)[1].split("</code>", 1)[0].split("/calendar/", 1)[1]
    new = second.split("<code>", 1)[1].split("</code>", 1)[0].split("/calendar/", 1)[1]
    assert old != new
    anonymous = app.test_client()
    assert anonymous.get(f"/calendar/{old}").status_code == 404
    assert anonymous.get(f"/calendar/{new}").status_code == 200
    for guess in ("feed/x.ics", "feed/" + "a" * 200 + ".ics", "feed/%00.ics"):
        assert anonymous.get(f"/calendar/{guess}").status_code == 404


def _shown_address(response) -> str | None:
    page = parse(response)
    code = page.select_one("main code")
    return code.get_text(strip=True) if code else None


def test_making_an_address_redirects_and_shows_it_once(app, session):
    client = signed_in(app, session)
    made = client.post("/calendar", data={"csrf_token": csrf_token(get_page(client, "/calendar"))})
    assert made.status_code == 302 and made.headers["Location"] == "/calendar"
    shown = client.get("/calendar")
    address = _shown_address(shown)
    assert address.startswith(app.config["PUBLIC_BASE_URL"].rstrip("/") + "/calendar/feed/")
    assert shown.headers["Cache-Control"] == "no-store"
    # A reload shows it no more and makes no other address: the one just copied keeps working.
    again = client.get("/calendar")
    assert _shown_address(again) is None
    assert "You have a calendar address. We cannot show it again." in parse(again).get_text()
    path = "/" + address.split("://", 1)[1].split("/", 1)[1]
    assert app.test_client().get(path).status_code == 200
    assert session.scalar(select(func.count()).select_from(CalendarFeed)) == 1


def test_an_address_stopped_before_it_was_shown_is_not_shown(app, session):
    client = signed_in(app, session)
    client.post("/calendar", data={"csrf_token": csrf_token(get_page(client, "/calendar"))})
    with client.session_transaction() as browser:
        token = browser["new_calendar_feed"]["token"]
    calendars.revoke_feed(session, client.user.patient_id)
    session.commit()
    page = client.get("/calendar")
    assert _shown_address(page) is None and token not in page.get_data(as_text=True)


def test_moved_and_cancelled_sessions_show_in_the_feed(app, session, domain):
    client = signed_in(app, session)
    cohort = factories.create_cohort(session)
    _book(client, cohort)
    session.expire_all()
    seat = session.scalars(select(Booking)).one()
    second, third = seat.cohort.sessions[1], seat.cohort.sessions[2]
    planned = second.starts_at.astimezone(LONDON)
    sessions.move_session(session, domain, second, new_date=planned.date() + dt.timedelta(days=1),
                          new_time=planned.time(), reason="Room booked", now=utcnow())
    sessions.cancel_session(session, domain, third, reason="Facilitator ill", now=utcnow())
    session.commit()
    body = client.get(f"/bookings/{seat.id}/calendar.ics").data
    by_uid = {str(e["UID"]): e for e in _events(body)}
    moved = by_uid[f"booking-{seat.id}-session-{second.id}@pain-portal"]
    assert int(moved["SEQUENCE"]) == 1 and moved.decoded("DTSTART").astimezone(dt.UTC) == second.starts_at
    assert str(by_uid[f"booking-{seat.id}-session-{third.id}@pain-portal"]["STATUS"]) == "CANCELLED"


def test_each_change_to_a_session_raises_its_sequence(app, session, domain):
    """RFC 5545: a calendar keeps the version with the higher SEQUENCE, so every change must raise it, moving a
    session back to its planned time included."""
    client = signed_in(app, session)
    cohort = factories.create_cohort(session)
    _book(client, cohort)
    session.expire_all()
    seat = session.scalars(select(Booking)).one()
    third = seat.cohort.sessions[2]
    uid = f"booking-{seat.id}-session-{third.id}@pain-portal"
    planned = third.starts_at.astimezone(LONDON)

    def sequence() -> int:
        return int({str(e["UID"]): e for e in _events(client.get(f"/bookings/{seat.id}/calendar.ics").data)}[uid][
            "SEQUENCE"])

    seen = [sequence()]
    for days in (1, 2, 0):  # a day later, two days later, then back where it was planned
        sessions.move_session(session, domain, third, new_date=planned.date() + dt.timedelta(days=days),
                              new_time=planned.time(), reason="Room", now=utcnow())
        session.commit()
        seen.append(sequence())
    sessions.cancel_session(session, domain, third, reason="Facilitator ill", now=utcnow())
    session.commit()
    seen.append(sequence())
    assert seen == [0, 1, 2, 3, 4]
    # Giving up the seat is one change more (the feed, not the download, still shows a seat given up).
    services.withdraw_seat(session, domain, seat.patient, seat.id, reason="Feeling better", now=utcnow())
    session.commit()
    session.expire_all()
    event = next(e for e in course_events(domain, session.get(Booking, seat.id)) if e.uid == uid)
    assert (event.cancelled, event.sequence) == (True, 5)


def test_the_feed_address_is_the_portal_s_own_whatever_host_the_request_names(app, session):
    client = signed_in(app, session)
    token = csrf_token(get_page(client, "/calendar"))
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    client.set_cookie(cookie.key, cookie.value, domain="evil.example")
    page = client.post("http://evil.example/calendar", data={"csrf_token": token}, follow_redirects=True)
    assert page.status_code == 200
    address = page.get_data(as_text=True).split("<code>", 1)[1].split("</code>", 1)[0]
    assert address.startswith(app.config["PUBLIC_BASE_URL"].rstrip("/") + "/calendar/feed/")
    feed = app.test_client().get("/" + address.split("://", 1)[1].split("/", 1)[1])
    # Personal data: kept by no cache, so a stopped address stops at once.
    assert feed.status_code == 200 and feed.headers["Cache-Control"] == "private, no-store"
