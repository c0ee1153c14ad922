"""Staff pages for self-management reading.

Every staff role (facilitators, reception, admins) sees each patient's track and week and what they have
opened and done: on the patient record (``staff/selfcare/_record_section.html``), on a page of its own, and
for a whole cohort. Admins also see the content review list: every item with its review date.
"""

from __future__ import annotations

from flask import Blueprint, abort, render_template
from flask_login import current_user

from portal.audit.web import audit
from portal.auth.access import roles_required, staff_required
from portal.auth.models import Role
from portal.dates import london_today
from portal.db import utcnow
from portal.extensions import db_session, domain, read_only
from portal.patients.models import Patient
from portal.selfcare import services
from portal.selfcare.release import TRACK_LABELS

bp = Blueprint("staff_selfcare", __name__, url_prefix="/staff")
admin_required = roles_required(Role.ADMIN)


@bp.app_template_global("patient_selfcare")
def patient_selfcare(patient: Patient) -> services.PatientSummary | None:
    """For the self-care section of the staff patient record (``staff/selfcare/_record_section.html``),
    which is included with only ``patient`` in hand. Staff only: the record page's own access check and
    audit entry cover it."""
    if not (current_user.is_authenticated and current_user.is_staff):
        return None
    return services.summaries(db_session(), domain(), [patient], now=utcnow())[0]


@bp.route("/patients/<int:patient_id>/self-care")
@staff_required
def patient_progress(patient_id: int):
    patient = db_session().get(Patient, patient_id) if 0 < patient_id < 2**31 else None
    if patient is None:
        abort(404)
    summary = services.summaries(db_session(), domain(), [patient], now=utcnow())[0]
    audit("selfcare_progress_viewed", patient_id=patient.id)
    return render_template("staff/selfcare/patient.html", patient=patient, summary=summary,
                           track_labels=TRACK_LABELS)


@bp.route("/courses/<int:cohort_id>/self-care")
@staff_required
def cohort_progress(cohort_id: int):
    found = services.cohort_patients(db_session(), cohort_id)
    if found is None:
        abort(404)
    cohort, patients = found
    rows = services.summaries(db_session(), domain(), patients, now=utcnow())
    audit("course_selfcare_viewed", detail=f"cohort {cohort.id}: {len(rows)} patients")
    return render_template("staff/selfcare/cohort.html", cohort=cohort, rows=rows,
                           service=domain().catalogue.get(cohort.service_key))


@bp.route("/admin/self-care-content")
@read_only
@admin_required
def content_review():
    items = services.content_review(today=london_today(utcnow()))
    return render_template("staff/selfcare/content.html", items=items, track_labels=TRACK_LABELS,
                           overdue=sum(i.overdue for i in items))


@bp.route("/admin/self-care-content/<track>/<slug>")
@read_only
@admin_required
def preview(track: str, slug: str):
    """One item as patients read it, for its review."""
    week = services.week_from_slug(slug)
    item = services.reading(track, week) if week is not None else None
    if item is None:
        abort(404)
    review = services.review_item(item, today=london_today(utcnow()))
    return render_template("staff/selfcare/preview.html", review=review, track_label=TRACK_LABELS.get(track, track))
