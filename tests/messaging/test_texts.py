"""Every text fits one GSM-7 segment with worst-case data, and says nothing clinical."""

from __future__ import annotations

import datetime as dt
import inspect
import re

import pytest

from portal.booking.models import Venue
from portal.messaging import texts
from portal.settings import InvitationPolicy
from tests.fixtures.fake_twilio import segments as twilio_segments

HELPERS = {"plain", "gsm7_length", "check_single_segment", "short_datetime", "clinical_words_in",
           "carried_as_typed"}
VENUE_SHORT_NAME_MAX = Venue.__table__.c.short_name.type.length
LONGEST_VALID_DAYS = next(m.le for m in InvitationPolicy.model_fields["link_valid_days"].metadata if hasattr(m, "le"))
# secrets.token_urlsafe(16), as auth.services makes it, is always 22 URL-safe characters.
WORST_TOKEN = "-_" * 11
LONGEST_PHONE_ALLOWED = "0" + "1" * 13  # policy.toml's pattern: ^0[0-9 ]{9,13}$


def _longest_short_datetime() -> dt.datetime:
    """The start time whose short form is longest, over a whole year at quarter-hour steps."""
    start = dt.datetime(2026, 1, 1, tzinfo=texts.LONDON)
    candidates = (start + dt.timedelta(minutes=15 * n) for n in range(366 * 24 * 4))
    # Among equally long ones, prefer the latest in the week (Sunday).
    return max(candidates, key=lambda t: (len(texts.short_datetime(t)), t.isoweekday(), t))


LONGEST_START = _longest_short_datetime()


def _worst_case_texts(base_url: str, phone: str) -> dict[str, str]:
    venue_name = "Whittington Education Centre 2"
    assert len(venue_name) == VENUE_SHORT_NAME_MAX
    return {
        "invitation": texts.invitation(link=f"{base_url.rstrip('/')}/activate/{WORST_TOKEN}",
                                       valid_days=LONGEST_VALID_DAYS),
        "seat_booked": texts.seat_booked(first_session=LONGEST_START, venue_short_name=venue_name, phone=phone),
        # Every code is 6 digits (auth.codes), so any code is the worst case.
        "password_reset_code": texts.password_reset_code().format(code="123456"),
        "mobile_change_code": texts.mobile_change_code().format(code="123456"),
        "seat_moved": texts.seat_moved(first_session=LONGEST_START, venue_short_name=venue_name, phone=phone),
        "seat_cancelled": texts.seat_cancelled(first_session=LONGEST_START, phone=phone),
        "session_moved": texts.session_moved(was=LONGEST_START, now_at=LONGEST_START, venue_short_name=venue_name,
                                             phone=phone),
        "session_cancelled": texts.session_cancelled(was=LONGEST_START, phone=phone),
        "place_offered": texts.place_offered(first_session=LONGEST_START, until=LONGEST_START, phone=phone),
        "waiting_list_closed": texts.waiting_list_closed(phone=phone),
        "waiting_group_cancelled": texts.waiting_group_cancelled(first_session=LONGEST_START, phone=phone),
        "offer_withdrawn": texts.offer_withdrawn(first_session=LONGEST_START, phone=phone),
        "appointment_booked": texts.appointment_booked(starts_at=LONGEST_START, venue_short_name=venue_name,
                                                       phone=phone),
        "appointment_moved": texts.appointment_moved(starts_at=LONGEST_START, venue_short_name=venue_name,
                                                     phone=phone),
        "appointment_cancelled": texts.appointment_cancelled(starts_at=LONGEST_START, phone=phone),
        "appointment_reminder": texts.appointment_reminder(starts_at=LONGEST_START, venue_short_name=venue_name,
                                                           phone=phone),
        "session_reminder": texts.session_reminder(starts_at=LONGEST_START, venue_short_name=venue_name,
                                                   phone=phone),
        "reply_confirmed": texts.reply_confirmed(starts_at=LONGEST_START),
        "reply_cancelled": texts.reply_cancelled(starts_at=LONGEST_START, phone=phone),
        "reply_call_to_cancel": texts.reply_call_to_cancel(phone=phone),
        "reply_nothing_booked": texts.reply_nothing_booked(phone=phone),
        "reply_help": texts.reply_help(phone=phone),
        "reply_started": texts.reply_started(),
        "selfcare_week_ready": texts.selfcare_week_ready(),
        "questionnaire_due": texts.questionnaire_due(),
        "referred_again": texts.referred_again(phone=phone),
    }


def test_every_text_template_is_covered_here():
    templates = {
        name for name, func in inspect.getmembers(texts, inspect.isfunction)
        if func.__module__ == texts.__name__ and not name.startswith("_") and name not in HELPERS
    }
    assert templates == set(_worst_case_texts("https://portal.test", "020 3316 8888"))


def test_the_worst_case_data_is_really_the_worst():
    assert VENUE_SHORT_NAME_MAX == 30
    assert LONGEST_VALID_DAYS == 30
    longest = texts.short_datetime(LONGEST_START)
    assert re.fullmatch(r"Sun [123][0-9] [A-Z][a-z]{2} at 1[0-2]:[0-5][0-9][ap]m", longest), longest
    assert len(longest) == 21


@pytest.fixture(params=["config", "longest allowed"])
def phone(request, domain):
    return domain.policy.service.phone if request.param == "config" else LONGEST_PHONE_ALLOWED


@pytest.fixture(params=["app", "production-length"])
def base_url(request, app):
    return app.config["PUBLIC_BASE_URL"] if request.param == "app" else "https://appointments.whittington.nhs.uk"


def test_every_text_fits_one_gsm7_segment(base_url, phone):
    for name, text in _worst_case_texts(base_url, phone).items():
        assert texts.gsm7_length(text) <= texts.SEGMENT, f"{name} is {texts.gsm7_length(text)} septets: {text!r}"


def test_every_text_uses_only_gsm7_characters(base_url, phone):
    for name, text in _worst_case_texts(base_url, phone).items():
        texts.gsm7_length(text)  # raises on a character outside the alphabet
        # And by the fake Twilio's own reckoning (its alphabet is written out separately): one segment.
        assert twilio_segments(text) == 1, f"{name}: {text!r}"


def test_no_text_says_anything_clinical(base_url, phone):
    for name, text in _worst_case_texts(base_url, phone).items():
        assert texts.clinical_words_in(text) == [], f"{name}: {text!r}"


def test_the_seat_booked_text_reads_in_london_time():
    summer = dt.datetime(2026, 7, 7, 17, 0, tzinfo=dt.UTC)  # 6pm BST
    text = texts.seat_booked(first_session=summer, venue_short_name="Archway Centre", phone="020 3316 8888")
    assert text == ("NHS: you are booked on a weekly group starting Tue 7 Jul at 6pm, Archway Centre. "
                    "To change, sign in or call 020 3316 8888")


def test_short_datetime_formats():
    assert texts.short_datetime(dt.datetime(2026, 1, 6, 18, 0, tzinfo=dt.UTC)) == "Tue 6 Jan at 6pm"
    assert texts.short_datetime(dt.datetime(2026, 1, 6, 9, 30, tzinfo=dt.UTC)) == "Tue 6 Jan at 9:30am"
    assert texts.short_datetime(dt.datetime(2026, 1, 6, 0, 5, tzinfo=dt.UTC)) == "Tue 6 Jan at 12:05am"
    assert texts.short_datetime(dt.datetime(2026, 1, 6, 12, 0, tzinfo=dt.UTC)) == "Tue 6 Jan at 12pm"


@pytest.mark.parametrize(
    ("text", "septets"),
    [
        ("", 0),
        ("Hello", 5),
        ("£5 @ café, Ñ", 12),  # basic-alphabet accents and symbols are one septet each
        ("€", 2),
        ("[x]", 5),
        ("{}^~|\\", 12),  # every extension-table character costs two
        ("a\fb", 4),
        ("line\nbreak", 10),
    ],
)
def test_gsm7_length_counts_extended_characters_twice(text, septets):
    assert texts.gsm7_length(text) == septets


@pytest.mark.parametrize("char", ["’", "“", "—", "ç", "á", "😀", "\t", "`"])
def test_gsm7_length_refuses_characters_outside_the_alphabet(char):
    with pytest.raises(ValueError, match="not in the GSM-7 alphabet"):
        texts.gsm7_length(f"ok {char} ok")


def test_one_segment_is_160_septets():
    assert texts.check_single_segment("a" * 160) == "a" * 160
    assert texts.check_single_segment("€" * 80) == "€" * 80
    with pytest.raises(texts.TextTooLong):
        texts.check_single_segment("a" * 161)
    with pytest.raises(texts.TextTooLong):
        texts.check_single_segment("€" * 80 + "a")


def test_staff_typed_names_are_made_gsm7_safe():
    from portal.messaging.texts import gsm7_length, plain

    assert plain("St Ann\u2019s \u2013 Zo\u00eb\u2019s room") == "St Ann's - Zoe's room"
    assert plain("Caf\u00e9 \u4e2d") == "Café ?"
    gsm7_length(plain("\u2603 \U0001f600 \u00e7"))  # raises if anything outside GSM-7 survived


def test_a_venue_name_with_a_curly_apostrophe_still_makes_a_one_segment_text():
    import datetime as dt

    from portal.messaging.texts import seat_booked

    text = seat_booked(first_session=dt.datetime(2026, 12, 30, 18, tzinfo=dt.UTC),
                       venue_short_name="St Ann\u2019s Centre", phone="020 3316 8888")
    assert "St Ann's Centre" in text


def test_the_portal_refuses_to_start_when_invitation_links_cannot_fit(tmp_path):
    import pytest

    from portal import create_app
    from portal.settings import ConfigError

    with pytest.raises(ConfigError, match="PUBLIC_BASE_URL"):
        create_app({"PUBLIC_BASE_URL": "https://" + "very-long-subdomain." * 4 + "nhs.uk", "DATABASE_URL": "sqlite://"})
