"""The account page: sign out of all devices, and change password (which ends the other sessions only)."""

import pytest
from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.auth.models import Role, User
from tests import factories
from tests.conftest import sign_in
from tests.pages import csrf_token, error_for, get_page, parse

NEW_PASSWORD = "orange piano meadow"


def _two_devices(app, session, **kw):
    user = factories.create_patient_user(session, **kw)
    phone, laptop = app.test_client(), app.test_client()
    assert sign_in(phone, user.patient.mobile).status_code == 302
    assert sign_in(laptop, user.patient.mobile).status_code == 302
    return user, phone, laptop


def _signed_out(client) -> bool:
    response = client.get("/bookings")
    return response.status_code == 302 and response.headers["Location"].startswith("/sign-in")


def _change_password(client, current=factories.PASSWORD, new=NEW_PASSWORD, confirm=None):
    page = get_page(client, "/account/password")
    return client.post("/account/password", data={
        "csrf_token": csrf_token(page), "current_password": current, "password": new,
        "confirm_password": confirm if confirm is not None else new,
    })


def _actions(session):
    events = session.scalars(select(AuditEvent).order_by(AuditEvent.id))
    return [(e.action, e.actor_user_id, e.patient_id) for e in events]


def test_the_account_page_offers_both_actions(patient_client):
    page = get_page(patient_client, "/account")
    assert page.h1.get_text(strip=True) == "Your account"
    assert page.find("a", href="/account/password")
    form = page.find("form", action="/account/sign-out-everywhere")
    assert form["method"] == "post" and form.find("button").get_text(strip=True) == "Sign out of all devices"
    header_links = page.select("nav[aria-label=Account] a[href='/account']")
    assert [a.get_text(strip=True) for a in header_links] == ["Your account"], "the header links to the account page"


def test_staff_have_an_account_page_too(app, session):
    staff = factories.create_staff(session, role=Role.FACILITATOR)
    client = app.test_client()
    assert sign_in(client, staff.email).status_code == 302
    get_page(client, "/account")
    get_page(client, "/account/password")


def test_sign_out_of_all_devices_ends_every_session(app, session):
    user, phone, laptop = _two_devices(app, session)
    page = get_page(laptop, "/account")
    response = laptop.post("/account/sign-out-everywhere", data={"csrf_token": csrf_token(page)})
    assert response.headers["Location"] == "/sign-in"
    assert "You have signed out on all your devices." in get_page(laptop, "/sign-in").get_text()
    assert _signed_out(laptop) and _signed_out(phone)
    assert _actions(session)[-1] == ("signed_out_everywhere", user.id, user.patient_id)
    # Signing in again works, on any device.
    assert sign_in(phone, user.patient.mobile).status_code == 302


def test_sign_out_everywhere_needs_the_form_token(patient_client):
    response = patient_client.post("/account/sign-out-everywhere", data={})
    assert response.status_code == 400
    assert patient_client.get("/bookings").status_code == 200


def test_changing_the_password_ends_the_other_sessions_and_keeps_this_one(app, session):
    user, phone, laptop = _two_devices(app, session)
    with laptop.session_transaction() as before:
        signed_in_at = before["signed_in_at"]
    response = _change_password(laptop)
    assert response.headers["Location"] == "/account"
    page = get_page(laptop, "/account")
    assert "Your password has been changed" in page.get_text()
    assert get_page(laptop, "/bookings")
    assert _signed_out(phone)
    with laptop.session_transaction() as after:
        assert after["signed_in_at"] == signed_in_at  # the 12-hour limit still counts from sign-in
    # The new password works and the old one does not.
    assert sign_in(app.test_client(), user.patient.mobile, NEW_PASSWORD).status_code == 302
    assert sign_in(app.test_client(), user.patient.mobile).status_code == 200
    session.expire_all()
    assert session.get(User, user.id).password_changed_at is not None
    assert ("password_changed", user.id, user.patient_id) in _actions(session)


def test_staff_can_change_their_password(app, session):
    staff = factories.create_staff(session, role=Role.RECEPTION)
    client = app.test_client()
    assert sign_in(client, staff.email).status_code == 302
    assert _change_password(client).headers["Location"] == "/account"
    assert get_page(client, "/staff")


def test_a_wrong_current_password_is_shown_next_to_its_field_and_counted(patient_client, session):
    response = _change_password(patient_client, current="not my password")
    assert response.status_code == 200
    assert error_for(parse(response), "current_password") == "Your current password is not right"
    session.expire_all()
    assert session.get(User, patient_client.user.id).failed_sign_ins == 1
    assert _actions(session)[-1][0] == "password_change_failed"


def test_guessing_the_current_password_locks_it_like_sign_in(patient_client, session):
    for _ in range(5):
        _change_password(patient_client, current="not my password")
    response = _change_password(patient_client)  # now the right one
    assert "too many times" in error_for(parse(response), "current_password")
    assert "account_locked" in [action for action, *_ in _actions(session)]
    assert patient_client.get("/bookings").status_code == 200  # still signed in here


@pytest.mark.parametrize(
    ("new", "confirm", "field", "message"),
    [
        ("password", None, "password", "This is one of the 10 most used passwords. Try 3 or more random words"),
        ("short", None, "password", "Password must be 8 characters or more"),
        ("", None, "password", "Enter a new password"),
        (NEW_PASSWORD, "orange piano meadows", "confirm_password", "The passwords do not match"),
    ],
)
def test_bad_new_passwords_are_shown_next_to_the_field(patient_client, session, new, confirm, field, message):
    response = _change_password(patient_client, new=new, confirm=confirm)
    assert response.status_code == 200
    assert message in error_for(parse(response), field)
    session.expire_all()
    assert session.get(User, patient_client.user.id).password_changed_at is None


def test_a_password_made_of_the_patients_own_details_is_refused(patient_client):
    patient = patient_client.user.patient
    new = f"{patient.given_name}{patient.date_of_birth:%d%m%Y}"
    response = _change_password(patient_client, new=new)
    assert error_for(parse(response), "password") == (
        "Do not use details about you, like your name, date of birth or postcode. "
        "Try 3 or more random words you will remember.")


def test_the_account_pages_are_not_cached(patient_client):
    for url in ("/account", "/account/password"):
        assert patient_client.get(url).headers["Cache-Control"] == "no-store"


def _feed_address(session, user) -> str:
    from portal.calendars.services import new_feed_token
    from portal.db import utcnow

    token = new_feed_token(session, user.patient_id, now=utcnow())
    session.commit()
    return f"/calendar/feed/{token}.ics"


def test_signing_out_everywhere_or_changing_the_password_stops_the_calendar_address(app, session):
    user, phone, laptop = _two_devices(app, session)
    address = _feed_address(session, user)
    assert app.test_client().get(address).status_code == 200
    assert _change_password(phone).status_code == 302
    assert app.test_client().get(address).status_code == 404
    address = _feed_address(session, user)
    page = get_page(phone, "/account")
    assert "Your calendar address stops working as well" in page.get_text()
    phone.post("/account/sign-out-everywhere", data={"csrf_token": csrf_token(page)})
    assert app.test_client().get(address).status_code == 404
