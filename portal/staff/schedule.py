"""The reception day and week view per venue and service, and moving the patients of a cancelled session.

Every staff role reads the view; reception and admins move patients. Thin: each view calls one service.
"""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, abort, render_template, request
from flask_login import current_user
from wtforms.fields.choices import SelectChoice

from portal.audit.web import audit
from portal.auth.access import registration_staff_required, staff_required
from portal.booking import bulk_move
from portal.booking.sessions import venues
from portal.dates import london_today
from portal.db import utcnow
from portal.extensions import db_session, domain
from portal.staff import timetable
from portal.staff.desk_forms import BulkMoveForm, ScheduleForm
from portal.staff.routes import REGISTRATION_ROLES
from portal.templating import local_datetime

bp = Blueprint("staff_schedule", __name__, url_prefix="/staff")


@bp.route("/schedule")
@staff_required
def week():
    s = db_session()
    form = ScheduleForm(request.args)
    all_venues = venues(s)
    services = list(domain().catalogue.services)
    form.set_choices(all_venues, services)
    venue_id = form.chosen_venue({v.id for v in all_venues})
    service_key = form.chosen_service({sv.key for sv in services})
    day = form.chosen_day(london_today(utcnow()))
    first, count = (day, 1) if form.by_day else (timetable.week_start(day), 7)
    days = timetable.schedule(s, first=first, days=count, venue_id=venue_id, service_key=service_key)
    audit("schedule_viewed", detail=f"{first.isoformat()} +{count}d, venue {venue_id or 'all'}, "
                                    f"service {service_key or 'all'}")
    step = dt.timedelta(days=count)
    return render_template(
        "staff/schedule/week.html", form=form, days=days, first=first, by_day=form.by_day,
        previous=first - step, next=first + step, today=london_today(utcnow()),
        venue=next((v for v in all_venues if v.id == venue_id), None),
        service=domain().catalogue.get(service_key) if service_key else None,
        can_move=current_user.role in REGISTRATION_ROLES,
    ), (400 if form.errors else 200)


@bp.route("/schedule/sessions/<int:session_id>/move-patients", methods=["GET", "POST"])
@registration_staff_required
def move_patients(session_id: int):
    s = db_session()
    cancelled = bulk_move.cancelled_session(s, session_id)
    if cancelled is None:
        abort(404)
    cohort = cancelled.cohort
    now = utcnow()
    targets = bulk_move.target_cohorts(s, cohort, now=now)
    booked = bulk_move.patients_to_move(s, cohort.id)
    form = BulkMoveForm()
    form.cohort.choices = [
        SelectChoice(str(c.id), f"Group starting {local_datetime(c.sessions[0].starts_at)}, "
                                f"{'online' if c.venue.is_online else c.venue.name}: "
                                f"{c.seats_left} place{'s' if c.seats_left != 1 else ''} left")
        for c in targets if c.sessions
    ]
    status = 200
    if form.validate_on_submit():
        target = next((c for c in targets if str(c.id) == form.cohort.data), None)
        if target is None:
            form.cohort.errors.append("Select one of the groups shown")
        else:
            report = bulk_move.move_patients(s, domain(), cohort, target, now=now)
            reason = form.reason.data.strip()
            for moved in report.moved:
                audit("seat_moved_by_staff", patient_id=moved.patient.id,
                      detail=f"booking {moved.old_booking_id} -> {moved.new_booking_id}, cohort {target.id}; "
                             f"cancelled session {cancelled.id}; reason: {reason}")
            audit("cancelled_session_patients_moved",
                  detail=f"session {cancelled.id} cohort {cohort.id} -> cohort {target.id}: "
                         f"{len(report.moved)} moved, {len(report.not_moved)} not moved")
            return render_template("staff/schedule/moved.html", report=report, cohort=cohort,
                                   cohort_session=cancelled, service=domain().catalogue.get(cohort.service_key))
        status = 400
    elif form.is_submitted():
        status = 400
    audit("course_roster_viewed", detail=f"cohort {cohort.id}: {len(booked)} patients (move after cancellation)")
    return render_template(
        "staff/schedule/move_patients.html", form=form, cohort=cohort, cohort_session=cancelled, booked=booked,
        targets=targets, service=domain().catalogue.get(cohort.service_key),
    ), status
