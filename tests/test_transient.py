"""A request whose transaction PostgreSQL ends to break a deadlock runs again (portal.transient)."""

from __future__ import annotations

import threading
import time

import psycopg.errors
import pytest
from flask import flash
from flask import session as cookie
from flask_login import current_user, login_required
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError

from portal import create_app
from portal.extensions import db_session
from portal.patients.models import Patient
from tests import factories
from tests.conftest import sign_in
from tests.pages import parse


@pytest.fixture
def make_app(app):
    """A second app on the test database, with routes of the test's own (the shared app has served requests)."""
    made = []

    def make(**routes):
        fresh = create_app({key: app.config[key] for key in (
            "TESTING", "DATABASE_URL", "SECRET_KEY", "PUBLIC_BASE_URL", "SMS_BACKEND", "TWILIO_ACCOUNT_SID",
            "TWILIO_AUTH_TOKEN", "TWILIO_FROM", "TWILIO_API_BASE", "RATELIMIT_ENABLED")})
        for path, view in routes.items():
            fresh.add_url_rule(path, path.strip("/").replace("/", "_"), login_required(view), methods=["GET"])
        made.append(fresh)
        return fresh

    yield make
    for fresh in made:
        fresh.extensions["db"].dispose()


def _lock(s, patient_id: int) -> None:
    s.execute(select(Patient.id).where(Patient.id == patient_id).with_for_update())


def test_the_request_that_loses_a_real_deadlock_runs_again_and_succeeds(db, session, make_app):
    if db.is_sqlite:
        pytest.skip("deadlocks between transactions need two concurrent writers: PostgreSQL (make test-postgres)")
    patient = factories.create_patient_user(session).patient
    first, second = factories.create_patient(session).id, factories.create_patient(session).id
    other_has_first, request_has_second = threading.Event(), threading.Event()
    attempts, other_failed = [], []

    def other_transaction():
        # Takes the first row, then waits for the second, which the request holds: the two wait for each other.
        try:
            with db.transaction() as s:
                s.execute(text("SET LOCAL deadlock_timeout = '10s'"))  # so the request, not this, is ended
                _lock(s, first)
                other_has_first.set()
                request_has_second.wait(10)
                _lock(s, second)
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            other_failed.append(error)

    def view():
        attempts.append(current_user.patient.id)  # the user, loaded afresh in each attempt's session
        s = db_session()
        s.execute(text("SET LOCAL deadlock_timeout = '100ms'"))
        flash(f"attempt {len(attempts)}", "info")
        if len(attempts) == 1:
            other_has_first.wait(10)
            _lock(s, second)
            request_has_second.set()
            time.sleep(0.3)  # the other transaction is now waiting for the second row
        _lock(s, first)
        _lock(s, second)
        return "done"

    client = make_app(**{"/_test/deadlock": view}).test_client()
    assert sign_in(client, patient.mobile).status_code == 302
    other = threading.Thread(target=other_transaction)
    other.start()
    response = client.get("/_test/deadlock")
    other.join(15)

    assert (response.status_code, response.get_data(as_text=True)) == (200, "done")
    assert attempts == [patient.id, patient.id]
    assert other_failed == []
    with client.session_transaction() as kept:
        # The lost attempt's flash went with it.
        assert kept["_flashes"] == [("info", "attempt 2")]


def _deadlock() -> OperationalError:
    return OperationalError("SELECT 1", {}, psycopg.errors.DeadlockDetected("deadlock detected"))


def test_a_request_that_loses_every_attempt_says_nothing_was_saved(session, make_app):
    """What the database answered each time is built here: a deadlock on every attempt cannot be arranged."""
    patient = factories.create_patient_user(session).patient
    attempts = []

    def view():
        attempts.append(1)
        db_session().execute(text("UPDATE patient SET given_name = 'Changed' WHERE id = :id"), {"id": patient.id})
        cookie["lost"] = True
        raise _deadlock()

    client = make_app(**{"/_test/always": view}).test_client()
    assert sign_in(client, patient.mobile).status_code == 302
    response = client.get("/_test/always")

    assert (response.status_code, response.headers["Retry-After"]) == (503, "2")
    page = parse(response)
    assert page.h1.get_text(strip=True) == "Sorry, the service is busy"
    assert "Nothing you entered was saved" in page.get_text()
    assert len(attempts) == 3
    session.expire_all()
    assert session.get(Patient, patient.id).given_name != "Changed"
    with client.session_transaction() as kept:
        assert "lost" not in kept


def test_other_database_errors_are_not_run_again(session, make_app):
    patient = factories.create_patient_user(session).patient
    attempts = []

    def view():
        attempts.append(1)
        raise OperationalError("SELECT 1", {}, Exception("disk full"))

    client = make_app(**{"/_test/broken": view}).test_client()
    assert sign_in(client, patient.mobile).status_code == 302
    response = client.get("/_test/broken")

    assert response.status_code == 500 and len(attempts) == 1
    assert "Sorry, there is a problem with the service" in response.get_data(as_text=True)


def test_a_lost_attempt_adds_nothing_to_messages_already_waiting_to_be_shown(session, make_app):
    patient = factories.create_patient_user(session).patient

    def view():
        flash("from the lost attempt", "info")
        raise _deadlock()

    client = make_app(**{"/_test/flash": view}).test_client()
    assert sign_in(client, patient.mobile).status_code == 302
    with client.session_transaction() as waiting:
        waiting["_flashes"] = [("success", "shown on the next page")]

    response = client.get("/_test/flash")

    assert response.status_code == 503
    page = response.get_data(as_text=True)  # the busy page shows the messages waiting, and only those
    assert "shown on the next page" in page and "from the lost attempt" not in page
