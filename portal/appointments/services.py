"""Booking, cancelling and moving 1:1 appointments, for patients and for staff on their behalf.

A slot is taken with one conditional UPDATE (``status = 'open' AND starts_at > now``), so of two requests
for one slot only one changes a row; a partial unique index on active appointments backs it up. The
per-service limit is counted after locking the patient's row, so two requests of one patient for two
different slots are answered one after the other (SQLite already runs writers one at a time).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import Select, bindparam, delete, false, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, contains_eager

from portal.appointments import notices
from portal.appointments.models import LEAVE_BLOCK_REASON, Appointment, AppointmentSlot, ClinicianLeave
from portal.attendance.models import Attendance
from portal.booking.models import Venue
from portal.db import UTCDateTime, read_rows
from portal.patients.models import Patient
from portal.reminders.services import cancel_pending_reminders
from portal.settings import DomainConfig, Service

MOVED_REASON = "Moved to another time"


class AppointmentError(Exception):
    """An appointment could not be booked or changed; the message is fit to show."""


class SlotNotFound(AppointmentError):
    """Not a slot this patient may have: unknown, past, another tier, team or service (answer 404)."""


class SlotTaken(AppointmentError):
    """The slot was free a moment ago and is not now (booked by someone else, or blocked by staff)."""


class AppointmentNotFound(AppointmentError):
    pass


class AppointmentEnded(AppointmentNotFound):
    """The patient's own appointment, already cancelled or moved (a double submit, or Back to a form already
    sent): the page can say so, since it tells the patient only about their own appointment."""


def _ended(session: Session, appointment: Appointment) -> AppointmentEnded:
    """What to say about an appointment that ended, read afresh (another request may just have ended it)."""
    session.refresh(appointment)
    if appointment.status == "moved":
        return AppointmentEnded("This appointment has already moved to a new time")
    return AppointmentEnded("This appointment is already cancelled")


class LimitReached(AppointmentError):
    def __init__(self, existing: Appointment, limit: int) -> None:
        super().__init__("You already have an appointment for this service")
        self.existing = existing
        self.limit = limit


class TooLateToChange(AppointmentError):
    """Inside the cut-off: patients call instead; staff may go ahead with a reason."""


class OutsideBookingWindow(AppointmentError):
    """A time later than patients may book (``slot_booking_weeks``): staff may book it, with a reason."""


class AppointmentPassed(TooLateToChange):
    """The appointment has started: nobody changes it online."""


# Which services, which slots.

def appointment_services(domain: DomainConfig, patient: Patient, *, staff: bool = False) -> list[Service]:
    """The 1:1 services of the patient's tier: the self-bookable ones, or every one for staff."""
    return [
        s for s in domain.catalogue.for_tier(patient.tier)
        if s.kind == "appointment" and (staff or s.self_bookable)
    ]


def service_for_patient(domain: DomainConfig, patient: Patient, service_key: str, *,
                        staff: bool = False) -> Service | None:
    return next((s for s in appointment_services(domain, patient, staff=staff) if s.key == service_key), None)


def horizon(domain: DomainConfig, now: dt.datetime, *, staff: bool = False) -> dt.datetime:
    """How far ahead a slot may be booked: patients see ``slot_booking_weeks``; staff every slot generated."""
    policy = domain.policy.booking
    return now + dt.timedelta(weeks=policy.slot_weeks_ahead if staff else policy.slot_booking_weeks)


def beyond_patient_window(domain: DomainConfig, starts_at: dt.datetime, *, now: dt.datetime) -> bool:
    """True for a time later than patients may book themselves: booking it for them is an override."""
    return starts_at > horizon(domain, now)


def _check_window(domain: DomainConfig, slot: AppointmentSlot, *, now: dt.datetime,
                  override_reason: str | None) -> bool:
    """Whether the slot is past the patients' booking window; OutsideBookingWindow if so and no reason is given."""
    beyond = beyond_patient_window(domain, slot.starts_at, now=now)
    if beyond and not override_reason:
        weeks = domain.policy.booking.slot_booking_weeks
        raise OutsideBookingWindow(f"Patients can book up to {weeks} weeks ahead")
    return beyond


def _offered(domain: DomainConfig, patient: Patient, service: Service, *, now: dt.datetime,
             staff: bool) -> Select:
    """Slots of this service the patient may see, open or not."""
    query = select(AppointmentSlot).where(
        AppointmentSlot.service_key == service.key,
        AppointmentSlot.starts_at > now,
        AppointmentSlot.starts_at <= horizon(domain, now, staff=staff),
    )
    if service.team_scoped:
        # A Tier 2 patient without a team sees nothing until staff assign one (comparing with None would
        # match slots that have no team).
        query = query.where(AppointmentSlot.team == patient.team if patient.team else false())
    return query


def free_days(session: Session, domain: DomainConfig, patient: Patient, service: Service, *,
              now: dt.datetime, staff: bool = False) -> list[tuple[dt.date, int]]:
    """Local days with free slots, and how many, soonest first."""
    zone = ZoneInfo(domain.policy.service.timezone)
    starts = session.scalars(
        _offered(domain, patient, service, now=now, staff=staff)
        .where(AppointmentSlot.status == "open")
        .with_only_columns(AppointmentSlot.starts_at)
        .order_by(AppointmentSlot.starts_at)
    ).all()
    return sorted(Counter(start.astimezone(zone).date() for start in starts).items())


def local_day(domain: DomainConfig, when: dt.datetime) -> dt.date:
    return when.astimezone(ZoneInfo(domain.policy.service.timezone)).date()


def local_day_bounds(day: dt.date, timezone: str) -> tuple[dt.datetime, dt.datetime]:
    """The UTC instants at which a local day starts and ends (23 or 25 hours apart at the clock changes)."""
    zone = ZoneInfo(timezone)
    start = dt.datetime.combine(day, dt.time(0), tzinfo=zone).astimezone(dt.UTC)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=zone).astimezone(dt.UTC)
    return start, end


def day_outside_window(domain: DomainConfig, day: dt.date, *, now: dt.datetime,
                       staff: bool = False) -> str | None:
    """Why a local day has no time that may be booked now, whatever the slots: "past" (it has ended) or "later"
    (it starts after the horizon: patients' booking window, or for staff the slots generated); None when the day
    is inside the window."""
    start, end = local_day_bounds(day, domain.policy.service.timezone)
    if end <= now:
        return "past"
    if start > horizon(domain, now, staff=staff):
        return "later"
    return None


def free_slots_on(session: Session, domain: DomainConfig, patient: Patient, service: Service, day: dt.date, *,
                  now: dt.datetime, staff: bool = False) -> list[AppointmentSlot]:
    start, end = local_day_bounds(day, domain.policy.service.timezone)
    return list(session.scalars(
        _offered(domain, patient, service, now=now, staff=staff)
        .where(AppointmentSlot.status == "open", AppointmentSlot.starts_at >= start,
               AppointmentSlot.starts_at < end)
        .order_by(AppointmentSlot.starts_at, AppointmentSlot.id)
    ))


def next_free_slots(session: Session, domain: DomainConfig, patient: Patient, service: Service, *,
                    now: dt.datetime, after: dt.datetime | None = None, limit: int = 5,
                    staff: bool = False) -> list[AppointmentSlot]:
    """The soonest free slots (from ``after``, if given): what to offer when a chosen time was just taken."""
    query = _offered(domain, patient, service, now=now, staff=staff).where(AppointmentSlot.status == "open")
    if after is not None:
        query = query.where(AppointmentSlot.starts_at >= after)
    return list(session.scalars(query.order_by(AppointmentSlot.starts_at, AppointmentSlot.id).limit(limit)))


def slot_for_patient(session: Session, domain: DomainConfig, patient: Patient, slot_id: int, *,
                     now: dt.datetime, staff: bool = False) -> AppointmentSlot:
    """A slot of a service this patient may book, in the future and within the booking horizon, whatever
    its status; SlotNotFound otherwise, so a tampered id reveals nothing."""
    slot = session.get(AppointmentSlot, slot_id) if 0 < slot_id < 2**31 else None
    service = service_for_patient(domain, patient, slot.service_key, staff=staff) if slot else None
    if slot is None or service is None:
        raise SlotNotFound("This time is not available to book")
    query = _offered(domain, patient, service, now=now, staff=staff).where(AppointmentSlot.id == slot.id)
    if session.scalars(query).one_or_none() is None:
        raise SlotNotFound("This time is not available to book")
    return slot


def _slot_of(session: Session, slot_id: int | None, service: Service) -> AppointmentSlot | None:
    slot = session.get(AppointmentSlot, slot_id) if slot_id and 0 < slot_id < 2**31 else None
    return slot if slot is not None and slot.service_key == service.key else None


def slot_offered_on_page(session: Session, domain: DomainConfig, patient: Patient, service: Service, day: dt.date,
                         slot_id: int, *, after_slot_id: int | None = None, now: dt.datetime,
                         staff: bool = False) -> bool:
    """Whether a posted slot is one the time page of ``service`` and ``day`` lists: a time of that service on that
    London day or, when a time on that day was just taken (``after_slot_id``), one of the next free times the
    page then lists. A slot id from another day or service is refused, so nobody books a time they did not see."""
    slot = _slot_of(session, slot_id, service)
    if slot is None:
        return False
    if local_day(domain, slot.starts_at) == day:
        return True
    taken = _slot_of(session, after_slot_id, service)
    if taken is None or local_day(domain, taken.starts_at) != day:
        return False
    following = next_free_slots(session, domain, patient, service, now=now, after=taken.starts_at, staff=staff)
    return any(s.id == slot.id for s in following)


def open_slot_for_patient(session: Session, domain: DomainConfig, patient: Patient, slot_id: int, *,
                          now: dt.datetime, staff: bool = False) -> AppointmentSlot:
    """As slot_for_patient, and still free: what a page may offer (a booked or blocked one answers 404)."""
    slot = slot_for_patient(session, domain, patient, slot_id, now=now, staff=staff)
    if slot.status != "open":
        raise SlotNotFound("This time is not available to book")
    return slot


# The patient's appointments.

def appointments_for_patient(session: Session, patient_id: int) -> list[Appointment]:
    """Every appointment of the patient, latest first (for their record and their list)."""
    return list(session.scalars(
        select(Appointment).join(Appointment.slot).options(contains_eager(Appointment.slot))
        .where(Appointment.patient_id == patient_id)
        .order_by(AppointmentSlot.starts_at.desc(), Appointment.id.desc())
    ))


def upcoming_appointments(session: Session, patient_id: int, *, now: dt.datetime,
                          service_key: str | None = None) -> list[Appointment]:
    query = (
        select(Appointment).join(Appointment.slot).options(contains_eager(Appointment.slot))
        .where(Appointment.patient_id == patient_id, Appointment.status == "active", AppointmentSlot.starts_at > now)
        .order_by(AppointmentSlot.starts_at)
    )
    if service_key is not None:
        query = query.where(Appointment.service_key == service_key)
    return list(session.scalars(query))


@dataclass(frozen=True)
class NextAppointment:
    id: int
    service_key: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    venue_name: str
    venue_address: str
    is_online: bool


# Built once: the home page runs it on every visit. Plain columns on the session's connection, no ORM objects.
_NEXT_APPOINTMENT = (
    select(Appointment.id, Appointment.service_key, AppointmentSlot.starts_at, AppointmentSlot.ends_at,
           Venue.name, Venue.address, Venue.is_online)
    .join(AppointmentSlot, Appointment.slot_id == AppointmentSlot.id)
    .join(Venue, AppointmentSlot.venue_id == Venue.id)
    .where(
        Appointment.patient_id == bindparam("patient_id"),
        Appointment.status == "active",
        AppointmentSlot.starts_at > bindparam("now", type_=UTCDateTime()),
    )
    .order_by(AppointmentSlot.starts_at)
    .limit(1)
)


def next_appointment(session: Session, patient_id: int, *, now: dt.datetime) -> NextAppointment | None:
    row = read_rows(session, _NEXT_APPOINTMENT, {"patient_id": patient_id, "now": now}).first()
    return NextAppointment(*row) if row else None


def appointment_for_patient(session: Session, patient: Patient, appointment_id: int) -> Appointment:
    """The patient's own active appointment; AppointmentEnded if theirs has ended; else AppointmentNotFound, so
    another patient's id looks like no appointment at all."""
    appointment = session.get(Appointment, appointment_id) if 0 < appointment_id < 2**31 else None
    if appointment is None or appointment.patient_id != patient.id:
        raise AppointmentNotFound("This appointment is not open")
    if appointment.status != "active":
        raise _ended(session, appointment)
    return appointment


def change_deadline(domain: DomainConfig, appointment: Appointment) -> dt.datetime:
    """Until when the patient may cancel or move it online."""
    return appointment.slot.starts_at - dt.timedelta(hours=domain.policy.booking.cancel_cutoff_hours)


def may_change_online(domain: DomainConfig, appointment: Appointment, *, now: dt.datetime) -> bool:
    return appointment.status == "active" and now < change_deadline(domain, appointment)


def _check_cutoff(domain: DomainConfig, appointment: Appointment, *, now: dt.datetime, by_staff: bool,
                  override_reason: str | None) -> None:
    if appointment.slot.starts_at <= now:
        raise AppointmentPassed("This appointment has already started")
    if now >= change_deadline(domain, appointment) and not (by_staff and override_reason):
        phone = domain.policy.service.phone
        raise TooLateToChange(
            f"It is too late to change this appointment online. Call us on {phone} to cancel or move it."
        )


# Changes: each one flushes, writes its text to the outbox, and leaves the commit to the caller.

def _lock_patient(session: Session, patient_id: int) -> None:
    # FOR UPDATE on PostgreSQL serialises one patient's requests from here on; SQLite renders no FOR
    # UPDATE, and needs none, since its writers already run one at a time (BEGIN IMMEDIATE).
    session.execute(select(Patient.id).where(Patient.id == patient_id).with_for_update())


def _take_slot(session: Session, slot_id: int, now: dt.datetime) -> bool:
    result = session.execute(
        update(AppointmentSlot)
        .where(AppointmentSlot.id == slot_id, AppointmentSlot.status == "open", AppointmentSlot.starts_at > now)
        .values(status="booked")
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def _release_slot(session: Session, domain: DomainConfig, slot_id: int) -> None:
    """A slot whose appointment ended is free again, unless its clinician has since gone on leave that day: leave
    blocks only the free slots, so the booked ones it covered are blocked as their appointments end."""
    clinician_id, starts_at = session.execute(
        select(AppointmentSlot.clinician_id, AppointmentSlot.starts_at).where(AppointmentSlot.id == slot_id)
    ).one()
    day = local_day(domain, starts_at)
    on_leave = session.scalar(select(ClinicianLeave.id).where(
        ClinicianLeave.clinician_id == clinician_id, ClinicianLeave.first_day <= day, ClinicianLeave.last_day >= day,
    ).limit(1)) is not None
    session.execute(
        update(AppointmentSlot)
        .where(AppointmentSlot.id == slot_id, AppointmentSlot.status == "booked")
        .values({"status": "blocked", "blocked_reason": LEAVE_BLOCK_REASON} if on_leave else {"status": "open"})
        .execution_options(synchronize_session=False)
    )


def early_mark(session: Session, appointment_id: int) -> str | None:
    """The mark already on an appointment that has not started: a day list opens half an hour early, for
    people as they arrive. Cancelling or moving the appointment removes it (the caller audits that)."""
    return session.scalar(select(Attendance.mark).where(Attendance.appointment_id == appointment_id))


def _clear_mark(session: Session, appointment_id: int) -> None:
    session.execute(delete(Attendance).where(Attendance.appointment_id == appointment_id)
                    .execution_options(synchronize_session=False))


def _end(session: Session, appointment_id: int, *, status: str, reason: str, now: dt.datetime,
         by_staff: bool, override_reason: str | None) -> bool:
    """End an active appointment; False if it was not active any more (a double submit)."""
    values = {"status": status, "ended_at": now, "cancel_reason": reason[:600], "ended_by_staff": by_staff}
    if override_reason:
        values["override_reason"] = override_reason[:500]
    return session.execute(
        update(Appointment)
        .where(Appointment.id == appointment_id, Appointment.status == "active")
        .values(**values)
        .execution_options(synchronize_session=False)
    ).rowcount == 1


def book_appointment(
    session: Session,
    domain: DomainConfig,
    patient: Patient,
    slot_id: int,
    *,
    now: dt.datetime,
    by_staff: bool = False,
    override_reason: str | None = None,
) -> Appointment:
    """Book a slot and write the confirmation text, in the caller's transaction.

    Staff may book past the per-service limit, or later than patients' booking window, but only with
    ``override_reason``.
    """
    slot = slot_for_patient(session, domain, patient, slot_id, now=now, staff=by_staff)
    if slot.status != "open":
        raise SlotTaken("That time was just taken")
    _lock_patient(session, patient.id)
    limit = domain.policy.booking.max_future_appointments_per_service
    existing = upcoming_appointments(session, patient.id, now=now, service_key=slot.service_key)
    if len(existing) >= limit and not (by_staff and override_reason):
        raise LimitReached(existing[0], limit)
    overridden = _check_window(domain, slot, now=now, override_reason=override_reason) or len(existing) >= limit
    try:
        with session.begin_nested():
            if not _take_slot(session, slot.id, now):
                raise SlotTaken("That time was just taken")
            appointment = Appointment(
                patient_id=patient.id, slot_id=slot.id, service_key=slot.service_key, booked_by_staff=by_staff,
                override_reason=(override_reason or None) if overridden else None, created_at=now,
            )
            session.add(appointment)
            session.flush()
    except IntegrityError:
        # The partial unique index caught what the UPDATE should have: the slot is someone else's.
        raise SlotTaken("That time was just taken") from None
    session.refresh(slot)
    notices.booked(session, domain, patient, appointment, now=now)
    return appointment


def cancel_appointment(
    session: Session,
    domain: DomainConfig,
    patient: Patient,
    appointment_id: int,
    *,
    reason: str,
    now: dt.datetime,
    by_staff: bool = False,
    override_reason: str | None = None,
    patient_asked_by: int | None = None,
) -> Appointment:
    """Cancel an appointment and free its slot. Inside the cut-off only staff may, with a reason.

    ``patient_asked_by``: the staff member who cancelled inside the cut-off because the patient asked. The
    appointment then keeps a "late cancellation" mark, recorded by them, so the patient's counts and the
    attendance report see it (a late cancellation is kept apart from a DNA, and never counts towards a
    review). Cancelled with notice, or by the service, it keeps no mark.
    """
    appointment = appointment_for_patient(session, patient, appointment_id)
    _check_cutoff(domain, appointment, now=now, by_staff=by_staff, override_reason=override_reason)
    _lock_patient(session, patient.id)
    late = now >= change_deadline(domain, appointment)
    if not _end(session, appointment.id, status="cancelled", reason=reason, now=now, by_staff=by_staff,
                override_reason=override_reason if late else None):
        raise _ended(session, appointment)
    _clear_mark(session, appointment.id)
    if late and patient_asked_by is not None:
        session.add(Attendance(patient_id=patient.id, appointment_id=appointment.id,
                               service_key=appointment.service_key, starts_at=appointment.starts_at,
                               mark="late_cancellation", recorded_by_id=patient_asked_by, recorded_at=now,
                               updated_at=now))
    _release_slot(session, domain, appointment.slot_id)
    cancel_pending_reminders(session, appointment_id=appointment.id, now=now)
    session.refresh(appointment)
    session.refresh(appointment.slot)
    notices.cancelled(session, domain, patient, appointment, now=now)
    return appointment


def reschedule_appointment(
    session: Session,
    domain: DomainConfig,
    patient: Patient,
    appointment_id: int,
    new_slot_id: int,
    *,
    now: dt.datetime,
    by_staff: bool = False,
    override_reason: str | None = None,
) -> Appointment:
    """Move an appointment to another slot of the same service in one step.

    The old slot is released only once the new one is taken, inside one savepoint: if the new slot has
    gone, nothing changes and the old appointment stands.
    """
    old = appointment_for_patient(session, patient, appointment_id)
    _check_cutoff(domain, old, now=now, by_staff=by_staff, override_reason=override_reason)
    slot = slot_for_patient(session, domain, patient, new_slot_id, now=now, staff=by_staff)
    if slot.service_key != old.service_key or slot.id == old.slot_id:
        raise SlotNotFound("Choose a different time for the same service")
    if slot.status != "open":
        raise SlotTaken("That time was just taken")
    _lock_patient(session, patient.id)
    beyond = _check_window(domain, slot, now=now, override_reason=override_reason)
    overriding = now >= change_deadline(domain, old) or beyond
    try:
        with session.begin_nested():
            if not _take_slot(session, slot.id, now):
                raise SlotTaken("That time was just taken")
            if not _end(session, old.id, status="moved", reason=MOVED_REASON, now=now, by_staff=by_staff,
                        override_reason=override_reason if overriding else None):
                # Rolls the new slot back too: a double submit moves once.
                raise _ended(session, old)
            new = Appointment(
                patient_id=patient.id, slot_id=slot.id, service_key=slot.service_key, booked_by_staff=by_staff,
                override_reason=override_reason if overriding else None, created_at=now,
            )
            session.add(new)
            session.flush()
            session.execute(
                update(Appointment).where(Appointment.id == old.id).values(moved_to_id=new.id)
                .execution_options(synchronize_session=False)
            )
            _release_slot(session, domain, old.slot_id)
            _clear_mark(session, old.id)
    except IntegrityError:
        raise SlotTaken("That time was just taken") from None
    cancel_pending_reminders(session, appointment_id=old.id, now=now)
    session.refresh(old)
    session.refresh(old.slot)
    session.refresh(slot)
    notices.moved(session, domain, patient, new, now=now)
    return new
