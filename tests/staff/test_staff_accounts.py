"""Admins' staff accounts: invite with a one-time set-up link, set up, change role, deactivate and reactivate,
reset the second factor (which takes the password too, and gives a set-up link). The service always keeps an
active admin."""

from __future__ import annotations

import datetime as dt
import re

import pyotp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update

from portal.audit.models import AuditEvent
from portal.auth import staff_accounts
from portal.auth.models import Role, StaffSecondFactor, StaffSetUpLink, User
from portal.auth.routes import SIGN_IN_REFUSED
from portal.db import utcnow
from tests import factories
from tests.conftest import sign_in
from tests.pages import csrf_token, error_for, get_page, parse

ACCOUNTS = "/staff/admin/staff-accounts"
INVITE = f"{ACCOUNTS}/invite"
NEW_PASSWORD = "orange harbour lantern"
LINK = re.compile(r"https://portal\.test/activate/staff/[A-Za-z0-9_-]{20,}")


def _signed_in(app, user: User):
    client = app.test_client()
    assert sign_in(client, user.email).status_code == 302
    client.user = user
    return client


@pytest.fixture
def admin(session):
    return factories.create_staff(session, role=Role.ADMIN, display_name="Ada Admin")


@pytest.fixture
def admin_client(app, admin):
    return _signed_in(app, admin)


def _events(session, action: str) -> list[AuditEvent]:
    return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def _invite(client, **changes):
    data = {"display_name": "Nia Newcomer", "email": "Nia.Newcomer@NHS.net", "role": "clinician"}
    data.update(changes)
    token = csrf_token(get_page(client, INVITE))
    return client.post(INVITE, data={**data, "csrf_token": token})


def _link_path(response) -> str:
    page = parse(response)
    match = LINK.search(page.select_one("#set-up-link").get_text())
    assert match, page.get_text()
    return match.group(0).removeprefix("https://portal.test")


def _press(client, user_id: int, action: str):
    token = csrf_token(get_page(client, f"{ACCOUNTS}/{user_id}"))
    return client.post(f"{ACCOUNTS}/{user_id}/{action}", data={"csrf_token": token})


def _is_signed_in(client) -> bool:
    response = client.get("/staff")
    return response.status_code == 200


# Inviting and setting up.

def test_an_admin_invites_a_clinician_and_sees_the_link_once(admin_client, session, admin):
    page = get_page(admin_client, ACCOUNTS)
    assert page.find("a", href=INVITE)
    invite_page = get_page(admin_client, INVITE)
    assert "The portal cannot send email" in invite_page.get_text()

    response = _invite(admin_client)
    assert response.status_code == 200
    shown = parse(response)
    assert shown.h1.get_text(strip=True) == "Send Nia Newcomer their set-up link"
    assert "You will not see this link again" in shown.get_text()
    assert "nia.newcomer@nhs.net" in shown.get_text()
    path = _link_path(response)

    user = session.scalars(select(User).where(User.email == "nia.newcomer@nhs.net")).one()
    assert (user.role, user.display_name, user.is_active) == ("clinician", "Nia Newcomer", False)
    assert not staff_accounts.is_set_up(user)
    link = session.scalars(select(StaffSetUpLink).where(StaffSetUpLink.user_id == user.id)).one()
    # Only a hash is kept: the link itself is nowhere in the database, nor on any later page.
    assert path.rsplit("/", 1)[1] not in link.token_hash
    assert link.expires_at - link.created_at == dt.timedelta(days=7)
    assert link.created_by_id == admin.id
    account = get_page(admin_client, f"{ACCOUNTS}/{user.id}")
    assert "/activate/staff/" not in str(account)
    assert "Invited: not set up yet" in account.get_text()
    assert "Their set-up link works until" in account.get_text()
    row = next(tr for tr in get_page(admin_client, ACCOUNTS).select("tbody tr") if "Nia Newcomer" in tr.get_text())
    assert "Invited: not set up yet" in row.get_text()
    [event] = _events(session, "staff_invited")
    assert (event.actor_user_id, event.detail) == (admin.id, f"account {user.id}: clinician")

    # An invited account cannot sign in before it is set up.
    client = _fresh(admin_client)
    assert sign_in(client, "nia.newcomer@nhs.net", NEW_PASSWORD).status_code == 200
    assert not _is_signed_in(client)


def _fresh(client):
    return client.application.test_client()


def test_the_new_staff_member_sets_a_password_then_their_app(admin_client, session):
    path = _link_path(_invite(admin_client))
    client = _fresh(admin_client)
    page = get_page(client, path)
    assert page.h1.get_text(strip=True) == "Set up your staff account"
    assert "nia.newcomer@nhs.net" in page.get_text()

    response = client.post(path, data={"password": "password1", "confirm_password": "password1",
                                       "csrf_token": csrf_token(page)})
    assert response.status_code == 200
    assert error_for(parse(response), "password")
    response = client.post(path, data={"password": "Nia Newcomer", "confirm_password": "Nia Newcomer",
                                       "csrf_token": csrf_token(page)})
    assert "Do not use details about you" in error_for(parse(response), "password")
    session.expire_all()
    assert session.scalars(select(User).where(User.email == "nia.newcomer@nhs.net")).one().is_active is False

    response = client.post(path, data={"password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD,
                                       "csrf_token": csrf_token(page)})
    # Straight on to the second step: setting up an authenticator app.
    assert response.headers["Location"] == "/sign-in/set-up-app"
    enrol = get_page(client, "/sign-in/set-up-app")
    assert "Your password is saved" in enrol.get_text()
    session.expire_all()
    user = session.scalars(select(User).where(User.email == "nia.newcomer@nhs.net")).one()
    assert user.is_active and staff_accounts.is_set_up(user)
    assert session.scalars(select(StaffSetUpLink.used_at)).one() is not None
    assert [e.detail for e in _events(session, "staff_account_set_up")] == [f"account {user.id}"]

    # The link works once.
    assert _fresh(admin_client).get(path).status_code == 410
    # Without finishing the app, nobody is signed in; signing in again leads back to setting it up.
    assert not _is_signed_in(client)
    other = _fresh(admin_client)
    response = other.post("/sign-in", data={"identifier": "nia.newcomer@nhs.net", "password": NEW_PASSWORD,
                                           "csrf_token": csrf_token(get_page(other, "/sign-in"))})
    assert response.headers["Location"] == "/sign-in/set-up-app"


def test_an_expired_or_replaced_link_cannot_be_used(admin_client, session):
    first = _link_path(_invite(admin_client))
    user = session.scalars(select(User).where(User.email == "nia.newcomer@nhs.net")).one()
    response = _press(admin_client, user.id, "set-up-link")
    assert response.status_code == 200
    second = _link_path(response)
    assert "Any earlier link no longer works" in parse(response).get_text()
    assert first != second
    client = _fresh(admin_client)
    page = client.get(first)
    assert page.status_code == 410
    assert "ask an admin of the portal for a new set-up link" in parse(page).get_text()
    assert client.get("/activate/staff/not-a-token").status_code == 410

    session.execute(update(StaffSetUpLink).values(expires_at=utcnow() - dt.timedelta(seconds=1)))
    session.commit()
    assert client.get(second).status_code == 410
    assert "Their set-up link has run out" in get_page(admin_client, f"{ACCOUNTS}/{user.id}").get_text()
    assert [e.detail for e in _events(session, "staff_set_up_link_issued")] == [f"account {user.id}"]


def test_a_cancelled_invitation_stops_the_link(admin_client, session):
    path = _link_path(_invite(admin_client))
    user = session.scalars(select(User).where(User.email == "nia.newcomer@nhs.net")).one()
    assert _press(admin_client, user.id, "deactivate").status_code == 302
    assert _fresh(admin_client).get(path).status_code == 410
    assert "Their set-up link was cancelled" in get_page(admin_client, f"{ACCOUNTS}/{user.id}").get_text()


def test_a_signed_in_person_opening_a_link_does_not_use_it(admin_client, session):
    path = _link_path(_invite(admin_client))
    page = get_page(admin_client, path)
    assert page.h1.get_text(strip=True) == "Sign out to use this link"
    assert _fresh(admin_client).get(path).status_code == 200


def test_signing_in_through_the_set_up_link_counts_as_signing_in(admin_client, session):
    path = _link_path(_invite(admin_client))
    client = _fresh(admin_client)
    page = get_page(client, path)
    user = session.scalars(select(User).where(User.email == "nia.newcomer@nhs.net")).one()
    account = f"/staff/admin/staff-accounts/{user.id}"
    assert "Last signed in Never" in get_page(admin_client, account).get_text(" ", strip=True)
    response = client.post(path, data={"password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD,
                                       "csrf_token": csrf_token(page)})
    assert response.headers["Location"] == "/sign-in/set-up-app"
    session.expire_all()
    assert session.get(User, user.id).last_sign_in_at is not None
    assert "Last signed in Never" not in get_page(admin_client, account).get_text(" ", strip=True)


def test_a_set_up_link_is_only_for_someone_not_yet_set_up(admin_client, session):
    other = factories.create_staff(session, role=Role.RECEPTION)
    response = _press(admin_client, other.id, "set-up-link")
    assert response.status_code == 409
    assert "has set up their account already" in parse(response).select_one(".nhsuk-error-summary").get_text()
    assert session.scalars(select(StaffSetUpLink)).first() is None


@pytest.mark.parametrize(("field", "changes", "message"), [
    ("display_name", {"display_name": " "}, "Enter their full name"),
    ("display_name", {"display_name": "x" * 201}, "Full name must be 200 characters or fewer"),
    ("email", {"email": ""}, "Enter their email address"),
    ("email", {"email": "not-an-email"}, "Enter an email address like name@nhs.net"),
    ("email", {"email": "a@b@c.nhs.net"}, "Enter an email address like name@nhs.net"),
    ("role", {"role": ""}, "Select a role"),
    ("role", {"role": "patient"}, "Select a role"),
    ("role", {"role": "superuser"}, "Select a role"),
])
def test_bad_invitations_are_refused_next_to_the_field(admin_client, session, field, changes, message):
    response = _invite(admin_client, **changes)
    assert response.status_code == 400
    page = parse(response)
    assert error_for(page, field) == message
    assert page.title.string.startswith("Error: ")
    assert session.scalars(select(User).where(User.email == "nia.newcomer@nhs.net")).first() is None


def test_an_email_already_in_use_is_refused(admin_client, session):
    factories.create_staff(session, email="nia.newcomer@nhs.net")
    response = _invite(admin_client, email="NIA.newcomer@nhs.net")
    assert error_for(parse(response), "email") == "There is already an account with this email address"
    assert session.scalar(select(func.count()).select_from(User)) == 2


# Roles.

def test_an_admin_changes_a_role(admin_client, session, admin):
    target = factories.create_staff(session, role=Role.FACILITATOR, display_name="Femi Facilitator")
    page = get_page(admin_client, f"{ACCOUNTS}/{target.id}")
    assert page.find("input", attrs={"name": "role", "value": "facilitator"}).has_attr("checked")
    response = admin_client.post(f"{ACCOUNTS}/{target.id}/role", data={"role": "clinician",
                                                                       "csrf_token": csrf_token(page)})
    assert response.headers["Location"] == f"{ACCOUNTS}/{target.id}"
    assert "Femi Facilitator is now a clinician" in get_page(admin_client, f"{ACCOUNTS}/{target.id}").get_text()
    session.expire_all()
    assert session.get(User, target.id).role == "clinician"
    [event] = _events(session, "staff_role_changed")
    assert (event.actor_user_id, event.detail) == (admin.id, f"account {target.id}: facilitator to clinician")


def test_a_clinician_running_clinics_keeps_a_clinical_role_until_they_are_handed_on(admin_client, session):
    from tests.appointments.factories import create_template

    target = factories.create_staff(session, role=Role.CLINICIAN, display_name="Kim Clinician")
    create_template(session, clinician=target)
    create_template(session, clinician=target, weekday=2)
    token = csrf_token(get_page(admin_client, f"{ACCOUNTS}/{target.id}"))
    response = admin_client.post(f"{ACCOUNTS}/{target.id}/role", data={"role": "reception", "csrf_token": token})
    assert error_for(parse(response), "role") == (
        "Kim Clinician runs 2 weekly clinics. Give them to another clinician, or end them, first")
    session.expire_all()
    assert session.get(User, target.id).role == "clinician"
    # Another clinical role keeps the clinics running, so it is allowed.
    response = admin_client.post(f"{ACCOUNTS}/{target.id}/role", data={"role": "facilitator", "csrf_token": token})
    assert response.status_code == 302
    session.expire_all()
    assert session.get(User, target.id).role == "facilitator"


def test_a_bad_role_is_refused_next_to_the_field(admin_client, session):
    target = factories.create_staff(session, role=Role.FACILITATOR)
    token = csrf_token(get_page(admin_client, f"{ACCOUNTS}/{target.id}"))
    response = admin_client.post(f"{ACCOUNTS}/{target.id}/role", data={"role": "patient", "csrf_token": token})
    assert response.status_code == 400
    assert error_for(parse(response), "role") == "Select a role"
    session.expire_all()
    assert session.get(User, target.id).role == "facilitator"


def test_admins_cannot_change_their_own_role_or_deactivate_themselves(admin_client, session, admin):
    page = get_page(admin_client, f"{ACCOUNTS}/{admin.id}")
    assert "This is your own account" in page.get_text()
    assert page.find("form", action=f"{ACCOUNTS}/{admin.id}/role") is None
    assert page.find("form", action=f"{ACCOUNTS}/{admin.id}/deactivate") is None
    token = csrf_token(page)
    response = admin_client.post(f"{ACCOUNTS}/{admin.id}/role", data={"role": "reception", "csrf_token": token})
    assert error_for(parse(response), "role") == "You cannot change the role of your own account. Ask another admin"
    response = admin_client.post(f"{ACCOUNTS}/{admin.id}/deactivate", data={"csrf_token": token})
    assert response.status_code == 409
    assert "You cannot deactivate your own account" in parse(response).select_one(".nhsuk-error-summary").get_text()
    session.expire_all()
    assert session.get(User, admin.id).role == "admin" and session.get(User, admin.id).is_active
    assert _is_signed_in(admin_client)
    assert _events(session, "staff_deactivated") == [] and _events(session, "staff_role_changed") == []


def test_the_last_active_admin_is_never_demoted_nor_deactivated(session):
    only = factories.create_staff(session, role=Role.ADMIN, display_name="Only Admin")
    retired = factories.create_staff(session, role=Role.ADMIN, is_active=False)
    # Whoever asks (here an account that is no longer an active admin, as a stale page would be).
    with pytest.raises(staff_accounts.NotAllowed, match="Only Admin is the only active admin"):
        staff_accounts.change_role(session, only, Role.RECEPTION, by=retired)
    with pytest.raises(staff_accounts.NotAllowed, match="only active admin"):
        staff_accounts.deactivate(session, only, by=retired, now=utcnow())
    session.rollback()
    second = factories.create_staff(session, role=Role.ADMIN)
    staff_accounts.change_role(session, only, Role.RECEPTION, by=second)
    with pytest.raises(staff_accounts.NotAllowed):
        staff_accounts.deactivate(session, second, by=only, now=utcnow())
    # Another staff member, or an admin already deactivated, is no one's last admin.
    staff_accounts.change_role(session, retired, Role.FACILITATOR, by=second)
    session.rollback()


def test_an_admin_demotes_another_admin_while_one_remains(admin_client, session, admin):
    other = factories.create_staff(session, role=Role.ADMIN, display_name="Other Admin")
    token = csrf_token(get_page(admin_client, f"{ACCOUNTS}/{other.id}"))
    response = admin_client.post(f"{ACCOUNTS}/{other.id}/role", data={"role": "reception", "csrf_token": token})
    assert response.status_code == 302
    session.expire_all()
    assert session.get(User, other.id).role == "reception"


# Deactivating, reactivating, resetting the second factor.

def test_deactivating_ends_their_sessions_and_reactivating_lets_them_back(app, admin_client, session, admin):
    target = factories.create_staff(session, role=Role.RECEPTION, display_name="Rita Reception")
    target_client = _signed_in(app, target)
    assert _is_signed_in(target_client)

    response = _press(admin_client, target.id, "deactivate")
    assert response.headers["Location"] == f"{ACCOUNTS}/{target.id}"
    page = get_page(admin_client, f"{ACCOUNTS}/{target.id}")
    assert "Rita Reception can no longer sign in" in page.get_text()
    assert page.find("form", action=f"{ACCOUNTS}/{target.id}/reactivate")
    assert not _is_signed_in(target_client)
    assert sign_in(_fresh(admin_client), target.email).status_code == 200  # the form again: refused
    session.expire_all()
    assert session.get(User, target.id).is_active is False
    assert [(e.actor_user_id, e.detail) for e in _events(session, "staff_deactivated")] == [
        (admin.id, f"account {target.id}")]

    assert _press(admin_client, target.id, "reactivate").status_code == 302
    assert "Rita Reception can sign in again" in get_page(admin_client, f"{ACCOUNTS}/{target.id}").get_text()
    # The sessions ended for good: reactivating does not bring them back, a new sign-in is needed.
    assert not _is_signed_in(target_client)
    assert _is_signed_in(_signed_in(app, target))
    assert [e.detail for e in _events(session, "staff_reactivated")] == [f"account {target.id}"]


def test_an_invited_account_is_not_reactivated_but_given_a_new_link(admin_client, session):
    _invite(admin_client)
    user = session.scalars(select(User).where(User.email == "nia.newcomer@nhs.net")).one()
    response = _press(admin_client, user.id, "reactivate")
    assert "has not set up their account yet" in parse(response).select_one(".nhsuk-error-summary").get_text()
    session.expire_all()
    assert session.get(User, user.id).is_active is False


def _reset(admin_client, target) -> str:
    """Press "Reset second factor" on the account page; returns the set-up link path shown once."""
    response = _press(admin_client, target.id, "reset-second-factor")
    assert response.status_code == 200
    return _link_path(response)


def test_resetting_the_second_factor_takes_the_password_too_and_shows_a_set_up_link(
        app, admin_client, session, admin):
    target = factories.create_staff(session, role=Role.RECEPTION, display_name="Rita Reception")
    target_client = _signed_in(app, target)
    page = get_page(admin_client, f"{ACCOUNTS}/{target.id}")
    assert "Authenticator app Set up" in page.get_text(" ", strip=True)
    assert "takes away their password" in page.get_text()
    response = _press(admin_client, target.id, "reset-second-factor")
    assert response.status_code == 200
    shown = parse(response)
    text = shown.get_text(" ", strip=True)
    assert "The second factor of Rita Reception is reset. Their password no longer works" in text
    assert shown.h1.get_text(strip=True) == "Give Rita Reception their set-up link"
    assert "Give this link to Rita Reception in person or by phone" in text
    assert "You will not see this link again" in text
    assert "The portal cannot send email" not in text
    path = _link_path(response)

    session.expire_all()
    user = session.get(User, target.id)
    assert user.password_hash == staff_accounts.NO_PASSWORD and not staff_accounts.is_set_up(user)
    assert user.is_active  # not a deactivation
    assert session.scalars(select(StaffSecondFactor).where(StaffSecondFactor.user_id == target.id)).first() is None
    link = session.scalars(select(StaffSetUpLink).where(StaffSetUpLink.user_id == target.id)).one()
    assert path.rsplit("/", 1)[1] not in link.token_hash and link.created_by_id == admin.id
    assert not _is_signed_in(target_client)
    assert [(e.actor_user_id, e.detail) for e in _events(session, "mfa_reset")] == [(admin.id, f"user {target.id}")]
    assert [(e.actor_user_id, e.detail) for e in _events(session, "staff_set_up_link_issued")] == [
        (admin.id, f"account {target.id}")]

    # The account page and the list say what is going on, and offer a new link rather than another reset.
    account = get_page(admin_client, f"{ACCOUNTS}/{target.id}")
    account_text = account.get_text(" ", strip=True)
    assert "Status Waiting for set-up" in account_text
    assert "Their set-up link works until" in account_text
    assert "Authenticator app Not set up" in account_text
    assert "/activate/staff/" not in str(account)
    assert account.find("form", action=f"{ACCOUNTS}/{target.id}/set-up-link")
    assert account.find("form", action=f"{ACCOUNTS}/{target.id}/deactivate")
    assert not account.find("form", action=f"{ACCOUNTS}/{target.id}/reset-second-factor")
    assert not account.find("form", action=f"{ACCOUNTS}/{target.id}/reactivate")
    row = next(tr for tr in get_page(admin_client, ACCOUNTS).select("tbody tr") if "Rita Reception" in tr.get_text())
    assert "Waiting for set-up" in row.get_text()


def test_after_a_reset_the_old_password_signs_nobody_in_nor_shows_a_set_up_key(app, admin_client, session):
    target = factories.create_staff(session, role=Role.RECEPTION, display_name="Rita Reception")
    _reset(admin_client, target)
    client = _fresh(admin_client)
    response = sign_in(client, target.email)  # the old password
    assert response.status_code == 200
    # The same answer as any wrong password: it does not say the account was reset.
    assert error_for(parse(response), "password") == SIGN_IN_REFUSED
    assert client.get("/sign-in/set-up-app").headers["Location"] == "/sign-in"
    assert "setup-key" not in client.get("/sign-in/set-up-app", follow_redirects=True).get_data(as_text=True)
    assert not _is_signed_in(client)
    session.expire_all()
    assert session.scalars(select(StaffSecondFactor).where(StaffSecondFactor.user_id == target.id)).first() is None


def test_the_reset_link_leads_through_a_new_password_and_app_to_a_signed_in_staff_member(
        app, admin_client, session):
    target = factories.create_staff(session, role=Role.RECEPTION, display_name="Rita Reception")
    path = _reset(admin_client, target)
    client = _fresh(admin_client)
    page = get_page(client, path)
    assert page.h1.get_text(strip=True) == "Set up your staff account"
    assert target.email in page.get_text()
    response = client.post(path, data={"password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD,
                                       "csrf_token": csrf_token(page)})
    assert response.headers["Location"] == "/sign-in/set-up-app"
    enrol = get_page(client, "/sign-in/set-up-app")
    secret = enrol.select_one("#setup-key").get_text(strip=True).replace(" ", "")
    factor = session.scalars(select(StaffSecondFactor).where(StaffSecondFactor.user_id == target.id)).one()
    assert factor.secret == secret and factor.secret != target.totp_secret
    response = client.post("/sign-in/set-up-app", data={"code": pyotp.TOTP(secret).now(),
                                                        "csrf_token": csrf_token(enrol)})
    assert response.status_code == 200  # the recovery codes, shown once
    assert _is_signed_in(client)
    session.expire_all()
    user = session.get(User, target.id)
    assert staff_accounts.is_set_up(user) and user.is_active
    assert [e.detail for e in _events(session, "staff_account_set_up")] == [f"account {target.id}"]
    assert "Status Active" in get_page(admin_client, f"{ACCOUNTS}/{target.id}").get_text(" ", strip=True)

    # The link works once, and the old password stays dead; the new one signs in (to the code step).
    assert _fresh(admin_client).get(path).status_code == 410
    assert sign_in(_fresh(admin_client), target.email).status_code == 200
    other = _fresh(admin_client)
    response = other.post("/sign-in", data={"identifier": target.email, "password": NEW_PASSWORD,
                                           "csrf_token": csrf_token(get_page(other, "/sign-in"))})
    assert response.headers["Location"] == "/sign-in/code"


def test_a_lost_reset_link_is_replaced_and_a_reset_account_is_not_reset_again(admin_client, session):
    target = factories.create_staff(session, role=Role.RECEPTION, display_name="Rita Reception")
    first = _reset(admin_client, target)
    response = _press(admin_client, target.id, "reset-second-factor")
    assert response.status_code == 409
    assert "Make a new set-up link instead" in parse(response).select_one(".nhsuk-error-summary").get_text()
    response = _press(admin_client, target.id, "set-up-link")
    assert response.status_code == 200
    second = _link_path(response)
    text = parse(response).get_text(" ", strip=True)
    assert "Any earlier link no longer works" in text
    assert "Give this link to Rita Reception in person or by phone" in text
    assert _fresh(admin_client).get(first).status_code == 410
    assert _fresh(admin_client).get(second).status_code == 200
    assert len(_events(session, "mfa_reset")) == 1


def test_a_reset_account_deactivated_is_brought_back_by_a_new_link_not_reactivated(admin_client, session):
    target = factories.create_staff(session, role=Role.RECEPTION, display_name="Rita Reception")
    path = _reset(admin_client, target)
    assert _press(admin_client, target.id, "deactivate").status_code == 302
    assert _fresh(admin_client).get(path).status_code == 410
    account = get_page(admin_client, f"{ACCOUNTS}/{target.id}")
    assert "Status Deactivated" in account.get_text(" ", strip=True)
    assert not account.find("form", action=f"{ACCOUNTS}/{target.id}/reactivate")
    assert account.find("form", action=f"{ACCOUNTS}/{target.id}/set-up-link")
    response = _press(admin_client, target.id, "reactivate")
    assert response.status_code == 409
    assert "has no password since their second factor was reset" in parse(response).get_text()
    session.expire_all()
    assert session.get(User, target.id).is_active is False
    assert _press(admin_client, target.id, "set-up-link").status_code == 200


def test_admins_cannot_reset_their_own_second_factor_nor_an_invited_or_deactivated_account(
        admin_client, session, admin):
    page = get_page(admin_client, f"{ACCOUNTS}/{admin.id}")
    assert not page.find("form", action=f"{ACCOUNTS}/{admin.id}/reset-second-factor")
    response = _press(admin_client, admin.id, "reset-second-factor")
    assert response.status_code == 409
    assert "You cannot reset the second factor of your own account" in parse(response).get_text()
    _invite(admin_client)
    invited = session.scalars(select(User).where(User.email == "nia.newcomer@nhs.net")).one()
    assert _press(admin_client, invited.id, "reset-second-factor").status_code == 409
    # Nor a deactivated account: using the link would reactivate it.
    gone = factories.create_staff(session, role=Role.RECEPTION, display_name="Gone Person", is_active=False)
    assert not get_page(admin_client, f"{ACCOUNTS}/{gone.id}").find(
        "form", action=f"{ACCOUNTS}/{gone.id}/reset-second-factor")
    response = _press(admin_client, gone.id, "reset-second-factor")
    assert response.status_code == 409
    assert "Gone Person is deactivated" in parse(response).select_one(".nhsuk-error-summary").get_text()
    session.expire_all()
    assert staff_accounts.is_set_up(session.get(User, admin.id))
    assert staff_accounts.is_set_up(session.get(User, gone.id))
    assert _events(session, "mfa_reset") == []


def test_the_list_shows_every_staff_account_and_no_patient(admin_client, session):
    factories.create_staff(session, role=Role.CLINICIAN, display_name="Cleo Clinician")
    factories.create_staff(session, role=Role.FACILITATOR, display_name="Gone Person", is_active=False)
    patient = factories.create_patient_user(session)
    page = get_page(admin_client, ACCOUNTS)
    rows = [tr.get_text(" ", strip=True) for tr in page.select("tbody tr")]
    assert [row.split(" Email")[0] for row in rows] == ["Name Ada Admin", "Name Cleo Clinician", "Name Gone Person"]
    assert "Deactivated" in rows[2] and "Active" in rows[1]
    assert patient.display_name not in page.get_text()


def test_bad_ids_and_patients_accounts_are_404(admin_client, session):
    patient = factories.create_patient_user(session)
    token = csrf_token(get_page(admin_client, ACCOUNTS))
    for user_id in (999999, patient.id):
        assert admin_client.get(f"{ACCOUNTS}/{user_id}").status_code == 404
        for action in ("role", "deactivate", "reactivate", "reset-second-factor", "set-up-link"):
            response = admin_client.post(f"{ACCOUNTS}/{user_id}/{action}", data={"csrf_token": token, "role": "admin"})
            assert response.status_code == 404, action
    session.expire_all()
    assert session.get(User, patient.id).role == "patient"


def test_buttons_need_the_csrf_token(admin_client, session):
    target = factories.create_staff(session)
    for action in ("deactivate", "reset-second-factor"):
        assert admin_client.post(f"{ACCOUNTS}/{target.id}/{action}").status_code == 400
    session.expire_all()
    assert session.get(User, target.id).is_active


@pytest.mark.parametrize("role", [Role.FACILITATOR, Role.CLINICIAN, Role.RECEPTION])
def test_only_admins_manage_staff_accounts(app, session, role):
    target = factories.create_staff(session, role=Role.FACILITATOR)
    client = _signed_in(app, factories.create_staff(session, role=role))
    for url in (ACCOUNTS, INVITE, f"{ACCOUNTS}/{target.id}"):
        assert client.get(url).status_code == 403, url
    token = csrf_token(get_page(client, "/staff"))
    for action in ("role", "deactivate", "reactivate", "reset-second-factor", "set-up-link"):
        response = client.post(f"{ACCOUNTS}/{target.id}/{action}", data={"csrf_token": token, "role": "admin"})
        assert response.status_code == 403, action
    assert client.post(INVITE, data={"csrf_token": token, "display_name": "X Y", "email": "x@nhs.net",
                                     "role": "admin"}).status_code == 403
    session.expire_all()
    assert session.get(User, target.id).role == "facilitator" and session.get(User, target.id).is_active
    assert session.scalars(select(User).where(User.email == "x@nhs.net")).first() is None


# The first admin of a new deployment, from the command line.

def test_the_command_line_invites_the_first_admin(app, session):
    from portal.cli import main

    result = app.test_cli_runner().invoke(main, ["invite-staff", "First.Admin@nhs.net", "--name", "First Admin",
                                                 "--role", "admin"])
    assert result.exit_code == 0, result.output
    path = LINK.search(result.output).group(0).removeprefix("https://portal.test")
    user = session.scalars(select(User).where(User.email == "first.admin@nhs.net")).one()
    assert (user.role, user.is_active, user.display_name) == ("admin", False, "First Admin")
    [event] = _events(session, "staff_invited")
    assert (event.actor_role, event.detail) == ("system", f"account {user.id}: admin")
    assert app.test_client().get(path).status_code == 200

    again = app.test_cli_runner().invoke(main, ["invite-staff", "first.admin@nhs.net", "--name", "X", "--role",
                                                "admin"])
    assert again.exit_code == 1 and "There is already an account" in again.output
    bad = app.test_cli_runner().invoke(main, ["invite-staff", "nobody", "--name", "X", "--role", "admin"])
    assert bad.exit_code == 1 and "is not an email address" in bad.output


TEXT = st.one_of(st.just(""), st.text(max_size=40), st.text(alphabet=st.characters(codec="utf-8"), max_size=200),
                 st.integers(min_value=200, max_value=3000).map(lambda n: "\u00e9\U0001f600" * n))


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.data_too_large])
@given(display_name=TEXT, email=st.one_of(TEXT, st.emails()),
       role=st.one_of(TEXT, st.sampled_from(["admin", "clinician"])))
def test_any_text_in_the_invite_form_never_answers_500(admin_client, session, display_name, email, role):
    before = session.scalar(select(func.count()).select_from(User))
    response = _invite(admin_client, display_name=display_name, email=email, role=role)
    assert response.status_code in (200, 400)
    created = session.scalar(select(func.count()).select_from(User)) - before
    assert created == (1 if parse(response).select_one("#set-up-link") else 0)
    assert (response.status_code == 200) == bool(created)  # a refused invitation answers 400
