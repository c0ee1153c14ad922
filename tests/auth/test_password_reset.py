"""Forgotten password: a code by text, then a new password. The first step answers the same for every
account, known or not; the code is single-use, lasts 10 minutes and allows 5 tries."""

import datetime as dt
import re
import time

import pytest
from sqlalchemy import func, select, update

from portal.audit.models import AuditEvent
from portal.auth import routes as auth_routes
from portal.auth.models import OneTimeCode, Role, User
from portal.db import utcnow
from portal.messaging.models import SmsMessage
from tests import factories
from tests.conftest import sign_in
from tests.pages import csrf_token, error_for, get_page, parse

NEW_PASSWORD = "violet harbour lantern"
SENT = "If the details match an account, we have sent a 6-digit code by text to its mobile number."
CODE_REFUSED = "The code is not right, or it has expired. Check the text, or ask for a new code"


@pytest.fixture(autouse=True)
def _quick_answers(app, monkeypatch):
    # The first step waits to a fixed time so that timing cannot tell accounts apart; tests need not.
    monkeypatch.setitem(app.config, "PASSWORD_RESET_ANSWER_SECONDS", 0)


def _ask(client, identifier):
    page = get_page(client, "/forgot-password")
    return client.post("/forgot-password", data={"identifier": identifier, "csrf_token": csrf_token(page)})


def _texted_code(session, user) -> str:
    body = session.scalars(
        select(SmsMessage.body).where(SmsMessage.patient_id == user.patient_id, SmsMessage.kind == "password_reset")
        .order_by(SmsMessage.id.desc())
    ).first()
    return re.search(r"\b(\d{6})\b", body).group(1)


def _enter_code(client, code):
    page = get_page(client, "/forgot-password/code")
    return client.post("/forgot-password/code", data={"code": code, "csrf_token": csrf_token(page)})


def _choose(client, password=NEW_PASSWORD, confirm=None):
    page = get_page(client, "/forgot-password/new-password")
    return client.post("/forgot-password/new-password", data={
        "password": password, "confirm_password": confirm if confirm is not None else password,
        "csrf_token": csrf_token(page)})


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def test_the_whole_reset_signs_the_person_in_and_ends_their_other_sessions(app, session):
    user = factories.create_patient_user(session)
    elsewhere = app.test_client()
    assert sign_in(elsewhere, user.patient.mobile).status_code == 302
    client = app.test_client()

    response = _ask(client, "07700 " + user.patient.mobile[-6:-3] + " " + user.patient.mobile[-3:])
    assert response.headers["Location"] == "/forgot-password/code"
    assert SENT in get_page(client, "/forgot-password/code").get_text(" ", strip=True)
    text = session.scalars(select(SmsMessage).where(SmsMessage.kind == "password_reset")).one()
    assert text.to_number == user.patient.mobile
    code = _texted_code(session, user)
    assert text.body == f"NHS: your code to reset your password is {code}. It works for 10 minutes. Do not share it."

    assert _enter_code(client, code).headers["Location"] == "/forgot-password/new-password"
    response = _choose(client)
    assert response.headers["Location"] == "/"
    home = get_page(client, "/")
    assert home.h1.get_text(strip=True) == f"Hello {user.patient.given_name}"
    assert "Your password has been changed. You are signed in." in home.get_text()

    assert elsewhere.get("/bookings").headers["Location"].startswith("/sign-in")
    assert sign_in(app.test_client(), user.patient.mobile, NEW_PASSWORD).status_code == 302
    assert sign_in(app.test_client(), user.patient.mobile).status_code == 200


def test_a_patient_may_ask_with_the_email_on_their_record(app, session):
    user = factories.create_patient_user(session, email="pat.reset@example.com")
    client = app.test_client()
    _ask(client, "Pat.Reset@Example.com")
    assert _enter_code(client, _texted_code(session, user)).headers["Location"] == "/forgot-password/new-password"


def test_an_email_on_two_records_identifies_neither(app, session):
    factories.create_patient_user(session, email="shared@example.com")
    factories.create_patient_user(session, email="shared@example.com")
    _ask(app.test_client(), "shared@example.com")
    assert session.scalar(select(func.count()).select_from(SmsMessage)) == 0


def test_a_reset_lifts_a_lock(app, session):
    user = factories.create_patient_user(session)
    for _ in range(5):
        sign_in(app.test_client(), user.patient.mobile, "wrong guess")
    client = app.test_client()
    _ask(client, user.patient.mobile)
    _enter_code(client, _texted_code(session, user))
    _choose(client)
    session.expire_all()
    reloaded = session.get(User, user.id)
    assert (reloaded.failed_sign_ins, reloaded.locked_until) == (0, None)


def test_every_step_is_audited_without_codes_or_passwords(app, session):
    user = factories.create_patient_user(session)
    client = app.test_client()
    _ask(client, user.patient.mobile)
    code = _texted_code(session, user)
    _enter_code(client, _wrong(code))
    _enter_code(client, code)
    _choose(client)
    events = session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
    assert [(e.action, e.patient_id) for e in events] == [
        ("password_reset_requested", user.patient_id),
        ("password_reset_code_rejected", user.patient_id),
        ("password_reset_code_accepted", user.patient_id),
        ("password_reset_completed", user.patient_id),
    ]
    assert events[-1].actor_user_id == user.id
    dump = " ".join(f"{e.action} {e.detail}" for e in events)
    assert code not in dump and _wrong(code) not in dump and "violet" not in dump


def test_five_wrong_codes_use_the_code_up(app, session):
    user = factories.create_patient_user(session)
    client = app.test_client()
    _ask(client, user.patient.mobile)
    code = _texted_code(session, user)
    for _ in range(5):
        response = _enter_code(client, _wrong(code))
        assert response.status_code == 200
        assert error_for(parse(response), "code") == CODE_REFUSED
    response = _enter_code(client, code)
    assert error_for(parse(response), "code") == CODE_REFUSED
    assert client.get("/forgot-password/new-password").headers["Location"] == "/forgot-password"


def test_an_expired_code_is_refused(app, session):
    user = factories.create_patient_user(session)
    client = app.test_client()
    _ask(client, user.patient.mobile)
    session.execute(update(OneTimeCode).values(expires_at=utcnow() - dt.timedelta(seconds=1)))
    session.commit()
    response = _enter_code(client, _texted_code(session, user))
    assert error_for(parse(response), "code") == CODE_REFUSED


def test_a_code_works_only_once(app, session):
    user = factories.create_patient_user(session)
    client = app.test_client()
    _ask(client, user.patient.mobile)
    code = _texted_code(session, user)
    assert _enter_code(client, code).status_code == 302
    with client.session_transaction() as stored:
        stored[auth_routes.RESET_ASKED] = user.patient.mobile
        del stored[auth_routes.RESET_PROVEN]
    response = _enter_code(client, code)
    assert error_for(parse(response), "code") == CODE_REFUSED


def test_a_new_code_replaces_the_old_one(app, session):
    user = factories.create_patient_user(session)
    client = app.test_client()
    _ask(client, user.patient.mobile)
    old = _texted_code(session, user)
    _ask(client, user.patient.mobile)
    new = _texted_code(session, user)
    if old != new:
        assert error_for(parse(_enter_code(client, old)), "code") == CODE_REFUSED
    assert _enter_code(client, new).status_code == 302


def test_the_new_password_page_needs_a_proven_code(app, session):
    client = app.test_client()
    response = client.get("/forgot-password/new-password")
    assert response.headers["Location"] == "/forgot-password"
    assert "Ask for a new code" in get_page(client, "/forgot-password").get_text()
    # The code page needs the first step.
    assert client.get("/forgot-password/code").headers["Location"] == "/forgot-password"


def test_the_proof_lasts_ten_minutes(app, session):
    user = factories.create_patient_user(session)
    client = app.test_client()
    _ask(client, user.patient.mobile)
    _enter_code(client, _texted_code(session, user))
    with client.session_transaction() as stored:
        stored[auth_routes.RESET_PROVEN] = {**stored[auth_routes.RESET_PROVEN], "at": int(time.time()) - 601}
    assert client.get("/forgot-password/new-password").headers["Location"] == "/forgot-password"


def test_a_password_changed_meanwhile_voids_the_proof(app, session):
    user = factories.create_patient_user(session)
    client = app.test_client()
    _ask(client, user.patient.mobile)
    _enter_code(client, _texted_code(session, user))
    session.get(User, user.id).end_all_sessions()
    session.commit()
    assert client.get("/forgot-password/new-password").headers["Location"] == "/forgot-password"


@pytest.mark.parametrize(
    ("password", "confirm", "field", "message"),
    [
        ("iloveyou2", None, "password", "Lots of people use this password. Try 3 or more random words"),
        ("aaaaaaaaaaaa", None, "password", 'Repeats like "aaa" are easy to guess.'),
        ("short", None, "password", "8 characters or more"),
        (NEW_PASSWORD, "something else", "confirm_password", "The passwords do not match"),
    ],
)
def test_a_bad_new_password_is_shown_next_to_the_field(app, session, password, confirm, field, message):
    user = factories.create_patient_user(session)
    client = app.test_client()
    _ask(client, user.patient.mobile)
    _enter_code(client, _texted_code(session, user))
    response = _choose(client, password, confirm)
    assert response.status_code == 200
    assert message in error_for(parse(response), field)
    # Still allowed to try again.
    assert _choose(client).headers["Location"] == "/"


@pytest.mark.parametrize("code", ["", "12345", "1234567", "abcdef", "12 34 5x"])
def test_a_code_that_is_not_six_digits_is_shown_next_to_the_field(app, session, code):
    user = factories.create_patient_user(session)
    client = app.test_client()
    _ask(client, user.patient.mobile)
    response = _enter_code(client, code)
    assert response.status_code == 200
    assert error_for(parse(response), "code")
    assert session.scalars(select(OneTimeCode.tries)).one() == 0  # a typing slip costs no try


def test_the_code_may_be_typed_with_spaces(app, session):
    user = factories.create_patient_user(session)
    client = app.test_client()
    _ask(client, user.patient.mobile)
    code = _texted_code(session, user)
    assert _enter_code(client, f"{code[:3]} {code[3:]}").status_code == 302


def _answer(client, identifier):
    response = _ask(client, identifier)
    follow = client.get(response.headers["Location"])
    with client.session_transaction() as stored:
        keys = tuple(sorted(stored.keys()))
    return response.status_code, response.headers["Location"], follow.status_code, \
        parse(follow).find("main").get_text(" ", strip=True), keys


def test_the_first_step_answers_the_same_for_every_account(app, session):
    patient = factories.create_patient_user(session)
    staff = factories.create_staff(session, role=Role.RECEPTION)
    no_texts = factories.create_patient_user(session, sms_consent=False)
    answers = {
        typed: _answer(app.test_client(), typed)
        for typed in (patient.patient.mobile, "07911 123456", "nobody@test.nhs.uk", staff.email,
                      no_texts.patient.mobile, "not a phone number")
    }
    assert len(set(answers.values())) == 1, answers
    status, location, follow_status, text, _keys = answers[patient.patient.mobile]
    assert (status, location, follow_status) == (302, "/forgot-password/code", 200)
    assert SENT in text
    # Only the patient who accepts texts was sent one.
    assert session.scalars(select(SmsMessage.patient_id).where(SmsMessage.kind == "password_reset")).all() == [
        patient.patient_id]


def test_the_first_step_takes_the_same_time_for_known_and_unknown_accounts(app, session, monkeypatch):
    monkeypatch.setitem(app.config, "PASSWORD_RESET_ANSWER_SECONDS", 0.3)
    user = factories.create_patient_user(session)
    took = {}
    for typed in (user.patient.mobile, "07911 123458"):
        started = time.monotonic()
        _ask(app.test_client(), typed)
        took[typed] = time.monotonic() - started
    assert all(0.3 <= seconds < 1.5 for seconds in took.values()), took


def test_asking_again_and_again_sends_at_most_three_texts_an_hour(app, session):
    user = factories.create_patient_user(session)
    for _ in range(5):
        assert _ask(app.test_client(), user.patient.mobile).headers["Location"] == "/forgot-password/code"
    count = session.scalar(select(func.count()).select_from(SmsMessage).where(SmsMessage.kind == "password_reset"))
    assert count == 3


def test_a_signed_in_person_is_sent_to_change_password(patient_client):
    assert patient_client.get("/forgot-password").headers["Location"] == "/account/password"


def test_the_sign_in_page_links_to_the_reset(client):
    assert get_page(client, "/sign-in").find("a", href="/forgot-password")


def test_an_empty_identifier_is_shown_next_to_the_field(client):
    response = _ask(client, "")
    assert error_for(parse(response), "identifier") == "Enter your mobile number or email address"


def test_a_staff_account_whose_second_factor_was_reset_cannot_get_a_password_by_text(app, session):
    """After a reset only the set-up link gives the account a password: asking for a code by text with the
    staff email (or a patient's mobile, or anything) reaches no staff account."""
    from portal.auth import staff_accounts

    admin = factories.create_staff(session, role=Role.ADMIN)
    staff = factories.create_staff(session, role=Role.RECEPTION)
    staff_accounts.reset_second_factor(session, staff, by=admin, valid_days=7, now=utcnow())
    session.commit()

    client = app.test_client()
    assert _ask(client, staff.email).headers["Location"] == "/forgot-password/code"
    assert session.scalar(select(func.count()).select_from(OneTimeCode).where(OneTimeCode.user_id == staff.id)) == 0
    assert session.scalar(select(func.count()).select_from(SmsMessage)) == 0
    [asked] = session.scalars(select(AuditEvent).where(AuditEvent.action == "password_reset_requested")).all()
    assert asked.detail == "no matching account"
    for code in ("000000", "123456"):
        assert error_for(parse(_enter_code(client, code)), "code") == CODE_REFUSED
    assert client.get("/forgot-password/new-password").headers["Location"] == "/forgot-password"
    session.expire_all()
    user = session.get(User, staff.id)
    assert user.password_hash == staff_accounts.NO_PASSWORD and user.is_active
