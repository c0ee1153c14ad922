"""The one password rule: 8 characters or more, and not guessable by zxcvbn, counting the person's own
details as guessable. Each refusal says why in plain English."""

import datetime as dt

import pytest

from portal.auth import services
from portal.auth.passwords import strength_problem
from portal.patients.models import Patient

ADVICE = "Try 3 or more random words you will remember."


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short", "Password must be 8 characters or more"),
        ("x" * 201, "Password must be 200 characters or fewer"),
        ("password", f"This is one of the 10 most used passwords. {ADVICE}"),
        ("qwertyuiop", f"This is one of the 100 most used passwords. {ADVICE}"),
        ("monkey12", f"Lots of people use this password. {ADVICE}"),
        ("letmein!", f"This is too close to a password lots of people use. {ADVICE}"),
        ("aaaaaaaaaa", f'Repeats like "aaa" are easy to guess. {ADVICE}'),
        ("abcdefgh123", f'Sequences like "abc" or "6543" are easy to guess. {ADVICE}'),
        ("asdfghjkl;", f"Straight rows of keys are easy to guess. {ADVICE}"),
    ],
)
def test_guessable_passwords_are_refused_with_the_reason(password, reason):
    assert strength_problem(password) == reason


@pytest.mark.parametrize("password", ["correct horse battery", "blue kettle sunrise", "demo-pass-2026",
                                      "Tuesday-lemon-Ferris-42", "x" * 3 + " violet harbour lantern" * 7])
def test_good_passwords_pass(password):
    assert strength_problem(password) is None


def _patient(**kw):
    values = {"given_name": "Margaret", "family_name": "Okonkwo", "date_of_birth": dt.date(1958, 3, 14),
              "nhs_number": "9990000026", "postcode": "N19 5NF", "mobile": "+447700900123", "tier": 1}
    values.update(kw)
    return Patient(**values)


@pytest.mark.parametrize(
    "password",
    ["okonkwo1958", "Margaret140358", "14031958okonkwo", "n195nf9990000026", "9990000026", "07700900123",
     # zxcvbn alone scores these as strong: the full name with a digit or two
     "Margaret Okonkwo 1", "margaret-okonkwo-58"],
)
def test_the_persons_own_details_are_refused(password):
    problem = services.password_problem(password, patient=_patient())
    assert problem == f"Do not use details about you, like your name, date of birth or postcode. {ADVICE}"


def test_a_two_letter_name_is_not_taken_out_of_other_words():
    assert services.password_problem("Hannah and Ann ran far", patient=_patient(given_name="An")) is None


def test_a_name_inside_a_long_passphrase_is_fine():
    assert services.password_problem("margaret likes orange piano meadows", patient=_patient()) is None


def test_the_same_password_is_fine_for_someone_else():
    for password in ("okonkwo1958", "okonkwo1958x", "okonkwo!1958"):
        assert "details about you" in services.password_problem(password, patient=_patient())
        stranger = _patient(family_name="Smith", date_of_birth=dt.date(1970, 1, 1))
        assert services.password_problem(password, patient=stranger) is None


def test_staff_names_and_emails_count_too():
    from portal.auth.models import Role, User

    user = User(role=Role.RECEPTION.value, display_name="Rita Reception", email="rita.reception@nhs.net")
    assert "details about you" in services.password_problem("rita.reception1", user=user)


def test_creating_a_staff_account_follows_the_rule(session):
    with pytest.raises(services.WeakPassword, match="10 most used"):
        services.create_staff_user(session, email="new@test.nhs.uk", display_name="New Person",
                                   role=services.Role.ADMIN, password="password")
    session.rollback()
