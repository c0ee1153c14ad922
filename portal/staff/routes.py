"""Staff screens. Thin: each view validates a form and calls the feature services."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for
from flask_login import current_user

from portal.audit.web import audit
from portal.auth import services as auth
from portal.auth.access import registration_staff_required, staff_required
from portal.db import utcnow
from portal.extensions import db_session, domain
from portal.messaging.services import messages_for_patient
from portal.patients import services as patients
from portal.patients.models import Patient
from portal.staff.forms import RegisterPatientForm

bp = Blueprint("staff", __name__, url_prefix="/staff")


@bp.route("")
@staff_required
def dashboard():
    return render_template("staff/dashboard.html", role=current_user.role)


@bp.route("/patients")
@staff_required
def patient_list():
    audit("patient_list_viewed")
    return render_template("staff/patients.html", patients=patients.list_patients(db_session()))


@bp.route("/patients/new", methods=["GET", "POST"])
@registration_staff_required
def register_patient():
    form = RegisterPatientForm(
        domain=domain(), allow_drama_range=not current_app.config["PRODUCTION"]
    )
    duplicate_id = None
    if form.validate_on_submit():
        s = db_session()
        try:
            patient = patients.register_patient(s, domain(), form.registration())
        except patients.DuplicateNhsNumber as exc:
            duplicate_id = exc.existing_id
            form.nhs_number.errors.append("A patient with this NHS number is already registered")
        else:
            auth.invite_patient(
                s, domain(), patient, base_url=current_app.config["PUBLIC_BASE_URL"], now=utcnow()
            )
            audit("patient_registered", patient_id=patient.id)
            audit("invitation_sent", patient_id=patient.id)
            flash(f"{patient.full_name} is registered. We have texted them a link to set up their account.",
                  "success")
            return redirect(url_for("staff.patient_record", patient_id=patient.id))
    return render_template("staff/register_patient.html", form=form, duplicate_id=duplicate_id)


@bp.route("/patients/<int:patient_id>")
@staff_required
def patient_record(patient_id: int):
    s = db_session()
    patient = s.get(Patient, patient_id)
    if patient is None:
        abort(404)
    audit("patient_record_viewed", patient_id=patient.id)
    return render_template(
        "staff/patient_record.html",
        patient=patient,
        team=domain().teams.get(patient.team),
        messages=messages_for_patient(s, patient.id),
    )
