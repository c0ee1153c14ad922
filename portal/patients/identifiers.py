"""Parsing and checking what identifies a patient: NHS number, UK mobile, postcode and catchment."""

from __future__ import annotations

import re

import nhs_number
import phonenumbers

from portal.plain_text import ascii_digits, is_plain_number
from portal.settings import Teams

# Ofcom reserves 07700 900000 to 900999 for drama and testing. phonenumbers (rightly) calls them
# invalid; outside production we accept them so that demo data and tests never text a real person.
DRAMA_MOBILE = re.compile(r"^\+447700900\d{3}$")
POSTCODE = re.compile(r"^([A-Z]{1,2}[0-9][0-9A-Z]?)([0-9][A-Z]{2})$")


class InvalidIdentifier(ValueError):
    """The value is not acceptable; the message is fit to show next to the field."""


def parse_nhs_number(raw: str) -> str:
    digits = ascii_digits(re.sub(r"[\s-]", "", raw or ""))
    if not digits:
        raise InvalidIdentifier("Enter the NHS number")
    if not is_plain_number(digits) or len(digits) != 10:
        raise InvalidIdentifier("NHS number must be 10 digits, like 943 476 5919")
    # The check digit alone lets through numbers no one is given, 000 000 0000 among them: the number must also
    # fall in a range the NHS allocates (test and synthetic ranges included, for training and demos).
    region = nhs_number.NhsNumber(digits).region
    if not nhs_number.is_valid(digits) or region is None or region is nhs_number.REGIONS["UNALLOCATED"]:
        raise InvalidIdentifier("This is not a valid NHS number. Check it and try again")
    return digits


def format_nhs_number(digits: str) -> str:
    return f"{digits[:3]} {digits[3:6]} {digits[6:]}"


def parse_uk_mobile(raw: str, *, allow_drama_range: bool) -> str:
    """Return the mobile in E.164 form (+447...)."""
    text = (raw or "").strip()
    if not text:
        raise InvalidIdentifier("Enter a mobile phone number")
    try:
        number = phonenumbers.parse(text, "GB")
    except phonenumbers.NumberParseException:
        raise InvalidIdentifier("Enter a UK mobile number, like 07700 900 982") from None
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if allow_drama_range and DRAMA_MOBILE.match(e164):
        return e164
    if number.country_code != 44 or not phonenumbers.is_valid_number(number):
        raise InvalidIdentifier("Enter a UK mobile number, like 07700 900 982")
    if phonenumbers.number_type(number) != phonenumbers.PhoneNumberType.MOBILE:
        raise InvalidIdentifier("This is not a mobile number. Enter a UK mobile number, like 07700 900 982")
    return e164


def parse_uk_phone(raw: str, *, allow_drama_range: bool) -> str:
    """Return a UK landline or mobile number in E.164 form (+44...), the one form every number is stored in.

    phonenumbers reads the ways people write a UK number: "020 7946 0000", "+44 20 7946 0000", "0044 ..." and
    the "+44 (0)20 ..." form, where the (0) is the trunk prefix dialled only from inside the UK, so it is dropped
    rather than kept as a digit (+4402..., which no phone can dial).
    """
    message = "Enter a UK phone number, like 020 7946 0000 or 07700 900123"
    try:
        number = phonenumbers.parse((raw or "").strip(), "GB")
    except phonenumbers.NumberParseException:
        raise InvalidIdentifier(message) from None
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if allow_drama_range and DRAMA_MOBILE.match(e164) and not number.extension:
        return e164
    # An extension has nowhere to go in the stored number, and a caller would not know to dial it.
    if number.country_code != 44 or number.extension or not phonenumbers.is_valid_number(number):
        raise InvalidIdentifier(message)
    return e164


def format_uk_phone(e164: str) -> str:
    """'020 7946 0000' or '07700 900123' from the stored +44 number; anything else (an older record) as it is."""
    try:
        number = phonenumbers.parse(e164, "GB")
    except phonenumbers.NumberParseException:
        return e164
    if DRAMA_MOBILE.match(e164):
        return format_uk_mobile(e164)
    if number.country_code != 44 or not phonenumbers.is_valid_number(number):
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)


def format_uk_mobile(e164: str) -> str:
    """'07700 900 982' from '+447700900982'; any other number as it is."""
    if not (e164.startswith("+44") and len(e164) == 13):
        return e164
    national = "0" + e164.removeprefix("+44")
    return f"{national[:5]} {national[5:8]} {national[8:]}"


def parse_postcode(raw: str) -> str:
    compact = re.sub(r"\s", "", (raw or "").upper())
    if not compact:
        raise InvalidIdentifier("Enter a postcode")
    match = POSTCODE.match(compact)
    if not match:
        raise InvalidIdentifier("Enter a full UK postcode, like N19 5NF")
    return f"{match.group(1)} {match.group(2)}"


def postcode_district(postcode: str) -> str:
    return postcode.split(" ")[0]


def team_for_postcode(teams: Teams, postcode: str) -> str | None:
    """The Tier 2 team whose catchment holds this postcode, or None for staff to decide."""
    team = teams.team_for_district(postcode_district(postcode))
    return team.key if team else None
