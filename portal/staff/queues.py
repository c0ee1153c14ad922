"""The reception queues in one place, with counts: patients who need a team, invitations not yet activated (with
resend), texts that failed or may not have gone, and the call list. Reception and admins only."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for

from portal.audit.web import audit
from portal.auth import services as auth
from portal.auth.access import registration_staff_required
from portal.db import utcnow
from portal.extensions import db_session, domain
from portal.messaging.queue import count_failed_and_unknown
from portal.patients import onboarding
from portal.patients import services as patients
from portal.patients.models import Patient
from portal.reminders.services import count_open_calls
from portal.staff.desk_forms import InvitationQueueForm
from portal.staff.forms import ActionForm

bp = Blueprint("staff_queues", __name__, url_prefix="/staff/queues")
# A second resend within this time is a double click, not a request for another text.
RESEND_GUARD = dt.timedelta(minutes=10)


def _chase_after_days() -> int:
    """A link not used after this many days goes on the queue even before it expires (policy.toml)."""
    return domain().policy.invitations.chase_after_days


@bp.route("")
@registration_staff_required
def index():
    s = db_session()
    now = utcnow()
    counts = {
        "needs_a_team": patients.count_needing_a_team(s),
        "invitations": onboarding.count_unactivated_invitations(
            s, now=now, older_than=dt.timedelta(days=_chase_after_days())),
        "messages": count_failed_and_unknown(s),
        "calls": count_open_calls(s, now=now),
    }
    return render_template("staff/queues/index.html", counts=counts, days=_chase_after_days())


@bp.route("/invitations")
@registration_staff_required
def invitations():
    form = InvitationQueueForm(request.args)
    days = form.chosen_days(_chase_after_days())
    now = utcnow()
    waiting = onboarding.unactivated_invitations(db_session(), now=now, older_than=dt.timedelta(days=days))
    audit("invitation_queue_viewed", detail=f"{len(waiting)} patients, {days} days")
    return render_template("staff/queues/invitations.html", form=form, waiting=waiting, days=days, now=now,
                           action_form=ActionForm()), (400 if form.errors else 200)


@bp.route("/invitations/<int:patient_id>/resend", methods=["POST"])
@registration_staff_required
def resend(patient_id: int):
    s = db_session()
    patient = s.get(Patient, patient_id) if 0 < patient_id < 2**31 else None
    if patient is None:
        abort(404)
    if not ActionForm().validate_on_submit():
        abort(400)
    back = url_for("staff_queues.invitations", days=request.args.get("days", type=int))
    now = utcnow()
    status = onboarding.invitation_status(s, patient.id, now=now)
    if status.has_account:
        flash(f"{patient.full_name} has set up their account: there is nothing to resend.", "info")
        return redirect(back)
    # A double click, or two receptionists at once: the link sent a moment ago stands. Checked again under
    # the patient's lock, for the second of two clicks that both got past this first look.
    if (status.state == "sent" and status.sent_at and now - status.sent_at < RESEND_GUARD) or auth.invite_patient(
        s, domain(), patient, base_url=current_app.config["PUBLIC_BASE_URL"], now=now,
        unless_sent_since=now - RESEND_GUARD,
    ) is None:
        flash(f"A new link went to {patient.full_name} a few minutes ago. Nothing was sent again.", "info")
        return redirect(back)
    audit("invitation_resent", patient_id=patient.id, detail="from the invitations queue")
    if patient.may_text:
        flash(f"We have texted {patient.full_name} a new link. Earlier links no longer work.", "success")
    else:
        flash(f"A new link is ready, but {patient.full_name} does not accept texts, so none was sent: phone them.",
              "success")
    return redirect(back)
