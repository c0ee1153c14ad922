"""The floor of a signed-in request: what the portal's stack costs before a page or a POST does anything.

The patient pages are measured against a baseline that signs no one in. This module adds two routes, only
to the app the benchmark serves, that do nothing but what every signed-in request does:

- ``GET /_bench/signed-in-floor``: the signed-in patient, the reading transaction, and the base layout
  (header, footer, flash messages) around one heading;
- ``POST /_bench/signed-in-floor``: the signed-in patient, the CSRF check and the write transaction, answered
  with a redirect and writing nothing.

Both pass through every application-wide hook a real page passes through (session timeouts, the rate limiter,
the security headers, the request id). They sit in no blueprint and need only a signed-in user, so the patient
pages' own role check and their blueprints' hooks (the discharge check of the booking pages) are not in them.
Their ratios to the baselines are the highest the real pages could reach, so they say how much of a page's gap
is its own work and how much the stack's.

Serve it with ``gunicorn 'bench.floor:create_app()'``; the portal's own pages are unchanged.
"""

from __future__ import annotations

from flask import Flask, redirect, render_template
from flask_login import login_required

FLOOR_PATH = "/_bench/signed-in-floor"
FLOOR_HEADING = "Signed in"

_PAGE = '{% extends "base.html" %}{% block title %}Floor{% endblock %}{% block content %}<h1>' + FLOOR_HEADING + \
    '</h1>{% endblock %}'


def add_floor_routes(app: Flask) -> Flask:
    from portal.extensions import read_only

    page = app.jinja_env.from_string(_PAGE)

    # Loading the signed-in user opens the request's transaction (reading for the page, writing for the POST).
    @read_only
    @login_required
    def floor_page():
        return render_template(page)

    @login_required
    def floor_post():
        return redirect(FLOOR_PATH, code=303)

    app.add_url_rule(FLOOR_PATH, "bench_floor_page", floor_page, methods=["GET"])
    app.add_url_rule(FLOOR_PATH, "bench_floor_post", floor_post, methods=["POST"])
    return app


def create_app() -> Flask:
    from portal import create_app as create_portal

    return add_floor_routes(create_portal())
