"""The development inbox: texts the console backend 'sent', for trying the portal locally."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template

from portal.extensions import db_session
from portal.messaging.services import recent_messages

bp = Blueprint("messaging", __name__)


@bp.route("/dev/texts")
def dev_inbox():
    if not current_app.config.get("DEV_INBOX") or current_app.config["PRODUCTION"]:
        abort(404)
    return render_template("messaging/dev_inbox.html", messages=recent_messages(db_session()))
