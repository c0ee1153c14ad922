"""Facilitators' and clinicians' screens: today's sessions, group registers, 1:1 day lists and the
did-not-attend review queue. Any clinical staff member may read a register; only the cohort's facilitators (or
the clinic's clinician) and admins may mark it."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user

from portal.attendance import review, services
from portal.attendance.forms import DecisionForm, marks_form
from portal.attendance.models import MARKS, REVIEW_ACTIONS
from portal.audit.web import audit, current_actor
from portal.auth.access import CLINICAL_ROLES, clinical_staff_required
from portal.auth.models import Role
from portal.db import utcnow
from portal.extensions import db_session, domain, read_only
from portal.templating import local_date, local_datetime, local_time

bp = Blueprint("attendance", __name__, url_prefix="/staff")

@bp.app_template_global("open_dna_review_count")
def open_dna_review_count() -> int | None:
    """Open did-not-attend reviews, for the staff home; None for staff who do not decide them (reception)."""
    if not (current_user.is_authenticated and current_user.role in CLINICAL_ROLES):
        return None
    return review.count_open(db_session())


def refusal_text(refusal: services.Refusal, what: str) -> str:
    """Why marks cannot be saved, in words for staff."""
    if refusal.kind == "cancelled":
        return f"This {what} was cancelled, so its marks cannot be changed."
    if refusal.kind == "mark_not_yet":
        return (f"{MARKS[refusal.mark]} can be marked once the {what} has started, "
                f"at {local_time(refusal.opens_at)}.")
    if refusal.kind == "not_yet":
        return f"This {what} has not started yet. You can mark it from {local_datetime(refusal.opens_at)}."
    return (f"Marks for this {what} can no longer be changed: corrections were allowed until the end of "
            f"{local_date(refusal.last_day)}.")


def _saved_message(saved: services.Saved) -> str:
    changed = len(saved.changes)
    said = f"{changed} mark{'s' if changed != 1 else ''} saved." if changed else "No marks changed."
    opened = len(saved.reviews_opened)
    if opened:
        said += (f" {opened} patient{'s have' if opened != 1 else ' has'} reached the did-not-attend threshold and "
                 f"{'are' if opened != 1 else 'is'} in the review queue.")
    return said


@bp.route("/today")
@read_only
@clinical_staff_required
def today():
    found = services.sessions_today(db_session(), current_user, now=utcnow())
    return render_template("attendance/today.html", today=found, everyone=services.is_admin(current_user))


@bp.route("/registers/<int:cohort_session_id>", methods=["GET", "POST"])
@clinical_staff_required
def register(cohort_session_id: int):
    s, now = db_session(), utcnow()
    try:
        found = services.group_register(s, domain(), cohort_session_id, now=now)
    except services.NotFound:
        abort(404)
    cohort_session = found.cohort_session
    may_mark = services.may_mark_register(current_user, found.cohort)
    here = url_for("attendance.register", cohort_session_id=cohort_session.id)
    form = marks_form(found.rows if may_mark else [], now=now)
    if form.is_submitted():
        if not may_mark:
            abort(403)
        if found.refusal is not None:
            flash(refusal_text(found.refusal, "session"), "warning")
            return redirect(here)
    if form.validate_on_submit():
        try:
            saved = services.save_register(s, domain(), cohort_session.id, form.marks(), actor=current_actor(),
                                           now=now)
        except services.MarkingRefused as refused:
            flash(refusal_text(refused.refusal, "session"), "warning")
        else:
            flash(_saved_message(saved), "success")
        return redirect(here)
    audit("register_viewed", detail=f"cohort {found.cohort.id} session {cohort_session.number} "
                                    f"({cohort_session.id}): {len(found.rows)} patients")
    service = domain().catalogue.get(found.cohort.service_key)
    return render_template(
        "attendance/register.html", register=found, form=form, may_mark=may_mark, marks=MARKS,
        service=service, refusal=refusal_text(found.refusal, "session") if found.refusal else None,
    ), 400 if form.errors else 200


# Day lists exist for these days only: outside them is no clinic (and 0001-01-01 or 9999-12-31 has no day before
# or after to link to).
FIRST_DAY, LAST_DAY = dt.date(2000, 1, 1), dt.date(2100, 12, 31)


def _day(value: str) -> dt.date:
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        abort(404)
    if not FIRST_DAY <= day <= LAST_DAY:
        abort(404)
    return day


@bp.route("/clinics/<int:clinician_id>/<day>", methods=["GET", "POST"])
@clinical_staff_required
def day_list(clinician_id: int, day: str):
    s, now = db_session(), utcnow()
    when = _day(day)
    try:
        found = services.day_list(s, domain(), clinician_id, when, now=now)
    except services.NotFound:
        abort(404)
    may_mark = services.may_mark_clinic(current_user, found.clinician.id)
    here = url_for("attendance.day_list", clinician_id=found.clinician.id, day=when.isoformat())
    form = marks_form(found.rows if may_mark else [], now=now)
    if form.is_submitted():
        if not may_mark:
            abort(403)
        if not found.open_rows:
            flash("None of these appointments can be marked now.", "warning")
            return redirect(here)
    if form.validate_on_submit():
        try:
            saved = services.save_day_list(s, domain(), found.clinician.id, when, form.marks(),
                                           actor=current_actor(), now=now)
        except services.MarkingRefused as refused:
            row = refused.row
            flash(f"{row.patient.full_name} at {local_time(row.starts_at)}: "
                  f"{refusal_text(refused.refusal, 'appointment')} No marks were saved.", "warning")
        else:
            flash(_saved_message(saved), "success")
        return redirect(here)
    audit("day_list_viewed", detail=f"clinician {found.clinician.id} {when.isoformat()}: "
                                    f"{len(found.rows)} appointments")
    return render_template(
        "attendance/day_list.html", day_list=found, form=form, may_mark=may_mark, marks=MARKS,
        catalogue=domain().catalogue, refusal_text=refusal_text,
        previous_day=(when - dt.timedelta(days=1)).isoformat(), next_day=(when + dt.timedelta(days=1)).isoformat(),
    ), 400 if form.errors else 200


@bp.route("/dna-reviews")
@clinical_staff_required
def review_queue():
    reviews = review.open_reviews(db_session())
    audit("dna_reviews_viewed", detail=f"{len(reviews)} open")
    return render_template("attendance/reviews.html", reviews=reviews, catalogue=domain().catalogue)


@bp.route("/dna-reviews/<int:review_id>", methods=["GET", "POST"])
@clinical_staff_required
def review_page(review_id: int):
    s = db_session()
    try:
        found = review.get_review(s, review_id)
    except review.ReviewNotFound:
        abort(404)
    form = DecisionForm()
    if form.is_submitted() and not found.is_open:
        flash("This review is already closed: someone decided it, or the marks behind it were corrected.", "info")
        return redirect(url_for("attendance.review_page", review_id=found.id))
    if form.validate_on_submit():
        try:
            review.decide(s, found.id, form.action.data, form.note.data, actor=current_actor(), now=utcnow())
        except review.ReviewClosed:
            flash("This review is already closed: someone decided it, or the marks behind it were corrected.", "info")
            return redirect(url_for("attendance.review_page", review_id=found.id))
        patient = found.patient
        flash(f"{REVIEW_ACTIONS[form.action.data]}: recorded for {patient.full_name}."
              + (" The review stays open." if form.action.data == "contacted" else ""), "success")
        if form.action.data == "contacted":
            return redirect(url_for("attendance.review_page", review_id=found.id))
        return redirect(url_for("attendance.review_queue"))
    audit("dna_review_viewed", patient_id=found.patient_id, detail=f"review {found.id}")
    seat = review.active_seat(s, found)
    return render_template(
        "attendance/review.html", review=found, form=form, catalogue=domain().catalogue, marks=MARKS,
        review_actions=REVIEW_ACTIONS,
        history=services.attendance_history(s, found.patient_id),
        summary=services.attendance_summary(s, found.patient_id),
        past_reviews=[r for r in review.review_history(s, found.patient_id) if r.id != found.id],
        seat=seat, can_move=current_user.role == Role.ADMIN.value,
    ), 400 if form.errors else 200
