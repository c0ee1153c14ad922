"""The patient's home page."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, url_for
from flask_login import current_user

from portal.auth.access import current_patient, patient_required
from portal.booking import services as booking
from portal.db import utcnow
from portal.extensions import db_session, domain, read_only
from portal.selfcare.services import current_reading

bp = Blueprint("patients", __name__)


@bp.route("/")
@read_only
def home():
    if not current_user.is_authenticated:
        return redirect(url_for("auth.sign_in"))
    if current_user.is_staff:
        return redirect(url_for("staff.dashboard"))
    return _patient_home()


@patient_required
def _patient_home():
    patient = current_patient()
    now = utcnow()
    upcoming = booking.next_session(db_session(), patient, now=now)
    activated = current_user.created_at.date()
    reading = current_reading(tier=patient.tier, started=activated, today=now.date())
    course = domain().catalogue.course_for_tier(patient.tier)
    return render_template(
        "patients/home.html",
        patient=patient,
        upcoming=upcoming,
        reading=reading,
        course=course,
        service_name=lambda key: domain().catalogue.get(key).name,
    )


@bp.route("/reading/<slug>")
@read_only
@patient_required
def reading(slug: str):
    patient = current_patient()
    now = utcnow()
    item = current_reading(tier=patient.tier, started=current_user.created_at.date(), today=now.date())
    if item is None or item.slug != slug:
        return render_template("errors/404.html"), 404
    return render_template("patients/reading.html", reading=item)
