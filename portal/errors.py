"""Styled error pages. No stack trace ever reaches a browser."""

from __future__ import annotations

import logging
import math
import time

from flask import Flask, redirect, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from portal.extensions import limiter
from portal.transient import is_transient

log = logging.getLogger(__name__)

PAGES = {
    400: ("errors/400.html", "Something went wrong with that request"),
    403: ("errors/403.html", "You cannot see this page"),
    404: ("errors/404.html", "Page not found"),
    405: ("errors/404.html", "Page not found"),
    410: ("errors/404.html", "Page not found"),
    429: ("errors/429.html", "Too many attempts"),
    500: ("errors/500.html", "Sorry, there is a problem with the service"),
}


def register(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(_error: CSRFError):
        return render_template("errors/csrf.html"), 400

    @app.errorhandler(405)
    def method_not_allowed(error: HTTPException):
        # A form's address opened as a page (gone back to, or typed): its actions are named below the page they
        # belong to (/cohorts/7/waiting-list, /staff/patients/3/offers/5/accept), so show the nearest page above
        # it rather than "not found".
        if request.method in ("GET", "HEAD"):
            adapter = app.create_url_adapter(request)
            path = request.path.rstrip("/")
            while path:
                path = path.rpartition("/")[0]
                try:
                    adapter.match(path or "/", method="GET")
                except HTTPException:
                    continue
                return redirect(path or "/", code=303)
        page, code = http_error(error)
        # HTTP requires a 405 to name the methods the address takes.
        return page, code, {"Allow": ", ".join(sorted(error.valid_methods))} if error.valid_methods else {}

    @app.errorhandler(429)
    def too_many_attempts(_error: HTTPException):
        return render_template("errors/429.html", wait=_wait_for_limit()), 429

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        code = error.code or 500
        template, _ = PAGES.get(code, PAGES[400] if code < 500 else PAGES[500])
        return render_template(template), code

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        if is_transient(error):
            raise error  # run again by RetryingFlask, not answered here
        log.exception("unhandled error on %s %s", request.method, request.path, exc_info=error)
        return render_template("errors/500.html"), 500


def _wait_for_limit() -> str:
    """How long until the limit that refused this request lets the next try through, in words: "a minute", or up to
    an hour for the hourly limit on asking for reset codes."""
    try:
        seconds = limiter.current_limit.window.reset_time - time.time()
    except Exception:  # noqa: BLE001 - no limit, or its storage gone away (Redis): the refusal stands, say a minute
        seconds = 60
    minutes = max(1, math.ceil(seconds / 60))
    return "a minute" if minutes == 1 else f"{minutes} minutes"
