"""Staff pages to run courses: create a cohort, see its sessions and roster, change its facilitators, change its
number of places or cancel it (admins), move or cancel a session."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from portal.appointments import availability
from portal.audit.web import audit
from portal.auth.access import CLINICAL_ROLES, roles_required, staff_required
from portal.auth.models import Role
from portal.booking import cohort_changes, services, sessions, waitlist
from portal.booking.models import Cohort, CohortSession
from portal.db import utcnow
from portal.extensions import db_session, domain, read_only
from portal.staff.course_forms import (
    CAPACITY,
    CancelCohortForm,
    CancelSessionForm,
    CapacityForm,
    CohortFilterForm,
    CreateCohortForm,
    FacilitatorsForm,
    MoveSessionForm,
)
from portal.templating import local_datetime

bp = Blueprint("staff_courses", __name__, url_prefix="/staff")

# Every staff role sees the courses and their rosters; reception and admin also move and cancel sessions.
CHANGE_ROLES = (Role.RECEPTION.value, Role.ADMIN.value)
session_staff_required = roles_required(Role.RECEPTION, Role.ADMIN)
admin_required = roles_required(Role.ADMIN)


def planned_times(cohort: Cohort) -> tuple[dt.datetime, dt.datetime]:
    """The cohort's weekly slot as first planned (its sessions may have moved since)."""
    start = dt.datetime.combine(cohort.first_date, cohort.start_time, tzinfo=ZoneInfo(cohort.timezone))
    return start, start + dt.timedelta(minutes=cohort.session_minutes)


@bp.route("/courses")
@read_only
@staff_required
def cohort_list():
    form = CohortFilterForm(request.args, domain=domain())
    form.validate()
    cohorts = sessions.cohorts_for_staff(
        db_session(),
        service_key=None if form.service.errors else form.service.data or None,
        status=None if form.status.errors else form.status.data or None,
    )
    return render_template("staff/courses/list.html", form=form, cohorts=cohorts, planned_times=planned_times,
                           can_create=current_user.role == Role.ADMIN.value)


@bp.route("/courses/new", methods=["GET", "POST"])
@admin_required
def create_cohort():
    s = db_session()
    defaults = None if request.method == "POST" else {"start_time": "18:00", "session_minutes": "120",
                                                      "capacity": "12"}
    now = utcnow()
    form = CreateCohortForm(data=defaults, domain=domain(), venues=sessions.venues(s),
                            facilitators=sessions.facilitators(s), now=now)
    if form.validate_on_submit():
        try:
            cohort = services.create_cohort(
                s, domain(),
                service_key=form.service.data,
                team=form.team.data,
                venue=form.chosen_venue,
                first_date=form.first_date.data,
                start_time=form.time,
                session_minutes=form.minutes,
                capacity=form.places,
                online_link=form.online_link.data,
                facilitators=form.chosen_facilitators,
                others=availability.clinic_check(domain()),
            )
        except services.DuplicateCohort as duplicate:
            form.start_time.errors = [str(duplicate)]
        except services.CohortClashes as refused:
            _show_clashes(form, refused.clashes)
        else:
            # Patients waiting for any group of the course come before anyone who finds the new group first.
            return _created(cohort, offered=waitlist.offer_free_seats(s, domain(), cohort, now=now))
    return render_template("staff/courses/new.html", form=form, has_venues=bool(form.venue.choices[1:])), \
        400 if form.is_submitted() else 200


def _created(cohort: Cohort, *, offered: int):
    audit("cohort_created", detail=f"cohort {cohort.id}: {cohort.service_key}"
                                   f"{' (' + cohort.team + ')' if cohort.team else ''} from {cohort.first_date}"
                                   f"{f', {offered} offered to the waiting list' if offered else ''}")
    service = domain().catalogue.get(cohort.service_key)
    told = f"The {service.name} starting {local_datetime(cohort.first_session.starts_at)} is ready to book."
    if offered:
        until = waitlist.offers_held_until(db_session(), cohort.id)
        told += (f" {offered} of its places {'are' if offered != 1 else 'is'} offered to patients waiting for any "
                 f"group of this course, held for them until {local_datetime(until)}.")
    flash(told, "success")
    return redirect(url_for("staff_courses.cohort_page", cohort_id=cohort.id))


def _show_clashes(form: CreateCohortForm, found: list[sessions.Clash]) -> None:
    """Each clash of the planned sessions (with running groups, or else with weekly clinics) next to its field."""
    advice = {"venue": "Choose another venue, date or time",
              "facilitators": "Choose other facilitators, or another date or time"}
    for clash in found:
        form[clash.field].errors = [*form[clash.field].errors, f"{clash.message}. {advice[clash.field]}"]


@bp.route("/courses/<int:cohort_id>")
@staff_required
def cohort_page(cohort_id: int):
    try:
        found = sessions.cohort_with_roster(db_session(), cohort_id)
    except sessions.CourseNotFound:
        abort(404)
    cohort = found.cohort
    audit("course_roster_viewed", detail=f"cohort {cohort.id}: {len(found.roster)} patients")
    now = utcnow()
    admin = current_user.role == Role.ADMIN.value
    return render_template(
        "staff/courses/cohort.html",
        cohort=cohort,
        roster=found.roster,
        held_offers=found.held_offers,
        service=domain().catalogue.get(cohort.service_key),
        team=domain().teams.get(cohort.team),
        can_change=current_user.role in CHANGE_ROLES,
        reads_registers=current_user.role in CLINICAL_ROLES,
        planned=planned_times(cohort),
        now=now,
        can_change_places=admin and cohort_changes.capacity_refusal(cohort, now=now) is None,
        can_cancel=admin and cohort.status != "cancelled" and cohort_changes.cancel_refusal(cohort, now=now) is None,
    )


@bp.route("/courses/<int:cohort_id>/facilitators", methods=["GET", "POST"])
@session_staff_required
def change_facilitators(cohort_id: int):
    s = db_session()
    try:
        cohort = sessions.cohort_to_staff(s, cohort_id)
    except sessions.CourseNotFound:
        abort(404)
    ticked = None if request.method == "POST" else {"facilitators": [str(u.id) for u in cohort.facilitators]}
    form = FacilitatorsForm(data=ticked, facilitators=sessions.facilitators(s), current=cohort.facilitators)
    if form.validate_on_submit():
        try:
            change = sessions.set_facilitators(s, cohort, form.chosen_facilitators, now=utcnow(),
                                               others=availability.clinic_check(domain()))
        except sessions.SessionChangeRefused as refused:
            form[refused.field].errors = [str(refused)]
        else:
            if change:
                audit("cohort_facilitators_changed",
                      detail=f"cohort {cohort.id}: added {', '.join(change.added) or 'nobody'};"
                             f" removed {', '.join(change.removed) or 'nobody'}")
                flash("The facilitators are saved.", "success")
            else:
                flash("The facilitators were already as you chose: nothing changed.", "info")
            return redirect(url_for("staff_courses.cohort_page", cohort_id=cohort.id))
    return render_template("staff/courses/facilitators.html", form=form, cohort=cohort,
                           service=domain().catalogue.get(cohort.service_key)), 400 if form.is_submitted() else 200


def _session_or_404(cohort_id: int, session_id: int) -> CohortSession:
    try:
        return sessions.session_in_cohort(db_session(), cohort_id, session_id)
    except sessions.CourseNotFound:
        abort(404)


def _texted(change: sessions.SessionChange) -> str:
    return _texted_words(change.patients_booked, change.texts_queued)


def _texted_words(booked: int, queued: int) -> str:
    """What the flash says about the texts to booked patients: staff phone anyone who does not accept texts."""
    if booked == 0:
        return "No patients are booked, so nobody was texted."
    said = f"We have texted {queued} patient{'s' if queued != 1 else ''}."
    missed = booked - queued
    if missed:
        said += f" {missed} booked patient{'s do' if missed != 1 else ' does'} not accept texts: phone them."
    return said


def _session_page(template: str, form, cohort_session: CohortSession):
    cohort = cohort_session.cohort
    return render_template(
        template,
        form=form,
        cohort=cohort,
        cohort_session=cohort_session,
        service=domain().catalogue.get(cohort.service_key),
        booked=sessions.patients_booked(db_session(), cohort.id),
        started=cohort_session.starts_at <= utcnow(),
    ), 400 if form.is_submitted() else 200


def _audit_cleared(cohort_session: CohortSession, change: sessions.SessionChange, how: str) -> None:
    for patient_id, mark in change.marks_cleared:
        audit("attendance_cleared", patient_id=patient_id,
              detail=f"cohort {cohort_session.cohort_id} session {cohort_session.number} ({cohort_session.id}): "
                     f"{mark} -> not marked (session {how})")


@bp.route("/courses/<int:cohort_id>/sessions/<int:session_id>/move", methods=["GET", "POST"])
@session_staff_required
def move_session(cohort_id: int, session_id: int):
    cohort_session = _session_or_404(cohort_id, session_id)
    # The current start time, so a move to another day at the same time needs only the date.
    local_start = cohort_session.starts_at.astimezone(ZoneInfo(cohort_session.cohort.timezone))
    form = MoveSessionForm(data=None if request.method == "POST" else {"time": f"{local_start:%H:%M}"})
    if form.validate_on_submit():
        try:
            change = sessions.move_session(
                db_session(), domain(), cohort_session, new_date=form.date.data, new_time=form.new_time,
                reason=form.reason.data, now=utcnow(), others=availability.clinic_check(domain()),
            )
        except sessions.SessionChangeRefused as refused:
            form[refused.field].errors = [str(refused)]
        else:
            new_start = local_datetime(cohort_session.starts_at)
            _audit_cleared(cohort_session, change, "moved")
            if change.changed:
                audit("session_moved", detail=f"cohort {cohort_id} session {cohort_session.number}: "
                                              f"{change.previous_start.isoformat()} -> "
                                              f"{cohort_session.starts_at.isoformat()}, {change.texts_queued} texts")
                flash(f"Session {cohort_session.number} has moved to {new_start}. {_texted(change)}", "success")
            else:
                flash(f"Session {cohort_session.number} had already moved to {new_start}. Nobody was texted again.",
                      "info")
            return redirect(url_for("staff_courses.cohort_page", cohort_id=cohort_id))
    return _session_page("staff/courses/move_session.html", form, cohort_session)


@bp.route("/courses/<int:cohort_id>/sessions/<int:session_id>/cancel", methods=["GET", "POST"])
@session_staff_required
def cancel_session(cohort_id: int, session_id: int):
    cohort_session = _session_or_404(cohort_id, session_id)
    form = CancelSessionForm()
    if form.validate_on_submit():
        try:
            change = sessions.cancel_session(db_session(), domain(), cohort_session, reason=form.reason.data,
                                             now=utcnow())
        except sessions.SessionChangeRefused as refused:
            form[refused.field].errors = [str(refused)]
        else:
            when = local_datetime(cohort_session.starts_at)
            _audit_cleared(cohort_session, change, "cancelled")
            if change.changed:
                audit("session_cancelled", detail=f"cohort {cohort_id} session {cohort_session.number} "
                                                  f"({change.previous_start.isoformat()}), {change.texts_queued} texts")
                flash(f"Session {cohort_session.number} on {when} is cancelled. {_texted(change)}", "success")
            else:
                flash(f"Session {cohort_session.number} on {when} was already cancelled. Nobody was texted again.",
                      "info")
            return redirect(url_for("staff_courses.cohort_page", cohort_id=cohort_id))
    return _session_page("staff/courses/cancel_session.html", form, cohort_session)


# Changing a whole cohort: admins only.

def _cohort_or_404(cohort_id: int) -> Cohort:
    cohort = db_session().get(Cohort, cohort_id)
    if cohort is None:
        abort(404)
    return cohort


def _to_cohort(cohort: Cohort):
    return redirect(url_for("staff_courses.cohort_page", cohort_id=cohort.id))


def _places(count: int) -> str:
    return f"{count} place{'s' if count != 1 else ''}"


@bp.route("/courses/<int:cohort_id>/capacity", methods=["GET", "POST"])
@admin_required
def change_capacity(cohort_id: int):
    s = db_session()
    cohort = _cohort_or_404(cohort_id)
    refused = cohort_changes.capacity_refusal(cohort, now=utcnow())
    if refused and request.method == "GET":
        flash(f"{refused}.", "info")
        return _to_cohort(cohort)
    form = CapacityForm(data=None if request.method == "POST" else {"capacity": str(cohort.capacity)})
    status = 400 if form.is_submitted() else 200
    if form.validate_on_submit():
        try:
            change = cohort_changes.change_capacity(s, domain(), cohort, form.places, now=utcnow())
        except cohort_changes.CohortLocked as locked:
            form.capacity.errors = [str(locked)]
            status = 409
        except cohort_changes.CapacityTooLow as low:
            form.capacity.errors = [str(low)]
        else:
            if not change.changed:
                flash(f"The cohort already had {_places(change.after)}: nothing changed.", "info")
                return _to_cohort(cohort)
            audit("cohort_capacity_changed", detail=f"cohort {cohort.id}: {change.before} -> {change.after} places, "
                                                    f"{change.offers_made} offered from the waiting list")
            said = f"The cohort now has {_places(change.after)}."
            if change.offers_made:
                said += (f" {_places(change.offers_made).capitalize()} {'were' if change.offers_made != 1 else 'was'}"
                         f" offered to patients on the waiting list, by text.")
            flash(said, "success")
            return _to_cohort(cohort)
    booked, held = cohort_changes.places_taken(s, cohort)
    return render_template("staff/courses/capacity.html", form=form, cohort=cohort, booked=booked, held=held,
                           most=CAPACITY[1], service=domain().catalogue.get(cohort.service_key)), status


@bp.route("/courses/<int:cohort_id>/cancel", methods=["GET", "POST"])
@admin_required
def cancel_cohort(cohort_id: int):
    s = db_session()
    cohort = _cohort_or_404(cohort_id)
    if cohort.status == "cancelled":
        flash("This cohort is already cancelled." + (" Nobody was texted again." if request.method == "POST" else ""),
              "info")
        return _to_cohort(cohort)
    refused = cohort_changes.cancel_refusal(cohort, now=utcnow())
    if refused and request.method == "GET":
        flash(f"{refused}.", "info")
        return _to_cohort(cohort)
    form = CancelCohortForm()
    status = 400 if form.is_submitted() else 200
    if form.validate_on_submit():
        try:
            done = cohort_changes.cancel_cohort(s, domain(), cohort, reason=form.reason.data, now=utcnow())
        except cohort_changes.CohortLocked as locked:
            form.reason.errors = [str(locked)]
            status = 409
        else:
            if done.changed:
                _audit_cancelled(cohort, done)
                said = (f"The cohort is cancelled: its {done.sessions_cancelled} sessions to come and "
                        f"{_places(len(done.bookings))} booked. {_texted_words(len(done.bookings), done.texts_queued)}")
                if done.waits_ended or done.offers_withdrawn:
                    said += " Patients waiting for a place on it are texted if they take texts: phone the others."
                if done.offered_in_other_cohorts:
                    said += (f" {_places(done.offered_in_other_cohorts)} free in other groups of this course went "
                             "to the waiting list.")
                flash(said, "success")
            else:
                flash("This cohort is already cancelled. Nobody was texted again.", "info")
            return _to_cohort(cohort)
    return render_template("staff/courses/cancel_cohort.html", form=form, cohort=cohort,
                           preview=cohort_changes.cancellation_preview(s, cohort),
                           service=domain().catalogue.get(cohort.service_key)), status


def _audit_cancelled(cohort: Cohort, done: cohort_changes.CohortCancellation) -> None:
    """One event for the cohort, and one on each patient's record for what it did to them."""
    audit("cohort_cancelled", detail=f"cohort {cohort.id}: {done.sessions_cancelled} sessions, "
                                     f"{len(done.bookings)} places, {len(done.waits_ended)} waits ended, "
                                     f"{len(done.offers_withdrawn)} offers withdrawn, "
                                     f"{done.offered_in_other_cohorts} offered elsewhere, {done.texts_queued} texts")
    for patient_id, booking_id in done.bookings:
        audit("seat_cancelled_by_staff", patient_id=patient_id,
              detail=f"booking {booking_id}: cohort {cohort.id} cancelled")
    for patient_id, entry_id in done.waits_ended:
        audit("waitlist_ended_by_staff", patient_id=patient_id,
              detail=f"entry {entry_id}: cohort {cohort.id} cancelled")
    for patient_id, entry_id in done.offers_withdrawn:
        audit("offer_withdrawn_by_staff", patient_id=patient_id,
              detail=f"entry {entry_id}: cohort {cohort.id} cancelled; still waiting for any group")
    for number, patient_id, mark in done.marks_cleared:
        audit("attendance_cleared", patient_id=patient_id,
              detail=f"cohort {cohort.id} session {number}: {mark} -> not marked (cohort cancelled)")
