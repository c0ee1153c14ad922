"""Sessions end after 30 minutes without activity and after 12 hours in all."""

import datetime as dt
from urllib.parse import parse_qs, urlsplit

import pytest

from portal.auth import sessions
from portal.db import utcnow
from tests import factories
from tests.pages import csrf_token, get_page

IDLE = "You were signed out after 30 minutes without activity. Sign in again to continue."
TOO_LONG = "You were signed out because you had been signed in for 12 hours. Sign in again to continue."


def _shift(client, **minutes_ago):
    """Move the session's stamps into the past, as if that much time had gone by."""
    with client.session_transaction() as stored:
        for key, minutes in minutes_ago.items():
            stored[key] -= int(minutes * 60)


def _expect_signed_out(client, url, message):
    response = client.get(url)
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert (location.path, parse_qs(location.query)) == ("/sign-in", {"next": [url]})
    page = get_page(client, response.headers["Location"])
    assert message in page.get_text(" ", strip=True)
    # Signed out for good, not just for one request.
    assert client.get(url).headers["Location"].startswith("/sign-in")


def test_sign_in_stamps_the_session(patient_client):
    now = int(utcnow().timestamp())
    with patient_client.session_transaction() as stored:
        assert now - 5 <= stored[sessions.SIGNED_IN_AT] == stored[sessions.LAST_SEEN_AT] <= now


def test_thirty_minutes_without_activity_end_the_session(patient_client):
    _shift(patient_client, last_seen_at=30.5)
    _expect_signed_out(patient_client, "/bookings", IDLE)


def test_activity_keeps_the_session_alive(patient_client):
    for _ in range(3):
        _shift(patient_client, signed_in_at=29, last_seen_at=29)
        assert patient_client.get("/bookings").status_code == 200
    with patient_client.session_transaction() as stored:
        assert int(utcnow().timestamp()) - stored[sessions.LAST_SEEN_AT] < 5


def test_twelve_hours_end_the_session_however_active(patient_client):
    _shift(patient_client, signed_in_at=12 * 60 - 1)
    assert patient_client.get("/bookings").status_code == 200
    _shift(patient_client, signed_in_at=2)
    _expect_signed_out(patient_client, "/bookings", TOO_LONG)


def test_the_clock_seam_ends_an_idle_session(patient_client, monkeypatch):
    later = utcnow() + dt.timedelta(minutes=31)
    monkeypatch.setattr(sessions, "utcnow", lambda: later)
    _expect_signed_out(patient_client, "/", IDLE)


def _sign_in_again(client, location: str, mobile: str):
    page = get_page(client, location)
    return client.post(location, data={"identifier": mobile, "password": factories.PASSWORD,
                                       "csrf_token": csrf_token(page)})


@pytest.mark.parametrize("url", [
    "/bookings?q=Zo%C3%AB",  # a search for "Zoë", as browsers send it
    "/bookings/Zo%C3%AB",  # letters beyond ASCII in the path itself
    "/bookings?q=Zo%C3%AB%20Smith&page=2",
    "/bookings?q=%FF",  # not UTF-8: kept as sent
])
def test_after_the_timeout_sign_in_returns_to_a_page_with_letters_beyond_ascii(patient_client, url):
    _shift(patient_client, last_seen_at=31)
    response = patient_client.get(url)
    location = urlsplit(response.headers["Location"])
    assert (location.path, parse_qs(location.query)) == ("/sign-in", {"next": [url]})
    again = _sign_in_again(patient_client, response.headers["Location"], patient_client.user.patient.mobile)
    assert again.status_code == 302
    assert again.headers["Location"] == url


@pytest.mark.parametrize(("raw", "expected"), [("q=Zoë".encode(), "/bookings?q=Zo%C3%AB"),
                                             (b"q=\xff", "/bookings?q=%FF")])
def test_a_query_sent_as_raw_bytes_is_carried_percent_encoded(patient_client, raw, expected):
    """Browsers percent-encode, but a client may send UTF-8 (or anything) raw: not UTF-8 once answered 500."""
    _shift(patient_client, last_seen_at=31)
    # As a WSGI server hands raw bytes over: each byte one character of the string.
    response = patient_client.get("/bookings", environ_overrides={"QUERY_STRING": raw.decode("latin-1")})
    assert response.status_code == 302
    assert parse_qs(urlsplit(response.headers["Location"]).query) == {"next": [expected]}


@pytest.mark.parametrize("key", [sessions.SIGNED_IN_AT, sessions.LAST_SEEN_AT])
def test_a_signed_in_session_without_its_stamps_has_ended(patient_client, key):
    with patient_client.session_transaction() as stored:
        del stored[key]
    assert patient_client.get("/bookings").headers["Location"].startswith("/sign-in")


def test_a_form_sent_after_the_timeout_goes_to_sign_in_without_a_next(patient_client):
    page = get_page(patient_client, "/account")
    token = page.find("input", attrs={"name": "csrf_token"})["value"]
    _shift(patient_client, last_seen_at=31)
    response = patient_client.post("/account/sign-out-everywhere", data={"csrf_token": token})
    assert response.headers["Location"] == "/sign-in"


def test_visitors_who_never_signed_in_are_left_alone(client):
    get_page(client, "/sign-in")
    with client.session_transaction() as stored:
        assert sessions.SIGNED_IN_AT not in stored


def test_expiry_message_rules():
    now = utcnow()
    stamp = int(now.timestamp())
    assert sessions.expiry_message(stamp, stamp, now) is None
    assert sessions.expiry_message(stamp, stamp - 30 * 60, now) is None
    assert sessions.expiry_message(stamp, stamp - 30 * 60 - 1, now) == IDLE
    assert sessions.expiry_message(stamp - 12 * 3600 - 1, stamp, now) == TOO_LONG
    assert sessions.expiry_message("1", stamp, now) == IDLE
    assert sessions.expiry_message(None, None, now) == IDLE


def test_page_views_within_a_minute_do_not_rewrite_the_session_cookie(patient_client):
    patient_client.get("/")
    response = patient_client.get("/")
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    _shift(patient_client, last_seen_at=2)
    assert "Set-Cookie" in patient_client.get("/").headers  # stamp refreshed after a minute
