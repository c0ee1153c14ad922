"""Staff second factor: enrolment, codes from the app, recovery codes, limits, expiry, admins' reset."""

import datetime as dt
import re
from urllib.parse import unquote

import pyotp
import pytest
from sqlalchemy import select, update

from portal.audit.models import AuditEvent
from portal.auth import mfa
from portal.auth.models import RecoveryCode, Role, StaffSecondFactor, User
from portal.db import utcnow
from tests import factories
from tests.conftest import sign_in
from tests.pages import csrf_token, error_for, get_page, parse

ENROL = "/sign-in/set-up-app"
CODE = "/sign-in/code"
RECOVERY = "/sign-in/recovery-code"
# Admins reset a second factor from the staff member's account page (portal/staff/admin.py).
ACCOUNTS = "/staff/admin/staff-accounts"


def password_step(client, user, *, query: str = ""):
    page = get_page(client, "/sign-in")
    return client.post(f"/sign-in{query}", data={
        "identifier": user.email, "password": factories.PASSWORD, "csrf_token": csrf_token(page)})


def post_code(client, url: str, code: str):
    page = get_page(client, url)
    return client.post(url, data={"code": code, "csrf_token": csrf_token(page)})


def code_at(secret: str, step: int) -> str:
    return pyotp.TOTP(secret).generate_otp(step)


def now_step() -> int:
    return mfa.time_step(utcnow())


def wrong_code(secret: str) -> str:
    """A 6-digit code that is not right for any step near now."""
    near = {code_at(secret, now_step() + offset) for offset in range(-3, 4)}
    return next(code for code in (f"{n:06d}" for n in range(1_000_000)) if code not in near)


def factor_of(session, user) -> StaffSecondFactor | None:
    session.expire_all()
    return session.scalars(select(StaffSecondFactor).where(StaffSecondFactor.user_id == user.id)).one_or_none()


def events(session, action: str | None = None) -> list[AuditEvent]:
    query = select(AuditEvent).order_by(AuditEvent.id)
    if action:
        query = query.where(AuditEvent.action == action)
    return list(session.scalars(query))


def is_signed_in(client) -> bool:
    return client.get("/staff").status_code == 200


def sign_out(client) -> None:
    page = get_page(client, "/staff")
    client.post("/sign-out", data={"csrf_token": csrf_token(page)})


def enrol(client, session, user) -> list[str]:
    """Set up the app through the pages; returns the recovery codes shown once. Sets ``user.totp_secret``."""
    assert password_step(client, user).headers["Location"] == ENROL
    get_page(client, ENROL)
    user.totp_secret = factor_of(session, user).secret
    response = post_code(client, ENROL, code_at(user.totp_secret, now_step()))
    assert response.status_code == 200
    page = parse(response)
    return [code.get_text(strip=True) for code in page.select("main li code")]


@pytest.fixture
def new_staff(session):
    return factories.create_staff(session, role=Role.FACILITATOR, enrolled=False)


def test_staff_without_an_app_must_set_one_up_before_any_staff_page(app, session, new_staff):
    client = app.test_client()
    response = password_step(client, new_staff)
    assert (response.status_code, response.headers["Location"]) == (302, ENROL)
    # Nobody is signed in until the app is confirmed.
    for url in ("/staff", "/staff/patients", "/"):
        assert client.get(url).headers["Location"].startswith("/sign-in"), url
    assert client.get(CODE).headers["Location"] == ENROL

    page = get_page(client, ENROL)
    factor = factor_of(session, new_staff)
    assert factor is not None and factor.confirmed_at is None
    # The QR code is an SVG drawn by the portal, with a text alternative, and the key is there as text.
    image = page.select_one("main img")
    assert image["src"].startswith("data:image/svg+xml")
    assert "<svg" in unquote(image["src"]) and "http://" not in unquote(image["src"]).replace(
        "http://www.w3.org/2000/svg", "")
    assert "QR code" in image["alt"]
    assert page.select_one("#setup-key").get_text(strip=True).replace(" ", "") == factor.secret
    assert not page.select("script[src^='http'], img[src^='http']")

    response = post_code(client, ENROL, wrong_code(factor.secret))
    assert error_for(parse(response), "code").startswith("The code is not right")
    assert not is_signed_in(client)

    response = post_code(client, ENROL, code_at(factor.secret, now_step()))
    assert response.status_code == 200
    page = parse(response)
    assert page.h1.get_text(strip=True) == "Save your recovery codes"
    codes = [code.get_text(strip=True) for code in page.select("main li code")]
    assert len(codes) == len(set(codes)) == 10
    assert all(re.fullmatch(r"[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}", code) for code in codes)
    assert "You will not see these codes again" in page.get_text()
    assert is_signed_in(client)

    stored = list(session.scalars(select(RecoveryCode).where(RecoveryCode.user_id == new_staff.id)))
    assert len(stored) == 10 and len({row.salt for row in stored}) == 10
    dump = " ".join(f"{row.salt} {row.code_hash}" for row in stored)
    assert not any(code.replace("-", "") in dump for code in codes)
    assert factor_of(session, new_staff).confirmed_at is not None
    assert [(e.action, e.actor_user_id) for e in events(session) if e.action in ("mfa_enrolled", "sign_in")] == [
        ("mfa_enrolled", new_staff.id), ("sign_in", new_staff.id)]


def test_the_recovery_codes_are_shown_only_once(app, session, new_staff):
    client = app.test_client()
    enrol(client, session, new_staff)
    # Going back to the set-up page shows no codes: the person is signed in and the pending step is over.
    assert client.get(ENROL).headers["Location"] == "/"
    sign_out(client)
    assert password_step(client, new_staff).headers["Location"] == CODE
    assert client.get(ENROL).headers["Location"] == CODE


def test_enrolled_staff_type_a_code_after_their_password(app, session):
    user = factories.create_staff(session, role=Role.ADMIN)
    client = app.test_client()
    response = password_step(client, user, query="?next=/staff/patients")
    assert response.headers["Location"] == CODE
    assert not is_signed_in(client)
    page = get_page(client, CODE)
    assert page.h1.get_text(strip=True) == "Enter the code from your authenticator app"
    code_input = page.select_one("input#code")
    assert (code_input["autocomplete"], code_input["inputmode"]) == ("one-time-code", "numeric")

    response = post_code(client, CODE, code_at(user.totp_secret, now_step()))
    assert response.headers["Location"] == "/staff/patients"
    assert is_signed_in(client)
    actions = [(e.action, e.actor_user_id, e.detail) for e in events(session)]
    assert actions[:2] == [("mfa_verified", user.id, "authenticator app"), ("sign_in", user.id, "")]


def test_a_next_too_long_for_the_session_cookie_is_dropped_not_carried(app, session):
    """Browsers silently drop a session cookie over 4 KB: a sign-in link with a long next would have sent the
    staff member back to sign in after their password, every time."""
    import secrets

    user = factories.create_staff(session)
    client = app.test_client()
    response = password_step(client, user, query=f"?next=/staff/patients?q={secrets.token_urlsafe(3000)}")
    assert response.headers["Location"] == CODE
    assert all(len(cookie) < 4093 for cookie in response.headers.getlist("Set-Cookie"))
    response = post_code(client, CODE, code_at(user.totp_secret, now_step()))
    assert response.headers["Location"] == "/"
    assert is_signed_in(client)


@pytest.mark.parametrize(("offset", "accepted"), [(-2, False), (-1, True), (0, True), (1, True), (2, False)])
def test_codes_from_the_steps_either_side_are_accepted(db, session, offset, accepted):
    user = factories.create_staff(session)
    now = utcnow()
    with db.transaction() as s:
        staff = s.get(User, user.id)
        token, enrolled = mfa.begin(s, staff, now=now)
        assert enrolled
        code = code_at(user.totp_secret, mfa.time_step(now) + offset)
        if accepted:
            assert mfa.verify_app_code(s, staff, token, code, now=now).method == "authenticator app"
        else:
            with pytest.raises(mfa.CodeRejected):
                mfa.verify_app_code(s, staff, token, code, now=now)


def test_a_wrong_code_is_shown_next_to_the_field_and_audited(app, session):
    user = factories.create_staff(session)
    client = app.test_client()
    password_step(client, user)
    response = post_code(client, CODE, wrong_code(user.totp_secret))
    assert response.status_code == 200
    page = parse(response)
    assert error_for(page, "code") == "The code is not right. Check it and try again. You have 4 more tries."
    assert page.select_one(".nhsuk-error-summary a")["href"] == "#code"
    assert page.title.string.startswith("Error: ")
    assert not is_signed_in(client)
    failed = events(session, "mfa_failed")
    assert [(e.actor_user_id, e.actor_role, e.detail) for e in failed] == [(user.id, "reception", "wrong app code")]
    # A code that is not 6 digits is a typing slip: it is not checked, nor counted.
    response = post_code(client, CODE, "12345")
    assert error_for(parse(response), "code") == "The code must be 6 digits"
    assert factor_of(session, user).failed_attempts == 1


def test_a_code_cannot_be_used_twice(app, session):
    user = factories.create_staff(session)
    first = app.test_client()
    step = now_step()
    password_step(first, user)
    assert post_code(first, CODE, code_at(user.totp_secret, step)).status_code == 302

    second = app.test_client()
    password_step(second, user)
    response = post_code(second, CODE, code_at(user.totp_secret, step))
    assert error_for(parse(response), "code").startswith("You have used this code already")
    assert not is_signed_in(second)
    # An older code than the newest used one is refused as well.
    response = post_code(second, CODE, code_at(user.totp_secret, step - 1))
    assert error_for(parse(response), "code") is not None
    assert [e.detail for e in events(session, "mfa_failed")][0] == "code already used"
    # The app's next code works.
    assert post_code(second, CODE, code_at(user.totp_secret, step + 1)).status_code == 302
    assert is_signed_in(second)


def test_a_recovery_code_works_once(app, session, new_staff):
    client = app.test_client()
    codes = enrol(client, session, new_staff)
    sign_out(client)

    password_step(client, new_staff)
    page = get_page(client, CODE)
    assert page.find("a", href=RECOVERY)
    # Typed loosely: capitals and spaces instead of hyphens.
    response = post_code(client, RECOVERY, codes[3].upper().replace("-", " "))
    assert response.headers["Location"] == "/"
    assert "You have 9 left" in get_page(client, "/staff").get_text()
    used = events(session, "mfa_recovery_code_used")
    assert [(e.actor_user_id, e.detail) for e in used] == [(new_staff.id, "9 recovery codes left")]
    sign_out(client)

    password_step(client, new_staff)
    response = post_code(client, RECOVERY, codes[3])
    assert error_for(parse(response), "code").startswith("The code is not right")
    assert not is_signed_in(client)
    assert post_code(client, RECOVERY, codes[4]).status_code == 302
    assert is_signed_in(client)


def test_five_wrong_codes_end_the_pending_sign_in(app, session):
    user = factories.create_staff(session)
    client = app.test_client()
    password_step(client, user)
    cookie_while_pending = client.get_cookie("session").value
    bad = wrong_code(user.totp_secret)
    for tries_left in (4, 3, 2, 1):
        response = post_code(client, CODE, bad)
        expected = f"{tries_left} more {'try' if tries_left == 1 else 'tries'}"
        assert expected in error_for(parse(response), "code")
    response = post_code(client, CODE, bad)
    assert response.headers["Location"] == "/sign-in"
    page = get_page(client, "/sign-in")
    assert "You entered a wrong code too many times" in page.get_text()

    # The right code no longer helps, not even with the cookie from before the tries.
    assert client.get(CODE).headers["Location"] == "/sign-in"
    client.set_cookie("session", cookie_while_pending)
    page = get_page(client, "/sign-in")  # any page, for a CSRF token of this session
    response = client.post(CODE, data={"code": code_at(user.totp_secret, now_step()),
                                       "csrf_token": csrf_token(page)})
    assert response.headers["Location"] == "/sign-in"
    assert not is_signed_in(client)
    assert len(events(session, "mfa_failed")) == 5
    ended = events(session, "mfa_sign_in_ended")
    assert [(e.actor_user_id, e.detail) for e in ended] == [(user.id, "too many wrong codes")]

    # Signing in again, password first, gives a fresh set of tries.
    assert sign_in(client, user.email).headers["Location"] == "/"
    assert is_signed_in(client)


def test_signing_in_again_and_again_to_guess_codes_locks_the_account(app, session):
    """Each pending sign-in gives five tries: whoever had the password could once go on guessing codes for ever."""
    user = factories.create_staff(session)
    client = app.test_client()
    bad = wrong_code(user.totp_secret)
    for _ in range(User.FREE_FAILED_SIGN_INS):
        assert password_step(client, user).headers["Location"] == CODE
        for _ in range(mfa.MAX_FAILED_ATTEMPTS):
            response = post_code(client, CODE, bad)
        assert response.headers["Location"] == "/sign-in"
    assert "Wait a minute, then sign in again." in get_page(client, "/sign-in").get_text()
    refused = password_step(client, user)
    assert refused.status_code == 200
    assert error_for(parse(refused), "password") == "Your email address, mobile number or password is not right"
    [locked] = events(session, "account_locked")
    assert (locked.actor_user_id, locked.detail) == (
        user.id, f"account {user.id}: locked for 1 min after 5 failed sign-ins, the last ended by wrong codes")
    # The lock ends by itself, and the right code then clears the count.
    session.execute(update(User).where(User.id == user.id).values(locked_until=utcnow()))
    session.commit()
    assert sign_in(client, user.email).headers["Location"] == "/"
    session.expire_all()
    assert session.get(User, user.id).failed_sign_ins == 0


def test_typing_the_password_alone_does_not_clear_wrong_codes(app, session):
    user = factories.create_staff(session)
    client = app.test_client()
    password_step(client, user)
    for _ in range(mfa.MAX_FAILED_ATTEMPTS):
        post_code(client, CODE, wrong_code(user.totp_secret))
    password_step(app.test_client(), user)
    session.expire_all()
    assert session.get(User, user.id).failed_sign_ins == 1
    assert session.get(User, user.id).last_sign_in_at is None


def test_the_pending_sign_in_expires_after_five_minutes(app, session):
    user = factories.create_staff(session)
    client = app.test_client()
    password_step(client, user)
    factor = factor_of(session, user)
    factor.challenge_started_at = utcnow() - mfa.SIGN_IN_LIFETIME - dt.timedelta(seconds=1)
    session.commit()
    token = csrf_token(get_page(client, "/sign-in"))
    response = client.post(CODE, data={"code": code_at(user.totp_secret, now_step()), "csrf_token": token})
    assert response.headers["Location"] == "/sign-in"
    assert "You took too long" in get_page(client, "/sign-in").get_text()
    assert not is_signed_in(client)
    assert [e.detail for e in events(session, "mfa_sign_in_ended")] == ["took too long"]
    assert factor_of(session, user).challenge_hash is None


def test_a_code_typed_just_before_the_pending_sign_in_expires_still_works(app, session):
    user = factories.create_staff(session)
    client = app.test_client()
    password_step(client, user)
    factor = factor_of(session, user)
    factor.challenge_started_at = utcnow() - mfa.SIGN_IN_LIFETIME + dt.timedelta(seconds=20)
    session.commit()
    assert post_code(client, CODE, code_at(user.totp_secret, now_step())).headers["Location"] == "/"


def test_admin_reset_ends_sessions_and_the_password_and_issues_a_set_up_link(app, session):
    admin = factories.create_staff(session, role=Role.ADMIN, display_name="Ada Admin")
    target = factories.create_staff(session, role=Role.RECEPTION, display_name="Rita Reception")
    target_client, admin_client = app.test_client(), app.test_client()
    sign_in(target_client, target.email)
    sign_in(admin_client, admin.email)
    assert is_signed_in(target_client)

    assert get_page(admin_client, "/staff").find("a", href="/staff/admin")
    assert get_page(admin_client, "/staff/admin").find("a", href=ACCOUNTS)
    page = get_page(admin_client, ACCOUNTS)
    row = next(tr for tr in page.select("tbody tr") if "Rita Reception" in tr.get_text())
    assert "Set up" in row.get_text()
    account = row.find("a")["href"]
    assert account == f"{ACCOUNTS}/{target.id}"
    page = get_page(admin_client, account)
    form = page.find("form", action=f"{ACCOUNTS}/{target.id}/reset-second-factor")
    assert form.button.get_text(" ", strip=True) == "Reset second factor"

    response = admin_client.post(form["action"], data={"csrf_token": csrf_token(page)})
    assert response.status_code == 200
    shown = parse(response)
    assert "The second factor of Rita Reception is reset" in shown.select_one(".nhsuk-notification-banner").get_text()
    link = re.search(r"/activate/staff/[A-Za-z0-9_-]+", shown.select_one("#set-up-link").get_text()).group(0)
    page = get_page(admin_client, account)
    assert "Authenticator app Not set up" in page.get_text(" ", strip=True)
    assert "Waiting for set-up" in page.get_text()

    assert factor_of(session, target) is None
    assert session.scalars(select(RecoveryCode).where(RecoveryCode.user_id == target.id)).first() is None
    assert not is_signed_in(target_client)
    assert is_signed_in(admin_client)
    reset = events(session, "mfa_reset")
    assert [(e.actor_user_id, e.actor_role, e.detail) for e in reset] == [(admin.id, "admin", f"user {target.id}")]
    assert [e.detail for e in events(session, "staff_set_up_link_issued")] == [f"account {target.id}"]

    # Their old password no longer leads anywhere: whoever has it cannot enrol an app of their own.
    response = password_step(target_client, target)
    assert response.status_code == 200
    assert target_client.get(ENROL).headers["Location"] == "/sign-in"
    assert factor_of(session, target) is None
    # The set-up link does: a new password, then a new app.
    page = get_page(target_client, link)
    target_client.post(link, data={"password": "orange harbour lantern", "confirm_password": "orange harbour lantern",
                                   "csrf_token": csrf_token(page)})
    get_page(target_client, ENROL)
    secret = factor_of(session, target).secret
    assert secret != target.totp_secret
    assert post_code(target_client, ENROL, code_at(secret, now_step())).status_code == 200
    assert is_signed_in(target_client)


def test_a_pending_sign_in_ends_when_an_admin_resets_the_factor(app, session):
    admin = factories.create_staff(session, role=Role.ADMIN)
    target = factories.create_staff(session)
    target_client, admin_client = app.test_client(), app.test_client()
    password_step(target_client, target)
    sign_in(admin_client, admin.email)
    page = get_page(admin_client, ACCOUNTS)
    admin_client.post(f"{ACCOUNTS}/{target.id}/reset-second-factor", data={"csrf_token": csrf_token(page)})
    token = csrf_token(get_page(target_client, "/sign-in"))
    response = target_client.post(CODE, data={"code": code_at(target.totp_secret, now_step()), "csrf_token": token})
    assert response.headers["Location"] == "/sign-in"
    assert not is_signed_in(target_client)


@pytest.mark.parametrize("role", [Role.RECEPTION, Role.FACILITATOR])
def test_only_admins_can_reset_a_second_factor(app, session, role):
    target = factories.create_staff(session)
    user = factories.create_staff(session, role=role)
    client = app.test_client()
    sign_in(client, user.email)
    get_page(client, ACCOUNTS, status=403)
    token = csrf_token(get_page(client, "/staff"))
    response = client.post(f"{ACCOUNTS}/{target.id}/reset-second-factor", data={"csrf_token": token})
    assert response.status_code == 403
    assert factor_of(session, target) is not None
    assert get_page(client, "/staff").find("a", href="/staff/admin") is None


def test_patients_cannot_reset_and_anonymous_visitors_sign_in(patient_client, client, session):
    target = factories.create_staff(session)
    get_page(patient_client, ACCOUNTS, status=403)
    token = csrf_token(get_page(patient_client, "/"))
    assert patient_client.post(f"{ACCOUNTS}/{target.id}/reset-second-factor",
                               data={"csrf_token": token}).status_code == 403
    assert client.get(ACCOUNTS).headers["Location"].startswith("/sign-in")
    assert factor_of(session, target) is not None


def test_a_reset_needs_the_csrf_token(app, session):
    admin = factories.create_staff(session, role=Role.ADMIN)
    target = factories.create_staff(session)
    client = app.test_client()
    sign_in(client, admin.email)
    assert client.post(f"{ACCOUNTS}/{target.id}/reset-second-factor").status_code == 400
    assert factor_of(session, target) is not None


def test_patients_accounts_cannot_be_reset(app, session):
    admin = factories.create_staff(session, role=Role.ADMIN)
    patient = factories.create_patient_user(session)
    client = app.test_client()
    sign_in(client, admin.email)
    page = get_page(client, ACCOUNTS)
    assert patient.patient.full_name not in page.get_text()
    response = client.post(f"{ACCOUNTS}/{patient.id}/reset-second-factor", data={"csrf_token": csrf_token(page)})
    assert response.status_code == 404


def test_a_staff_session_that_skipped_the_second_step_ends(app, session):
    user = factories.create_staff(session)
    client = app.test_client()
    sign_in(client, user.email)
    assert is_signed_in(client)
    with client.session_transaction() as cookie:
        # As if another path had started the session (or it began before staff had a second factor).
        del cookie["second_factor_user"]
    assert client.get("/staff/patients").headers["Location"] == "/sign-in"
    assert "Sign in to continue." in get_page(client, "/sign-in").get_text()
    assert client.get("/staff").headers["Location"].startswith("/sign-in")


def test_patients_never_see_the_second_step(app, session):
    user = factories.create_patient_user(session)
    client = app.test_client()
    response = sign_in(client, user.patient.mobile)
    assert response.headers["Location"] == "/"
    assert get_page(client, "/").h1.get_text(strip=True).startswith("Hello")
    assert session.scalars(select(StaffSecondFactor)).first() is None
    assert not [e for e in events(session) if e.action.startswith("mfa_")]


@pytest.mark.parametrize("url", [ENROL, CODE, RECOVERY])
def test_second_step_pages_without_a_password_first_go_to_sign_in(client, url):
    assert client.get(url).headers["Location"] == "/sign-in"
    token = csrf_token(get_page(client, "/sign-in"))
    assert client.post(url, data={"code": "123456", "csrf_token": token}).headers["Location"] == "/sign-in"
