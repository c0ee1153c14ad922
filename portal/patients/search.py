"""Reception search: find a patient by NHS number, name, date of birth or mobile, from one box.

Every kind of search is answered from an index (the tests check the query plans on SQLite and PostgreSQL):

- NHS number: the unique index, exact match on the 10 digits;
- mobile: ``ix_patient_mobile``, exact match on the E.164 form the portal stores;
- date of birth: ``ix_patient_date_of_birth``, exact match (optionally narrowed by a name);
- name: a *prefix* of the stored name keys (``Patient.name_key``: case folded, no accents, letters and digits
  only), as a range ``key >= 'smi' AND key < 'smj'`` on ``ix_patient_name_key`` (surname, given name) or
  ``ix_patient_given_name_key``. Never ``LIKE '%...'``: a leading wildcard reads every row.

On PostgreSQL the range uses the byte-order operators ``~>=~`` and ``~<~``, which the text_pattern_ops indexes
answer whatever the database's collation (plain ``>=`` under en_GB would sort 'o-b' near 'ob'); on SQLite the
key columns compare bytewise anyway.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import nhs_number
import phonenumbers
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from portal.dates import london_today, written_date
from portal.patients.identifiers import format_nhs_number, format_uk_mobile
from portal.patients.models import Patient, name_key
from portal.plain_text import ascii_digits, without_control_characters

MAX_LIMIT = 500
MAX_TEXT = 100
MIN_NAME_KEY = 2

MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
          "november", "december")
_NUMERIC_DATE = re.compile(r"(\d{1,2})[/.\- ](\d{1,2})[/.\- ](\d{4}|\d{2})")
_ISO_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_WORDY_DATE = re.compile(r"(\d{1,2})(?:st|nd|rd|th)?\s+([a-z]{3,9})\.?,?\s+(\d{4})", re.IGNORECASE)
_PHONE_PUNCTUATION = re.compile(r"[\s\-().]")


class SearchInputError(ValueError):
    """The search text cannot be used; the message is fit to show next to the search box."""


@dataclass(frozen=True)
class SearchResults(Sequence[Patient]):
    """The patients found (at most ``limit``, by surname then given name), and how the text was read."""

    kind: str  # "nhs_number", "mobile", "date_of_birth", "name" or "name_and_date_of_birth"
    understood_as: str  # in words, for the results heading: "NHS number 943 476 5919"
    patients: list[Patient] = field(default_factory=list)
    # More patients matched than the limit: staff narrow the search.
    more: bool = False
    # A note that helps when nothing is found (a mistyped NHS number's check digit).
    hint: str | None = None

    def __len__(self) -> int:
        return len(self.patients)

    def __iter__(self) -> Iterator[Patient]:
        return iter(self.patients)

    def __getitem__(self, index):  # type: ignore[override]
        return self.patients[index]


def search_patients(session: Session, text: str, limit: int = 50) -> SearchResults:
    """Find patients by NHS number, name, date of birth or mobile number, whichever ``text`` is.

    Names match from the start of the surname or given name, ignoring case, accents, spaces, hyphens and
    apostrophes: "smi", "Smith, J", "John Smith", "o'brien". Raises SearchInputError for text that is none of
    these (empty, too short, a date that does not exist).
    """
    limit = max(1, min(int(limit), MAX_LIMIT))
    # Hidden characters (a pasted zero-width space, a right-to-left override) are no part of any name or number,
    # and one shown back unclosed on the page would reverse the rest of its line.
    text = ascii_digits(" ".join(without_control_characters(text or "").split()))
    if not text:
        raise SearchInputError("Enter a name, NHS number, date of birth or mobile number")
    if len(text) > MAX_TEXT:
        raise SearchInputError(f"Search must be {MAX_TEXT} characters or fewer")

    day = parse_uk_date(text)
    if day is not None:
        return _run(session, "date_of_birth", f"date of birth {written_date(day)}",
                    Patient.date_of_birth == day, limit)
    compact = _PHONE_PUNCTUATION.sub("", text)
    if re.fullmatch(r"\+?\d+", compact):
        return _by_digits(session, compact, limit)
    if any(ch.isdigit() for ch in text):
        return _name_and_date(session, text, limit)
    return _by_name(session, text, limit)


# --- What the text is ------------------------------------------------------------------------------------------


def _by_digits(session: Session, compact: str, limit: int) -> SearchResults:
    digits = compact.removeprefix("+")
    if compact.startswith("+") or (digits.startswith("07") and len(digits) == 11) or (
        digits.startswith(("447", "00447")) and len(digits) in (12, 14)
    ):
        mobile = _mobile_e164(compact)
        return _run(session, "mobile", f"mobile {format_uk_mobile(mobile)}", Patient.mobile == mobile, limit)
    if len(digits) == 10:
        hint = None
        if not nhs_number.is_valid(digits):
            hint = (f"{format_nhs_number(digits)} is not a valid NHS number: its last digit (the check digit) "
                    "does not match the others. Check the number and search again.")
        return _run(session, "nhs_number", f"NHS number {format_nhs_number(digits)}",
                    Patient.nhs_number == digits, limit, hint=hint)
    if len(digits) == 8:
        day = _date_or_error(int(digits[4:]), int(digits[2:4]), int(digits[:2]))
        return _run(session, "date_of_birth", f"date of birth {written_date(day)}",
                    Patient.date_of_birth == day, limit)
    raise SearchInputError(
        "Enter a 10-digit NHS number, a mobile number like 07700 900 982, or a date of birth like 31/01/1970"
    )


def _mobile_e164(compact: str) -> str:
    try:
        number = phonenumbers.parse(compact, "GB")
    except phonenumbers.NumberParseException:
        raise SearchInputError("Enter a UK mobile number, like 07700 900 982") from None
    if number.country_code != 44:
        raise SearchInputError("Enter a UK mobile number, like 07700 900 982")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def parse_uk_date(text: str) -> dt.date | None:
    """A date written the UK way: 31/01/1970, 31-1-70, 31.01.1970, 31 01 1970, 31 January 1970, 31 Jan 1970,
    or 1970-01-31. None if the text is not a date at all; SearchInputError if it is one that does not exist."""
    text = text.strip()
    if match := _NUMERIC_DATE.fullmatch(text):
        day, month, year = (int(part) for part in match.groups())
        return _date_or_error(_full_year(year, match.group(3)), month, day)
    if match := _ISO_DATE.fullmatch(text):
        year, month, day = (int(part) for part in match.groups())
        return _date_or_error(year, month, day)
    if match := _WORDY_DATE.fullmatch(text):
        month = _month(match.group(2))
        if month is None:
            return None
        return _date_or_error(int(match.group(3)), month, int(match.group(1)))
    return None


def _month(word: str) -> int | None:
    word = word.lower()
    found = [n for n, name in enumerate(MONTHS, start=1) if name.startswith(word) or (word == "sept" and n == 9)]
    return found[0] if len(found) == 1 else None


def _full_year(year: int, written: str) -> int:
    """Two-digit years: the latest year not in the future (05 is 2005, 60 is 1960)."""
    if len(written) == 4:
        return year
    this_year = london_today().year
    return 2000 + year if 2000 + year <= this_year else 1900 + year


def _date_or_error(year: int, month: int, day: int) -> dt.date:
    try:
        found = dt.date(year, month, day)
    except ValueError:
        raise SearchInputError("Enter a real date of birth, like 31/01/1970") from None
    if found > london_today() or found.year < 1900:
        raise SearchInputError("Enter a date of birth in the past, like 31/01/1970")
    return found


def _name_and_date(session: Session, text: str, limit: int) -> SearchResults:
    """'Smith 31/01/1970' or '31/01/1970 smith': the date of birth, narrowed by the name."""
    match = _NUMERIC_DATE.search(text) or _ISO_DATE.search(text)
    rest = (text[:match.start()] + " " + text[match.end():]).strip() if match else ""
    day = parse_uk_date(match.group(0)) if match else None
    if day is None or not rest or any(ch.isdigit() for ch in rest):
        raise SearchInputError("Enter a name, an NHS number, a date of birth like 31/01/1970 or a mobile number")
    name = _name_condition(rest, _dialect(session))
    return _run(session, "name_and_date_of_birth", f"“{rest}” born {written_date(day)}",
                and_(Patient.date_of_birth == day, name), limit)


def _by_name(session: Session, text: str, limit: int) -> SearchResults:
    return _run(session, "name", f"name “{text}”", _name_condition(text, _dialect(session)), limit)


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _name_condition(text: str, dialect: str):
    """'Surname, given' means what it says. One word is the start of either name. 'Given surname' is read
    every way a receptionist may mean it: given then surname, a surname of several words, surname then given."""
    if "," in text:
        family_part, _, given_part = text.partition(",")
        family, given = _key(family_part), name_key(given_part)
        condition = _starts_with(Patient.family_name_key, family, dialect)
        return and_(condition, _starts_with(Patient.given_name_key, given, dialect)) if given else condition
    words = [key for key in (name_key(word) for word in text.split()) if key]
    if len("".join(words)) < MIN_NAME_KEY:
        _key(text)  # raises the message
    family, given = Patient.family_name_key, Patient.given_name_key
    if len(words) == 1:
        return or_(_starts_with(family, words[0], dialect), _starts_with(given, words[0], dialect))
    first, rest = words[0], "".join(words[1:])
    return or_(
        and_(_starts_with(family, rest, dialect), _starts_with(given, first, dialect)),
        _starts_with(family, "".join(words), dialect),
        and_(_starts_with(family, first, dialect), _starts_with(given, rest, dialect)),
    )


def _key(text: str) -> str:
    key = name_key(text)
    if len(key) < MIN_NAME_KEY:
        raise SearchInputError(f"Enter at least {MIN_NAME_KEY} letters of the name")
    return key


# --- The query -------------------------------------------------------------------------------------------------


def _after(prefix: str) -> str:
    """The smallest string greater than every string that starts with ``prefix``: its last character, plus one."""
    following = ord(prefix[-1]) + 1
    if 0xD800 <= following <= 0xDFFF:  # surrogates are not characters: skip past them
        following = 0xE000
    return prefix[:-1] + chr(following)


def _starts_with(column, prefix: str, dialect: str):
    """``column`` starts with ``prefix``, as a range the column's index answers."""
    high = _after(prefix)
    if dialect == "postgresql":
        return and_(column.op("~>=~", is_comparison=True)(prefix), column.op("~<~", is_comparison=True)(high))
    return and_(column >= prefix, column < high)


def _run(session: Session, kind: str, understood_as: str, condition, limit: int, *,
         hint: str | None = None) -> SearchResults:
    found = list(session.scalars(
        select(Patient).where(condition)
        .order_by(Patient.family_name_key, Patient.given_name_key, Patient.id)
        .limit(limit + 1)
    ))
    return SearchResults(kind=kind, understood_as=understood_as, patients=found[:limit], more=len(found) > limit,
                         hint=hint if not found else None)
