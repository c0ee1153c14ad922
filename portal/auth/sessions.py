"""How long a signed-in session lasts: 30 minutes without activity, 12 hours in all, or until signing out.

The sign-in time and the time of the last request live in the (signed) session cookie and are checked
before every request. A session past either limit is ended, with a message saying why.

Each session also carries a random key. Signing out lists the key as ended (portal.auth.services.end_session), and
the user loader signs nobody in with a listed key or without one: a copy of the cookie taken before signing out is
no use after it.
"""

from __future__ import annotations

import datetime as dt
import secrets
from urllib.parse import urlsplit

from flask import Flask, flash, redirect, request, session, url_for
from flask_login import logout_user
from sqlalchemy import delete
from sqlalchemy.orm import Session
from werkzeug.urls import iri_to_uri

from portal.auth.models import EndedSession
from portal.db import utcnow

IDLE_LIMIT = dt.timedelta(minutes=30)
# The last-seen stamp is refreshed at most this often: rewriting it on every request would re-sign and
# resend the session cookie on every page view. The idle limit is therefore exact to within a minute.
STAMP_EVERY = 60
ABSOLUTE_LIMIT = dt.timedelta(hours=12)
SIGNED_IN_AT = "signed_in_at"
LAST_SEEN_AT = "last_seen_at"
SESSION_KEY = "session_key"

IDLE_MESSAGE = "You were signed out after 30 minutes without activity. Sign in again to continue."
ABSOLUTE_MESSAGE = "You were signed out because you had been signed in for 12 hours. Sign in again to continue."


def mark_started(now: dt.datetime) -> None:
    """Stamp a session that has just been signed in to, and give it its key."""
    session[SIGNED_IN_AT] = session[LAST_SEEN_AT] = int(now.timestamp())
    session[SESSION_KEY] = secrets.token_urlsafe(32)


def end_this_session(db: Session, now: dt.datetime) -> None:
    """Sign this session out for good: list its key as ended (and forget keys whose cookies have expired anyway),
    then empty the cookie."""
    db.execute(delete(EndedSession).where(EndedSession.ended_at < now - ABSOLUTE_LIMIT))
    key = session_key()
    if key is not None:
        db.merge(EndedSession(key=key, ended_at=now))
    logout_user()
    session.clear()


def session_key() -> str | None:
    """This session's key, if it has one (a session signed in before keys existed has none, and is over)."""
    key = session.get(SESSION_KEY)
    return key if isinstance(key, str) else None


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
        return redirect(url_for("auth.sign_in", next=_asked_for_path() if asked_for else None))


def _asked_for_path() -> str:
    """The path and query asked for, as sign-in's ``next``, percent-encoded as the browser sent them: a search for
    "Zoë" stays one (``request.full_path`` decodes the path to letters beyond ASCII, and raised on a query that was
    not UTF-8)."""
    parts = urlsplit(iri_to_uri(request.url))
    return parts.path + (f"?{parts.query}" if parts.query else "")
