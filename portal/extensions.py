"""Flask extensions and the per-request database session (the request's one transaction)."""

from __future__ import annotations

from flask import Flask, Response, current_app, g
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
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


def database() -> Database:
    return current_app.extensions["db"]


def domain() -> DomainConfig:
    return current_app.extensions["domain"]


def db_session() -> Session:
    """The request's session. It commits once, after the view, unless the response is an error."""
    if "db_session" not in g:
        g.db_session = database().sessionmaker()
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

    login_manager.init_app(app)
    login_manager.login_view = "auth.sign_in"
    login_manager.login_message = "Sign in to continue."
    login_manager.login_message_category = "info"
    login_manager.session_protection = "strong"
    login_manager.user_loader(lambda user_id: load_user_for_session(db_session(), user_id))


def init_security(app: Flask) -> None:
    csrf.init_app(app)
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config.get("REDIS_URL") or "memory://")
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
    limiter.init_app(app)
    production = app.config["PRODUCTION"]
    talisman.init_app(
        app,
        force_https=production,
        strict_transport_security=production,
        session_cookie_secure=production,
        content_security_policy=CSP,
        content_security_policy_nonce_in=["script-src"],
        frame_options="DENY",
        referrer_policy="strict-origin-when-cross-origin",
    )

    @app.after_request
    def _no_store_when_signed_in(response: Response) -> Response:
        from flask_login import current_user

        if current_user and current_user.is_authenticated:
            response.headers["Cache-Control"] = "no-store"
        return response


def init_static(app: Flask) -> None:
    # WhiteNoise serves /static/ ahead of Flask: gzip twins, far-future caching for hashed names.
    app.wsgi_app = WhiteNoise(  # type: ignore[method-assign]
        app.wsgi_app, root=str(STATIC_DIR), prefix="static/", max_age=3600, immutable_file_test=is_immutable
    )
