import datetime as dt

import pytest
from sqlalchemy import select

from portal.auth import services
from portal.auth.models import Invitation, User
from portal.db import utcnow
from portal.messaging.models import SmsMessage
from tests import factories
from tests.pages import csrf_token, error_for, get_page, parse


@pytest.fixture
def invited(session, domain):
    """A registered patient with a fresh invitation; returns (patient, token)."""
    patient = factories.create_patient(session, tier=1, date_of_birth=dt.date(1970, 5, 17))
    services.invite_patient(session, domain, patient, base_url="https://portal.test", now=utcnow())
    session.commit()
    body = session.scalars(select(SmsMessage.body).where(SmsMessage.kind == "invitation")).one()
    return patient, body.rsplit("/", 1)[1]


def _activate(client, token, *, dob=("17", "5", "1970"), postcode="N8 8JD", password="a sensible passphrase",
              confirm=None):
    page = get_page(client, f"/activate/{token}")
    return client.post(f"/activate/{token}", data={
        "csrf_token": csrf_token(page),
        "date_of_birth[day]": dob[0], "date_of_birth[month]": dob[1], "date_of_birth[year]": dob[2],
        "postcode": postcode,
        "password": password, "confirm_password": confirm if confirm is not None else password,
    })


def test_patient_activates_and_is_signed_in(client, invited, session):
    patient, token = invited
    response = _activate(client, token)
    assert response.status_code == 302 and response.headers["Location"] == "/"
    home = get_page(client, "/")
    assert home.h1.get_text(strip=True) == f"Hello {patient.given_name}"
    user = session.scalars(select(User).where(User.patient_id == patient.id)).one()
    assert user.password_hash.startswith("$argon2id$")


def test_the_link_works_only_once(client, invited, app):
    _, token = invited
    assert _activate(client, token).status_code == 302
    other = app.test_client()
    response = other.get(f"/activate/{token}")
    assert response.status_code == 410
    assert "This link cannot be used" in response.get_data(as_text=True)


def test_an_expired_link_cannot_be_used(client, invited, session):
    _, token = invited
    invitation = session.scalars(select(Invitation)).one()
    invitation.expires_at = utcnow() - dt.timedelta(minutes=1)
    session.commit()
    page = get_page(client, f"/activate/{token}", status=410)
    assert "expired" in page.get_text()


def test_a_resent_invitation_replaces_the_old_link(client, invited, session, domain):
    patient, old_token = invited
    services.invite_patient(session, domain, patient, base_url="https://portal.test", now=utcnow())
    session.commit()
    assert client.get(f"/activate/{old_token}").status_code == 410
    bodies = session.scalars(select(SmsMessage.body).order_by(SmsMessage.id)).all()
    new_token = bodies[-1].rsplit("/", 1)[1]
    assert _activate(client, new_token).status_code == 302


def test_unknown_token_reveals_nothing(client):
    response = client.get("/activate/not-a-real-token")
    assert response.status_code == 410
    assert "This link cannot be used" in response.get_data(as_text=True)


def test_wrong_date_of_birth_is_shown_next_to_the_field(client, invited, session):
    _, token = invited
    response = _activate(client, token, dob=("18", "5", "1970"))
    assert response.status_code == 200
    assert "does not match" in error_for(parse(response), "date_of_birth")
    assert session.scalars(select(User)).first() is None


@pytest.mark.parametrize("postcode", ["N8 8JE", "N19 5NF", "E1 6AN"])
def test_a_wrong_postcode_fails_like_a_wrong_date_of_birth(client, invited, session, postcode):
    """Both must match. The messages never say which one was wrong, so neither can be guessed alone."""
    _, token = invited
    wrong_postcode = parse(_activate(client, token, postcode=postcode))
    wrong_date = parse(_activate(client, token, dob=("18", "5", "1970")))
    for page in (wrong_postcode, wrong_date):
        assert error_for(page, "date_of_birth") == (
            "Check your date of birth: it or your postcode does not match our records")
        assert error_for(page, "postcode") == (
            "Check your postcode: it or your date of birth does not match our records")
    assert session.scalars(select(User)).first() is None
    session.expire_all()
    assert session.scalars(select(Invitation)).one().failed_attempts == 2


@pytest.mark.parametrize("typed", ["n88jd", " N8  8JD ", "n8 8jd"])
def test_the_postcode_may_be_typed_in_any_case_and_spacing(client, invited, typed):
    _, token = invited
    assert _activate(client, token, postcode=typed).status_code == 302


def test_a_wrong_postcode_counts_towards_locking_the_link(client, invited, session):
    _, token = invited
    _activate(client, token, postcode="N1 1AA")
    _activate(client, token, dob=("1", "1", "1971"))
    _activate(client, token, postcode="N1 1AA")
    assert client.get(f"/activate/{token}").status_code == 410
    # The right answers no longer help.
    assert _activate_without_page(client, token).status_code == 410


def _activate_without_page(client, token):
    page = get_page(client, "/sign-in")
    return client.post(f"/activate/{token}", data={
        "csrf_token": csrf_token(page), "date_of_birth[day]": "17", "date_of_birth[month]": "5",
        "date_of_birth[year]": "1970", "postcode": "N8 8JD", "password": "a sensible passphrase",
        "confirm_password": "a sensible passphrase",
    })


def test_password_feedback_waits_until_the_person_is_known(client, invited, session):
    """The rule's reasons mention the patient's own details: someone with only the link, typing a
    wrong date of birth, learns nothing from them."""
    patient, token = invited
    guess = f"{patient.family_name}1970"
    page = parse(_activate(client, token, dob=("18", "5", "1970"), password=guess))
    assert error_for(page, "password") is None
    assert "does not match" in error_for(page, "date_of_birth")
    page = parse(_activate(client, token, password=guess))
    assert "name, date of birth or postcode" in error_for(page, "password")
    session.expire_all()
    assert session.scalars(select(Invitation)).one().failed_attempts == 1  # the right answers did not count


def test_three_wrong_dates_of_birth_lock_the_link(client, invited, session):
    _, token = invited
    for _ in range(3):
        assert _activate(client, token, dob=("1", "1", "1971")).status_code == 200
    # Even the right answer no longer works: reception must send a new link.
    assert client.get(f"/activate/{token}").status_code == 410
    session.expire_all()
    assert session.scalars(select(Invitation)).one().failed_attempts == 3


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"password": "short"}, "password", "8 characters or more"),
        ({"password": "password1"}, "password", "Lots of people use this password"),
        ({"password": "qwertyuiop"}, "password", "one of the 100 most used passwords"),
        ({"password": "17051970"}, "password", "name, date of birth or postcode"),
        ({"postcode": ""}, "postcode", "Enter your postcode"),
        ({"postcode": "not a postcode"}, "postcode", "Enter a full UK postcode"),
        ({"password": "long enough 1", "confirm": "different 1"}, "confirm_password", "do not match"),
        ({"password": ""}, "password", "Create a password"),
        ({"dob": ("", "", "")}, "date_of_birth", "Enter date of birth"),
        ({"dob": ("30", "2", "1970")}, "date_of_birth", "real date"),
        ({"dob": ("1", "1", str(utcnow().year + 1))}, "date_of_birth", "in the past"),
    ],
)
def test_bad_activation_input_is_shown_next_to_the_field(client, invited, session, changes, field, message):
    _, token = invited
    response = _activate(client, token, **changes)
    assert response.status_code == 200
    shown = error_for(parse(response), field)
    assert shown and message.lower() in shown.lower(), shown
    assert session.scalars(select(User)).first() is None
    session.expire_all()
    assert session.scalars(select(Invitation)).one().used_at is None


def test_a_link_opened_while_someone_is_signed_in_is_not_used(app, patient_client, invited, session):
    """It once signed the browser in as the new patient, quietly ending the session of whoever was signed in."""
    _, token = invited
    page = get_page(patient_client, f"/activate/{token}")
    assert page.h1.get_text(strip=True) == "You are already signed in"
    assert page.find("a", href="/")
    response = patient_client.post(f"/activate/{token}", data={
        "csrf_token": csrf_token(get_page(patient_client, "/account")), "date_of_birth[day]": "17",
        "date_of_birth[month]": "5", "date_of_birth[year]": "1970", "postcode": "N8 8JD",
        "password": "a sensible passphrase", "confirm_password": "a sensible passphrase"})
    assert response.status_code == 200
    assert get_page(patient_client, "/").h1.get_text(strip=True) == f"Hello {patient_client.user.patient.given_name}"
    assert session.scalars(select(User).where(User.id != patient_client.user.id)).first() is None
    assert _activate(app.test_client(), token).status_code == 302
