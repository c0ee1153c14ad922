import datetime as dt

import pytest
from sqlalchemy import select

from portal.auth.models import Role
from portal.db import utcnow
from tests import factories
from tests.conftest import sign_in
from tests.pages import check_page, csrf_token, error_for, get_page, parse


def test_patient_signs_in_with_mobile_in_any_format(app, session):
    user = factories.create_patient_user(session, mobile="+447700900321")
    # The last two in Arabic-Indic and full-width digits, as a phone set to Arabic or a full-width keyboard types.
    arabic_indic = "".join(chr(0x0660 + int(ch)) if ch.isdigit() else ch for ch in "07700 900321")
    full_width = "".join(chr(0xFF10 + int(ch)) for ch in "07700900321")
    for typed in ("07700 900321", "+44 7700 900 321", "07700900321", arabic_indic, full_width):
        client = app.test_client()
        response = sign_in(client, typed)
        assert response.status_code == 302, typed
        assert get_page(client, "/").h1.get_text(strip=True) == f"Hello {user.patient.given_name}"


def test_a_patient_signs_in_with_the_email_on_their_record(app, session):
    user = factories.create_patient_user(session, email="pat.sign-in@example.com")
    client = app.test_client()
    assert sign_in(client, "Pat.Sign-In@Example.com").status_code == 302
    assert get_page(client, "/").h1.get_text(strip=True) == f"Hello {user.patient.given_name}"


def test_patients_sharing_a_mobile_each_sign_in_with_what_is_theirs(app, session):
    """One family phone: the first registered, with no email, signs in with the mobile; the other with their email.
    The mobile never opens the other account: its own password is still checked."""
    first = factories.create_patient_user(session, mobile="+447700900777", given_name="Alma",
                                          password="first-patient-pass-1")
    second = factories.create_patient_user(session, mobile="+447700900777", given_name="Bea",
                                           email="second@example.com", password="second-patient-pass-2")
    for identifier, password, user in (("07700 900777", "first-patient-pass-1", first),
                                       ("second@example.com", "second-patient-pass-2", second)):
        client = app.test_client()
        assert sign_in(client, identifier, password).status_code == 302, identifier
        assert get_page(client, "/").h1.get_text(strip=True) == f"Hello {user.patient.given_name}"
    assert sign_in(app.test_client(), "07700 900777", "second-patient-pass-2").status_code == 200


def test_an_email_on_two_patients_records_signs_in_neither(app, session):
    factories.create_patient_user(session, email="family@example.com")
    factories.create_patient_user(session, email="family@example.com")
    assert sign_in(app.test_client(), "family@example.com").status_code == 200


def test_staff_sign_in_with_email_case_insensitively(app, session):
    staff = factories.create_staff(session, role=Role.RECEPTION, email="rita@test.nhs.uk")
    client = app.test_client()
    assert sign_in(client, "Rita@Test.NHS.uk").status_code == 302
    assert client.get("/").headers["Location"] == "/staff"
    assert staff.display_name in get_page(client, "/staff").get_text()


def test_unknown_account_and_wrong_password_get_the_same_answer(app, session):
    user = factories.create_staff(session, email="known@test.nhs.uk")
    wrong_password = parse(sign_in(app.test_client(), user.email, "not the password"))
    unknown = parse(sign_in(app.test_client(), "nobody@test.nhs.uk", "not the password"))
    unknown_mobile = parse(sign_in(app.test_client(), "07700 900999", "not the password"))
    messages = {error_for(page, "password") for page in (wrong_password, unknown, unknown_mobile)}
    assert messages == {"Your email address, mobile number or password is not right"}


def test_deactivated_accounts_cannot_sign_in(app, session):
    user = factories.create_staff(session)
    user.is_active = False
    session.commit()
    assert sign_in(app.test_client(), user.email).status_code == 200


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/bookings", "/bookings"),
        ("https://evil.example/", "/"),
        ("//evil.example/x", "/"),
        ("javascript:alert(1)", "/"),
        ("/%5Cevil.example/x", "/"),  # /\evil.example: browsers read the backslash as a slash
        ("/%0Ax", "/"),  # a line break cannot go in a header: this once answered 500 after signing in
        ("/%0D%0ALocation:%20http://evil.example", "/"),
        ("/bookings%20x", "/"),
        # Letters beyond ASCII are kept, percent-encoded: a search for "Zoë", a path with them.
        ("/bookings?q=Zo%C3%AB", "/bookings?q=Zo%C3%AB"),
        ("/caf%C3%A9", "/caf%C3%A9"),
        # ...but never as a way off the site: look-alikes of a slash stay letters in a path,
        ("/%EF%BC%8F%EF%BC%8Fevil.example", "/%EF%BC%8F%EF%BC%8Fevil.example"),
        ("/%E2%88%95evil.example", "/%E2%88%95evil.example"),
        ("%EF%BC%8F%EF%BC%8Fevil.example", "/"),
        ("%EF%BC%8Fevil.example", "/"),
        ("https://%C3%A9vil.example/", "/"),
        ("//%C3%A9vil.example/", "/"),
        # and invisible or spacing characters are refused, as control characters are.
        ("/%E2%80%AEevil", "/"),  # right-to-left override
        ("/%E2%80%8Bx", "/"),  # zero-width space
        ("/%C2%A0x", "/"),  # no-break space
        ("/%E3%80%80x", "/"),  # ideographic space
        # Too long once encoded for the session cookie that carries staff through their second step.
        ("/" + "%C3%A9" * 400, "/"),
    ],
)
def test_next_only_redirects_within_the_site(app, session, target, expected):
    user = factories.create_patient_user(session)
    client = app.test_client()
    page = get_page(client, "/sign-in")
    response = client.post(f"/sign-in?next={target}", data={
        "identifier": user.patient.mobile, "password": factories.PASSWORD, "csrf_token": csrf_token(page)})
    assert response.headers["Location"] == expected


def test_a_page_asked_for_before_signing_in_is_reached_after_it_with_letters_beyond_ascii(app, session):
    """Flask-Login names the page asked for with its letters decoded ("/bookings?q=Zoë"): once dropped as not ASCII."""
    user = factories.create_patient_user(session)
    client = app.test_client()
    sign_in_page = client.get("/bookings?q=Zo%C3%AB").headers["Location"]
    page = get_page(client, sign_in_page)
    response = client.post(sign_in_page, data={
        "identifier": user.patient.mobile, "password": factories.PASSWORD, "csrf_token": csrf_token(page)})
    assert response.headers["Location"] == "/bookings?q=Zo%C3%AB"


def test_sign_out_ends_the_session(patient_client):
    page = get_page(patient_client, "/")
    response = patient_client.post("/sign-out", data={"csrf_token": csrf_token(page)})
    assert response.status_code == 302
    assert patient_client.get("/bookings").status_code == 302  # back to sign-in


def test_a_sign_out_button_from_an_earlier_session_says_who_is_still_signed_in(app, session):
    """A tab left open on a shared phone: its button carries the token of a session that has ended since. It once
    answered "This form has expired" and left the person now signed in as they were, without saying so."""
    first, second = factories.create_patient_user(session), factories.create_patient_user(session)
    client = app.test_client()
    sign_in(client, first.patient.mobile)
    left_open = csrf_token(get_page(client, "/"))
    client.post("/sign-out", data={"csrf_token": left_open})
    sign_in(client, second.patient.mobile)

    response = client.post("/sign-out", data={"csrf_token": left_open})
    assert response.status_code == 200
    page = parse(response)
    check_page(page)
    assert page.h1.get_text(strip=True) == "You are still signed in"
    assert f"You are signed in as {second.display_name}" in page.get_text()
    form = page.select_one("main form[action='/sign-out']")
    assert client.get("/profile").status_code == 200
    client.post("/sign-out", data={"csrf_token": form.find("input", attrs={"name": "csrf_token"})["value"]})
    assert client.get("/profile").status_code == 302


def test_a_sign_out_without_its_token_signs_nobody_out(patient_client):
    assert patient_client.post("/sign-out").status_code == 200
    assert patient_client.get("/profile").status_code == 200


def test_a_copy_of_the_cookie_taken_before_signing_out_signs_nobody_in(app, session):
    """The session is a signed cookie: signing out must end it on the server too, not only in this browser.
    Another device's session of the same person carries on."""
    user = factories.create_patient_user(session)
    phone, laptop = app.test_client(), app.test_client()
    sign_in(phone, user.patient.mobile)
    sign_in(laptop, user.patient.mobile)
    cookie_name = app.config["SESSION_COOKIE_NAME"]
    copied = phone.get_cookie(cookie_name).value
    signed_out = phone.post("/sign-out", data={"csrf_token": csrf_token(get_page(phone, "/"))})
    assert signed_out.status_code == 302
    thief = app.test_client()
    thief.set_cookie(cookie_name, copied)
    replayed = thief.get("/profile")
    assert replayed.status_code == 302 and "/sign-in" in replayed.headers["Location"]
    assert laptop.get("/profile").status_code == 200


def test_ended_session_keys_are_forgotten_once_their_cookies_have_expired(app, session):
    from portal.auth.models import EndedSession
    from portal.auth.sessions import ABSOLUTE_LIMIT

    session.add(EndedSession(key="old", ended_at=utcnow() - ABSOLUTE_LIMIT - dt.timedelta(minutes=1)))
    session.add(EndedSession(key="recent", ended_at=utcnow() - ABSOLUTE_LIMIT + dt.timedelta(minutes=5)))
    session.commit()
    client = app.test_client()
    sign_in(client, factories.create_patient_user(session).patient.mobile)
    client.post("/sign-out", data={"csrf_token": csrf_token(get_page(client, "/"))})
    session.expire_all()
    keys = set(session.scalars(select(EndedSession.key)))
    assert "old" not in keys and "recent" in keys and len(keys) == 2


def test_a_new_session_version_ends_other_sessions(app, session):
    user = factories.create_patient_user(session)
    phone, laptop = app.test_client(), app.test_client()
    sign_in(phone, user.patient.mobile)
    sign_in(laptop, user.patient.mobile)
    user.end_all_sessions()
    session.commit()
    for client in (phone, laptop):
        response = client.get("/bookings")
        assert response.status_code == 302 and response.headers["Location"].startswith("/sign-in")


def test_a_session_cookie_from_before_sign_in_is_not_reused(app, session):
    user = factories.create_patient_user(session)
    client = app.test_client()
    with client.session_transaction() as before:
        before["planted"] = "by an attacker"
    sign_in(client, user.patient.mobile)
    with client.session_transaction() as after:
        assert "planted" not in after


def test_signed_in_pages_are_not_cached(patient_client):
    assert patient_client.get("/").headers["Cache-Control"] == "no-store"


def test_pages_before_signing_in_are_not_cached_either(app, session):
    """A shared computer's cache or Back button must not give the next person a new staff member's name or the key
    of their authenticator app: both are shown before anyone is signed in."""
    from portal.auth import staff_accounts

    admin = factories.create_staff(session, role=Role.ADMIN)
    link = staff_accounts.invite_staff(session, email="new.starter@test.nhs.uk", display_name="New Starter",
                                       role=Role.CLINICIAN, invited_by=admin, valid_days=7, now=utcnow())
    session.commit()
    client = app.test_client()
    set_up = client.get(f"/activate/staff/{link.token}")
    assert "new.starter@test.nhs.uk" in set_up.get_data(as_text=True)
    newcomer = factories.create_staff(session, enrolled=False)
    page = get_page(client, "/sign-in")
    assert client.post("/sign-in", data={"identifier": newcomer.email, "password": factories.PASSWORD,
                                         "csrf_token": csrf_token(page)}).headers["Location"] == "/sign-in/set-up-app"
    key = client.get("/sign-in/set-up-app")
    assert key.status_code == 200 and 'id="setup-key"' in key.get_data(as_text=True)
    for response in (set_up, key, app.test_client().get("/sign-in")):
        assert response.headers["Cache-Control"] == "no-store"


def test_security_headers(client):
    response = client.get("/sign-in")
    csp = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert "script-src 'self';" in csp and "nonce" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert {"camera=()", "microphone=()", "geolocation=()"} <= set(
        response.headers["Permissions-Policy"].replace(" ", "").split(","))
    assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"


def test_static_files_carry_headers_of_their_own(client):
    """WhiteNoise serves them before Flask, so Talisman never sees them."""
    response = client.get("/static/dist/images/favicon.svg")
    response.close()
    assert response.status_code == 200
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "script-src 'none'" in response.headers["Content-Security-Policy"]
    assert "Access-Control-Allow-Origin" not in response.headers


def test_an_anonymous_post_sends_no_cookie_deletion(client):
    """A session holding only a form's token is no sign-in: Flask-Login asked for a "remember me" cookie, which
    the portal never sets, to be deleted, and scanners flag the unflagged header."""
    page = get_page(client, "/sign-in")
    response = client.post("/sign-in", data={"identifier": "07700 900999", "password": "wrong-password",
                                             "csrf_token": csrf_token(page)})
    assert response.status_code == 200
    assert not [c for c in response.headers.getlist("Set-Cookie") if c.startswith("remember_token")]


def test_no_template_has_an_inline_script():
    # The CSP allows scripts from the portal's own files only ('self', no nonce): an inline one would not run.
    import re
    from pathlib import Path

    import portal

    templates = Path(portal.__file__).parent / "templates"
    inline = [path.name for path in templates.rglob("*.html")
              if re.search(r"<script(?![^>]*\bsrc=)", path.read_text(encoding="utf-8"), re.IGNORECASE)]
    assert inline == []


def test_session_cookie_is_httponly_and_lax(app, session):
    user = factories.create_patient_user(session)
    response = sign_in(app.test_client(), user.patient.mobile)
    cookie = response.headers.get("Set-Cookie")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
