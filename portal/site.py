"""Pages that belong to no feature: health check and the service's information pages."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, redirect, render_template
from sqlalchemy import text

from portal.extensions import csrf, db_session

bp = Blueprint("site", __name__)


@bp.route("/healthz")
@csrf.exempt
def healthz():
    try:
        db_session().execute(text("SELECT 1"))
    except Exception:  # noqa: BLE001 - any database failure means "not healthy"
        return jsonify(status="error", database="unreachable"), 503
    return jsonify(status="ok", database="ok")


@bp.route("/accessibility")
def accessibility():
    return render_template("site/accessibility.html")


@bp.route("/privacy")
def privacy():
    return render_template("site/privacy.html")


@bp.route("/contact")
def contact():
    return render_template("site/contact.html")


@bp.route("/robots.txt")
def robots():
    # A signed-in service: nothing here is for search engines (the service's public page is on the trust's site).
    return Response("User-agent: *\nDisallow: /\n", mimetype="text/plain")


@bp.route("/favicon.ico")
def favicon():
    # Browsers and bookmarks ask for the icon here, whatever the page's own <link> says.
    return redirect("/static/dist/images/favicon.ico", code=301)
