"""The half-signed-in state between a staff member's password and their second factor.

The Flask session holds who it is, their session version (an admin's reset or a sign-out everywhere
ends it), the token of the pending sign-in (checked against its hash in the database, which also
holds its start time and wrong tries) and where to go afterwards. Nobody is signed in yet: staff
pages stay closed until ``_start_session`` runs after the second step.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import session, url_for

from portal.auth import mfa
from portal.auth.models import User
from portal.db import utcnow
from portal.extensions import db_session

_KEY = "mfa_pending"


@dataclass(frozen=True)
class Pending:
    user: User
    token: str
    next_path: str


def begin(user: User, *, next_path: str) -> str:
    """Remember the pending sign-in; return the address of its next step (enrol, or type a code)."""
    token, enrolled = mfa.begin(db_session(), user, now=utcnow())
    session[_KEY] = {"user_id": user.id, "version": user.session_version, "token": token, "next": next_path}
    return url_for("mfa.verify" if enrolled else "mfa.enrol")


def load() -> Pending | None:
    """The pending sign-in of this browser, if its account still exists, is active and staff."""
    data = session.get(_KEY)
    if not isinstance(data, dict):
        return None
    user = db_session().get(User, data.get("user_id") or 0)
    if (
        user is None
        or not user.is_active
        or not user.is_staff
        or user.session_version != data.get("version")
        or not isinstance(data.get("token"), str)
    ):
        forget()
        return None
    return Pending(user=user, token=data["token"], next_path=str(data.get("next") or "/"))


def forget() -> None:
    session.pop(_KEY, None)


_PROVEN = "second_factor_user"


def mark_proven(user: User) -> None:
    """Call straight after ``_start_session``: this session passed the second step."""
    session[_PROVEN] = user.id


def proven(user: User) -> bool:
    return session.get(_PROVEN) == user.id
