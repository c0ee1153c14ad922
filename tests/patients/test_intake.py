"""patients.intake: raw strings (form fields or export columns) in, a Registration or the problems out."""

import datetime as dt

import pytest

from portal.patients.intake import Problems, age_on, check_registration
from portal.patients.services import Registration
from tests import factories

TODAY = dt.date(2026, 11, 24)

ROW = {
    "nhs_number": "943 476 5919",
    "given_name": " Ada ",
    "family_name": "Lovelace",
    "date_of_birth": "1975-12-10",
    "mobile": "07700 900456",
    "email": "Ada@Example.COM",
    "postcode": "n19 5nf",
    "tier": "2",
    "team": "",
    "triage_date": "02/11/2026",
    "pain_duration": "1-5-years",
    "diagnosis_recorded": "yes",
    "investigations_recorded": "Y",
    "treatment_recorded": "no",
    "letters_received": "",
    "override_reason": "",
}


def check(**changes):
    return check_registration({**ROW, **changes}, domain=factories.domain(), today=TODAY, allow_drama_range=True)


def test_a_good_row_becomes_a_registration():
    details = check()
    assert isinstance(details, Registration)
    assert details == Registration(
        nhs_number="9434765919", given_name="Ada", family_name="Lovelace", date_of_birth=dt.date(1975, 12, 10),
        mobile="+447700900456", email="ada@example.com", postcode="N19 5NF", tier=2, team=None,
        triage_date=dt.date(2026, 11, 2), pain_duration="1-5-years", diagnosis_recorded=True,
        investigations_recorded=True, treatment_recorded=False, letters_received=False,
    )


def test_form_style_date_parts_and_export_style_text_give_the_same_date():
    raw = {k: v for k, v in ROW.items() if k != "date_of_birth"}
    parts = {"date_of_birth[day]": "10", "date_of_birth[month]": "12", "date_of_birth[year]": "1975"}
    from_form = check_registration({**raw, **parts}, domain=factories.domain(), today=TODAY, allow_drama_range=True)
    assert from_form == check() == check(date_of_birth="10/12/1975")


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"nhs_number": "943 476 5918"}, "nhs_number", "This is not a valid NHS number. Check it and try again"),
        ({"nhs_number": "9" * 500}, "nhs_number", "NHS number must be 10 digits, like 943 476 5919"),
        ({"given_name": ""}, "given_name", "Enter the patient's first name"),
        ({"given_name": "x" * 101}, "given_name", "First name must be 100 characters or fewer"),
        ({"family_name": "x" * 101}, "family_name", "Last name must be 100 characters or fewer"),
        ({"family_name": "Smith 2"}, "family_name",
         "Last name must only include letters, spaces, hyphens, apostrophes and full stops"),
        ({"date_of_birth": "10-Dec-1975"}, "date_of_birth",
         "Date of birth must be a date like 10/12/1975 or 1975-12-10"),
        ({"date_of_birth": "1975-02-30"}, "date_of_birth", "Date of birth must be a real date"),
        ({"date_of_birth": "2026-11-24"}, "date_of_birth", "Date of birth must be in the past"),
        ({"date_of_birth": ""}, "date_of_birth", "Enter date of birth"),
        ({"mobile": "020 7946 0000"}, "mobile",
         "This is not a mobile number. Enter a UK mobile number, like 07700 900 982"),
        ({"email": "ada@"}, "email", "Enter an email address like name@example.com"),
        ({"postcode": "N19"}, "postcode", "Enter a full UK postcode, like N19 5NF"),
        ({"tier": "two"}, "tier", "Select Tier 1 or Tier 2"),
        ({"team": "south-islington"}, "team", "Select a team from the list"),
        ({"tier": "1", "team": "haringey"}, "team",
         "Only Tier 2 patients have a team. Leave it to be worked out from the postcode"),
        ({"triage_date": "2026-11-25"}, "triage_date", "Triage date must be today or in the past"),
        ({"triage_date": "1970-01-01"}, "triage_date", "Triage date must be after the date of birth"),
        ({"pain_duration": "3 years"}, "pain_duration", "Select how long the patient has had pain, from the list"),
        ({"letters_received": "sometimes"}, "letters_received", "Secondary care letters received: enter yes or no"),
        ({"override_reason": "x" * 501}, "override_reason",
         "Reason for overriding the warning must be 500 characters or fewer"),
        ({"override_reason": "ok\x00"}, "override_reason",
         "Reason for overriding the warning must not include hidden characters"),
    ],
)
def test_each_bad_value_is_named_with_its_field(changes, field, message):
    problems = check(**changes)
    assert isinstance(problems, Problems)
    assert problems.errors == {field: message}
    assert f"{field}: {message}" in problems.messages()


def test_today_is_a_valid_triage_date():
    assert check(triage_date="2026-11-24").triage_date == TODAY


def test_bad_date_parts_name_the_boxes_at_fault():
    raw = {k: v for k, v in ROW.items() if k != "triage_date"}
    problems = check_registration({**raw, "triage_date[day]": "2", "triage_date[month]": "", "triage_date[year]": "26"},
                                  domain=factories.domain(), today=TODAY, allow_drama_range=True)
    assert problems.errors == {"triage_date": "Triage date must include a month"}
    assert problems.bad_date_parts == {"triage_date": frozenset({"month"})}


@pytest.mark.parametrize(
    ("changes", "field", "code"),
    [
        ({"date_of_birth": "2008-11-25"}, "date_of_birth", "under-18"),
        ({"pain_duration": "under-6-months"}, "pain_duration", "pain-under-6-months"),
        ({"postcode": "SW1A 1AA"}, "postcode", "outside-area"),
    ],
)
def test_a_warning_needs_a_reason_and_is_then_recorded(changes, field, code):
    problems = check(**changes)
    assert isinstance(problems, Problems)
    assert list(problems.warnings) == [field]
    # The reason column was there but empty: that is the error, the warning is why.
    assert problems.errors == {"override_reason": "Give a reason for registering the patient despite the warning"}
    assert problems.messages()[-1] == "override_reason: Give a reason for registering the patient despite the warning"

    details = check(**changes, override_reason="  Agreed at MDT  ")
    assert details.eligibility_warnings == (code,)
    assert details.override_reason == "Agreed at MDT"


def test_without_a_reason_box_a_warning_is_not_yet_an_error():
    raw = {k: v for k, v in ROW.items() if k != "override_reason"}
    problems = check_registration({**raw, "postcode": "E1 6AN"}, domain=factories.domain(), today=TODAY,
                                  allow_drama_range=True)
    assert problems.errors == {}
    assert problems.warnings == {"postcode": "E1 is outside Haringey and Islington"}


def test_a_reason_with_no_warning_is_dropped():
    details = check(override_reason="no need")
    assert (details.eligibility_warnings, details.override_reason) == ((), None)


def test_eighteenth_birthday_today_is_an_adult():
    assert check(date_of_birth="2008-11-24").eligibility_warnings == ()


def test_drama_range_mobiles_are_refused_in_production():
    problems = check_registration(ROW, domain=factories.domain(), today=TODAY, allow_drama_range=False)
    assert "mobile" in problems.errors


@pytest.mark.parametrize(
    ("born", "on", "age"),
    [
        (dt.date(2000, 2, 29), dt.date(2018, 2, 28), 17),
        (dt.date(2000, 2, 29), dt.date(2018, 3, 1), 18),
        (dt.date(1990, 6, 15), dt.date(2026, 6, 14), 35),
        (dt.date(1990, 6, 15), dt.date(2026, 6, 15), 36),
    ],
)
def test_age_is_counted_as_people_count_it(born, on, age):
    assert age_on(born, on) == age
