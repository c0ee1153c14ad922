"""Staff screens. Thin: each view validates a form and calls the feature services."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from portal.attendance.models import MARKS, REVIEW_ACTIONS
from portal.audit.web import audit
from portal.auth import services as auth
from portal.auth.access import registration_staff_required, staff_required
from portal.auth.models import Role
from portal.booking.models import WaitlistEntry
from portal.dates import InvalidDate, london_today, parse_date_parts
from portal.db import utcnow
from portal.extensions import db_session, domain
from portal.messaging.routes import texted_note
from portal.patients import onboarding
from portal.patients import services as patients
from portal.patients.identifiers import postcode_district
from portal.patients.models import Patient, name_key
from portal.patients.search import SearchInputError, search_patients
from portal.patients.web import patient_or_404
from portal.plain_text import number_id
from portal.staff import record as desk_record
from portal.staff.desk_forms import PatientSearchForm
from portal.staff.forms import ActionForm, AssignTeamForm, RegisterPatientForm
from portal.staff.messages import STATUSES
from portal.staff.retriage_wording import retriage_confirmation

bp = Blueprint("staff", __name__, url_prefix="/staff")

# Who may register patients, assign teams and resend invitations. Facilitators may read records only.
REGISTRATION_ROLES = (Role.RECEPTION.value, Role.ADMIN.value)
# A second "Resend invitation" within this time is the button pressed twice, and sends nothing.
DOUBLE_PRESS = dt.timedelta(minutes=1)


@bp.route("")
@staff_required
def dashboard():
    can_register = current_user.role in REGISTRATION_ROLES
    waiting = patients.count_needing_a_team(db_session()) if can_register else 0
    return render_template("staff/dashboard.html", role=current_user.role, needs_a_team=waiting)


@bp.route("/patients")
@staff_required
def patient_list():
    form = PatientSearchForm(request.args)
    results = None
    status = 200
    if "q" in request.args:
        try:
            results = search_patients(db_session(), form.q.data or "")
        except SearchInputError as problem:
            form.q.errors = [str(problem)]
            status = 400
        else:
            # What kind of search and how many found: never the text typed, which may be an NHS number.
            audit("patient_search", detail=f"{results.kind}: {len(results)}{'+' if results.more else ''} found")
    if results is None:
        audit("patient_list_viewed")
    recent = patients.list_patients(db_session()) if results is None and status == 200 else []
    return render_template("staff/patients.html", form=form, results=results, patients=recent), status


@bp.route("/patients/new", methods=["GET", "POST"])
@registration_staff_required
def register_patient():
    now = utcnow()
    form = RegisterPatientForm(
        domain=domain(), allow_drama_range=not current_app.config["PRODUCTION"], today=london_today(now)
    )
    s = db_session()
    duplicate_id = None
    submitted = form.validate_on_submit()
    # Look for the NHS number first, so nobody is asked to justify a warning for a patient already here.
    digits = form.nhs_number_digits if form.is_submitted() else None
    existing = patients.find_by_nhs_number(s, digits) if digits else None
    # "Update the existing record" names the record it was offered for: another NHS number typed since then
    # is a new duplicate, offered afresh.
    updating = existing is not None and number_id(request.form.get("update_existing")) == existing.id
    # Newer details would leave a discharged patient discharged: their way back is a new referral on the record
    # (staff.referrals), which the message below points to. The form offers no update for them.
    updating = updating and not existing.discharged
    if updating and submitted:
        try:
            update = onboarding.update_from_triage(
                s, domain(), existing, form.registration, base_url=current_app.config["PUBLIC_BASE_URL"], now=now)
        except patients.SharedContact as problem:
            form[problem.field].errors = [str(problem)]
        else:
            _audit_update(existing, update)
            for message, category in retriage_confirmation(existing, update):
                flash(message, category)
            return redirect(url_for("staff.patient_record", patient_id=existing.id))
    if existing is not None:
        duplicate_id = existing.id
        if not updating:
            form.nhs_number.errors = [_already_registered(existing)]
            form.warnings = {}
    elif submitted:
        try:
            patient = onboarding.admit(
                s, domain(), form.registration, base_url=current_app.config["PUBLIC_BASE_URL"], now=now
            )
        except patients.DuplicateNhsNumber as exc:
            duplicate_id = exc.existing_id
            form.nhs_number.errors = [_already_registered(s.get(Patient, duplicate_id))]
        except patients.SharedContact as problem:
            form[problem.field].errors = [str(problem)]
        else:
            audit("patient_registered", patient_id=patient.id)
            if patient.warning_codes:
                # The codes only: the reason is free text, kept on the record, not in the trail.
                audit("eligibility_warnings_overridden", patient_id=patient.id,
                      detail=", ".join(patient.warning_codes))
            audit("invitation_sent", patient_id=patient.id)
            flash(f"{patient.full_name} is registered. We have texted them a link to set up their account.",
                  "success")
            return redirect(url_for("staff.patient_record", patient_id=patient.id))
    # Shown again after a post: something was refused, or a warning wants a reason.
    # A discharged patient's NHS number: the way back is a new referral on their record, not a second record.
    duplicate = s.get(Patient, duplicate_id) if duplicate_id else None
    return render_template("staff/register_patient.html", form=form, duplicate=duplicate,
                           not_the_same=_not_the_same(duplicate, form) if duplicate else []), \
        400 if form.is_submitted() else 200


def _not_the_same(existing: Patient, form: RegisterPatientForm) -> list[str]:
    """What typed on the form names someone other than the record with that NHS number: "name", "date of birth".
    "Update the existing record" would write the typed name and date of birth over the record's, so a mistyped NHS
    number that happens to be another patient's would quietly rename that patient; reception is told first."""
    differ = []
    typed = (name_key(form.given_name.data or ""), name_key(form.family_name.data or ""))
    if any(typed) and typed != (name_key(existing.given_name), name_key(existing.family_name)):
        differ.append("name")
    try:
        # The form's checks (patients.intake) read the typed parts and leave the field's data unset.
        born = parse_date_parts(form.date_of_birth.raw, label="Date of birth")
    except InvalidDate:
        born = None
    if born is not None and born != existing.date_of_birth:
        differ.append("date of birth")
    return differ


def _audit_update(patient: Patient, update: onboarding.Update) -> None:
    if not update.changed:
        return
    audit("patient_updated", patient_id=patient.id, detail=f"registration form: {', '.join(update.changed)}")
    if "eligibility_warnings" in update.changed:
        audit("eligibility_warnings_overridden", patient_id=patient.id, detail=", ".join(patient.warning_codes))
    if update.reinvited:
        audit("invitation_sent", patient_id=patient.id, detail="new mobile")
    _audit_closed(patient, update.closed, why=f"now Tier {patient.tier}")


def _audit_closed(patient: Patient, closed: list[WaitlistEntry], *, why: str) -> None:
    for entry in closed:
        audit("waitlist_closed_on_retriage", patient_id=patient.id,
              detail=f"entry {entry.id}, {entry.service_key}; {why}")


def _already_registered(existing: Patient | None) -> str:
    if existing is not None and existing.discharged:
        return ("A patient with this NHS number is already registered and was discharged. Record the new referral "
                "on their record instead")
    return "A patient with this NHS number is already registered"


@bp.route("/patients/<int:patient_id>")
@staff_required
def patient_record(patient_id: int):
    s = db_session()
    patient = patient_or_404(patient_id)
    audit("patient_record_viewed", patient_id=patient.id)
    now = utcnow()
    return render_template(
        "staff/patient_record.html",
        patient=patient,
        team=domain().teams.get(patient.team),
        record=desk_record.patient_record(s, domain(), patient, now=now),
        now=now,
        statuses=STATUSES,
        marks=MARKS,
        review_actions=REVIEW_ACTIONS,
        invitation=onboarding.invitation_status(s, patient.id, now=now),
        can_act=current_user.role in REGISTRATION_ROLES,
        action_form=ActionForm(),
    )


@bp.route("/patients/<int:patient_id>/invitation", methods=["POST"])
@registration_staff_required
def resend_invitation(patient_id: int):
    patient = patient_or_404(patient_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    now = utcnow()
    # invite_patient revokes every earlier link (a locked one too), so the new link starts unlocked. A usable
    # link made within the last minute stands: the button pressed twice, not a patient on the phone saying
    # the text has not come.
    if auth.invite_patient(db_session(), domain(), patient, base_url=current_app.config["PUBLIC_BASE_URL"],
                           now=now, unless_sent_since=now - DOUBLE_PRESS) is None:
        flash(f"A new link went to {patient.full_name} less than a minute ago. Nothing was sent again.", "info")
        return redirect(url_for("staff.patient_record", patient_id=patient.id))
    audit("invitation_resent", patient_id=patient.id)
    if patient.may_text:
        flash(f"We have texted {patient.full_name} a new link. Earlier links no longer work.", "success")
    else:
        flash(f"A new link is ready, but {patient.full_name} does not accept texts, so none was sent. "
              "Earlier links no longer work.", "success")
    return redirect(url_for("staff.patient_record", patient_id=patient.id))


@bp.route("/queues/needs-a-team")
@registration_staff_required
def needs_a_team():
    waiting = patients.patients_needing_a_team(db_session())
    audit("needs_a_team_queue_viewed", detail=f"{len(waiting)} patients")
    return render_template("staff/needs_a_team.html", patients=waiting)


@bp.route("/patients/<int:patient_id>/team", methods=["GET", "POST"])
@registration_staff_required
def assign_team(patient_id: int):
    patient = patient_or_404(patient_id)
    if patient.tier != 2:
        flash("Only Tier 2 patients have a team.", "warning")
        return redirect(url_for("staff.patient_record", patient_id=patient.id))
    form = AssignTeamForm(domain=domain(), data={"team": patient.team or ""})
    if form.validate_on_submit():
        moved = onboarding.move_to_team(db_session(), domain(), patient, form.team.data, now=utcnow())
        previous = moved.previous
        audit("team_assigned", patient_id=patient.id, detail=f"{previous or 'no team'} -> {patient.team}")
        _audit_closed(patient, moved.closed, why=f"now with {patient.team}")
        team = domain().teams.get(patient.team)
        told = f"{patient.full_name} is now with the {team.name}."
        if moved.closed:
            told += " They are off the waiting list for a group of their old team." + texted_note(patient.may_text)
        flash(told, "success")
        return redirect(url_for("staff.needs_a_team") if previous is None else
                        url_for("staff.patient_record", patient_id=patient.id))
    audit("patient_record_viewed", patient_id=patient.id, detail="assign a team")
    district = postcode_district(patient.postcode)
    return render_template("staff/assign_team.html", form=form, patient=patient, district=district,
                           current=domain().teams.get(patient.team)), 400 if form.is_submitted() else 200
