"""Flask extensions and the per-request database session (the request's one transaction)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, Response, current_app, g, has_request_context, request, session
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_login.config import COOKIE_NAME as REMEMBER_COOKIE
from flask_talisman import Talisman
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.orm import Session
from whitenoise import WhiteNoise

from portal.assets import STATIC_DIR, is_immutable
from portal.db import Database
from portal.settings import DomainConfig

login_manager = LoginManager()
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address, default_limits=[])
# Every limit is on a form POST (sign-in, codes, resets: tests/auth/test_rate_limits.py holds the routes to
# that), so page views skip the limiter rather than look up limits they never have.
LIMITED_METHODS = frozenset({"POST"})


@limiter.request_filter
def _not_limited_method() -> bool:
    return request.method not in LIMITED_METHODS


talisman = Talisman()

CSP = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "font-src": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
    "base-uri": "'self'",
    "object-src": "'none'",
}

# Features no page uses, refused to every page and anything it might embed.
PERMISSIONS_POLICY = {feature: "()" for feature in (
    "browsing-topics", "camera", "microphone", "geolocation", "payment", "usb")}


def database() -> Database:
    return current_app.extensions["db"]


def domain() -> DomainConfig:
    return current_app.extensions["domain"]


def read_only(view: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a view (put it under the route decorator) that never writes to the database.

    Its request gets a reading session (``Database.reader``): on SQLite that transaction does not take the
    write lock, so page views do not queue behind one another (or behind the scheduler) for the whole
    request. A write in such a view raises ReadOnlySessionError on every backend.
    """
    view.portal_read_only = True  # type: ignore[attr-defined]
    return view


def _read_only_request() -> bool:
    if not has_request_context() or request.method not in ("GET", "HEAD") or request.endpoint is None:
        return False
    return getattr(current_app.view_functions.get(request.endpoint), "portal_read_only", False)


def db_session() -> Session:
    """The request's session. It commits once, after the view, unless the response is an error."""
    if "db_session" not in g:
        g.db_session = database().reader() if _read_only_request() else database().sessionmaker()
    return g.db_session


def init_database(app: Flask) -> None:
    app.extensions["db"] = Database(app.config["DATABASE_URL"])

    @app.after_request
    def _commit(response: Response) -> Response:
        session = g.pop("db_session", None)
        if session is not None:
            try:
                if response.status_code < 400:
                    session.commit()
                else:
                    session.rollback()
            finally:
                session.close()
        return response

    @app.teardown_request
    def _close(_exc: BaseException | None) -> None:
        # Reached with the session still open only when the view raised: nothing is committed.
        session = g.pop("db_session", None)
        if session is not None:
            session.rollback()
            session.close()


def init_login(app: Flask) -> None:
    from portal.auth.services import load_user_for_session
    from portal.auth.sessions import session_key

    login_manager.init_app(app)
    login_manager.login_view = "auth.sign_in"
    login_manager.login_message = "Sign in to continue."
    login_manager.login_message_category = "info"
    login_manager.session_protection = "strong"
    login_manager.user_loader(lambda user_id: load_user_for_session(db_session(), user_id, session_key()))


def configure_rate_limit_storage(config: dict[str, Any]) -> None:
    """Where the per-IP counts live: in Redis when REDIS_URL is set, so that every web host shares them,
    and in this process's memory otherwise. Should Redis go away, each host counts in its own memory
    until it is back, rather than failing every sign-in."""
    redis_url = config.get("REDIS_URL")
    config.setdefault("RATELIMIT_STORAGE_URI", redis_url or "memory://")
    if redis_url:
        config.setdefault("RATELIMIT_KEY_PREFIX", "portal")
        config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)


def init_security(app: Flask) -> None:
    csrf.init_app(app)
    configure_rate_limit_storage(app.config)
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
    limiter.init_app(app)
    production = app.config["PRODUCTION"]
    talisman.init_app(
        app,
        force_https=production,
        strict_transport_security=production,
        session_cookie_secure=production,
        # No page has an inline script (a test holds the templates to that), so no per-request nonce either.
        content_security_policy=CSP,
        frame_options="DENY",
        referrer_policy="strict-origin-when-cross-origin",
        permissions_policy=PERMISSIONS_POLICY,
    )

    @app.after_request
    def _isolated_and_never_stored(response: Response) -> Response:
        # Talisman does not set these: no other site's window keeps a handle on a portal page, and no other
        # site's page may load the portal's responses.
        response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
        response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
        # No page is kept by the browser or a proxy, signed in or not: a shared phone must not show the last
        # person's pages after they sign out, and pages before signing in show secrets too (a new staff
        # member's authenticator key and name, a form token of this session). A view that needs its own
        # caching (a calendar file) sets it; static files never come this way (WhiteNoise serves them).
        response.headers.setdefault("Cache-Control", "no-store")
        # Flask-Login's strong session protection, on a session that holds no sign-in (a form's token only), asks
        # for the "remember me" cookie to be deleted. The portal never sets one: send no deletion for a cookie the
        # browser does not have.
        if session.get("_remember") == "clear" and REMEMBER_COOKIE not in request.cookies:
            session.pop("_remember")
        return response


def init_static(app: Flask) -> None:
    # WhiteNoise serves /static/ ahead of Flask (so Talisman never sees these): gzip twins, far-future caching for
    # hashed names, and headers of their own, set once per file at start-up.
    app.wsgi_app = WhiteNoise(  # type: ignore[method-assign]
        app.wsgi_app, root=str(STATIC_DIR), prefix="static/", max_age=3600, immutable_file_test=is_immutable,
        allow_all_origins=False, add_headers_function=_static_file_headers,
    )


def _static_file_headers(headers: Any, _path: str, _url: str) -> None:
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Cross-Origin-Resource-Policy"] = "same-origin"
    # An SVG opened on its own is a document: it may run nothing.
    headers["Content-Security-Policy"] = "script-src 'none'; object-src 'none'; frame-ancestors 'none'"
