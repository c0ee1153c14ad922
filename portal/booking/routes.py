"""Patients choose a service, see its open cohorts and book a seat."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for

from portal.audit.web import audit
from portal.auth.access import current_patient, patient_required
from portal.booking import services
from portal.booking.forms import BookSeatForm
from portal.db import utcnow
from portal.extensions import db_session, domain, read_only

bp = Blueprint("booking", __name__)


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
        cohorts=services.open_cohorts(s, domain(), patient, service, now=utcnow()),
        current=services.active_course_booking(s, patient, service.key),
        patient=patient,
    )


@bp.route("/cohorts/<int:cohort_id>", methods=["GET", "POST"])
@patient_required
def book(cohort_id: int):
    patient = current_patient()
    s = db_session()
    try:
        cohort = services.cohort_for_patient(s, domain(), patient, cohort_id, now=utcnow())
    except services.CohortNotFound:
        abort(404)
    service = domain().catalogue.get(cohort.service_key)
    form = BookSeatForm()
    problem = None
    if form.validate_on_submit():
        try:
            booking = services.book_seat(s, domain(), patient, cohort_id, now=utcnow())
        except services.CohortFull:
            problem = "full"
        except services.AlreadyBooked:
            flash("You already have a place on this course.", "info")
            return redirect(url_for("booking.my_bookings"))
        except services.CohortNotFound:
            abort(404)
        else:
            audit("seat_booked", patient_id=patient.id, detail=f"booking {booking.id}, cohort {cohort_id}")
            flash(f"You are booked on the {service.name}. We have sent you a text to confirm.", "success")
            return redirect(url_for("booking.my_bookings"))
    if problem == "full":
        s.refresh(cohort)
        alternatives = [
            c for c in services.open_cohorts(s, domain(), patient, service, now=utcnow())
            if c.id != cohort.id and c.seats_left > 0
        ]
        return render_template(
            "booking/cohort_full.html", cohort=cohort, service=service, alternatives=alternatives
        ), 409
    return render_template("booking/confirm.html", cohort=cohort, service=service, form=form)


@bp.route("/bookings")
@read_only
@patient_required
def my_bookings():
    patient = current_patient()
    return render_template(
        "booking/bookings.html",
        bookings=services.bookings_for_patient(db_session(), patient),
        catalogue=domain().catalogue,
        now=utcnow(),
    )
