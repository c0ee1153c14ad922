"""The patient portal of the Haringey and Islington community pain management service."""

from __future__ import annotations

from typing import Any

from flask import Flask
from werkzeug.routing import IntegerConverter

from portal.transient import RetryingFlask


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the web application: load config, init extensions, register blueprints, errors, CLI."""
    app = RetryingFlask(__name__, static_folder=None)
    _load_config(app, config or {})
    _init_extensions(app)
    _register_blueprints(app)
    _register_error_handlers(app)
    return app


def _load_config(app: Flask, overrides: dict[str, Any]) -> None:
    from portal.settings import load_domain_config, settings_from_environment

    app.config.from_mapping(settings_from_environment())
    app.config.from_mapping(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        WTF_CSRF_TIME_LIMIT=None,
        TEMPLATES_AUTO_RELOAD=False,
        # No form of the portal takes a file, and its longest text boxes take a few thousand characters: a body
        # larger than this (nginx's default too) is refused (413) before it is read into memory.
        MAX_CONTENT_LENGTH=1024 * 1024,
    )
    app.config.from_mapping(overrides)
    if app.config["PRODUCTION"]:
        app.config["SESSION_COOKIE_NAME"] = "__Host-session"
    app.extensions["domain"] = load_domain_config(app.config["PORTAL_CONFIG_DIR"])
    _check_texts_fit(app)
    _trust_proxies(app)


def _trust_proxies(app: Flask) -> None:
    """Behind PROXY_HOPS proxies, take the client's address and scheme from their X-Forwarded headers, so the
    rate limiter, the audit trail and the HTTPS redirect see the real request (and nothing else can spoof them)."""
    hops = int(app.config.get("PROXY_HOPS", 0))
    if hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]


def _check_texts_fit(app: Flask) -> None:
    """The invitation text carries the portal's address: refuse to start if it would not fit one SMS."""
    from portal.messaging import texts
    from portal.settings import ConfigError

    sample_link = app.config["PUBLIC_BASE_URL"].rstrip("/") + "/activate/" + "x" * 22
    try:
        texts.invitation(link=sample_link, valid_days=app.extensions["domain"].policy.invitations.link_valid_days)
    except (texts.TextTooLong, ValueError) as problem:
        raise ConfigError(f"PUBLIC_BASE_URL is too long, or not plain, for the invitation text: {problem}") from None


def _init_extensions(app: Flask) -> None:
    from portal import extensions, templating
    from portal.audit.web import init_request_ids
    from portal.auth.sessions import init_session_timeouts

    # Templating first: other extensions touch app.jinja_env, which freezes the Jinja options.
    templating.init_templating(app)
    extensions.init_database(app)
    extensions.init_login(app)
    init_session_timeouts(app)
    extensions.init_security(app)
    extensions.init_static(app)
    init_request_ids(app)


class _DatabaseIntConverter(IntegerConverter):
    """``<int:...>`` in a URL: only ids the database's integer columns can hold, so 2**63 in an address is a 404 on
    every route (SQLite raises OverflowError for it instead of finding nothing)."""

    def __init__(self, url_map, *args, **kwargs) -> None:
        kwargs.setdefault("max", 2**31 - 1)
        super().__init__(url_map, *args, **kwargs)


def _register_blueprints(app: Flask) -> None:
    # Before any rule is added: each rule takes its converters from the map as it is added.
    app.url_map.converters["int"] = _DatabaseIntConverter
    # "//staff//patients" is a 404, not a redirect to the merged path: Werkzeug builds that redirect as an absolute
    # address from the request's Host header, which a proxy passing any Host through would let anyone choose.
    app.url_map.merge_slashes = False
    from portal.appointments.routes import bp as appointments_bp
    from portal.appointments.staff_routes import bp as appointments_staff_bp
    from portal.attendance.routes import bp as attendance_bp
    from portal.audit.routes import bp as audit_bp
    from portal.auth.mfa_routes import bp as mfa_bp
    from portal.auth.routes import bp as auth_bp
    from portal.booking.routes import bp as booking_bp
    from portal.calendars.routes import bp as calendars_bp
    from portal.diary.routes import bp as diary_bp
    from portal.messaging.routes import bp as messaging_bp
    from portal.messaging.webhooks import bp as webhooks_bp
    from portal.patients.routes import bp as patients_bp
    from portal.questionnaires.routes import bp as questionnaires_bp
    from portal.questionnaires.staff_routes import bp as questionnaires_staff_bp
    from portal.reminders.routes import bp as reminders_bp
    from portal.reports.routes import bp as reports_bp
    from portal.selfcare.routes import bp as selfcare_bp
    from portal.site import bp as site_bp
    from portal.staff.admin import bp as staff_admin_bp
    from portal.staff.booking_desk import bp as staff_bookings_bp
    from portal.staff.courses import bp as staff_courses_bp
    from portal.staff.messages import bp as staff_messages_bp
    from portal.staff.queues import bp as staff_queues_bp
    from portal.staff.referrals import bp as staff_referrals_bp
    from portal.staff.routes import bp as staff_bp
    from portal.staff.schedule import bp as staff_schedule_bp
    from portal.staff.selfcare import bp as staff_selfcare_bp

    for blueprint in (
        site_bp, auth_bp, mfa_bp, patients_bp, booking_bp, calendars_bp, staff_bp, staff_bookings_bp, staff_courses_bp,
        messaging_bp, audit_bp, appointments_bp, appointments_staff_bp, webhooks_bp, staff_messages_bp,
        reminders_bp, diary_bp, selfcare_bp, staff_selfcare_bp,
        questionnaires_bp, questionnaires_staff_bp, staff_admin_bp,
        attendance_bp, reports_bp,
        staff_schedule_bp, staff_queues_bp, staff_referrals_bp,
    ):
        app.register_blueprint(blueprint)


def _register_error_handlers(app: Flask) -> None:
    from portal.errors import register

    register(app)
