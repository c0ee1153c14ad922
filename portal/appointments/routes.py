"""Patients book, move and cancel their own 1:1 appointments: service, then day, then time, then confirm."""

from __future__ import annotations

import datetime as dt
import re

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from portal.appointments import services
from portal.appointments.forms import ActionForm, CancelAppointmentForm, ChooseTimeForm
from portal.appointments.models import Appointment
from portal.audit.web import audit
from portal.auth.access import current_patient, patient_required, refuse_new_bookings_after_discharge
from portal.dates import weekday_and_date
from portal.db import utcnow
from portal.extensions import db_session, domain, read_only
from portal.messaging.routes import text_note
from portal.plain_text import number_id
from portal.settings import Service

bp = Blueprint("appointments", __name__)
refuse_new_bookings_after_discharge(bp, {
    "appointments.choose_service", "appointments.choose_day", "appointments.choose_time", "appointments.confirm",
    "appointments.reschedule", "appointments.reschedule_time",
})

_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_day(value: str) -> dt.date:
    """A day from the URL (2027-03-29), or 404. Only days of this century or the next: 9999-12-31 has no day
    after it to bound its slots with (staff may look past the booking window, so nothing else limits it)."""
    try:
        if _ISO_DAY.match(value):
            day = dt.date.fromisoformat(value)
            if dt.date(2000, 1, 1) <= day <= dt.date(2100, 12, 31):
                return day
    except ValueError:
        pass
    abort(404)


def bookable_day(value: str, *, days_url: str, staff: bool = False) -> dt.date:
    """A day from the URL whose times may be booked now; 404 for one that is no date (tampered).

    A real day outside the booking window (one that has ended, or one later than the window: an old tab reloaded,
    a bookmark, a hand-made address) goes back to the day choice at ``days_url`` saying why, rather than showing
    a page of no times as if the day were simply full."""
    day = parse_day(value)
    outside = services.day_outside_window(domain(), day, now=utcnow(), staff=staff)
    if outside == "past":
        flash(f"{weekday_and_date(day)} has passed. Choose another day.", "info")
    elif outside == "later":
        policy = domain().policy.booking
        weeks = policy.slot_weeks_ahead if staff else policy.slot_booking_weeks
        ahead = f"Times are set up {weeks} weeks ahead" if staff else f"You can book up to {weeks} weeks ahead"
        flash(f"{ahead}, and {weekday_and_date(day)} is later than that. Choose another day.", "info")
    if outside:
        abort(redirect(days_url))
    return day


def _service(service_key: str) -> Service:
    service = services.service_for_patient(domain(), current_patient(), service_key)
    if service is None:
        abort(404)
    return service


def already_ended(ended: services.AppointmentEnded, to: str) -> None:
    """Back to the list, saying the appointment has already gone: the answer to a double submit or Back."""
    flash(f"{ended}.", "info")
    abort(redirect(to))


def _own(appointment_id: int) -> Appointment:
    try:
        return services.appointment_for_patient(db_session(), current_patient(), appointment_id)
    except services.AppointmentEnded as ended:
        already_ended(ended, url_for("appointments.my_appointments"))
    except services.AppointmentNotFound:
        abort(404)


@bp.route("/appointments")
@read_only
@patient_required
def my_appointments():
    patient = current_patient()
    now = utcnow()
    every = services.appointments_for_patient(db_session(), patient.id)
    upcoming = sorted((a for a in every if a.is_active and a.starts_at > now), key=lambda a: a.starts_at)
    return render_template(
        "appointments/list.html", upcoming=upcoming,
        past=[a for a in every if a not in upcoming][:20],
        may_change={a.id: services.may_change_online(domain(), a, now=now) for a in upcoming},
        catalogue=domain().catalogue, now=now,
        can_book=bool(services.appointment_services(domain(), patient)),
    )


@bp.route("/appointments/book")
@read_only
@patient_required
def choose_service():
    return render_template("appointments/services.html",
                           services=services.appointment_services(domain(), current_patient()))


@bp.route("/appointments/book/<service_key>")
@read_only
@patient_required
def choose_day(service_key: str):
    patient = current_patient()
    service = _service(service_key)
    s, now = db_session(), utcnow()
    existing = services.upcoming_appointments(s, patient.id, now=now, service_key=service.key)
    if len(existing) >= domain().policy.booking.max_future_appointments_per_service:
        return render_template("appointments/limit.html", service=service, existing=existing[0])
    return render_template(
        "appointments/days.html", service=service, patient=patient,
        days=services.free_days(s, domain(), patient, service, now=now),
        day_base=f"/appointments/book/{service.key}", back_url="/appointments/book", back_text="Back to services",
        heading="Choose a day",
    )


def _time_page(service: Service, day: dt.date, form: ChooseTimeForm, *, status: int = 200, slots=None,
               **context):
    """The times of a day as radios; or, when ``slots`` is given (a time was just taken), those instead."""
    if slots is None:
        slots = services.free_slots_on(db_session(), domain(), current_patient(), service, day, now=utcnow())
        context["show_dates"] = False
    else:
        context["show_dates"] = True
    return render_template("appointments/times.html", service=service, day=day, slots=slots, form=form,
                           **context), status


@bp.route("/appointments/book/<service_key>/<day>", methods=["GET", "POST"])
@read_only
@patient_required
def choose_time(service_key: str, day: str):
    """Only chooses: the booking itself happens on the confirm page."""
    service = _service(service_key)
    chosen_day = bookable_day(day, days_url=f"/appointments/book/{service.key}")
    form = ChooseTimeForm()
    context = {"back_url": f"/appointments/book/{service.key}", "back_text": "Back to days",
               "submit_text": "Continue", "heading": "Choose a time"}
    if not form.validate_on_submit():
        return _time_page(service, chosen_day, form, status=400 if form.is_submitted() else 200, **context)
    wanted = number_id(form.slot.data)
    try:
        slot = services.slot_for_patient(db_session(), domain(), current_patient(), wanted, now=utcnow())
    except services.SlotNotFound:
        slot = None
    if slot is None or not _on_page(service, chosen_day, wanted):
        form.slot.errors.append("Select one of the times shown")
        return _time_page(service, chosen_day, form, status=400, **context)
    if slot.status != "open":
        form.slot.errors.append("That time was just taken. Choose another time")
        return _time_page(service, chosen_day, form, status=409, **context)
    return redirect(url_for("appointments.confirm", slot_id=slot.id))


def _on_page(service: Service, day: dt.date, slot_id: int) -> bool:
    # ?after= is on the form that lists the next free times once the time chosen on this day was just taken.
    return services.slot_offered_on_page(db_session(), domain(), current_patient(), service, day, slot_id,
                                         after_slot_id=number_id(request.args.get("after")), now=utcnow())


def _taken_page(service: Service, after: dt.datetime | None):
    """The chosen time has gone: offer the next free ones."""
    options = services.next_free_slots(db_session(), domain(), current_patient(), service, now=utcnow(), after=after)
    return render_template("appointments/taken.html", service=service, options=options), 409


@bp.route("/appointments/slots/<int:slot_id>", methods=["GET", "POST"])
@patient_required
def confirm(slot_id: int):
    patient = current_patient()
    s = db_session()
    try:
        slot = services.slot_for_patient(s, domain(), patient, slot_id, now=utcnow())
    except services.SlotNotFound:
        abort(404)
    service = domain().catalogue.get(slot.service_key)
    form = ActionForm()
    if form.validate_on_submit():
        now = utcnow()
        try:
            appointment = services.book_appointment(s, domain(), patient, slot.id, now=now)
        except services.SlotTaken:
            return _taken_page(service, slot.starts_at)
        except services.LimitReached as limit:
            return render_template("appointments/limit.html", service=service, existing=limit.existing), 409
        audit("appointment_booked", patient_id=patient.id, detail=f"appointment {appointment.id}, slot {slot.id}")
        flash(f"Your {service.name.lower()} appointment is booked.{text_note(now)}", "success")
        return redirect(url_for("appointments.my_appointments"))
    if slot.status != "open":
        abort(404)
    existing = services.upcoming_appointments(s, patient.id, now=utcnow(), service_key=service.key)
    if len(existing) >= domain().policy.booking.max_future_appointments_per_service:
        return render_template("appointments/limit.html", service=service, existing=existing[0])
    day = services.local_day(domain(), slot.starts_at).isoformat()
    changeable_until = slot.starts_at - dt.timedelta(hours=domain().policy.booking.cancel_cutoff_hours)
    return render_template("appointments/confirm.html", service=service, slot=slot, form=form,
                           back_url=f"/appointments/book/{service.key}/{day}",
                           too_late_to_change=utcnow() >= changeable_until)


@bp.route("/appointments/<int:appointment_id>/cancel", methods=["GET", "POST"])
@patient_required
def cancel(appointment_id: int):
    patient = current_patient()
    appointment = _own(appointment_id)
    service = domain().catalogue.get(appointment.service_key)
    now = utcnow()
    if not services.may_change_online(domain(), appointment, now=now):
        # Inside the cut-off the page says to call; a POST made anyway is refused the same way.
        status = 409 if _is_post() else 200
        return render_template("appointments/too_late.html", appointment=appointment, service=service,
                               action="cancel"), status
    form = CancelAppointmentForm()
    if form.validate_on_submit():
        try:
            services.cancel_appointment(db_session(), domain(), patient, appointment.id, reason=form.reason_text,
                                        now=now)
        except services.TooLateToChange:
            return render_template("appointments/too_late.html", appointment=appointment, service=service,
                                   action="cancel"), 409
        except services.AppointmentEnded as ended:
            already_ended(ended, url_for("appointments.my_appointments"))
        audit("appointment_cancelled", patient_id=patient.id, detail=f"appointment {appointment.id}: "
              f"{form.reason_text}")
        flash(f"Your {service.name.lower()} appointment is cancelled.{text_note(now)}", "success")
        return redirect(url_for("appointments.my_appointments"))
    status = 400 if form.is_submitted() else 200
    return render_template("appointments/cancel.html", appointment=appointment, service=service, form=form), status


def _is_post() -> bool:
    return request.method == "POST"


@bp.route("/appointments/<int:appointment_id>/reschedule")
@read_only
@patient_required
def reschedule(appointment_id: int):
    patient = current_patient()
    appointment = _own(appointment_id)
    service = domain().catalogue.get(appointment.service_key)
    now = utcnow()
    if not services.may_change_online(domain(), appointment, now=now):
        return render_template("appointments/too_late.html", appointment=appointment, service=service,
                               action="move")
    return render_template(
        "appointments/days.html", service=service, patient=patient, appointment=appointment,
        days=services.free_days(db_session(), domain(), patient, service, now=now),
        day_base=f"/appointments/{appointment.id}/reschedule", back_url="/appointments",
        back_text="Back to my appointments", heading="Choose a new day",
    )


@bp.route("/appointments/<int:appointment_id>/reschedule/<day>", methods=["GET", "POST"])
@patient_required
def reschedule_time(appointment_id: int, day: str):
    patient = current_patient()
    appointment = _own(appointment_id)
    service = domain().catalogue.get(appointment.service_key)
    now = utcnow()
    if not services.may_change_online(domain(), appointment, now=now):
        return render_template("appointments/too_late.html", appointment=appointment, service=service,
                               action="move"), 409 if _is_post() else 200
    chosen_day = bookable_day(day, days_url=f"/appointments/{appointment.id}/reschedule")
    form = ChooseTimeForm()
    context = {"appointment": appointment, "back_url": f"/appointments/{appointment.id}/reschedule",
               "back_text": "Back to days", "submit_text": "Move my appointment", "heading": "Choose a new time"}
    if not form.validate_on_submit():
        return _time_page(service, chosen_day, form, status=400 if form.is_submitted() else 200, **context)
    wanted = number_id(form.slot.data)
    if not _on_page(service, chosen_day, wanted):
        form.slot.errors.append("Select one of the times shown")
        return _time_page(service, chosen_day, form, status=400, **context)
    try:
        new = services.reschedule_appointment(db_session(), domain(), patient, appointment.id, wanted, now=now)
    except services.SlotTaken:
        # The old appointment stands; offer the next free times from the one that was taken.
        form.slot.errors.append("That time was just taken. Your appointment has not changed. Choose another time")
        taken = services.slot_for_patient(db_session(), domain(), patient, wanted, now=now)
        options = services.next_free_slots(db_session(), domain(), patient, service, now=now, after=taken.starts_at)
        form.slot.data = None
        return _time_page(service, chosen_day, form, status=409, slots=options, after=wanted, **context)
    except services.SlotNotFound:
        form.slot.errors.append("Select one of the times shown")
        return _time_page(service, chosen_day, form, status=400, **context)
    except services.TooLateToChange:
        return render_template("appointments/too_late.html", appointment=appointment, service=service,
                               action="move"), 409
    except services.AppointmentEnded as ended:
        already_ended(ended, url_for("appointments.my_appointments"))
    audit("appointment_moved", patient_id=patient.id,
          detail=f"appointment {appointment.id} -> {new.id}, slot {new.slot_id}")
    flash(f"Your {service.name.lower()} appointment has moved.{text_note(now)}", "success")
    return redirect(url_for("appointments.my_appointments"))
