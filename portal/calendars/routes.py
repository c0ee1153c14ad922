"""Calendar files for one booking, and the patient's private subscription feed."""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, session, url_for

from portal.appointments import services as appointments
from portal.audit.web import audit
from portal.auth.access import current_patient, patient_required
from portal.booking import services as booking
from portal.booking.forms import ActionForm
from portal.calendars import ics
from portal.calendars import services as calendars
from portal.db import utcnow
from portal.extensions import db_session, domain, read_only

bp = Blueprint("calendars", __name__)


def _ics(body: bytes, *, filename: str, cache: str) -> Response:
    response = Response(body, mimetype="text/calendar")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = cache
    return response


@bp.route("/bookings/<int:booking_id>/calendar.ics")
@read_only
@patient_required
def booking_file(booking_id: int):
    try:
        seat = booking.booking_for_patient(db_session(), current_patient(), booking_id)
    except booking.BookingNotFound:
        abort(404)
    body = ics.calendar(calendars.course_events(domain(), seat), name="NHS group sessions", now=utcnow())
    return _ics(body, filename="group-sessions.ics", cache="private, no-store")


@bp.route("/appointments/<int:appointment_id>/calendar.ics")
@read_only
@patient_required
def appointment_file(appointment_id: int):
    try:
        appointment = appointments.appointment_for_patient(db_session(), current_patient(), appointment_id)
    except appointments.AppointmentNotFound:
        abort(404)
    body = ics.calendar([calendars.appointment_event(domain(), appointment)], name="NHS appointment", now=utcnow())
    return _ics(body, filename="appointment.ics", cache="private, no-store")


# The signed-in session holds a new feed's token from the POST that made it to the one page that shows it.
_NEW_FEED = "new_calendar_feed"


@bp.route("/calendar", methods=["GET", "POST"])
@patient_required
def feed_settings():
    patient = current_patient()
    s = db_session()
    form = ActionForm()
    if form.validate_on_submit():
        token = calendars.new_feed_token(s, patient.id, now=utcnow())
        audit("calendar_feed_created", patient_id=patient.id)
        # Post/redirect/get: a reload or Back of the page showing the address must not make another one, which
        # would stop the address the patient has just copied.
        session[_NEW_FEED] = {"patient_id": patient.id, "token": token}
        return redirect(url_for("calendars.feed_settings"))
    return render_template("calendars/feed.html", form=form, address=_new_feed_address(patient.id),
                           has_feed=calendars.has_feed(s, patient.id))


def _new_feed_address(patient_id: int) -> str | None:
    """The address of the feed just made, shown once: only its hash is stored, so it leaves the session here.
    None if there is none, or if it no longer works (stopped or replaced in another tab)."""
    new = session.pop(_NEW_FEED, None)
    if not isinstance(new, dict) or new.get("patient_id") != patient_id or not isinstance(new.get("token"), str):
        return None
    if calendars.patient_for_feed(db_session(), new["token"]) != patient_id:
        return None
    # From the configured address, never from the request's Host header, which the client chooses.
    return current_app.config["PUBLIC_BASE_URL"].rstrip("/") + url_for("calendars.feed", token=new["token"])


@bp.route("/calendar/revoke", methods=["POST"])
@patient_required
def revoke():
    if not ActionForm().validate_on_submit():
        abort(400)
    patient = current_patient()
    calendars.revoke_feed(db_session(), patient.id)
    audit("calendar_feed_revoked", patient_id=patient.id)
    flash("Your calendar address has stopped working. Calendars that used it will stop updating.", "success")
    return redirect(url_for("calendars.feed_settings"))


@bp.route("/calendar/feed/<token>.ics")
@read_only
def feed(token: str):
    s = db_session()
    patient_id = calendars.patient_for_feed(s, token)
    if patient_id is None:
        abort(404)
    events = calendars.events_for_patient(s, domain(), patient_id, now=utcnow())
    body = ics.calendar(events, name="NHS appointments", now=utcnow())
    # Personal data, like every signed-in page: kept by no cache, so a stopped address stops at once.
    return _ics(body, filename="nhs-appointments.ics", cache="private, no-store")
