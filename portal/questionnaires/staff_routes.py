"""Staff views of questionnaires: scores over time (every staff role may read) and the urgent flags that
clinicians (facilitators) and admins acknowledge with a note of the action they took. Every view is audited."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user

from portal.audit.web import audit
from portal.auth.access import roles_required, staff_required
from portal.auth.models import Role
from portal.db import utcnow
from portal.extensions import db_session
from portal.patients.models import Patient
from portal.questionnaires import services
from portal.questionnaires.forms import AcknowledgeForm
from portal.questionnaires.instruments import OCCASIONS
from portal.questionnaires.models import FlagAlreadyAcknowledged, UrgentFlag

bp = Blueprint("questionnaires_staff", __name__, url_prefix="/staff")

CLINICIAN_ROLES = (Role.CLINICIAN, Role.FACILITATOR, Role.ADMIN)
clinician_required = roles_required(*CLINICIAN_ROLES)


def _is_clinician() -> bool:
    return current_user.is_authenticated and current_user.role in {r.value for r in CLINICIAN_ROLES}


@bp.app_template_global("patient_questionnaires")
def patient_questionnaires(patient: Patient) -> dict:
    """For the questionnaires section of the staff patient record (``questionnaires/_record_section.html``),
    which is included with only ``patient`` in hand."""
    s = db_session()
    return {
        "history": services.score_history(s, patient.id),
        "open_flags": [f for f in services.flags_for_patient(s, patient.id) if f.is_open],
        "can_acknowledge": _is_clinician(),
    }


@bp.app_template_global("open_urgent_flag_count")
def open_urgent_flag_count() -> int | None:
    """Open urgent flags, for the staff home; None for staff who do not act on them (reception)."""
    return services.count_open_flags(db_session()) if _is_clinician() else None


@bp.route("/urgent")
@clinician_required
def urgent_flags():
    s = db_session()
    flags = services.open_flags(s)
    audit("urgent_flags_viewed", detail=f"{len(flags)} open")
    return render_template("questionnaires/staff/urgent.html", flags=flags,
                           acknowledged=services.recently_acknowledged(s))


def _flag(flag_id: int) -> UrgentFlag:
    flag = db_session().get(UrgentFlag, flag_id) if 0 < flag_id < 2**31 else None
    if flag is None:
        abort(404)
    return flag


@bp.route("/urgent/<int:flag_id>", methods=["GET", "POST"])
@clinician_required
def acknowledge(flag_id: int):
    flag = _flag(flag_id)
    form = AcknowledgeForm()
    if form.validate_on_submit():
        try:
            services.acknowledge_flag(db_session(), flag.id, by=current_user, note=form.note.data, now=utcnow())
        except FlagAlreadyAcknowledged:
            flash("Someone has already acknowledged this flag.", "info")
            return redirect(url_for("questionnaires_staff.urgent_flags"))
        # The note is clinical free text: it stays on the flag, not in the trail.
        audit("urgent_flag_acknowledged", patient_id=flag.patient_id, detail=f"flag {flag.id}")
        flash(f"Urgent flag for {flag.patient.full_name} acknowledged.", "success")
        return redirect(url_for("questionnaires_staff.urgent_flags"))
    audit("urgent_flag_viewed", patient_id=flag.patient_id, detail=f"flag {flag.id}")
    return render_template("questionnaires/staff/acknowledge.html", flag=flag, form=form), \
        400 if form.is_submitted() else 200


@bp.route("/patients/<int:patient_id>/questionnaires")
@staff_required
def patient_scores(patient_id: int):
    s = db_session()
    patient = s.get(Patient, patient_id) if 0 < patient_id < 2**31 else None
    if patient is None:
        abort(404)
    audit("questionnaire_scores_viewed", patient_id=patient.id)
    return render_template(
        "questionnaires/staff/scores.html", patient=patient, history=services.score_history(s, patient.id),
        flags=services.flags_for_patient(s, patient.id), answer_labels=services.answer_labels,
        can_acknowledge=_is_clinician(), occasions=OCCASIONS,
    )
