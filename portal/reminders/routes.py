"""The call list: reminders reception gives by phone, for patients we may not text. Reception and admins.

Thin: each view calls one reminders service. Every view is audited (the list shows patients' details).
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user

from portal.audit.web import audit
from portal.auth.access import registration_staff_required
from portal.db import utcnow
from portal.extensions import db_session
from portal.reminders import services
from portal.reminders.forms import OUTCOME_BUTTONS, CallForm
from portal.templating import local_datetime

bp = Blueprint("reminders", __name__, url_prefix="/staff")


@bp.route("/call-list")
@registration_staff_required
def call_list():
    now = utcnow()
    calls = services.open_calls(db_session(), now=now)
    audit("call_list_viewed", detail=f"{len(calls)} calls")
    return render_template("reminders/call_list.html", calls=calls, now=now, form=CallForm(),
                           buttons=OUTCOME_BUTTONS)


@bp.route("/call-list/<int:call_id>/called", methods=["POST"])
@registration_staff_required
def record_call(call_id: int):
    form = CallForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        call = services.record_call(db_session(), call_id, outcome=form.outcome.data, by=current_user, now=utcnow())
    except LookupError:
        abort(404)
    except services.CallNotOpen as problem:
        flash(str(problem), "warning")
        return redirect(url_for("reminders.call_list"))
    audit("reminder_call_recorded", patient_id=call.patient_id, detail=f"call {call.id}: {call.outcome}")
    if call.status == "open":
        flash(f"No answer from {call.patient.full_name}: the call stays on the list.", "success")
    else:
        flash(f"Recorded: {call.patient.full_name} was called about their {call.about} on "
              f"{local_datetime(call.starts_at)}.", "success")
    return redirect(url_for("reminders.call_list"))
