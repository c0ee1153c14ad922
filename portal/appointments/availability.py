"""Admin operations on clinicians' time: availability templates, leave, and blocking single slots."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import false, func, or_, select, update
from sqlalchemy.orm import Session, joinedload

from portal.appointments.models import (
    LEAVE_BLOCK_REASON,
    Appointment,
    AppointmentSlot,
    AvailabilityTemplate,
    ClinicianLeave,
)
from portal.appointments.services import local_day, local_day_bounds
from portal.appointments.slots import generate_slots
from portal.auth.models import Role, User
from portal.booking.models import Cohort, CohortSession, Venue, cohort_facilitator
from portal.booking.sessions import Clash, OtherClashes, hold_rooms_and_people
from portal.dates import london_today, written_date
from portal.settings import DomainConfig

CLINICIAN_ROLES = (Role.CLINICIAN.value, Role.FACILITATOR.value, Role.ADMIN.value)


class AvailabilityError(ValueError):
    """Input a form let through but the service refuses; ``field`` names where to show the message."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class SlotNotChangeable(ValueError):
    pass


def clinicians(session: Session) -> list[User]:
    """Staff who hold clinics: facilitators (clinicians) and admins."""
    return list(session.scalars(
        select(User).where(User.role.in_(CLINICIAN_ROLES), User.is_active.is_(True)).order_by(User.display_name)
    ))


def venues(session: Session) -> list[Venue]:
    return list(session.scalars(select(Venue).order_by(Venue.name)))


def templates(session: Session) -> list[AvailabilityTemplate]:
    return list(session.scalars(
        select(AvailabilityTemplate).order_by(AvailabilityTemplate.weekday, AvailabilityTemplate.start_time,
                                              AvailabilityTemplate.id)
    ))


def running_clinics(session: Session, clinician_id: int, *, today: dt.date) -> int:
    """How many weekly clinics (availability templates) of this clinician run today or later."""
    return session.scalar(select(func.count()).select_from(AvailabilityTemplate).where(
        AvailabilityTemplate.clinician_id == clinician_id,
        or_(AvailabilityTemplate.valid_until.is_(None), AvailabilityTemplate.valid_until >= today),
    )) or 0


def upcoming_leave(session: Session, *, today: dt.date) -> list[ClinicianLeave]:
    return list(session.scalars(
        select(ClinicianLeave).where(ClinicianLeave.last_day >= today).order_by(ClinicianLeave.first_day)
    ))


def _ranges_meet(a_from: dt.date, a_until: dt.date | None, b_from: dt.date, b_until: dt.date | None) -> bool:
    return (a_until is None or a_until >= b_from) and (b_until is None or b_until >= a_from)


def create_template(
    session: Session,
    domain: DomainConfig,
    *,
    clinician_id: int,
    service_key: str,
    team: str | None,
    venue_id: int,
    weekday: int,
    start_time: dt.time,
    end_time: dt.time,
    slot_minutes: int,
    valid_from: dt.date,
    valid_until: dt.date | None,
) -> AvailabilityTemplate:
    """A weekly clinic. Raises AvailabilityError naming the field at fault."""
    if clinician_id not in {c.id for c in clinicians(session)}:
        raise AvailabilityError("clinician", "Select a clinician from the list")
    service = domain.catalogue.get(service_key)
    if service is None or service.kind != "appointment":
        raise AvailabilityError("service_key", "Select an appointment service from the list")
    if service.team_scoped and domain.teams.get(team) is None:
        raise AvailabilityError("team", f"Select the team whose patients book {service.name}")
    venue = session.get(Venue, venue_id)
    if venue is None:
        raise AvailabilityError("venue", "Select a venue from the list")
    if not 0 <= weekday <= 6:
        raise AvailabilityError("weekday", "Select a day of the week")
    if end_time <= start_time:
        raise AvailabilityError("end_time", "End time must be after the start time")
    clinic_minutes = (dt.datetime.combine(valid_from, end_time) - dt.datetime.combine(valid_from, start_time))
    if clinic_minutes < dt.timedelta(minutes=slot_minutes):
        raise AvailabilityError("slot_minutes", "Slot length must fit between the start and end times")
    if valid_until is not None and valid_until < valid_from:
        raise AvailabilityError("valid_until", "Last date must be the same as or after the first date")
    # Held until the clinic is saved: a group or another clinic planned at the same moment for this room or this
    # clinician waits, and then sees this one.
    hold_rooms_and_people(session, venue_ids=[venue.id], people=[clinician_id])
    # Two clinics of one clinician at overlapping times would offer the same hour twice.
    for other in session.scalars(select(AvailabilityTemplate).where(
        AvailabilityTemplate.clinician_id == clinician_id, AvailabilityTemplate.weekday == weekday,
        AvailabilityTemplate.start_time < end_time, AvailabilityTemplate.end_time > start_time,
    )):
        if _ranges_meet(other.valid_from, other.valid_until, valid_from, valid_until):
            raise AvailabilityError(
                "start_time", "This clinician already has a clinic at this time on this day"
                f" ({other.start_time:%H:%M} to {other.end_time:%H:%M})")
    _refuse_group_clash(session, domain, clinician_id=clinician_id, venue=venue, weekday=weekday,
                        start_time=start_time, end_time=end_time, valid_from=valid_from, valid_until=valid_until)
    template = AvailabilityTemplate(
        clinician_id=clinician_id, service_key=service.key, team=team if service.team_scoped else None,
        venue_id=venue_id, weekday=weekday, start_time=start_time, end_time=end_time, slot_minutes=slot_minutes,
        timezone=domain.policy.service.timezone, valid_from=valid_from, valid_until=valid_until,
    )
    session.add(template)
    session.flush()
    return template


def _minutes(value: dt.time) -> int:
    return value.hour * 60 + value.minute


def _refuse_group_clash(
    session: Session, domain: DomainConfig, *, clinician_id: int, venue: Venue, weekday: int, start_time: dt.time,
    end_time: dt.time, valid_from: dt.date, valid_until: dt.date | None,
) -> None:
    """AvailabilityError if a group session meets the planned clinic: in the same room (an online venue holds
    any number), or run by the clinician. Sessions are read by room or facilitator, then matched to the weekly
    clinic in local time, which is how both are planned."""
    timezone = domain.policy.service.timezone
    runs = or_(Cohort.id.in_(select(cohort_facilitator.c.cohort_id).where(
        cohort_facilitator.c.user_id == clinician_id)), Cohort.venue_id == venue.id if not venue.is_online else false())
    query = (
        select(CohortSession, Cohort.venue_id)
        .join(Cohort, Cohort.id == CohortSession.cohort_id)
        .where(CohortSession.status == "scheduled", Cohort.status != "cancelled", runs,
               CohortSession.starts_at >= local_day_bounds(valid_from, timezone)[0])
        .order_by(CohortSession.starts_at)
    )
    if valid_until is not None:
        query = query.where(CohortSession.starts_at < local_day_bounds(valid_until, timezone)[1])
    zone = ZoneInfo(timezone)
    for group_session, venue_id in session.execute(query):
        starts, ends = group_session.starts_at.astimezone(zone), group_session.ends_at.astimezone(zone)
        ends_minutes = _minutes(ends.time()) if ends.date() == starts.date() else 24 * 60
        if (starts.weekday() == weekday and _minutes(starts.time()) < _minutes(end_time)
                and ends_minutes > _minutes(start_time)):
            if venue_id == venue.id and not venue.is_online:
                raise AvailabilityError("venue", f"{venue.name} has a group at this time on "
                                                 f"{written_date(starts)}. Choose another venue, day or time")
            raise AvailabilityError("clinician", f"This clinician runs a group at this time on "
                                                 f"{written_date(starts)}. Choose another day or time")


def clinic_check(domain: DomainConfig) -> OtherClashes:
    """``clinic_clashes`` in the shape the booking checks take (``sessions.clashes(others=...)``)."""
    def check(session: Session, *, venue: Venue | None, facilitators: list[User],
              planned: list[tuple[dt.datetime, dt.datetime]]) -> list[Clash]:
        return clinic_clashes(session, domain, venue=venue, facilitators=facilitators, planned=planned)
    return check


def clinic_clashes(
    session: Session, domain: DomainConfig, *, venue: Venue | None, facilitators: list[User],
    planned: list[tuple[dt.datetime, dt.datetime]],
) -> list[Clash]:
    """What stops planned group sessions on the clinics' side: a weekly clinic in the same room at the same time
    (an online venue holds any number; ``venue=None`` leaves the room out), or one a facilitator holds then. The
    first of each, at most: the counterpart of ``_refuse_group_clash`` for groups."""
    by_id = {user.id: user for user in facilitators}
    wanted = AvailabilityTemplate.clinician_id.in_(list(by_id))
    in_room = venue is not None and not venue.is_online
    if in_room:
        wanted = or_(wanted, AvailabilityTemplate.venue_id == venue.id)
    clinics = session.scalars(select(AvailabilityTemplate).where(wanted)).all()
    zone = ZoneInfo(domain.policy.service.timezone)
    found: dict[str, Clash] = {}
    for starts, ends in planned:
        local_start, local_end = starts.astimezone(zone), ends.astimezone(zone)
        for clinic in clinics:
            if not (clinic.covers(local_start.date()) and local_start.time() < clinic.end_time
                    and (local_end.date() > local_start.date() or local_end.time() > clinic.start_time)):
                continue
            when = written_date(local_start)
            if in_room and clinic.venue_id == venue.id and "venue" not in found:
                found["venue"] = Clash("venue", f"{venue.name} has a weekly clinic at that time on {when}")
            if clinic.clinician_id in by_id and "facilitators" not in found:
                found["facilitators"] = Clash("facilitators", f"{by_id[clinic.clinician_id].display_name} holds "
                                                              f"a weekly clinic at that time on {when}")
    return list(found.values())


def add_leave(
    session: Session,
    domain: DomainConfig,
    *,
    clinician_id: int,
    first_day: dt.date,
    last_day: dt.date,
    reason: str,
    now: dt.datetime,
) -> tuple[ClinicianLeave, int, list[Appointment]]:
    """Record leave, and block the clinician's free slots already generated on those days.

    Returns the leave, how many slots were blocked, and the active appointments in the range, which
    reception must move: leave never cancels a patient's appointment by itself.
    """
    if clinician_id not in {c.id for c in clinicians(session)}:
        raise AvailabilityError("clinician", "Select a clinician from the list")
    _check_leave_days(first_day, last_day, today=london_today(now))
    leave = ClinicianLeave(clinician_id=clinician_id, first_day=first_day, last_day=last_day, reason=reason,
                           created_at=now)
    session.add(leave)
    session.flush()
    start, _ = local_day_bounds(first_day, domain.policy.service.timezone)
    _, end = local_day_bounds(last_day, domain.policy.service.timezone)
    in_range = (AppointmentSlot.clinician_id == clinician_id, AppointmentSlot.starts_at >= max(start, now),
                AppointmentSlot.starts_at < end)
    blocked = session.execute(
        update(AppointmentSlot).where(*in_range, AppointmentSlot.status == "open")
        .values(status="blocked", blocked_reason=LEAVE_BLOCK_REASON)
        .execution_options(synchronize_session=False)
    ).rowcount
    affected = list(session.scalars(
        select(Appointment).join(Appointment.slot).where(*in_range, Appointment.status == "active")
        .order_by(AppointmentSlot.starts_at)
    ))
    return leave, blocked, affected


def _check_leave_days(first_day: dt.date, last_day: dt.date, *, today: dt.date) -> None:
    """Leave ends on or after its first day, is not over already (it would block nothing, and is a slip), and
    lasts at most a year.

    A year covers annual leave, a course or parental leave. A longer absence (a career break) is better shown by
    ending the clinician's weekly clinics, and a longer range is almost always a slip in the year (15/1/2099),
    which would silently block every slot the clinician will ever have.
    """
    if last_day < first_day:
        raise AvailabilityError("last_day", "Last day must be the same as or after the first day")
    if last_day < today:
        raise AvailabilityError("last_day", "Last day of leave must be today or in the future")
    if last_day >= _a_year_after(first_day):
        raise AvailabilityError("last_day", "Leave must be 1 year or shorter. For a longer absence, end the "
                                            "clinician's weekly clinics")


def _a_year_after(day: dt.date) -> dt.date:
    """The same date a year on (1 March after a 29 February)."""
    try:
        return day.replace(year=day.year + 1)
    except ValueError:
        return dt.date(day.year + 1, 3, 1)


def leave_or_none(session: Session, leave_id: int) -> ClinicianLeave | None:
    return session.get(ClinicianLeave, leave_id) if 0 < leave_id < 2**31 else None


def remove_leave(session: Session, domain: DomainConfig, leave: ClinicianLeave, *, now: dt.datetime) -> int:
    """Delete leave and give its clinician back the time: returns how many slots are open for booking again.

    Leave blocks slots two ways (add_leave): free slots already made are blocked with LEAVE_BLOCK_REASON, and
    slots not yet made are never generated on leave days. So future slots in the range blocked for leave are
    opened, unless another leave of the clinician still covers their day, and generation then makes the slots
    the leave kept from being made. A slot an admin blocked for another reason stays blocked.
    """
    clinician_id, first_day, last_day = leave.clinician_id, leave.first_day, leave.last_day
    session.delete(leave)
    session.flush()
    start, _ = local_day_bounds(first_day, domain.policy.service.timezone)
    _, end = local_day_bounds(last_day, domain.policy.service.timezone)
    blocked = session.scalars(select(AppointmentSlot).where(
        AppointmentSlot.clinician_id == clinician_id, AppointmentSlot.starts_at >= max(start, now),
        AppointmentSlot.starts_at < end, AppointmentSlot.status == "blocked",
        AppointmentSlot.blocked_reason == LEAVE_BLOCK_REASON,
    )).all()
    freed = [slot.id for slot in blocked
             if leave_for_clinician(session, clinician_id, local_day(domain, slot.starts_at)) is None]
    opened = session.execute(
        update(AppointmentSlot).where(AppointmentSlot.id.in_(freed), AppointmentSlot.status == "blocked")
        .values(status="open", blocked_reason=None).execution_options(synchronize_session=False)
    ).rowcount if freed else 0
    return opened + generate_slots(session, domain, now=now)


def slots_on(session: Session, domain: DomainConfig, *, clinician_id: int | None,
             day: dt.date) -> list[tuple[AppointmentSlot, Appointment | None]]:
    """A day's slots (of one clinician, or of all), each with its active appointment if booked."""
    start, end = local_day_bounds(day, domain.policy.service.timezone)
    query = (
        select(AppointmentSlot, Appointment)
        .outerjoin(Appointment, (Appointment.slot_id == AppointmentSlot.id) & (Appointment.status == "active"))
        .where(AppointmentSlot.starts_at >= start, AppointmentSlot.starts_at < end)
        .options(joinedload(Appointment.patient))  # the page names each booked patient
        .order_by(AppointmentSlot.starts_at, AppointmentSlot.clinician_id)
    )
    if clinician_id is not None:
        query = query.where(AppointmentSlot.clinician_id == clinician_id)
    return [(slot, appointment) for slot, appointment in session.execute(query)]


def slot_or_none(session: Session, slot_id: int) -> AppointmentSlot | None:
    return session.get(AppointmentSlot, slot_id) if 0 < slot_id < 2**31 else None


def block_slot(session: Session, slot_id: int, *, reason: str, now: dt.datetime) -> AppointmentSlot:
    """Stop a free future slot being offered. A booked slot is refused: move or cancel its appointment first."""
    slot = session.get(AppointmentSlot, slot_id)
    if slot is None:
        raise SlotNotChangeable("No such slot")
    changed = session.execute(
        update(AppointmentSlot)
        .where(AppointmentSlot.id == slot_id, AppointmentSlot.status == "open", AppointmentSlot.starts_at > now)
        .values(status="blocked", blocked_reason=reason[:200])
        .execution_options(synchronize_session=False)
    ).rowcount == 1
    session.refresh(slot)
    if not changed:
        raise SlotNotChangeable(
            "This slot is booked: move or cancel the appointment first" if slot.status == "booked"
            else "Only a free slot in the future can be blocked")
    return slot


def unblock_slot(session: Session, slot_id: int, *, now: dt.datetime) -> AppointmentSlot:
    slot = session.get(AppointmentSlot, slot_id)
    if slot is None:
        raise SlotNotChangeable("No such slot")
    changed = session.execute(
        update(AppointmentSlot)
        .where(AppointmentSlot.id == slot_id, AppointmentSlot.status == "blocked", AppointmentSlot.starts_at > now)
        .values(status="open", blocked_reason=None)
        .execution_options(synchronize_session=False)
    ).rowcount == 1
    session.refresh(slot)
    if not changed:
        raise SlotNotChangeable("Only a blocked slot in the future can be freed")
    return slot


def leave_for_clinician(session: Session, clinician_id: int, day: dt.date) -> ClinicianLeave | None:
    return session.scalars(select(ClinicianLeave).where(
        ClinicianLeave.clinician_id == clinician_id, ClinicianLeave.first_day <= day, ClinicianLeave.last_day >= day,
    )).first()

