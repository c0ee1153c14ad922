"""Reception books, moves and cancels course places on a patient's behalf, and runs the waiting lists.

Staff may book after self-booking has closed (until the first session), but only with a reason; every action is
audited with who did it and why.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from wtforms.fields.choices import SelectChoice

from portal.audit.web import audit
from portal.auth.access import registration_staff_required
from portal.booking import services as booking
from portal.booking import waitlist
from portal.booking.forms import ActionForm
from portal.dates import written_date
from portal.db import utcnow
from portal.extensions import db_session, domain
from portal.messaging.routes import staff_text_note
from portal.patients.models import Patient
from portal.patients.web import patient_or_404
from portal.plain_text import number_id
from portal.staff.booking_forms import (
    LeaveWaitlistForm,
    ReorderForm,
    StaffCancelForm,
    StaffCohortForm,
    StaffWaitlistForm,
)

bp = Blueprint("staff_bookings", __name__, url_prefix="/staff")


def _course(patient: Patient, service_key: str):
    service = booking.course_for_patient(domain(), patient, service_key)
    if service is None:
        abort(404)
    return service


def _already_ended(patient: Patient, ended: booking.BookingEnded):
    """Back to the patient's courses, saying the place has already gone (a double submit, or Back)."""
    flash(f"{ended}.", "info")
    abort(_to_record(patient))


def _seat(patient: Patient, booking_id: int):
    try:
        return booking.booking_for_patient(db_session(), patient, booking_id)
    except booking.BookingEnded as ended:
        _already_ended(patient, ended)
    except booking.BookingNotFound:
        abort(404)


def _to_record(patient: Patient):
    return redirect(url_for("staff_bookings.courses", patient_id=patient.id))


def _closed(cohorts, now) -> set[int]:
    return {c.id for c in cohorts if booking.booking_closed(domain(), c, now=now)}


def _needs_reason(form, cohort, *, now) -> bool:
    """Booking a cohort whose self-booking window has closed is an override, and needs a reason."""
    given = (form.reason.data or "").strip()
    if cohort is not None and booking.booking_closed(domain(), cohort, now=now) and not given:
        form.reason.errors.append("Enter a reason: booking for this group has closed, so this is an override")
        return True
    return False


def _leaving_needs_reason(form, started: bool) -> bool:
    """Moving a patient out of a group that has started is an override as well (patients cannot), and needs a
    reason."""
    if started and not (form.reason.data or "").strip():
        form.reason.errors.append("Enter a reason: this patient's group has already started, so moving them is "
                                  "an override")
        return True
    return False


@bp.route("/patients/<int:patient_id>/courses")
@registration_staff_required
def courses(patient_id: int):
    patient = patient_or_404(patient_id)
    s = db_session()
    now = utcnow()
    active = [b for b in booking.bookings_for_patient(s, patient) if b.status == "active"]
    audit("patient_courses_viewed", patient_id=patient.id)
    return render_template(
        "staff/bookings/courses.html",
        patient=patient,
        courses=[c for c in domain().catalogue.for_tier(patient.tier) if c.kind == "course"],
        bookings=active,
        # A finished group's place is a course done: it can be moved (to do it again), not cancelled.
        finished={b.id for b in active if booking.course_finished(b.cohort, now=now)},
        waiting=[(e, waitlist.place_in_queue(s, e)) for e in waitlist.live_entries_for_patient(s, patient.id)],
        action_form=ActionForm(),
        now=now,
    )


@bp.route("/patients/<int:patient_id>/courses/<service_key>/book", methods=["GET", "POST"])
@registration_staff_required
def book(patient_id: int, service_key: str):
    patient = patient_or_404(patient_id)
    service = _course(patient, service_key)
    s = db_session()
    now = utcnow()
    options = booking.open_cohorts(s, domain(), patient, service, now=now, override_closing=True)
    form = StaffCohortForm()
    status = 200
    if form.validate_on_submit():
        chosen = next((c for c in options if c.id == number_id(form.cohort.data)), None)
        if chosen is None:
            form.cohort.errors.append("Select one of the groups shown")
        elif not _needs_reason(form, chosen, now=now):
            try:
                seat = booking.book_seat(s, domain(), patient, chosen.id, now=now, by_staff=True, override_closing=True)
            except booking.CohortFull:
                form.cohort.errors.append("That group has just filled up. Choose another, or add the patient to "
                                          "the waiting list.")
            except booking.AlreadyBooked:
                flash(f"{patient.full_name} already has a place on this course.", "info")
                return _to_record(patient)
            except booking.CohortNotFound:
                form.cohort.errors.append("Select one of the groups shown")
            else:
                reason = (form.reason.data or "").strip()
                audit("seat_booked_by_staff", patient_id=patient.id,
                      detail=f"booking {seat.id}, cohort {chosen.id}" + (f"; override: {reason}" if reason else ""))
                flash(f"{patient.full_name} is booked on the {service.name}.{staff_text_note(patient.id, now)}",
                      "success")
                return _to_record(patient)
        status = 400
    elif form.is_submitted():
        status = 400
    return render_template("staff/bookings/choose_cohort.html", patient=patient, service=service, options=options,
                           form=form, action="Book a place", closed_ids=_closed(options, now), current=None), status


@bp.route("/patients/<int:patient_id>/bookings/<int:booking_id>/move", methods=["GET", "POST"])
@registration_staff_required
def move(patient_id: int, booking_id: int):
    patient = patient_or_404(patient_id)
    seat = _seat(patient, booking_id)
    service = _course(patient, seat.service_key)
    s = db_session()
    now = utcnow()
    options = [c for c in booking.open_cohorts(s, domain(), patient, service, now=now, override_closing=True)
               if c.id != seat.cohort_id]
    started = booking.course_started(seat.cohort, now=now)
    form = StaffCohortForm()
    status = 200
    if form.validate_on_submit():
        chosen = next((c for c in options if c.id == number_id(form.cohort.data)), None)
        if chosen is None:
            form.cohort.errors.append("Select one of the groups shown")
        elif not _needs_reason(form, chosen, now=now) and not _leaving_needs_reason(form, started):
            try:
                new = booking.move_seat(s, domain(), patient, seat.id, chosen.id, now=now, by_staff=True,
                                        override_closing=True, override_started=started)
            except booking.CohortFull:
                form.cohort.errors.append("That group has just filled up. The patient keeps their place. "
                                          "Choose another group.")
            except booking.BookingEnded as ended:
                _already_ended(patient, ended)
            except booking.CohortNotFound:
                form.cohort.errors.append("Select one of the groups shown")
            else:
                reason = (form.reason.data or "").strip()
                override = "; moved after the group started" if started else ""
                audit("seat_moved_by_staff", patient_id=patient.id,
                      detail=f"booking {seat.id} -> {new.id}, cohort {chosen.id}{override}"
                             + (f"; reason: {reason}" if reason else ""))
                flash(f"{patient.full_name} has moved to the group starting "
                      f"{written_date(chosen.first_session.starts_at)}.{staff_text_note(patient.id, now)}", "success")
                return _to_record(patient)
        status = 400
    elif form.is_submitted():
        status = 400
    return render_template("staff/bookings/choose_cohort.html", patient=patient, service=service, options=options,
                           form=form, action="Move to another group", closed_ids=_closed(options, now),
                           current=seat, started=started), status


@bp.route("/patients/<int:patient_id>/bookings/<int:booking_id>/cancel", methods=["GET", "POST"])
@registration_staff_required
def cancel(patient_id: int, booking_id: int):
    patient = patient_or_404(patient_id)
    seat = _seat(patient, booking_id)
    service = _course(patient, seat.service_key)
    if booking.course_finished(seat.cohort, now=utcnow()):
        flash(f"{patient.full_name}'s group has finished, so there is no place to cancel.", "info")
        return _to_record(patient)
    form = StaffCancelForm()
    if form.validate_on_submit():
        reason = form.reason.data.strip()
        now = utcnow()
        try:
            booking.withdraw_seat(db_session(), domain(), patient, seat.id, reason=reason, now=now, by_staff=True)
        except booking.BookingEnded as ended:
            _already_ended(patient, ended)
        except booking.CourseFinished:
            flash(f"{patient.full_name}'s group has finished, so there is no place to cancel.", "info")
            return _to_record(patient)
        audit("seat_cancelled_by_staff", patient_id=patient.id, detail=f"booking {seat.id}: {reason}")
        flash(f"{patient.full_name}'s place on the {service.name} is cancelled.{staff_text_note(patient.id, now)}",
              "success")
        return _to_record(patient)
    return render_template("staff/bookings/cancel.html", patient=patient, service=service, seat=seat, form=form), (
        400 if form.is_submitted() else 200)


@bp.route("/patients/<int:patient_id>/courses/<service_key>/waiting-list", methods=["GET", "POST"])
@registration_staff_required
def join_waitlist(patient_id: int, service_key: str):
    patient = patient_or_404(patient_id)
    service = _course(patient, service_key)
    s = db_session()
    options = booking.open_cohorts(s, domain(), patient, service, now=utcnow(), override_closing=True)
    form = StaffWaitlistForm()
    form.cohort.choices = [SelectChoice("any", "Any group of this course")] + [
        SelectChoice(str(c.id), f"Only the group starting {written_date(c.first_session.starts_at)}")
        for c in options
    ]
    if form.validate_on_submit():
        cohort = next((c for c in options if str(c.id) == form.cohort.data), None)
        if form.cohort.data != "any" and cohort is None:
            form.cohort.errors.append("Select one of the groups shown")
        else:
            try:
                entry = waitlist.join(s, domain(), patient, service, cohort=cohort, now=utcnow(), by_staff=True)
            except waitlist.WaitlistError as error:
                form.cohort.errors.append(str(error))
            else:
                audit("waitlist_joined_by_staff", patient_id=patient.id,
                      detail=f"entry {entry.id}, cohort {form.cohort.data}; {(form.reason.data or '').strip()}")
                flash(f"{patient.full_name} is on the waiting list: number {waitlist.place_in_queue(s, entry)}.",
                      "success")
                return _to_record(patient)
    return render_template("staff/bookings/join_waitlist.html", patient=patient, service=service, form=form), (
        400 if form.is_submitted() else 200)


@bp.route("/patients/<int:patient_id>/waiting-list/<int:entry_id>/leave", methods=["GET", "POST"])
@registration_staff_required
def leave_waitlist(patient_id: int, entry_id: int):
    """Take a patient off a waiting list: asked first, with a reason, as joining and reordering are."""
    patient = patient_or_404(patient_id)
    s = db_session()
    entry = waitlist.live_entry_by_id(s, patient.id, entry_id)
    if entry is None:
        flash(f"{patient.full_name} is no longer on that waiting list.", "info")
        return _to_record(patient)
    form = LeaveWaitlistForm()
    if form.validate_on_submit():
        reason = form.reason.data.strip()
        waitlist.leave(s, domain(), entry, now=utcnow())
        audit("waitlist_left_by_staff", patient_id=patient.id, detail=f"entry {entry_id}: {reason}")
        flash(f"{patient.full_name} is off the waiting list.", "success")
        return _to_record(patient)
    service = domain().catalogue.get(entry.service_key)
    return render_template("staff/bookings/leave_waitlist.html", patient=patient, entry=entry, service=service,
                           form=form), 400 if form.is_submitted() else 200


@bp.route("/patients/<int:patient_id>/offers/<int:entry_id>/accept", methods=["POST"])
@registration_staff_required
def accept_offer(patient_id: int, entry_id: int):
    patient = patient_or_404(patient_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    now = utcnow()
    # The cohort the page showed the offer in: a cancellation may have moved the offer to another since.
    shown = request.form.get("cohort")
    try:
        seat = waitlist.accept_offer(db_session(), domain(), patient, entry_id, now=now, by_staff=True,
                                     cohort_id=number_id(shown) if shown else None)
    except waitlist.OfferChanged:
        flash("The group this place was offered in has been cancelled and the patient is now offered a place in "
              "another group: check its dates with them before accepting it.", "warning")
        return _to_record(patient)
    except waitlist.OfferNotFound:
        flash("This offer is no longer open.", "info")
        return _to_record(patient)
    audit("offer_accepted_by_staff", patient_id=patient.id, detail=f"entry {entry_id}, booking {seat.id}")
    flash(f"{patient.full_name} has accepted the place and is booked.{staff_text_note(patient.id, now)}", "success")
    return _to_record(patient)


@bp.route("/waiting-lists")
@registration_staff_required
def waiting_lists():
    s = db_session()
    courses = [c for c in domain().catalogue.services if c.kind == "course"]
    queues = [(course, waitlist.queue_for_course(s, course.key)) for course in courses]
    # Names and NHS numbers of everyone waiting: a read of patient records, audited as other staff lists are.
    audit("waiting_lists_viewed", detail=", ".join(f"{course.key}: {len(queue)}" for course, queue in queues))
    return render_template("staff/bookings/waiting_lists.html", queues=queues)


@bp.route("/waiting-lists/<int:entry_id>", methods=["GET", "POST"])
@registration_staff_required
def reorder(entry_id: int):
    s = db_session()
    entry = waitlist.waiting_entry(s, entry_id)
    if entry is None:
        abort(404)
    form = ReorderForm()
    if form.validate_on_submit():
        try:
            waitlist.move_in_queue(s, entry.id, direction=form.direction.data, now=utcnow())
        except waitlist.WaitlistError as error:
            form.direction.errors.append(str(error))
        else:
            audit("waitlist_reordered", patient_id=entry.patient_id,
                  detail=f"entry {entry.id} {form.direction.data}: {form.reason.data.strip()}")
            flash(f"{entry.patient.full_name} is now number {waitlist.place_in_queue(s, entry)}.", "success")
            return redirect(url_for("staff_bookings.waiting_lists"))
    service = domain().catalogue.get(entry.service_key)
    return render_template("staff/bookings/reorder.html", entry=entry, service=service, form=form,
                           place=waitlist.place_in_queue(s, entry)), (400 if form.is_submitted() else 200)
