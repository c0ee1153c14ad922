"""Concurrency: ending sessions from two devices at once. A password change carries its own session over
to the new session version; "sign out everywhere" on another phone at the same moment must still win
over it or lose to it, never leave both believing they did their job.

Each thread runs the service in its own transaction, as a request would (see tests/races.py). Both load
the account before either writes, as two requests already past their sign-in check do.
"""

import threading

from sqlalchemy import select

from portal.auth import services
from portal.auth.models import User
from portal.db import utcnow
from tests import factories
from tests.races import count_together

NEW_PASSWORD = "lantern harbour quietly blue"


def _racers(db, user_id):
    # SQLite's writers start one at a time (BEGIN IMMEDIATE), so there the second cannot load until the first
    # has committed: only PostgreSQL can hold both past their load at once.
    loaded = threading.Barrier(2 if db.engine.dialect.name == "postgresql" else 1)

    def account(s):
        user = s.scalars(select(User).where(User.id == user_id)).one()
        loaded.wait(timeout=30)
        return user

    def change():
        with db.transaction() as s:
            try:
                services.change_password(s, account(s), factories.PASSWORD, NEW_PASSWORD, now=utcnow())
            except services.SessionEnded:
                return "signed out first"
        return "changed"

    def sign_out():
        with db.transaction() as s:
            ended = services.sign_out_everywhere(s, account(s))
        return "already ended" if ended is False else "ended"

    return [change, sign_out]


def test_a_password_change_and_sign_out_everywhere_at_once_end_sessions_once_each(session, race_db):
    user = factories.create_patient_user(session)
    session.commit()
    version = user.session_version
    outcomes = count_together(_racers(race_db, user.id))
    assert set(outcomes) <= {"changed", "signed out first", "ended", "already ended"}, outcomes
    ended = outcomes["changed"] + outcomes["ended"]
    assert ended >= 1, outcomes
    session.expire_all()
    # Each one that says it ended the sessions moved the version on; no two moved it to the same number.
    assert session.get(User, user.id).session_version == version + ended, outcomes
    changed = outcomes["changed"] == 1
    assert services.attempt_sign_in(
        session, user.patient.mobile, NEW_PASSWORD if changed else factories.PASSWORD, now=utcnow(),
        allow_drama_range=True).user is not None


def test_ending_sessions_counts_every_end_even_at_the_same_moment(session, race_db):
    staff = factories.create_staff(session)
    session.commit()
    version = staff.session_version

    def end():
        with race_db.transaction() as s:
            s.get(User, staff.id).end_all_sessions()
        return "ended"

    assert count_together([end] * 4) == {"ended": 4}
    session.expire_all()
    assert session.get(User, staff.id).session_version == version + 4
