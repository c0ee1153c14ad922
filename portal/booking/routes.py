"""Patients choose a course, book, move or give up a seat, and wait for a full group."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from portal.audit.web import audit
from portal.auth.access import current_patient, patient_required, refuse_new_bookings_after_discharge
from portal.booking import listing, services, waitlist
from portal.booking.forms import ActionForm, BookSeatForm, JoinWaitlistForm, MoveSeatForm, OfferForm, WithdrawForm
from portal.booking.models import Cohort
from portal.db import utcnow
from portal.extensions import db_session, domain, read_only
from portal.messaging.routes import text_note
from portal.plain_text import number_id

bp = Blueprint("booking", __name__)


refuse_new_bookings_after_discharge(bp, {
    "booking.service_list", "booking.cohorts", "booking.book", "booking.join_waitlist", "booking.offer",
    "booking.move",
})


@bp.route("/services")
@read_only
@patient_required
def service_list():
    patient = current_patient()
    return render_template(
        "booking/services.html",
        services=services.bookable_services(domain(), patient),
        patient=patient,
    )


@bp.route("/services/<service_key>")
@read_only
@patient_required
def cohorts(service_key: str):
    patient = current_patient()
    service = services.course_for_patient(domain(), patient, service_key)
    if service is None:
        abort(404)
    s = db_session()
    return render_template(
        "booking/cohorts.html",
        service=service,
        cohorts=listing.open_cohort_listing(s, domain(), patient, service, now=utcnow()),
        current_starts=listing.current_seat_starts(s, patient.id, service.key),
        waiting=waitlist.on_waiting_list(s, patient.id, service.key),
        patient=patient,
    )


def _full_page(cohort, service, *, status: int, form: JoinWaitlistForm | None = None, just_filled: bool = False):
    """A full cohort: the next best options (other groups with places) and the waiting list."""
    s = db_session()
    patient = current_patient()
    alternatives = [
        c for c in services.open_cohorts(s, domain(), patient, service, now=utcnow())
        if c.id != cohort.id and c.seats_left > 0
    ]
    return render_template(
        "booking/cohort_full.html", cohort=cohort, service=service, alternatives=alternatives,
        form=form or JoinWaitlistForm(), just_filled=just_filled,
        waiting=waitlist.on_waiting_list(s, patient.id, service.key),
        # A patient with a place on the course cannot join its waiting list (waitlist.join refuses): say so here.
        current_starts=listing.current_seat_starts(s, patient.id, service.key), may_text=patient.may_text,
    ), status


@bp.route("/cohorts/<int:cohort_id>", methods=["GET", "POST"])
@patient_required
def book(cohort_id: int):
    patient = current_patient()
    s = db_session()
    form = BookSeatForm()
    if form.validate_on_submit():
        # Straight to the service: it checks the cohort is open to this patient in the same statement it reads.
        now = utcnow()
        try:
            seat = services.book_seat(s, domain(), patient, cohort_id, now=now)
        except services.CohortNotFound:
            abort(404)
        except services.AlreadyBooked:
            flash("You already have a place on this course.", "info")
            return redirect(url_for("booking.my_bookings"))
        except services.CohortFull:
            cohort = s.get(Cohort, cohort_id)
            return _full_page(cohort, domain().catalogue.get(cohort.service_key), status=409, just_filled=True)
        audit("seat_booked", patient_id=patient.id, detail=f"booking {seat.id}, cohort {cohort_id}")
        service = domain().catalogue.get(seat.service_key)
        flash(f"You are booked on the {service.name}.{text_note(now)}", "success")
        return redirect(url_for("booking.my_bookings"))
    try:
        cohort = services.cohort_for_patient(s, domain(), patient, cohort_id, now=utcnow())
    except services.CohortNotFound:
        abort(404)
    service = domain().catalogue.get(cohort.service_key)
    if cohort.seats_left <= 0:
        return _full_page(cohort, service, status=200)
    return render_template("booking/confirm.html", cohort=cohort, service=service, form=form)


@bp.route("/cohorts/<int:cohort_id>/waiting-list", methods=["POST"])
@patient_required
def join_waitlist(cohort_id: int):
    patient = current_patient()
    s = db_session()
    try:
        cohort = services.cohort_for_patient(s, domain(), patient, cohort_id, now=utcnow())
    except services.CohortNotFound:
        abort(404)
    service = domain().catalogue.get(cohort.service_key)
    form = JoinWaitlistForm()
    if not form.validate_on_submit():
        return _full_page(cohort, service, status=400, form=form)
    try:
        entry = waitlist.join(
            s, domain(), patient, service, cohort=cohort if form.which.data == "this" else None, now=utcnow()
        )
    except waitlist.WaitlistError as error:
        flash(str(error), "info")
        return redirect(url_for("booking.my_bookings"))
    audit("waitlist_joined", patient_id=patient.id, detail=f"entry {entry.id}, {form.which.data} cohort {cohort_id}")
    then = ("We will text you if a place comes up." if patient.may_text
            else "If a place comes up, we will show it on your home page.")
    flash(f"You are on the waiting list: number {waitlist.place_in_queue(s, entry)}. {then}", "success")
    return redirect(url_for("booking.my_bookings"))


@bp.route("/waiting-list/<int:entry_id>/leave", methods=["POST"])
@patient_required
def leave_waitlist(entry_id: int):
    patient = current_patient()
    s = db_session()
    entry = waitlist.live_entry_by_id(s, patient.id, entry_id)
    if entry is None and waitlist.has_left(s, patient.id, entry_id):
        # A double tap, or Back and Leave again: say so rather than answer "page not found".
        flash("You have already left this waiting list.", "info")
        return redirect(url_for("booking.my_bookings"))
    if entry is None or not ActionForm().validate_on_submit():
        abort(404 if entry is None else 400)
    waitlist.leave(s, domain(), entry, now=utcnow())
    audit("waitlist_left", patient_id=patient.id, detail=f"entry {entry_id}")
    flash("You have left the waiting list.", "success")
    return redirect(url_for("booking.my_bookings"))


@bp.route("/offers/<int:entry_id>", methods=["GET", "POST"])
@patient_required
def offer(entry_id: int):
    patient = current_patient()
    s = db_session()
    try:
        entry = waitlist.offer_for_patient(s, patient, entry_id, now=utcnow())
    except waitlist.OfferNotFound:
        return render_template("booking/offer_closed.html"), 410
    form = OfferForm()
    # The page offered a seat in one cohort; if that cohort was cancelled meanwhile and the place in the queue now
    # holds a seat in another (other dates, perhaps another venue), the answer given is not to this offer.
    shown = number_id(form.cohort.data) if form.is_submitted() and form.cohort.data else None
    if form.validate_on_submit():
        now = utcnow()
        try:
            if form.decision.data == "accept":
                booking = waitlist.accept_offer(s, domain(), patient, entry_id, now=now, cohort_id=shown)
                audit("offer_accepted", patient_id=patient.id, detail=f"entry {entry_id}, booking {booking.id}")
                flash(f"You are booked on the group.{text_note(now)}", "success")
            else:
                waitlist.decline_offer(s, domain(), patient, entry_id, now=utcnow(), cohort_id=shown)
                audit("offer_declined", patient_id=patient.id, detail=f"entry {entry_id}")
                flash("You have turned down the place. We have offered it to the next person waiting.", "success")
        except waitlist.OfferChanged:
            return _offer_changed(entry_id)
        except waitlist.OfferNotFound:
            return render_template("booking/offer_closed.html"), 410
        return redirect(url_for("booking.my_bookings"))
    if form.is_submitted() and form.cohort.data and shown != entry.offer_cohort_id:
        return _offer_changed(entry_id)
    service = domain().catalogue.get(entry.service_key)
    return render_template("booking/offer.html", entry=entry, cohort=entry.offer_cohort, service=service, form=form)


def _offer_changed(entry_id: int):
    """Back to the offer, which is now of a seat in another group, with nothing booked or turned down."""
    flash("The group we offered you a place in has been cancelled, so we are offering you a place in another group. "
          "Check its dates before you answer.", "info")
    return redirect(url_for("booking.offer", entry_id=entry_id))


def _already_ended(ended: services.BookingEnded):
    """Back to My bookings, saying the place has already gone: the answer to a double submit or Back."""
    flash(f"{ended}.", "info")
    abort(redirect(url_for("booking.my_bookings")))


def _own_booking(booking_id: int):
    try:
        return services.booking_for_patient(db_session(), current_patient(), booking_id)
    except services.BookingEnded as ended:
        _already_ended(ended)
    except services.BookingNotFound:
        abort(404)


@bp.route("/bookings/<int:booking_id>/cancel", methods=["GET", "POST"])
@patient_required
def withdraw(booking_id: int):
    patient = current_patient()
    booking = _own_booking(booking_id)
    service = domain().catalogue.get(booking.service_key)
    if services.course_finished(booking.cohort, now=utcnow()):
        flash(f"Your {service.name} has finished, so there is no place to cancel.", "info")
        return redirect(url_for("booking.my_bookings"))
    form = WithdrawForm()
    if form.validate_on_submit():
        now = utcnow()
        try:
            services.withdraw_seat(db_session(), domain(), patient, booking_id, reason=form.reason_text, now=now)
        except services.BookingEnded as ended:
            _already_ended(ended)
        except services.CourseFinished:
            flash(f"Your {service.name} has finished, so there is no place to cancel.", "info")
            return redirect(url_for("booking.my_bookings"))
        audit("seat_cancelled", patient_id=patient.id, detail=f"booking {booking_id}: {form.reason_text}")
        flash(f"Your place on the {service.name} is cancelled.{text_note(now)}", "success")
        return redirect(url_for("booking.my_bookings"))
    return render_template("booking/withdraw.html", booking=booking, service=service, form=form,
                           may_move=not services.course_started(booking.cohort, now=utcnow()))


def _started_page(booking, service):
    """The group has started: say so and give the phone number, instead of groups to choose (a POST made anyway
    is refused the same way)."""
    status = 409 if request.method == "POST" else 200
    form = MoveSeatForm()
    return render_template("booking/move.html", booking=booking, service=service, options=[], form=form,
                           started=True), status


@bp.route("/bookings/<int:booking_id>/move", methods=["GET", "POST"])
@patient_required
def move(booking_id: int):
    patient = current_patient()
    s = db_session()
    booking = _own_booking(booking_id)
    service = domain().catalogue.get(booking.service_key)
    if services.course_started(booking.cohort, now=utcnow()):
        return _started_page(booking, service)
    options = [
        c for c in services.open_cohorts(s, domain(), patient, service, now=utcnow()) if c.id != booking.cohort_id
    ]
    form = MoveSeatForm()
    status = 200
    if form.validate_on_submit():
        status = 409
        now = utcnow()
        try:
            new = services.move_seat(s, domain(), patient, booking_id, number_id(form.cohort.data), now=now)
        except services.CohortFull:
            form.cohort.errors.append("That group has just filled up. Your place has not changed. Choose another.")
            options = [c for c in options if c.id != number_id(form.cohort.data)]
        except services.CohortNotFound:
            status = 400
            form.cohort.errors.append("Select one of the groups shown")
        except services.BookingEnded as ended:
            _already_ended(ended)
        except services.CourseStarted:
            # The first session began while the patient was choosing.
            return _started_page(booking, service)
        else:
            audit("seat_moved", patient_id=patient.id,
                  detail=f"booking {booking_id} -> {new.id}, cohort {new.cohort_id}")
            flash(f"You have moved to the new group.{text_note(now)}", "success")
            return redirect(url_for("booking.my_bookings"))
    elif form.is_submitted():
        status = 400
    return render_template("booking/move.html", booking=booking, service=service, options=options, form=form), status


@bp.route("/bookings")
@read_only
@patient_required
def my_bookings():
    patient = current_patient()
    s, now = db_session(), utcnow()
    bookings = services.bookings_for_patient(s, patient)
    return render_template(
        "booking/bookings.html",
        bookings=bookings,
        waiting=[(e, waitlist.place_in_queue(s, e)) for e in waitlist.live_entries_for_patient(s, patient.id)],
        offer_open=lambda entry: waitlist.open_to(domain(), patient, entry.offer_cohort),
        may_be_offered=lambda entry: waitlist.may_be_offered(domain(), patient, entry),
        catalogue=domain().catalogue,
        action_form=ActionForm(),
        now=now,
        finished={b.id for b in bookings if services.course_finished(b.cohort, now=now)},
    )
