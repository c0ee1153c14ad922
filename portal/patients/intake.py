"""Checking the details of a triaged patient, typed on the registration form or read from the triage export.

``check_registration`` is the one place where raw values become a Registration. The form's field names
and the export's columns are the same keys, so a value refused on the form is refused in the file
with the same words, and the two can never disagree.

Problems come in two kinds:
- errors: the value cannot be used (an NHS number that fails modulus 11, a date that does not exist);
- eligibility warnings: the details are usable but the patient may not meet the service's criteria
  (under 18, pain for less than six months, a postcode outside Haringey and Islington). Staff may
  register the patient anyway by giving a reason, which is stored with the warnings.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

from email_validator import EmailNotValidError, validate_email

from portal.dates import InvalidDate, parse_date_parts, split_date_text
from portal.patients.identifiers import (
    InvalidIdentifier,
    parse_nhs_number,
    parse_postcode,
    parse_uk_mobile,
    postcode_district,
)
from portal.patients.models import PAIN_DURATIONS, REFERRAL_CHECKLIST
from portal.patients.services import Registration
from portal.plain_text import CONTROL_CHARACTERS, is_personal_name
from portal.settings import DomainConfig

FROM_POSTCODE = "postcode"
MAX_NAME = 100
MAX_REASON = 500
ADULT_AGE = 18
YES = {"y", "yes", "true", "1", "on"}
NO = {"", "n", "no", "false", "0"}
# Free text may hold letters of any language, but no control characters (PostgreSQL refuses NUL).


@dataclass(frozen=True)
class Problems:
    """Why the details cannot be registered as they are, by field name."""

    errors: dict[str, str] = field(default_factory=dict)
    # Eligibility warnings that apply and have not been overridden with a reason.
    warnings: dict[str, str] = field(default_factory=dict)
    # For date fields with errors: which of the day, month and year boxes are at fault.
    bad_date_parts: dict[str, frozenset[str]] = field(default_factory=dict)

    def messages(self) -> list[str]:
        """Every problem as one line, errors first: for reports such as the import's."""
        lines = [f"{name}: {message}" for name, message in self.errors.items() if name != "override_reason"]
        lines += [f"{name}: {message}" for name, message in self.warnings.items() if name not in self.errors]
        if "override_reason" in self.errors:
            lines.append(f"override_reason: {self.errors['override_reason']}")
        elif self.warnings:
            lines.append("override_reason: Give a reason for registering the patient despite the warning")
        return lines


def age_on(date_of_birth: dt.date, day: dt.date) -> int:
    """Whole years, as people count them (someone born on 29 February is a year older on 1 March)."""
    return day.year - date_of_birth.year - ((day.month, day.day) < (date_of_birth.month, date_of_birth.day))


def _text(raw: Mapping[str, str], name: str) -> str:
    value = raw.get(name)
    return value.strip() if isinstance(value, str) else ""


def _date_parts(raw: Mapping[str, str], name: str, label: str) -> dict[str, str]:
    """The form sends name[day], name[month] and name[year]; the export sends one value under name."""
    if any(f"{name}[{part}]" in raw for part in ("day", "month", "year")):
        return {part: _text(raw, f"{name}[{part}]")[:10] for part in ("day", "month", "year")}
    return split_date_text(_text(raw, name), label=label)


# Said of the first or the last name by its label, so that two refused names are two different errors.
NAME_CHARACTERS = "{label} must only include letters, spaces, hyphens, apostrophes and full stops"


def _name(value: str, *, label: str, empty: str) -> str:
    if not value:
        raise ValueError(empty)
    if len(value) > MAX_NAME:
        raise ValueError(f"{label} must be {MAX_NAME} characters or fewer")
    if CONTROL_CHARACTERS.search(value) or not is_personal_name(value):
        raise ValueError(NAME_CHARACTERS.format(label=label))
    return value


def _yes_no(value: str, *, label: str) -> bool:
    word = value.lower()
    if word in YES:
        return True
    if word in NO:
        return False
    raise ValueError(f"{label}: enter yes or no")


def check_registration(
    raw: Mapping[str, str], *, domain: DomainConfig, today: dt.date, allow_drama_range: bool
) -> Registration | Problems:
    """Turn raw strings into a Registration, or say what is wrong with them.

    ``raw`` holds the form fields or the export's columns: nhs_number, given_name, family_name,
    date_of_birth, mobile, email, postcode, tier, team, triage_date, pain_duration, the checklist
    (diagnosis_recorded, investigations_recorded, treatment_recorded, letters_received) and
    override_reason. When override_reason is present but blank while warnings apply, that is an error
    on override_reason (the person was asked for a reason and gave none).
    """
    errors: dict[str, str] = {}
    bad_parts: dict[str, frozenset[str]] = {}
    values: dict[str, object] = {}

    def check(name: str, parse) -> None:
        try:
            values[name] = parse(_text(raw, name))
        except (InvalidIdentifier, ValueError) as problem:
            errors[name] = str(problem)

    def check_date(name: str, label: str, **rules: object) -> None:
        try:
            values[name] = parse_date_parts(_date_parts(raw, name, label), label=label, today=today, **rules)
        except InvalidDate as problem:
            errors[name] = str(problem)
            bad_parts[name] = problem.bad_parts

    check("nhs_number", lambda v: parse_nhs_number(v[:30]))
    check("given_name", lambda v: _name(v, label="First name", empty="Enter the patient's first name"))
    check("family_name", lambda v: _name(v, label="Last name", empty="Enter the patient's last name"))
    check_date("date_of_birth", "Date of birth", past_only=True)
    check("mobile", lambda v: parse_uk_mobile(v[:30], allow_drama_range=allow_drama_range))
    check("email", _email)
    check("postcode", lambda v: parse_postcode(v[:12]))
    check("tier", _tier)
    check("team", lambda v: _team(v, domain))
    check_date("triage_date", "Triage date", not_future=True)
    check("pain_duration", _pain_duration)
    for name, label in REFERRAL_CHECKLIST.items():
        check(name, lambda v, label=label: _yes_no(v, label=label))
    if values.get("team") and "tier" in values and values["tier"] != 2:
        errors["team"] = "Only Tier 2 patients have a team. Leave it to be worked out from the postcode"
    if "triage_date" in values and "date_of_birth" in values and values["triage_date"] < values["date_of_birth"]:
        errors["triage_date"] = "Triage date must be after the date of birth"
        bad_parts["triage_date"] = frozenset({"day", "month", "year"})

    warnings = _eligibility_warnings(values, domain=domain, today=today)
    reason = _text(raw, "override_reason")
    if len(reason) > MAX_REASON:
        # In the words of the box's label, "Reason for overriding the warning".
        errors["override_reason"] = f"Reason for overriding the warning must be {MAX_REASON} characters or fewer"
    elif CONTROL_CHARACTERS.search(reason):
        errors["override_reason"] = "Reason for overriding the warning must not include hidden characters"
    elif warnings and not reason and "override_reason" in raw:
        errors["override_reason"] = "Give a reason for registering the patient despite the warning"
    if errors or (warnings and not reason):
        return Problems(errors=errors, warnings=warnings, bad_date_parts=bad_parts)

    return Registration(
        nhs_number=values["nhs_number"],
        given_name=values["given_name"],
        family_name=values["family_name"],
        date_of_birth=values["date_of_birth"],
        mobile=values["mobile"],
        email=values["email"],
        postcode=values["postcode"],
        tier=values["tier"],
        team=values["team"],
        triage_date=values["triage_date"],
        pain_duration=values["pain_duration"],
        **{name: values[name] for name in REFERRAL_CHECKLIST},
        eligibility_warnings=tuple(_CODES[name] for name in warnings),
        override_reason=reason if warnings else None,
    )


# Eligibility warning codes (patients.models.ELIGIBILITY_WARNINGS) by the field they are shown next to.
_CODES = {"date_of_birth": "under-18", "pain_duration": "pain-under-6-months", "postcode": "outside-area"}


def _eligibility_warnings(values: Mapping[str, object], *, domain: DomainConfig, today: dt.date) -> dict[str, str]:
    warnings: dict[str, str] = {}
    born = values.get("date_of_birth")
    if isinstance(born, dt.date) and age_on(born, today) < ADULT_AGE:
        warnings["date_of_birth"] = (
            f"The patient is {age_on(born, today)}. The service is for adults aged {ADULT_AGE} and over"
        )
    if values.get("pain_duration") == "under-6-months":
        warnings["pain_duration"] = "The service is for people who have had pain for more than 6 months"
    postcode = values.get("postcode")
    if isinstance(postcode, str) and postcode_district(postcode) not in domain.teams.service_area.postcode_districts:
        warnings["postcode"] = f"{postcode_district(postcode)} is outside Haringey and Islington"
    return warnings


def _email(value: str) -> str | None:
    if not value:
        return None
    if len(value) > 254:
        raise ValueError("Email address must be 254 characters or fewer")
    try:
        return validate_email(value, check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        raise ValueError("Enter an email address like name@example.com") from None


def _tier(value: str) -> int:
    if not value:
        raise ValueError("Select the tier the patient was triaged to")
    if value not in ("1", "2"):
        raise ValueError("Select Tier 1 or Tier 2")
    return int(value)


def _team(value: str, domain: DomainConfig) -> str | None:
    if value in ("", FROM_POSTCODE):
        return None
    if domain.teams.get(value) is None:
        raise ValueError("Select a team from the list")
    return value


def _pain_duration(value: str) -> str:
    if not value:
        raise ValueError("Select how long the patient has had pain")
    if value not in PAIN_DURATIONS:
        raise ValueError("Select how long the patient has had pain, from the list")
    return value
