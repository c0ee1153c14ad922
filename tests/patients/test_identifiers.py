import pytest

from portal.patients.identifiers import (
    InvalidIdentifier,
    format_nhs_number,
    format_uk_mobile,
    parse_nhs_number,
    parse_postcode,
    parse_uk_mobile,
    team_for_postcode,
)
from portal.settings import load_domain_config


@pytest.mark.parametrize("raw", ["9434765919", "943 476 5919", "943-476-5919", " 943 476 5919 "])
def test_valid_nhs_numbers_are_stored_without_spaces(raw):
    assert parse_nhs_number(raw) == "9434765919"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "Enter the NHS number"),
        ("943476591", "must be 10 digits"),
        ("94347659190", "must be 10 digits"),
        ("94347659AB", "must be 10 digits"),
        ("9434765918", "not a valid NHS number"),  # wrong check digit
        ("9434765910", "not a valid NHS number"),
        ("000 000 0000", "not a valid NHS number"),  # the check digit fits, but no one is given it
    ],
)
def test_invalid_nhs_numbers_say_why(raw, message):
    with pytest.raises(InvalidIdentifier, match=message):
        parse_nhs_number(raw)


def test_check_digit_of_ten_means_invalid():
    # 1000000010: the weighted sum gives 11 - (sum mod 11) == 10, which no check digit can be.
    digits = "100000001"
    total = sum(int(d) * w for d, w in zip(digits, range(10, 1, -1), strict=True))
    assert 11 - total % 11 == 10
    for check in "0123456789":
        with pytest.raises(InvalidIdentifier):
            parse_nhs_number(digits + check)


def test_nhs_number_display_format():
    assert format_nhs_number("9434765919") == "943 476 5919"


@pytest.mark.parametrize("raw", ["07700 900123", "+44 7700 900123", "07700900123", "(07700) 900 123"])
def test_drama_range_mobiles_are_accepted_outside_production(raw):
    assert parse_uk_mobile(raw, allow_drama_range=True) == "+447700900123"


def test_drama_range_is_refused_in_production():
    with pytest.raises(InvalidIdentifier):
        parse_uk_mobile("07700 900123", allow_drama_range=False)


def test_real_uk_mobiles_are_accepted():
    assert parse_uk_mobile("07912 345678", allow_drama_range=False) == "+447912345678"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "Enter a mobile phone number"),
        ("020 7946 0000", "not a mobile"),
        ("not a number", "UK mobile"),
        ("+33 6 12 34 56 78", "UK mobile"),
        ("0791234", "UK mobile"),
    ],
)
def test_bad_mobiles_say_why(raw, message):
    with pytest.raises(InvalidIdentifier, match=message):
        parse_uk_mobile(raw, allow_drama_range=True)


def test_mobile_display_format():
    assert format_uk_mobile("+447700900123") == "07700 900 123"


@pytest.mark.parametrize(("raw", "expected"), [("n195nf", "N19 5NF"), (" N8  8JD ", "N8 8JD"), ("ec1r0lp", "EC1R 0LP")])
def test_postcodes_are_normalised(raw, expected):
    assert parse_postcode(raw) == expected


@pytest.mark.parametrize("raw", ["", "N19", "12345", "N19 5N", "ZZZZ 9ZZ"])
def test_bad_postcodes_are_refused(raw):
    with pytest.raises(InvalidIdentifier):
        parse_postcode(raw)


@pytest.mark.parametrize(
    ("postcode", "team"),
    [
        ("N19 5NF", "whittington"),
        ("N7 6PA", "whittington"),
        ("N8 8JD", "haringey"),
        ("N17 0AA", "haringey"),
        ("N4 3LS", None),  # straddles Haringey and Islington: staff decide
        ("EC1R 0LP", None),  # south Islington: no Tier 2 team named
        ("SW1A 1AA", None),
    ],
)
def test_catchment_routing_never_guesses(postcode, team):
    assert team_for_postcode(load_domain_config().teams, postcode) == team
