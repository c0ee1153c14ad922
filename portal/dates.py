"""Dates typed by people: the day, month and year boxes of a form, or one text value in a file.

Both go through ``parse_date_parts``, so a date refused on a form is refused, with the same words,
in an imported file. The messages follow the NHS.UK date input pattern and name the boxes at fault.
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

from portal.plain_text import ascii_digits

LONDON = ZoneInfo("Europe/London")
# English names, whatever the process's locale (strftime's %A and %B follow the locale, and are slow).
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
PARTS = ("day", "month", "year")
_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_BRITISH = re.compile(r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})$")


class InvalidDate(ValueError):
    """The date cannot be used. The message is fit to show next to the field; ``bad_parts`` names
    the boxes to highlight."""

    def __init__(self, message: str, bad_parts: set[str] | frozenset[str]) -> None:
        super().__init__(message)
        self.bad_parts = frozenset(bad_parts)


def written_date(value: dt.datetime | dt.date) -> str:
    """'7 September 2026', as NHS.UK style writes a date in a sentence; a datetime is taken in London time."""
    if isinstance(value, dt.datetime):
        value = value.astimezone(LONDON).date()
    return f"{value.day} {MONTHS[value.month - 1]} {value.year}"


def short_day(day: dt.date) -> str:
    """'Tue 6 Jan', where space is short (a text, a table's narrow column)."""
    return f"{WEEKDAYS[day.weekday()][:3]} {day.day} {MONTHS[day.month - 1][:3]}"


def short_month(month: dt.date) -> str:
    """'Jan 2026'."""
    return f"{MONTHS[month.month - 1][:3]} {month.year}"


def weekday_and_date(day: dt.date, *, year: bool = True) -> str:
    """'Tuesday 1 December 2026' (or 'Tuesday 1 December'), as NHS.UK style writes a day."""
    words = f"{WEEKDAYS[day.weekday()]} {day.day} {MONTHS[day.month - 1]}"
    return f"{words} {day.year}" if year else words


def london_midnight(day: dt.date) -> dt.datetime:
    """00:00 on ``day`` in London, as a UTC instant: where a day people name starts."""
    return dt.datetime.combine(day, dt.time(0), tzinfo=LONDON).astimezone(dt.UTC)


def london_today(now: dt.datetime | None = None) -> dt.date:
    """Today's date for people in the service's area (not the UTC date, which differs after 11pm in summer)."""
    return (now or dt.datetime.now(dt.UTC)).astimezone(LONDON).date()


def parse_date_parts(
    raw: dict[str, str],
    *,
    label: str,
    today: dt.date | None = None,
    past_only: bool = False,
    not_future: bool = False,
) -> dt.date:
    """The date from ``{"day": ..., "month": ..., "year": ...}`` strings, or InvalidDate.

    ``past_only`` refuses today and later; ``not_future`` refuses only later days.
    """
    # Digits of any script count as digits: a phone set to Arabic types ١٩٧٥ for 1975.
    parts = {part: ascii_digits((raw.get(part) or "").strip()) for part in PARTS}
    missing = [part for part in PARTS if not parts[part]]
    if len(missing) == 3:
        raise InvalidDate(f"Enter {label.lower()}", set(PARTS))
    if missing:
        raise InvalidDate(f"{label} must include a {' and a '.join(missing)}", set(missing))
    if not all(parts[part].isascii() and parts[part].isdigit() for part in PARTS):
        bad = {p for p in PARTS if not (parts[p].isascii() and parts[p].isdigit())}
        raise InvalidDate(f"{label} must be a real date, in numbers", bad)
    if len(parts["year"]) != 4:
        raise InvalidDate(f"{label} must include a year with 4 numbers", {"year"})
    day, month, year = (int(parts[part]) for part in PARTS)
    if year < 1900:
        raise InvalidDate(f"{label} must be after 1900", {"year"})
    try:
        date = dt.date(year, month, day)
    except (ValueError, OverflowError):  # OverflowError: a day or month too big for a C int
        raise InvalidDate(f"{label} must be a real date", set(PARTS)) from None
    today = today or london_today()
    if past_only and date >= today:
        raise InvalidDate(f"{label} must be in the past", set(PARTS))
    if not_future and date > today:
        raise InvalidDate(f"{label} must be today or in the past", set(PARTS))
    return date


def split_date_text(text: str, *, label: str) -> dict[str, str]:
    """Day, month and year from one value: ``1975-12-10`` (ISO) or ``10/12/1975`` (British order)."""
    value = (text or "").strip()
    if not value:
        return {part: "" for part in PARTS}
    if match := _ISO.match(value):
        year, month, day = match.groups()
    elif match := _BRITISH.match(value):
        day, month, year = match.groups()
    else:
        raise InvalidDate(f"{label} must be a date like 10/12/1975 or 1975-12-10", set(PARTS))
    return {"day": day, "month": month, "year": year}
