"""Passwords: hashing with argon2id (argon2-cffi's RFC 9106 low-memory profile), and the one rule every
new password must pass, checked offline with zxcvbn."""

from __future__ import annotations

import re
from collections.abc import Iterable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from zxcvbn import zxcvbn

_hasher = PasswordHasher()
# Checked against when the account does not exist, so a miss costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("not-a-real-password")

MIN_LENGTH = 8
MAX_LENGTH = 200
_NOT_LETTER_OR_DIGIT = re.compile(r"[\W_]+")

# zxcvbn's 0-4 scale: 3 is "safely unguessable" against an online attacker and slows an offline one.
MIN_SCORE = 3
# zxcvbn refuses longer input (its matching grows fast with length); the start of a password is enough
# to tell a guessable one.
_ZXCVBN_MAX = 72
_ADVICE = "Try 3 or more random words you will remember."
# zxcvbn's warnings, where a plainer way to say it helps; any other warning is shown as zxcvbn gives it.
_PLAINER = {
    "This is a top-10 common password.": "This is one of the 10 most used passwords.",
    "This is a top-100 common password.": "This is one of the 100 most used passwords.",
    "This is a very common password.": "Lots of people use this password.",
    "This is similar to a commonly used password.": "This is too close to a password lots of people use.",
    'Repeats like "abcabcabc" are only slightly harder to guess than "abc".':
        'Repeats like "abcabc" are easy to guess.',
}


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def _mostly_personal(password: str, words: list[str]) -> bool:
    """Whether fewer than MIN_LENGTH letters and digits are left once the person's details are taken out:
    zxcvbn scores "Tess Tierone 1" as strong even when told the name is Tess Tierone."""
    rest = password.lower()
    # Two-letter details (a short name, a postcode area) would be taken out of unrelated words.
    for word in sorted((w for w in words if len(w) >= 3), key=len, reverse=True):
        rest = rest.replace(word, "")
    return rest != password.lower() and len(_NOT_LETTER_OR_DIGIT.sub("", rest)) < MIN_LENGTH


def strength_problem(password: str, *, personal: Iterable[str] = ()) -> str | None:
    """Why ``password`` may not be used, in plain English, or None if it may.

    ``personal`` holds what an attacker could know about the person (name, date of birth, NHS number,
    postcode, email): a password built from them is refused with its own reason.
    """
    if len(password) < MIN_LENGTH:
        return f"Password must be {MIN_LENGTH} characters or more"
    if len(password) > MAX_LENGTH:
        return f"Password must be {MAX_LENGTH} characters or fewer"
    words = sorted({word.lower() for word in personal if word and len(word) >= 2})
    if _mostly_personal(password, words):
        return f"Do not use details about you, like your name, date of birth or postcode. {_ADVICE}"
    result = zxcvbn(password[:_ZXCVBN_MAX], user_inputs=words)
    if result["score"] >= MIN_SCORE:
        return None
    if any(match.get("dictionary_name") == "user_inputs" for match in result["sequence"]):
        return f"Do not use details about you, like your name, date of birth or postcode. {_ADVICE}"
    warning = result["feedback"]["warning"]
    reason = _PLAINER.get(warning, warning) or "This password would be easy to guess."
    return f"{reason} {_ADVICE}"
