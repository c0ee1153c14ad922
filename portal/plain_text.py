"""What people type must be plain text, and ids typed or sent in forms must be plain numbers.

Control characters (NUL and the rest, but not tab or newline) belong in nothing staff or patients write, and
PostgreSQL refuses NUL in text outright. Nor do invisible characters that change how text is shown: a zero-width
space makes a blank-looking name, and a right-to-left override shows a surname reversed in staff lists. The joiners
(U+200C, U+200D) stay allowed: some scripts, Persian among them, need them inside words.
"""

from __future__ import annotations

import re
import unicodedata

CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b\u202a-\u202e\u2060\u2066-\u2069\ufeff]")

# An id has at most this many digits: larger values are no record's, and int() of them costs for nothing.
ID_DIGITS = 9


def has_control_characters(text: str | None) -> bool:
    return bool(text) and CONTROL_CHARACTERS.search(text) is not None


# Besides letters of any script (and the marks that build them), what a person's name may hold: O'Brien, Smith-Jones,
# St. John, and the joiners some scripts need inside words.
NAME_PUNCTUATION = frozenset(" -'\u2019.\u200c\u200d")


def is_personal_name(text: str) -> bool:
    """Letters of any script, spaces, hyphens, apostrophes and full stops: no digits, symbols or emoji."""
    return all(ch in NAME_PUNCTUATION or unicodedata.category(ch)[0] in "LM" for ch in text)


def has_symbols(text: str) -> bool:
    """Emoji, pictographs and other symbols that are neither letters, digits nor punctuation (nor are characters
    no font has: private use, unassigned)."""
    return any(unicodedata.category(ch) in ("So", "Sk", "Co", "Cn", "Cs") for ch in text)


def without_control_characters(text: str) -> str:
    """``text`` less the characters plain text refuses: for showing a value saved before a character was refused,
    so that the person editing it sees what will be kept and can save it again."""
    return CONTROL_CHARACTERS.sub("", text)


def is_plain_number(value: str | None) -> bool:
    """Only the digits 0-9: str.isdigit() alone also passes "²" and other digits int() refuses or reads
    differently."""
    return bool(value) and value.isascii() and value.isdigit()


def ascii_digits(text: str) -> str:
    """``text`` with every decimal digit of any script (full-width ９, Arabic-Indic ٩ ...) as its ASCII digit, so
    a number typed on any keyboard is stored, compared and searched as one value."""
    if text.isascii():
        return text
    return "".join(str(unicodedata.decimal(ch)) if ch.isdecimal() else ch for ch in text)


def number_id(value: str | None) -> int:
    """A record id from a form value or an address part; 0, which is no record's, for anything else."""
    return int(value) if is_plain_number(value) and len(value) <= ID_DIGITS else 0
