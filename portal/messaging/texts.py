"""The words of every text the portal sends.

Texts go to the patient's own phone and may be read by others: no clinical words, a neutral sender,
and each fits one 160-character GSM-7 segment (a second segment doubles the cost).
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

from portal.dates import short_day

LONDON = ZoneInfo("Europe/London")
SEGMENT = 160
_GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENDED = "^{}\\[~]|€\f"
# GSM-7 basic characters a name never carries: line breaks, and the escape to the extension table.
_NOT_IN_NAMES = "\n\r\x1b"
# Words that would tell a reader something about the patient's health, each with the stem that finds its forms
# (therapy, therapies, therapist; clinic, clinics, clinical). A stem matches inside a longer word too
# ("Backpain"), except "mental", which must start a word: it hides in ordinary ones (environmental).
_CLINICAL_STEMS = {
    "pain": "pain",
    "acupuncture": "acupunct",
    "medication": "medicat",
    "medicine": "medicin",
    "physio": "physio",
    "psycholog": "psycholog",
    "psychiatry": "psychiatr",
    "clinic": "clinic",
    "therapy": "therap",
    "mental": r"\bmental",
}
CLINICAL_WORDS = tuple(_CLINICAL_STEMS)
_CLINICAL_PATTERNS = {word: re.compile(stem, re.IGNORECASE) for word, stem in _CLINICAL_STEMS.items()}


def clinical_words_in(value: str) -> list[str]:
    """The clinical words in ``value``, in any case or form (plurals and variants): what a text must not say."""
    return [word for word, pattern in _CLINICAL_PATTERNS.items() if pattern.search(value)]


def carried_as_typed(value: str) -> bool:
    """Whether every character of ``value`` reaches the phone as typed: all of it is in the GSM-7 basic set
    that ``plain`` keeps (no line breaks or escape), so ``plain`` changes nothing and costs no extra septet."""
    return all(char in _GSM7_BASIC and char not in _NOT_IN_NAMES for char in value)


class TextTooLong(ValueError):
    pass


def gsm7_length(text: str) -> int:
    """Septets the text needs in GSM-7; ValueError if a character is outside the GSM-7 alphabet."""
    length = 0
    for char in text:
        if char in _GSM7_BASIC:
            length += 1
        elif char in _GSM7_EXTENDED:
            length += 2
        else:
            raise ValueError(f"character {char!r} is not in the GSM-7 alphabet")
    return length


def check_single_segment(text: str) -> str:
    if gsm7_length(text) > SEGMENT:
        raise TextTooLong(f"text is {gsm7_length(text)} GSM-7 characters, over one segment: {text!r}")
    return text


_LOOKALIKES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-",
                             "\u2014": "-", "\u2026": "...", "\u00a0": " "})


def plain(value: str) -> str:
    """A name typed by staff, made safe for GSM-7: curly quotes and dashes become plain ones, accents
    GSM-7 lacks are dropped (Zoë -> Zoe), anything else left over becomes '?'. A text never fails to
    send, nor doubles its cost, because of one character in a venue name."""
    import unicodedata

    out = []
    for char in value.translate(_LOOKALIKES):
        if char in _GSM7_BASIC and char not in _NOT_IN_NAMES:
            out.append(char)
            continue
        base = unicodedata.normalize("NFKD", char)[0]
        out.append(base if base in _GSM7_BASIC else "?")
    return "".join(out)


def short_datetime(value: dt.datetime) -> str:
    """'Tue 6 Jan at 6pm' in London time: the UK format, short enough for a text."""
    local = value.astimezone(LONDON)
    hour = local.hour % 12 or 12
    time = f"{hour}{'am' if local.hour < 12 else 'pm'}" if local.minute == 0 else (
        f"{hour}:{local.minute:02d}{'am' if local.hour < 12 else 'pm'}"
    )
    return f"{short_day(local.date())} at {time}"


def invitation(*, link: str, valid_days: int) -> str:
    return check_single_segment(
        f"NHS: set up your account to book appointments online. The link works for {valid_days} days: {link}"
    )


def seat_booked(*, first_session: dt.datetime, venue_short_name: str, phone: str) -> str:
    return check_single_segment(
        f"NHS: you are booked on a weekly group starting {short_datetime(first_session)}, "
        f"{plain(venue_short_name)}. To change, sign in or call {phone}"
    )


def password_reset_code() -> str:
    """The reset-code text, with ``{code}`` where auth.codes puts the 6 digits."""
    text = "NHS: your code to reset your password is {code}. It works for 10 minutes. Do not share it."
    check_single_segment(text.format(code="000000"))
    return text


def mobile_change_code() -> str:
    """The text that proves a new mobile number, with ``{code}`` where auth.codes puts the 6 digits."""
    text = "NHS: your code to change your mobile number is {code}. It works for 10 minutes. Do not share it."
    check_single_segment(text.format(code="000000"))
    return text


def seat_moved(*, first_session: dt.datetime, venue_short_name: str, phone: str) -> str:
    return check_single_segment(
        f"NHS: you have moved to a weekly group starting {short_datetime(first_session)}, "
        f"{plain(venue_short_name)}. To change, sign in or call {phone}"
    )


def seat_cancelled(*, first_session: dt.datetime, phone: str) -> str:
    return check_single_segment(
        f"NHS: your place on the weekly group starting {short_datetime(first_session)} is cancelled. "
        f"To book again, sign in or call {phone}"
    )


def session_moved(*, was: dt.datetime, now_at: dt.datetime, venue_short_name: str, phone: str) -> str:
    return check_single_segment(
        f"NHS: your group session on {short_datetime(was)} has moved to {short_datetime(now_at)}, "
        f"{plain(venue_short_name)}. Questions? Call {phone}"
    )


def session_cancelled(*, was: dt.datetime, phone: str) -> str:
    return check_single_segment(
        f"NHS: your group session on {short_datetime(was)} is cancelled. The other weeks go ahead. "
        f"Questions? Call {phone}"
    )


def waiting_group_cancelled(*, first_session: dt.datetime, phone: str) -> str:
    """To a patient waiting for one group (or offered a place in it) when staff cancel the whole group."""
    return check_single_segment(
        f"NHS: the weekly group starting {short_datetime(first_session)} that you were waiting for is cancelled. "
        f"To join another group, sign in or call {phone}"
    )


def offer_withdrawn(*, first_session: dt.datetime, phone: str) -> str:
    """To a patient waiting for any group who was offered a place in one that staff then cancelled: their place
    in the queue stands."""
    return check_single_segment(
        f"NHS: the weekly group starting {short_datetime(first_session)} is cancelled, so the place we offered is "
        f"withdrawn. You stay on the waiting list. Call {phone}"
    )


def place_offered(*, first_session: dt.datetime, until: dt.datetime, phone: str) -> str:
    """``until`` is when the offer lapses: the hold, or the group's start if that comes sooner."""
    return check_single_segment(
        f"NHS: a place is free on a weekly group starting {short_datetime(first_session)}. "
        f"Sign in by {short_datetime(until)} to accept it, or call {phone}"
    )


def waiting_list_closed(*, phone: str) -> str:
    """Staff re-triaged the patient, and the group they waited for is not one their care now offers."""
    return check_single_segment(
        f"NHS: after a review of your referral you are no longer on a waiting list for a weekly group. "
        f"To see what you can book, sign in or call {phone}"
    )


def referred_again(*, phone: str) -> str:
    """A new referral reached us after the patient's discharge: they may book again. No word of why."""
    return check_single_segment(
        f"NHS: we have your new referral. You can book with us again: sign in to see what you can book, "
        f"or call {phone}"
    )


def appointment_booked(*, starts_at: dt.datetime, venue_short_name: str, phone: str) -> str:
    return check_single_segment(
        f"NHS: your appointment is booked for {short_datetime(starts_at)}, {plain(venue_short_name)}. "
        f"To change, sign in or call {phone}"
    )


def appointment_moved(*, starts_at: dt.datetime, venue_short_name: str, phone: str) -> str:
    return check_single_segment(
        f"NHS: your appointment has moved to {short_datetime(starts_at)}, {plain(venue_short_name)}. "
        f"To change, sign in or call {phone}"
    )


def appointment_cancelled(*, starts_at: dt.datetime, phone: str) -> str:
    return check_single_segment(
        f"NHS: your appointment on {short_datetime(starts_at)} is cancelled. To book again, sign in or call {phone}"
    )


def selfcare_week_ready() -> str:
    """The nudge when a new week of self-management reading opens: discreet, so it names no topic."""
    return check_single_segment("NHS: your reading for this week is ready. Sign in to read it.")


# Reminders. Each says how to change the booking; a reply of YES or CANCEL is read by the inbound webhook.

def appointment_reminder(*, starts_at: dt.datetime, venue_short_name: str, phone: str) -> str:
    return check_single_segment(
        f"NHS: reminder of your appointment on {short_datetime(starts_at)}, {plain(venue_short_name)}. "
        f"Reply YES to confirm or CANCEL to cancel. Or call {phone}"
    )


def session_reminder(*, starts_at: dt.datetime, venue_short_name: str, phone: str) -> str:
    return check_single_segment(
        f"NHS: reminder of your group session on {short_datetime(starts_at)}, {plain(venue_short_name)}. "
        f"Reply YES to confirm. To change, call {phone}"
    )


# Replies to texts patients send us.

def reply_confirmed(*, starts_at: dt.datetime) -> str:
    return check_single_segment(f"NHS: thank you, we have noted you will come on {short_datetime(starts_at)}.")


def reply_cancelled(*, starts_at: dt.datetime, phone: str) -> str:
    return check_single_segment(
        f"NHS: your appointment on {short_datetime(starts_at)} is cancelled. To book again, sign in or call {phone}"
    )


def reply_call_to_cancel(*, phone: str) -> str:
    """CANCEL after the cut-off, or for a group session: a person sorts it out."""
    return check_single_segment(f"NHS: we cannot cancel this by text. Please call us on {phone}.")


def reply_nothing_booked(*, phone: str) -> str:
    return check_single_segment(f"NHS: we could not find a booking to change. Please call us on {phone}.")


def reply_help(*, phone: str) -> str:
    return check_single_segment(
        f"NHS: reply YES to confirm your next appointment or CANCEL to cancel it. Reply STOP to stop texts. "
        f"Or call {phone}"
    )


def reply_started() -> str:
    return check_single_segment("NHS: you will get texts from us again. Reply STOP at any time to stop them.")


def questionnaire_due() -> str:
    """A nudge that a questionnaire is due: it names no measure and says nothing about how anyone feels."""
    return check_single_segment("NHS: you have a short questionnaire to fill in. Sign in to do it.")
