"""Reception records a new referral for a discharged patient (patients.referrals holds the rules).

Only reception and admins, as for registering a patient. A patient who is not discharged has nothing to record:
the page answers 409 and says so, with the way back to their record.
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for

from portal.audit.web import audit, current_actor
from portal.auth.access import registration_staff_required
from portal.dates import london_today
from portal.db import utcnow
from portal.extensions import db_session, domain
from portal.messaging.routes import staff_text_note
from portal.patients import referrals
from portal.patients.identifiers import postcode_district, team_for_postcode
from portal.patients.models import Patient
from portal.patients.web import patient_or_404
from portal.staff.forms import NewReferralForm

bp = Blueprint("staff_referrals", __name__, url_prefix="/staff")


def _not_discharged(patient: Patient):
    return render_template("staff/referral_not_discharged.html", patient=patient), 409


@bp.route("/patients/<int:patient_id>/referral", methods=["GET", "POST"])
@registration_staff_required
def new_referral(patient_id: int):
    patient = patient_or_404(patient_id)
    if not patient.discharged:
        return _not_discharged(patient)
    now = utcnow()
    form = NewReferralForm(domain=domain(), patient=patient, today=london_today(now))
    if form.validate_on_submit():
        try:
            _, ended = referrals.record_new_referral(db_session(), domain(), patient.id, form.referral,
                                                     actor=current_actor(), now=now)
        except referrals.NotDischarged:
            # Someone recorded it first (a double submit, or a colleague): nothing more to do.
            return _not_discharged(patient)
        except referrals.ReferralRefused as refused:
            form[refused.field].errors = [str(refused)]
        else:
            places = f" {ended} waiting-list place{'s' if ended != 1 else ''} from before the discharge ended." \
                if ended else ""
            flash(f"The new referral for {patient.full_name} is recorded: they can book again."
                  f"{staff_text_note(patient.id, now)}{places}", "success")
            return redirect(url_for("staff.patient_record", patient_id=patient.id))
    else:
        audit("patient_record_viewed", patient_id=patient.id, detail="record a new referral")
    return render_template(
        "staff/new_referral.html", form=form, patient=patient, discharged_on=referrals.discharged_on(patient),
        district=postcode_district(patient.postcode),
        postcode_team=domain().teams.get(team_for_postcode(domain().teams, patient.postcode)),
    ), 400 if form.is_submitted() else 200
