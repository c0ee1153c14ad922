"""How long a signed-in session lasts: 30 minutes without activity, 12 hours in all.

The sign-in time and the time of the last request live in the (signed) session cookie and are checked
before every request. A session past either limit is ended, with a message saying why.
"""

from __future__ import annotations

import datetime as dt

from flask import Flask, flash, redirect, request, session, url_for
from flask_login import logout_user

from portal.db import utcnow

IDLE_LIMIT = dt.timedelta(minutes=30)
# The last-seen stamp is refreshed at most this often: rewriting it on every request would re-sign and
# resend the session cookie on every page view. The idle limit is therefore exact to within a minute.
STAMP_EVERY = 60
ABSOLUTE_LIMIT = dt.timedelta(hours=12)
SIGNED_IN_AT = "signed_in_at"
LAST_SEEN_AT = "last_seen_at"

IDLE_MESSAGE = "You were signed out after 30 minutes without activity. Sign in again to continue."
ABSOLUTE_MESSAGE = "You were signed out because you had been signed in for 12 hours. Sign in again to continue."


def mark_started(now: dt.datetime) -> None:
    """Stamp a session that has just been signed in to."""
    session[SIGNED_IN_AT] = session[LAST_SEEN_AT] = int(now.timestamp())


def expiry_message(signed_in_at: object, last_seen_at: object, now: dt.datetime) -> str | None:
    """Why a session with these stamps has ended, or None if it is still alive.

    A signed-in session without stamps (made before they existed, or tampered with) has ended.
    """
    if not isinstance(signed_in_at, int) or not isinstance(last_seen_at, int):
        return IDLE_MESSAGE
    seconds = int(now.timestamp())  # the stamps are whole seconds too
    if seconds - signed_in_at > ABSOLUTE_LIMIT.total_seconds():
        return ABSOLUTE_MESSAGE
    if seconds - last_seen_at > IDLE_LIMIT.total_seconds():
        return IDLE_MESSAGE
    return None


def init_session_timeouts(app: Flask) -> None:
    @app.before_request
    def _end_expired_sessions():
        if "_user_id" not in session:
            return None
        now = utcnow()
        message = expiry_message(session.get(SIGNED_IN_AT), session.get(LAST_SEEN_AT), now)
        if message is None:
            seconds = int(now.timestamp())
            if seconds - session.get(LAST_SEEN_AT, 0) >= STAMP_EVERY:
                session[LAST_SEEN_AT] = seconds
            return None
        logout_user()
        session.clear()
        flash(message, "info")
        # Back to the page they asked for once they sign in again; a form they sent is lost.
        asked_for = request.method == "GET" and request.endpoint != "auth.sign_in"
        target = request.full_path.rstrip("?") if asked_for else None
        return redirect(url_for("auth.sign_in", next=target))
