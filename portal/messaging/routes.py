"""The web side of texting: what a patient's page, or a staff member's, says about a text just written, and the
development inbox (texts the console backend 'sent', for trying the portal locally)."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, abort, current_app, render_template

from portal.auth.access import current_patient
from portal.extensions import db_session
from portal.messaging.services import recent_messages, texted_since

bp = Blueprint("messaging", __name__)


@bp.route("/dev/texts")
def dev_inbox():
    if not current_app.config.get("DEV_INBOX") or current_app.config["PRODUCTION"]:
        abort(404)
    return render_template("messaging/dev_inbox.html", messages=recent_messages(db_session()))


def text_note(since: dt.datetime) -> str:
    """The end of a patient's confirmation message: the promise of a text, only when this request (begun at
    ``since``) wrote one to the outbox. Patients may have asked for no texts, or have no mobile."""
    texted = texted_since(db_session(), current_patient().id, since=since)
    return " We have sent you a text to confirm." if texted else ""


def staff_text_note(patient_id: int, since: dt.datetime) -> str:
    """The end of a staff confirmation of a change the patient is texted about: whether this request (begun at
    ``since``) texted them, or staff must tell them another way (they asked for no texts, or replied STOP)."""
    return texted_note(texted_since(db_session(), patient_id, since=since))


def texted_note(texted: bool) -> str:
    """What staff are told after a change the patient is texted about: that the text went, or that they must
    tell the patient another way."""
    return " We have texted them." if texted else " They do not get texts, so let them know another way."
