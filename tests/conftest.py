"""Shared fixtures: one migrated database per test run, emptied after every test."""

from __future__ import annotations

import pyotp
import pytest
from sqlalchemy import select, text

from portal import create_app
from portal.auth.mfa import time_step
from portal.auth.models import StaffSecondFactor, User
from portal.cli import upgrade_database
from portal.db import utcnow
from portal.models import metadata
from tests import factories
from tests.fixtures.databases import test_database_url
from tests.pages import csrf_token, get_page

# Any test that forgets the fake Twilio server fails loudly: nothing listens on port 9.
UNUSABLE_TWILIO = "http://127.0.0.1:9"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    with test_database_url(tmp_path_factory.mktemp("db")) as url:
        upgrade_database(url)
        yield url


@pytest.fixture(scope="session")
def app(database_url, tmp_path_factory):
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": database_url,
            "SECRET_KEY": "test-secret-key",
            "PUBLIC_BASE_URL": "https://portal.test",
            "SMS_BACKEND": "twilio",
            "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
            "TWILIO_AUTH_TOKEN": "test-token",
            "TWILIO_FROM": "NHS Appts",
            "TWILIO_API_BASE": UNUSABLE_TWILIO,
            "RATELIMIT_ENABLED": False,
        }
    )
    yield app
    app.extensions["db"].dispose()


@pytest.fixture
def db(app):
    return app.extensions["db"]


@pytest.fixture
def race_db(database_url):
    """A second handle on the test database for racing threads (see tests/races.py)."""
    from tests.races import race_database

    db = race_database(database_url)
    yield db
    db.dispose()


@pytest.fixture
def session(db):
    """The test's own session, for arranging data and checking results between requests.

    On SQLite it runs each statement in its own transaction, as READ COMMITTED does on PostgreSQL: it
    never holds the write lock the app needs, nor an old snapshot that hides what the app wrote.
    Objects it loaded earlier still need ``session.expire_all()`` (or a commit) to be re-read."""
    from sqlalchemy.orm import Session

    s = Session(db.engine.execution_options(sqlite_begin="NONE"))
    yield s
    s.close()


@pytest.fixture(autouse=True)
def _empty_tables(request):
    """After each test, delete every row, so tests can commit, use threads and run real processes."""
    yield
    if "app" not in request.fixturenames and "database_url" not in request.fixturenames:
        return
    app = request.getfixturevalue("app")
    with app.extensions["db"].transaction() as s:
        for table in reversed(metadata.sorted_tables):
            s.execute(table.delete())
        if s.get_bind().dialect.name == "postgresql":
            s.execute(text("SELECT 1"))


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def domain(app):
    return app.extensions["domain"]


def sign_in(client, identifier: str, password: str = factories.PASSWORD):
    """Sign in as a person would. Staff then type the code their authenticator app shows (see
    ``factories.create_staff``); the response returned is that of the last step."""
    page = get_page(client, "/sign-in")
    response = client.post(
        "/sign-in", data={"identifier": identifier, "password": password, "csrf_token": csrf_token(page)}
    )
    if response.status_code == 302 and response.headers["Location"] == "/sign-in/code":
        page = get_page(client, "/sign-in/code")
        code = app_code(client.application.extensions["db"], identifier)
        response = client.post("/sign-in/code", data={"code": code, "csrf_token": csrf_token(page)})
    return response


def app_code(db, email: str) -> str:
    """A code this staff member's app shows now that the portal has not accepted yet."""
    with db.transaction() as s:
        factor = s.scalars(
            select(StaffSecondFactor).join(User, User.id == StaffSecondFactor.user_id)
            .where(User.email == email.strip().lower())
        ).one()
        now = time_step(utcnow())
        # The current step, or the next one (also accepted); never the previous one, which could leave the
        # accepted window between here and the request.
        step = max(now, (factor.last_used_step or 0) + 1)
        if step > now + 1:
            # The same person signing in a third time within 30 seconds: no fresh code exists yet, so
            # the test forgets the used one rather than wait.
            factor.last_used_step = None
            step = now
        return pyotp.TOTP(factor.secret).generate_otp(step)


@pytest.fixture
def patient_client(app, session):
    """A test client signed in as a fresh Tier 1 patient; the user is on ``client.user``."""
    user = factories.create_patient_user(session, tier=1)
    c = app.test_client()
    response = sign_in(c, user.patient.mobile)
    assert response.status_code == 302, "sign-in failed"
    c.user = user
    return c


def staff_client(app, session, role):
    """A test client signed in as a fresh staff member of ``role``; the user is on ``client.user``."""
    user = factories.create_staff(session, role=role)
    c = app.test_client()
    assert sign_in(c, user.email).status_code == 302
    c.user = user
    return c


@pytest.fixture
def reception_client(app, session):
    from portal.auth.models import Role

    return staff_client(app, session, Role.RECEPTION)
