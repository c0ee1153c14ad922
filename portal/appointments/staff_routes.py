"""Staff screens for 1:1 appointments.

Reception (and admins) book, move and cancel on a patient's behalf; they may go past the cut-off or the
per-service limit, but only with a reason, which the appointment and the audit trail keep. Admins manage
clinicians' availability, leave and single slots under /staff/admin.
"""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from portal.appointments import availability, services
from portal.appointments.forms import (
    WEEKDAYS,
    ActionForm,
    BlockSlotForm,
    LeaveForm,
    StaffBookForm,
    StaffCancelForm,
    StaffRescheduleForm,
    TemplateForm,
)
from portal.appointments.models import Appointment
from portal.appointments.routes import already_ended, bookable_day, parse_day
from portal.appointments.slots import generate_slots
from portal.audit.web import audit
from portal.auth.access import registration_staff_required, roles_required
from portal.auth.models import Role
from portal.dates import london_today
from portal.db import utcnow
from portal.extensions import db_session, domain
from portal.messaging.routes import staff_text_note
from portal.patients.models import Patient
from portal.plain_text import number_id
from portal.settings import Service
from portal.templating import local_datetime

bp = Blueprint("appointments_staff", __name__, url_prefix="/staff")
admin_required = roles_required(Role.ADMIN)


def _patient(patient_id: int) -> Patient:
    patient = db_session().get(Patient, patient_id) if 0 < patient_id < 2**31 else None
    if patient is None:
        abort(404)
    return patient


def _service(patient: Patient, service_key: str) -> Service:
    service = services.service_for_patient(domain(), patient, service_key, staff=True)
    if service is None:
        abort(404)
    return service


def _appointment(patient: Patient, appointment_id: int) -> Appointment:
    try:
        return services.appointment_for_patient(db_session(), patient, appointment_id)
    except services.AppointmentEnded as ended:
        already_ended(ended, url_for("staff.patient_record", patient_id=patient.id))
    except services.AppointmentNotFound:
        abort(404)


def _record(patient: Patient):
    return redirect(url_for("staff.patient_record", patient_id=patient.id))


@bp.route("/patients/<int:patient_id>/appointments/new")
@registration_staff_required
def book_service(patient_id: int):
    patient = _patient(patient_id)
    return render_template("appointments/staff/services.html", patient=patient,
                           services=services.appointment_services(domain(), patient, staff=True))


@bp.route("/patients/<int:patient_id>/appointments/new/<service_key>")
@registration_staff_required
def book_day(patient_id: int, service_key: str):
    patient = _patient(patient_id)
    service = _service(patient, service_key)
    return render_template(
        "appointments/staff/days.html", patient=patient, service=service, heading="Choose a day",
        days=services.free_days(db_session(), domain(), patient, service, now=utcnow(), staff=True),
        day_base=f"/staff/patients/{patient.id}/appointments/new/{service.key}",
        back_url=f"/staff/patients/{patient.id}/appointments/new",
    )


def _times(patient: Patient, service: Service, day: dt.date, form, *, status: int = 200, slots=None, **context):
    show_dates = slots is not None
    if slots is None:
        slots = services.free_slots_on(db_session(), domain(), patient, service, day, now=utcnow(), staff=True)
    return render_template("appointments/staff/times.html", patient=patient, service=service, day=day,
                           slots=slots, form=form, show_dates=show_dates, staff_view=True, **context), status


def _next_free(patient: Patient, service: Service, wanted: int) -> list:
    now = utcnow()
    try:
        after = services.slot_for_patient(db_session(), domain(), patient, wanted, now=now, staff=True).starts_at
    except services.SlotNotFound:
        after = None
    return services.next_free_slots(db_session(), domain(), patient, service, now=now, after=after, staff=True)


def _on_page(patient: Patient, service: Service, day: dt.date, slot_id: int) -> bool:
    # ?after= is on the form that lists the next free times once the time chosen on this day was just taken.
    return services.slot_offered_on_page(db_session(), domain(), patient, service, day, slot_id,
                                         after_slot_id=number_id(request.args.get("after")), now=utcnow(),
                                         staff=True)


def _past_window(day: dt.date) -> bool:
    """Whether the day reaches past the patients' booking window, so booking on it needs a reason."""
    day_ends = services.local_day_bounds(day, domain().policy.service.timezone)[1]
    return services.beyond_patient_window(domain(), day_ends - dt.timedelta(microseconds=1), now=utcnow())


_WINDOW_HINT = "Patients can book up to {weeks} weeks ahead, and this day is later than that. To book it, say why."
_NO_WINDOW_REASON = "Give a reason for booking later than patients can ({weeks} weeks ahead)"


def _window_refused(form, context: dict) -> None:
    form.override_reason.errors.append(_NO_WINDOW_REASON.format(weeks=domain().policy.booking.slot_booking_weeks))
    context["override_needed"] = True


@bp.route("/patients/<int:patient_id>/appointments/new/<service_key>/<day>", methods=["GET", "POST"])
@registration_staff_required
def book_time(patient_id: int, service_key: str, day: str):
    patient = _patient(patient_id)
    service = _service(patient, service_key)
    chosen_day = bookable_day(day, days_url=f"/staff/patients/{patient.id}/appointments/new/{service.key}",
                              staff=True)
    s, now = db_session(), utcnow()
    existing = services.upcoming_appointments(s, patient.id, now=now, service_key=service.key)
    limit = domain().policy.booking.max_future_appointments_per_service
    over_limit, past_window = len(existing) >= limit, _past_window(chosen_day)
    hints = [f"{patient.full_name} already has {len(existing)} future appointment(s) of this service "
             f"(the limit is {limit}). To book another, say why."] if over_limit else []
    if past_window:
        hints.append(_WINDOW_HINT.format(weeks=domain().policy.booking.slot_booking_weeks))
    context = {
        "heading": "Choose a time", "submit_text": "Book this appointment", "back_text": "Back to days",
        "back_url": f"/staff/patients/{patient.id}/appointments/new/{service.key}",
        "override_needed": over_limit or past_window, "override_hint": " ".join(hints),
    }
    form = StaffBookForm()
    if not form.validate_on_submit():
        return _times(patient, service, chosen_day, form, status=400 if form.is_submitted() else 200, **context)
    wanted = number_id(form.slot.data)
    if not _on_page(patient, service, chosen_day, wanted):
        form.slot.errors.append("Select one of the times shown")
        return _times(patient, service, chosen_day, form, status=400, **context)
    try:
        appointment = services.book_appointment(s, domain(), patient, wanted, now=now, by_staff=True,
                                                 override_reason=form.override_text)
    except services.SlotNotFound:
        form.slot.errors.append("Select one of the times shown")
        return _times(patient, service, chosen_day, form, status=400, **context)
    except services.SlotTaken:
        form.slot.errors.append("That time was just taken. Choose another time")
        form.slot.data = None
        return _times(patient, service, chosen_day, form, status=409, slots=_next_free(patient, service, wanted),
                      after=wanted, **context)
    except services.LimitReached:
        form.override_reason.errors.append("Give a reason for booking more than the limit")
        context["override_needed"] = True
        return _times(patient, service, chosen_day, form, status=400, **context)
    except services.OutsideBookingWindow:
        _window_refused(form, context)
        return _times(patient, service, chosen_day, form, status=400, **context)
    beyond = services.beyond_patient_window(domain(), appointment.starts_at, now=now)
    rules = " and ".join(rule for rule, applies in (("limit", len(existing) >= limit), ("booking window", beyond))
                         if applies)
    overridden = f"; {rules} overridden: {appointment.override_reason}" if appointment.override_reason else ""
    audit("appointment_booked", patient_id=patient.id,
          detail=f"appointment {appointment.id}, slot {appointment.slot_id}, by staff{overridden}")
    flash(f"{service.name} booked for {patient.full_name}.{staff_text_note(patient.id, now)}", "success")
    return _record(patient)


def _audit_cleared(patient: Patient, appointment: Appointment, mark: str | None, how: str) -> None:
    """A mark taken as the patient arrived, removed with the appointment it was for."""
    if mark is not None:
        audit("attendance_cleared", patient_id=patient.id,
              detail=f"appointment {appointment.id} ({appointment.service_key}): {mark} -> not marked "
                     f"(appointment {how})")


def _late(appointment: Appointment) -> bool:
    return not services.may_change_online(domain(), appointment, now=utcnow())


_NO_OVERRIDE = "Give a reason for cancelling inside the cut-off"
_WHO_CANCELLED = "Select who asked to cancel"
_LATE_HINT = "This appointment is inside the {hours}-hour cut-off, when patients must call. To go ahead, say why."


@bp.route("/patients/<int:patient_id>/appointments/<int:appointment_id>/cancel", methods=["GET", "POST"])
@registration_staff_required
def cancel(patient_id: int, appointment_id: int):
    patient = _patient(patient_id)
    appointment = _appointment(patient, appointment_id)
    service = domain().catalogue.get(appointment.service_key)
    late = _late(appointment)
    form = StaffCancelForm()
    context = {"override_needed": late, "cutoff_hours": domain().policy.booking.cancel_cutoff_hours,
               "override_hint": _LATE_HINT.format(hours=domain().policy.booking.cancel_cutoff_hours)}
    valid = form.validate_on_submit()
    now = utcnow()
    if form.is_submitted() and late and not form.override_text and not form.override_reason.errors:
        # Known before the service is asked, so said with any other problem on the form, not after it.
        form.override_reason.errors.append(_NO_OVERRIDE)
        valid = False
    if form.is_submitted() and late and not form.cancelled_by.data and not form.cancelled_by.errors:
        form.cancelled_by.errors.append(_WHO_CANCELLED)
        valid = False
    if valid:
        marked = services.early_mark(db_session(), appointment.id)
        by_patient = late and form.cancelled_by.data == "patient"
        try:
            services.cancel_appointment(db_session(), domain(), patient, appointment.id,
                                        reason=form.reason.data.strip(), now=now, by_staff=True,
                                        override_reason=form.override_text,
                                        patient_asked_by=current_user.id if by_patient else None)
        except services.AppointmentPassed as problem:
            form.reason.errors.append(str(problem))
        except services.TooLateToChange:
            # The cut-off passed while the form was open: ask both questions it brings.
            form.override_reason.errors.append(_NO_OVERRIDE)
            if not form.cancelled_by.data:
                form.cancelled_by.errors.append(_WHO_CANCELLED)
            context["override_needed"] = True
        except services.AppointmentEnded as ended:
            already_ended(ended, url_for("staff.patient_record", patient_id=patient.id))
        else:
            why = f"; cut-off overridden: {form.override_text}" if late else ""
            if late:
                why += "; the patient asked (late cancellation)" if by_patient else "; the service cancelled"
            audit("appointment_cancelled", patient_id=patient.id,
                  detail=f"appointment {appointment.id}, by staff: {form.reason.data.strip()}{why}")
            _audit_cleared(patient, appointment, marked, "cancelled")
            # Say which way "Who asked to cancel?" was answered: it decides the mark on their attendance.
            mark = " It is recorded as a late cancellation (not a missed appointment)." if by_patient else ""
            flash(f"{patient.full_name}'s {service.name.lower()} appointment is cancelled.{mark}"
                  f"{staff_text_note(patient.id, now)}", "success")
            return _record(patient)
    status = 400 if form.is_submitted() else 200
    return render_template("appointments/staff/cancel.html", patient=patient, appointment=appointment,
                           service=service, form=form, **context), status


@bp.route("/patients/<int:patient_id>/appointments/<int:appointment_id>/reschedule")
@registration_staff_required
def reschedule(patient_id: int, appointment_id: int):
    patient = _patient(patient_id)
    appointment = _appointment(patient, appointment_id)
    service = domain().catalogue.get(appointment.service_key)
    return render_template(
        "appointments/staff/days.html", patient=patient, service=service, appointment=appointment,
        heading="Choose a new day",
        days=services.free_days(db_session(), domain(), patient, service, now=utcnow(), staff=True),
        day_base=f"/staff/patients/{patient.id}/appointments/{appointment.id}/reschedule",
        back_url=f"/staff/patients/{patient.id}",
    )


@bp.route("/patients/<int:patient_id>/appointments/<int:appointment_id>/reschedule/<day>", methods=["GET", "POST"])
@registration_staff_required
def reschedule_time(patient_id: int, appointment_id: int, day: str):
    patient = _patient(patient_id)
    appointment = _appointment(patient, appointment_id)
    service = domain().catalogue.get(appointment.service_key)
    chosen_day = bookable_day(day, days_url=f"/staff/patients/{patient.id}/appointments/{appointment.id}/reschedule",
                              staff=True)
    late = _late(appointment)
    context = {
        "heading": "Choose a new time", "submit_text": "Move the appointment", "appointment": appointment,
        "back_text": "Back to days",
        "back_url": f"/staff/patients/{patient.id}/appointments/{appointment.id}/reschedule",
        "override_needed": late or _past_window(chosen_day),
        "override_hint": " ".join(
            ([_LATE_HINT.format(hours=domain().policy.booking.cancel_cutoff_hours)] if late else [])
            + ([_WINDOW_HINT.format(weeks=domain().policy.booking.slot_booking_weeks)]
               if _past_window(chosen_day) else [])),
    }
    form = StaffRescheduleForm()
    if not form.validate_on_submit():
        return _times(patient, service, chosen_day, form, status=400 if form.is_submitted() else 200, **context)
    wanted = number_id(form.slot.data)
    now = utcnow()
    if not _on_page(patient, service, chosen_day, wanted):
        form.slot.errors.append("Select one of the times shown")
        return _times(patient, service, chosen_day, form, status=400, **context)
    marked = services.early_mark(db_session(), appointment.id)
    try:
        new = services.reschedule_appointment(db_session(), domain(), patient, appointment.id, wanted, now=now,
                                              by_staff=True, override_reason=form.override_text)
    except services.SlotNotFound:
        form.slot.errors.append("Select one of the times shown")
        return _times(patient, service, chosen_day, form, status=400, **context)
    except services.SlotTaken:
        form.slot.errors.append("That time was just taken. The appointment has not changed. Choose another time")
        form.slot.data = None
        return _times(patient, service, chosen_day, form, status=409, slots=_next_free(patient, service, wanted),
                      after=wanted, **context)
    except services.AppointmentPassed as problem:
        form.slot.errors.append(str(problem))
        return _times(patient, service, chosen_day, form, status=409, **context)
    except services.TooLateToChange:
        form.override_reason.errors.append("Give a reason for moving the appointment inside the cut-off")
        context["override_needed"] = True
        return _times(patient, service, chosen_day, form, status=400, **context)
    except services.OutsideBookingWindow:
        _window_refused(form, context)
        return _times(patient, service, chosen_day, form, status=400, **context)
    except services.AppointmentEnded as ended:
        already_ended(ended, url_for("staff.patient_record", patient_id=patient.id))
    beyond = services.beyond_patient_window(domain(), new.starts_at, now=now)
    rules = " and ".join(rule for rule, applies in (("cut-off", late), ("booking window", beyond)) if applies)
    why = f"; {rules} overridden: {form.override_text}" if rules else ""
    audit("appointment_moved", patient_id=patient.id,
          detail=f"appointment {appointment.id} -> {new.id}, slot {new.slot_id}, by staff{why}")
    _audit_cleared(patient, appointment, marked, "moved")
    flash(f"{patient.full_name}'s appointment has moved.{staff_text_note(patient.id, now)}", "success")
    return _record(patient)


# Admin: clinicians' availability.

@bp.route("/admin/appointments")
@admin_required
def admin_index():
    s = db_session()
    return render_template(
        "appointments/admin/index.html", templates=availability.templates(s),
        leave=availability.upcoming_leave(s, today=london_today(utcnow())), weekdays=WEEKDAYS,
        catalogue=domain().catalogue, teams=domain().teams, action_form=ActionForm(),
    )


@bp.route("/admin/appointments/templates/new", methods=["GET", "POST"])
@admin_required
def new_template():
    s = db_session()
    form = TemplateForm(
        clinicians=availability.clinicians(s), venues=availability.venues(s), teams=domain().teams.teams,
        services=[service for service in domain().catalogue.services if service.kind == "appointment"],
    )
    if form.validate_on_submit():
        try:
            template = availability.create_template(
                s, domain(), clinician_id=number_id(form.clinician.data), service_key=form.service_key.data,
                team=form.team.data or None, venue_id=number_id(form.venue.data), weekday=int(form.weekday.data),
                start_time=form.start_time.time, end_time=form.end_time.time, slot_minutes=form.minutes,
                valid_from=form.valid_from.data, valid_until=form.valid_until.data,
            )
        except availability.AvailabilityError as problem:
            form[problem.field].errors.append(str(problem))
        else:
            created = generate_slots(s, domain(), now=utcnow())
            audit("availability_template_created",
                  detail=f"template {template.id}, clinician {template.clinician_id}, {template.service_key}; "
                         f"{created} slots generated")
            flash(f"Clinic added. {created} new slots are open for booking.", "success")
            return redirect(url_for("appointments_staff.admin_index"))
    return render_template("appointments/admin/template_form.html", form=form), 400 if form.is_submitted() else 200


@bp.route("/admin/appointments/leave/new", methods=["GET", "POST"])
@admin_required
def new_leave():
    s = db_session()
    form = LeaveForm(clinicians=availability.clinicians(s))
    if form.validate_on_submit():
        try:
            leave, blocked, affected = availability.add_leave(
                s, domain(), clinician_id=number_id(form.clinician.data), first_day=form.first_day.data,
                last_day=form.last_day.data, reason=(form.reason.data or "").strip(), now=utcnow(),
            )
        except availability.AvailabilityError as problem:
            form[problem.field].errors.append(str(problem))
        else:
            audit("clinician_leave_added", detail=f"leave {leave.id}, clinician {leave.clinician_id}, "
                                                  f"{blocked} slots blocked, {len(affected)} appointments affected")
            message = f"Leave added. {blocked} free slots are blocked."
            if affected:
                message += (f" {len(affected)} booked appointments fall in this leave: reception must move them "
                            "(see the slots page for those days).")
            flash(message, "success")
            return redirect(url_for("appointments_staff.admin_index"))
    return render_template("appointments/admin/leave_form.html", form=form), 400 if form.is_submitted() else 200


@bp.route("/admin/appointments/leave/<int:leave_id>/remove", methods=["GET", "POST"])
@admin_required
def remove_leave(leave_id: int):
    """A page asking to confirm, then the removal: blocked slots come back, so it is never one click away."""
    s = db_session()
    leave = availability.leave_or_none(s, leave_id) or abort(404)
    form = ActionForm()
    if form.validate_on_submit():
        name, said = leave.clinician.display_name, f"clinician {leave.clinician_id}, {leave.first_day} to " \
                                                   f"{leave.last_day}"
        opened = availability.remove_leave(s, domain(), leave, now=utcnow())
        audit("clinician_leave_removed", detail=f"leave {leave_id}, {said}; {opened} slots opened")
        flash(f"{name}'s leave is removed. {opened} slots are open for booking again.", "success")
        return redirect(url_for("appointments_staff.admin_index"))
    return render_template("appointments/admin/remove_leave.html", leave=leave, form=form), \
        400 if form.is_submitted() else 200


@bp.route("/admin/appointments/generate", methods=["POST"])
@admin_required
def generate():
    if not ActionForm().validate_on_submit():
        abort(400)
    created = generate_slots(db_session(), domain(), now=utcnow())
    audit("slots_generated", detail=f"{created} slots")
    flash(f"{created} new slots generated." if created else "All slots are already generated.", "success")
    return redirect(url_for("appointments_staff.admin_index"))


def _slots_url(slot) -> str:
    day = services.local_day(domain(), slot.starts_at).isoformat()
    return url_for("appointments_staff.slots", clinician=slot.clinician_id, day=day)


@bp.route("/admin/appointments/slots")
@admin_required
def slots():
    s = db_session()
    clinicians = availability.clinicians(s)
    wanted = number_id(request.args.get("clinician"))
    clinician = next((c for c in clinicians if c.id == wanted), None)
    day_text = request.args.get("day", "")
    day = parse_day(day_text) if day_text else london_today(utcnow())
    rows = availability.slots_on(s, domain(), clinician_id=clinician.id if clinician else None, day=day)
    # The page names each booked patient: a read of their records, audited as the day lists are.
    audit("clinic_slots_viewed", detail=f"clinician {clinician.id if clinician else 'all'} {day.isoformat()}: "
                                 f"{sum(1 for _, appointment in rows if appointment)} booked")
    return render_template(
        "appointments/admin/slots.html", clinicians=clinicians, clinician=clinician, day=day,
        rows=rows,
        leave=availability.leave_for_clinician(s, clinician.id, day) if clinician else None,
        previous_day=(day - dt.timedelta(days=1)).isoformat(), next_day=(day + dt.timedelta(days=1)).isoformat(),
        catalogue=domain().catalogue, action_form=ActionForm(), now=utcnow(),
    )


@bp.route("/admin/appointments/slots/<int:slot_id>/block", methods=["GET", "POST"])
@admin_required
def block_slot(slot_id: int):
    s = db_session()
    slot = availability.slot_or_none(s, slot_id)
    if slot is None:
        abort(404)
    form = BlockSlotForm()
    if form.validate_on_submit():
        try:
            availability.block_slot(s, slot.id, reason=form.reason.data.strip(), now=utcnow())
        except availability.SlotNotChangeable as problem:
            form.reason.errors.append(str(problem))
        else:
            audit("slot_blocked", detail=f"slot {slot.id}: {form.reason.data.strip()}")
            flash(f"The slot at {_when(slot)} is blocked.", "success")
            return redirect(_slots_url(slot))
    return render_template("appointments/admin/block_slot.html", slot=slot, form=form,
                           back_url=_slots_url(slot)), 400 if form.is_submitted() else 200


def _when(slot) -> str:
    return local_datetime(slot.starts_at)


@bp.route("/admin/appointments/slots/<int:slot_id>/unblock", methods=["POST"])
@admin_required
def unblock_slot(slot_id: int):
    s = db_session()
    slot = availability.slot_or_none(s, slot_id)
    if slot is None:
        abort(404)
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        availability.unblock_slot(s, slot.id, now=utcnow())
    except availability.SlotNotChangeable as problem:
        flash(str(problem), "info")
    else:
        audit("slot_unblocked", detail=f"slot {slot.id}")
        flash(f"The slot at {_when(slot)} is open for booking again.", "success")
    return redirect(_slots_url(slot))
