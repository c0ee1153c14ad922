"""The per-account failed sign-in counter: locks of 1, 2, 4 ... minutes after five wrong passwords, with
the same answer as a wrong password or an unknown account, so a lock tells nobody the account exists."""

import datetime as dt

import pytest
from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.auth import services
from portal.auth.models import User
from portal.db import utcnow
from tests import factories
from tests.conftest import sign_in
from tests.pages import error_for, parse

REFUSED = "Your email address, mobile number or password is not right"


def _attempt(session, user, password, now):
    attempt = services.attempt_sign_in(session, user.patient.mobile, password, now=now, allow_drama_range=True)
    session.commit()
    return attempt


def _reload(session, user) -> User:
    session.expire_all()
    return session.get(User, user.id)


def test_five_wrong_passwords_lock_the_account_for_a_minute(session):
    user = factories.create_patient_user(session)
    now = utcnow()
    for n in range(1, 5):
        assert _attempt(session, user, "wrong guess", now).outcome is services.SignInOutcome.WRONG_PASSWORD
        assert (_reload(session, user).failed_sign_ins, _reload(session, user).locked_until) == (n, None)
    fifth = _attempt(session, user, "wrong guess", now)
    assert fifth.locked_for == dt.timedelta(minutes=1)
    assert _reload(session, user).locked_until == now + dt.timedelta(minutes=1)
    # Locked: even the right password is refused until the minute is up.
    assert _attempt(session, user, factories.PASSWORD, now + dt.timedelta(seconds=59)).user is None
    assert _attempt(session, user, factories.PASSWORD, now + dt.timedelta(seconds=61)).user is not None


def test_each_lock_is_twice_as_long_as_the_last_up_to_an_hour(session):
    user = factories.create_patient_user(session)
    now = utcnow()
    for _ in range(4):
        _attempt(session, user, "wrong guess", now)
    locks = []
    for _ in range(9):
        attempt = _attempt(session, user, "wrong guess", now)
        locks.append(int(attempt.locked_for.total_seconds() // 60))
        now = _reload(session, user).locked_until + dt.timedelta(seconds=1)  # the next try after the lock
    assert locks == [1, 2, 4, 8, 16, 32, 60, 60, 60]


def test_tries_during_a_lock_neither_count_nor_lengthen_it(session):
    user = factories.create_patient_user(session)
    now = utcnow()
    for _ in range(5):
        _attempt(session, user, "wrong guess", now)
    locked = _reload(session, user)
    before = (locked.failed_sign_ins, locked.locked_until)
    for seconds in (1, 10, 30):
        attempt = _attempt(session, user, "wrong guess", now + dt.timedelta(seconds=seconds))
        assert attempt.outcome is services.SignInOutcome.LOCKED and attempt.locked_for is None
    after = _reload(session, user)
    assert (after.failed_sign_ins, after.locked_until) == before


def test_a_success_resets_the_count(session):
    user = factories.create_patient_user(session)
    now = utcnow()
    for _ in range(4):
        _attempt(session, user, "wrong guess", now)
    assert _attempt(session, user, factories.PASSWORD, now).user is not None
    assert (_reload(session, user).failed_sign_ins, _reload(session, user).locked_until) == (0, None)
    # Four more wrong ones do not lock: the count started again.
    for _ in range(4):
        _attempt(session, user, "wrong guess", now)
    assert _reload(session, user).locked_until is None


def test_a_locked_account_gets_the_same_answer_as_a_wrong_password_or_an_unknown_account(app, session):
    user = factories.create_patient_user(session)
    for _ in range(5):
        sign_in(app.test_client(), user.patient.mobile, "wrong guess")
    locked_right_password = sign_in(app.test_client(), user.patient.mobile)
    wrong_password = sign_in(app.test_client(), user.patient.mobile, "wrong guess")
    unknown = sign_in(app.test_client(), "07911 123457", "wrong guess")
    responses = (locked_right_password, wrong_password, unknown)
    assert [(r.status_code, error_for(parse(r), "password")) for r in responses] == [(200, REFUSED)] * 3
    # Nothing else on the page differs either (apart from the CSRF token).
    bodies = {parse(r).find("main").get_text(" ", strip=True) for r in responses}
    assert len(bodies) == 1


def test_lockouts_are_audited_with_the_account_and_patient(app, session):
    user = factories.create_patient_user(session)
    for _ in range(6):
        sign_in(app.test_client(), user.patient.mobile, "wrong guess")
    events = session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
    assert [e.action for e in events] == ["sign_in_failed"] * 5 + ["account_locked", "sign_in_failed"]
    assert all(e.patient_id == user.patient_id and e.actor_user_id is None for e in events)
    assert events[-2].detail == f"account {user.id}: locked for 1 min after 5 wrong passwords"
    assert events[-1].detail == f"account {user.id}: account locked"
    assert "wrong guess" not in " ".join(e.detail for e in events)


def test_an_unknown_account_has_no_counter_to_fill(app, session):
    for _ in range(7):
        response = sign_in(app.test_client(), "nobody@test.nhs.uk", "wrong guess")
        assert error_for(parse(response), "password") == REFUSED
    actions = session.scalars(select(AuditEvent.action)).all()
    assert actions == ["sign_in_failed"] * 7


@pytest.mark.parametrize("failures", [5, 6])
def test_the_lock_ends_by_itself(app, session, failures):
    user = factories.create_patient_user(session)
    for _ in range(failures):
        sign_in(app.test_client(), user.patient.mobile, "wrong guess")
    assert sign_in(app.test_client(), user.patient.mobile).status_code == 200
    user = _reload(session, user)
    user.locked_until = utcnow() - dt.timedelta(seconds=1)
    session.commit()
    assert sign_in(app.test_client(), user.patient.mobile).status_code == 302
    assert _reload(session, user).failed_sign_ins == 0


def test_wrong_passwords_sent_at_the_same_moment_all_count(app, database_url, session):
    """The count is one UPDATE ... SET n = n + 1, so racing failures cannot overwrite each other."""
    import threading

    from portal.db import Database

    user = factories.create_patient_user(session)
    mobile = user.patient.mobile  # read here: the test's session must not be used from the threads
    db = Database(database_url) if database_url.startswith("sqlite") else Database(database_url, pool_size=8)
    barrier = threading.Barrier(4)
    errors = []

    def guess():
        try:
            barrier.wait()
            with db.transaction() as s:
                services.attempt_sign_in(s, mobile, "wrong guess", now=utcnow(), allow_drama_range=True)
        except Exception as problem:  # noqa: BLE001 - reported below
            errors.append(problem)

    threads = [threading.Thread(target=guess) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    db.dispose()
    assert errors == []
    assert _reload(session, user).failed_sign_ins == 4
