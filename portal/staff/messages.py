"""Texts for staff: the queue of failed and unknown texts (retry, dismiss), each patient's message log, and the
patients we cannot text. Reception and admins only. Thin: each view calls one messaging service."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for

from portal.audit.web import audit
from portal.auth.access import registration_staff_required
from portal.db import utcnow
from portal.extensions import db_session
from portal.messaging import error_codes, inbound, queue
from portal.messaging.services import messages_for_patient
from portal.patients.web import patient_or_404
from portal.staff.forms import ActionForm
from portal.staff.message_forms import RetryForm

bp = Blueprint("staff_messages", __name__, url_prefix="/staff")

# Each status in words, and the colour of its tag.
STATUSES = {
    "pending": ("Waiting to send", "grey"),
    "sending": ("Sending", "blue"),
    "sent": ("Sent", "blue"),
    "delivered": ("Delivered", "green"),
    "undelivered": ("Not delivered", "red"),
    "failed": ("Failed", "red"),
    "unknown": ("Unknown: may not have gone", "orange"),
    "cancelled": ("Not sent", "grey"),
}
INBOUND_ACTIONS = {
    "received": "Received",
    "confirmed": "Confirmed their next appointment",
    "cancelled": "Cancelled their appointment",
    "call_to_cancel": "Asked to cancel: told to call",
    "nothing_booked": "Nothing booked to change",
    "opted_out": "Stopped texts (STOP)",
    "opted_in": "Restarted texts (START)",
    "help": "Not understood: sent help",
    "unknown_sender": "Number not matched to one patient",
}


def _render(template: str, **context):
    return render_template(template, statuses=STATUSES, explain=error_codes.explain, **context)


@bp.route("/messages")
@registration_staff_required
def queue_page():
    texts = queue.failed_and_unknown(db_session())
    audit("message_queue_viewed", detail=f"{len(texts)} texts")
    return _render("staff/messages/queue.html", texts=texts, action_form=ActionForm())


@bp.route("/messages/<int:message_id>/retry", methods=["GET", "POST"])
@registration_staff_required
def retry(message_id: int):
    s = db_session()
    text = queue.queued_text(s, message_id)
    if text is None:
        abort(404)
    now = utcnow()
    form = RetryForm()
    refused = queue.why_not_retry(text, now=now)
    was = text.message.status
    if form.validate_on_submit() and refused is None:
        try:
            queue.retry_message(s, message_id, now=now, checked_not_received=form.checked_not_received.data)
        except queue.NeedsConfirmation as problem:
            form.checked_not_received.errors = [str(problem)]
        except queue.QueueError as problem:
            flash(str(problem), "warning")
            return redirect(url_for("staff_messages.queue_page"))
        else:
            audit("sms_retried", patient_id=text.message.patient_id, detail=f"text {message_id}, was {was}")
            flash("The text is queued to be sent again.", "success")
            return redirect(url_for("staff_messages.queue_page"))
    # A post refused: 409 when the text may not be sent again at all, 400 when the form wants something more.
    status = (409 if refused is not None else 400) if form.is_submitted() else 200
    return _render("staff/messages/retry.html", text=text, form=form, refused=refused), status


@bp.route("/messages/<int:message_id>/dismiss", methods=["POST"])
@registration_staff_required
def dismiss(message_id: int):
    if not ActionForm().validate_on_submit():
        abort(400)
    s = db_session()
    text = queue.queued_text(s, message_id)
    if text is None:
        abort(404)
    try:
        queue.dismiss_message(s, message_id, now=utcnow())
    except queue.QueueError as problem:
        flash(str(problem), "warning")
    else:
        audit("sms_dismissed", patient_id=text.message.patient_id, detail=f"text {message_id} ({text.message.status})")
        flash("The text is off the queue. Its status is kept in the patient's message log.", "success")
    return redirect(url_for("staff_messages.queue_page"))


@bp.route("/messages/cannot-text")
@registration_staff_required
def cannot_text():
    patients = queue.unreachable_patients(db_session())
    audit("cannot_text_list_viewed", detail=f"{len(patients)} patients")
    return _render("staff/messages/cannot_text.html", patients=patients)


@bp.route("/patients/<int:patient_id>/messages")
@registration_staff_required
def patient_log(patient_id: int):
    s = db_session()
    patient = patient_or_404(patient_id)
    audit("patient_messages_viewed", patient_id=patient.id)
    return _render("staff/messages/patient_log.html", patient=patient, messages=messages_for_patient(s, patient.id),
                   received=inbound.inbound_for_patient(s, patient.id), actions=INBOUND_ACTIONS)
