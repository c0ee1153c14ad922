"""Running courses: the staff view of cohorts and their rosters, and moving or cancelling one session.

A session is moved in local wall-clock time (Europe/London) and only then converted to UTC, so "6pm on
the 1st of April" is 17:00 UTC whatever the clocks did since the cohort was made. Every patient with an
active seat is texted about the change in the same transaction (the outbox), under an idempotency key
per session, new start and booking (the outbox key is unique, so a key without the booking would text
only the first patient), so a form submitted twice changes the session once and texts each patient once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session, selectinload

from portal.attendance.models import Attendance
from portal.auth.models import Role, User
from portal.booking.models import Booking, Cohort, CohortSession, Venue, WaitlistEntry, cohort_facilitator
from portal.booking.schedule import MIDNIGHT_RULE, ends_by_midnight, weekly_sessions
from portal.dates import written_date
from portal.messaging import texts
from portal.messaging.services import enqueue_sms
from portal.patients.models import Patient
from portal.reminders.services import cancel_pending_reminders
from portal.settings import DomainConfig, Service

COHORT_STATUSES = ("open", "closed", "cancelled")


class CourseNotFound(LookupError):
    """No such cohort, or no such session in it: the view answers 404."""


class SessionChangeRefused(ValueError):
    """The change cannot be made; the message is fit to show next to the form field named ``field``."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


class NonexistentLocalTime(ValueError):
    """The wall-clock time does not exist on that date: the clocks go forward through it."""


def wall_clock_to_utc(day: dt.date, time: dt.time, timezone: str) -> dt.datetime:
    """The UTC instant of ``time`` on ``day`` in ``timezone``.

    NonexistentLocalTime for a time the clocks skip (01:30 on the last Sunday of March in London).
    An ambiguous time (the hour repeated in October) means its first occurrence.
    """
    zone = ZoneInfo(timezone)
    local = dt.datetime.combine(day, time, tzinfo=zone)
    instant = local.astimezone(dt.UTC)
    # zoneinfo silently shifts a skipped time by the gap; converting back shows it.
    if instant.astimezone(zone).replace(tzinfo=None) != local.replace(tzinfo=None):
        raise NonexistentLocalTime(f"{time:%H:%M} does not exist on {written_date(day)}: the clocks go forward")
    return instant


def clocks_change_during(start: dt.datetime, length: dt.timedelta, timezone: str) -> bool:
    """Whether the clocks go forward or back while a session that starts at ``start`` runs.

    Such a session reads wrongly wherever it is shown in wall-clock time: an hour from 01:30 on the night the
    clocks go back shows as "1:30am to 1:30am", and two hours from 00:30 on the night they go forward as
    "12:30am to 3:30am".
    """
    zone = ZoneInfo(timezone)
    return start.astimezone(zone).utcoffset() != (start + length).astimezone(zone).utcoffset()


@dataclass(frozen=True)
class Clash:
    """A planned session that would meet one already running: what it meets (``venue`` or ``facilitators``, the
    form field) and a sentence saying so, for staff."""

    field: str
    message: str


def hold_rooms_and_people(session: Session, *, venue_ids: Iterable[int] = (), people: Iterable[int] = ()) -> None:
    """Lock the rows every timetable check waits on, until the transaction ends: the venue (its room) and the
    staff (their time). A check for a clash and the save after it are then one step: of two plans for the same
    room or person sent together (a group and a weekly clinic, say), the second waits for the first to commit
    and then sees it. Call it before reading what is already planned.

    Venues before people, each in id order, in every caller: two planners then never hold what the other waits
    for. FOR NO KEY UPDATE, so writes that only point at them (slots generated at the venue, say) are not held
    up. SQLite's BEGIN IMMEDIATE has already queued the writers.
    """
    for model, ids in ((Venue, venue_ids), (User, people)):
        wanted = sorted(set(ids))
        if wanted:
            session.execute(select(model.id).where(model.id.in_(wanted)).order_by(model.id)
                            .with_for_update(key_share=True))


# What another feature's bookings of rooms and people would stop (the weekly 1:1 clinics): called with the
# session and ``venue``, ``facilitators`` and ``planned`` as for ``clashes``. Passed in, so that booking does not
# depend on the features that book the same rooms and people.
OtherClashes = Callable[..., list[Clash]]


def clashes(
    session: Session, *, venue: Venue | None, facilitators: list[User], planned: list[tuple[dt.datetime, dt.datetime]],
    other_than: int | None = None, others: OtherClashes | None = None,
) -> list[Clash]:
    """What stops planned sessions: another group in the same room at the same time (an online venue holds any
    number; ``venue=None`` leaves the room out), or a facilitator running another group then. The first clash of
    each, at most. ``other_than`` is the cohort the sessions belong to, when it exists already. Without a clash
    with a group, ``others`` (the clinics) is asked too.

    Race-safe only after ``hold_rooms_and_people`` for the venue and the facilitators, in the same transaction."""
    if not planned:
        return []
    found = _group_clashes(session, venue=venue, facilitators=facilitators, planned=planned, other_than=other_than)
    if not found and others is not None:
        found = others(session, venue=venue, facilitators=facilitators, planned=planned)
    return found


def _group_clashes(
    session: Session, *, venue: Venue | None, facilitators: list[User], planned: list[tuple[dt.datetime, dt.datetime]],
    other_than: int | None,
) -> list[Clash]:
    overlapping = [(CohortSession.starts_at < ends) & (CohortSession.ends_at > starts) for starts, ends in planned]
    running = (
        select(CohortSession.starts_at)
        .join(Cohort, Cohort.id == CohortSession.cohort_id)
        .where(CohortSession.status == "scheduled", Cohort.status != "cancelled", or_(*overlapping))
        .order_by(CohortSession.starts_at)
    )
    if other_than is not None:
        running = running.where(Cohort.id != other_than)
    found = []
    if venue is not None and not venue.is_online:
        row = session.execute(running.where(Cohort.venue_id == venue.id).limit(1)).first()
        if row is not None:
            found.append(Clash("venue", f"{venue.name} has another group at that time on "
                                        f"{written_date(row.starts_at)}"))
    if facilitators:
        by_id = {user.id: user for user in facilitators}
        row = session.execute(
            running.add_columns(cohort_facilitator.c.user_id)
            .join(cohort_facilitator, cohort_facilitator.c.cohort_id == Cohort.id)
            .where(cohort_facilitator.c.user_id.in_(list(by_id))).limit(1)
        ).first()
        if row is not None:
            found.append(Clash("facilitators", f"{by_id[row.user_id].display_name} runs another group at that "
                                               f"time on {written_date(row.starts_at)}"))
    return found


def new_cohort_clashes(
    session: Session, domain: DomainConfig, *, service: Service, venue: Venue, facilitators: list[User],
    first_date: dt.date, start_time: dt.time, minutes: int, others: OtherClashes | None = None,
) -> list[Clash]:
    """``clashes`` for every weekly session a new cohort of ``service`` would have."""
    planned = weekly_sessions(first_date=first_date, start_time=start_time, minutes=minutes, count=service.weeks,
                              timezone=domain.policy.service.timezone)
    return clashes(session, venue=venue, facilitators=facilitators, planned=planned, others=others)


def course_services(domain: DomainConfig) -> list[Service]:
    return [s for s in domain.catalogue.services if s.kind == "course"]


def venues(session: Session) -> list[Venue]:
    return list(session.scalars(select(Venue).order_by(Venue.is_online, Venue.name, Venue.id)))


def facilitators(session: Session) -> list[User]:
    """Active staff accounts with the facilitator role: who can run a group."""
    return list(
        session.scalars(
            select(User)
            .where(User.role == Role.FACILITATOR.value, User.is_active.is_(True))
            .order_by(User.display_name, User.id)
        )
    )


@dataclass(frozen=True)
class FacilitatorChange:
    added: list[str]
    removed: list[str]

    def __bool__(self) -> bool:
        return bool(self.added or self.removed)


def cohort_to_staff(session: Session, cohort_id: int) -> Cohort:
    """A cohort whose facilitators may change, or CourseNotFound: a cancelled cohort runs nothing more."""
    cohort = session.get(Cohort, cohort_id)
    if cohort is None or cohort.status == "cancelled":
        raise CourseNotFound(cohort_id)
    return cohort


def _named(users: dict[int, User], keys: set[int]) -> list[str]:
    return sorted(f"{users[key].display_name} (user {key})" for key in keys)


def set_facilitators(session: Session, cohort: Cohort, chosen: list[User], *, now: dt.datetime,
                     others: OtherClashes | None = None) -> FacilitatorChange:
    """Who runs the cohort from now on (a colleague covering, say): they see it in their sessions and may
    take its register. Returns who was added and removed (name and user id); choosing the same people changes
    nothing. Refuses (SessionChangeRefused) someone added who runs another group, or (``others``) holds a weekly
    clinic, at one of its sessions to come."""
    before = {user.id: user for user in cohort.facilitators}
    after = {user.id: user for user in chosen}
    added = after.keys() - before.keys()
    # The room too: a session of this cohort being moved at the same moment waits, and this reads where it went.
    hold_rooms_and_people(session, venue_ids=[cohort.venue_id], people=added)
    to_come = _sessions_to_come(session, cohort.id, now=now)
    found = clashes(session, venue=None, facilitators=[after[key] for key in added], planned=to_come,
                    other_than=cohort.id, others=others)
    if found:
        raise SessionChangeRefused(f"{found[0].message}. Choose other facilitators", field="facilitators")
    change = FacilitatorChange(added=_named(after, added), removed=_named(before, before.keys() - after.keys()))
    if change:
        cohort.facilitators = sorted(after.values(), key=lambda user: (user.email or "", user.id))
        session.flush()
    return change


def _sessions_to_come(session: Session, cohort_id: int, *, now: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
    """Read afresh, not from the cohort loaded before the locks: a move committed meanwhile counts."""
    return [(row.starts_at, row.ends_at) for row in session.execute(
        select(CohortSession.starts_at, CohortSession.ends_at).where(
            CohortSession.cohort_id == cohort_id, CohortSession.status == "scheduled", CohortSession.ends_at > now))]


def _facilitators_now(session: Session, cohort_id: int) -> list[User]:
    """The cohort's facilitators as committed (read afresh, as ``_sessions_to_come``)."""
    return list(session.scalars(select(User).join(cohort_facilitator, cohort_facilitator.c.user_id == User.id)
                                .where(cohort_facilitator.c.cohort_id == cohort_id).order_by(User.id)))


def cohorts_for_staff(
    session: Session, *, service_key: str | None = None, status: str | None = None, limit: int = 200
) -> list[Cohort]:
    """Cohorts, latest start first (at most ``limit``), optionally of one course and one status."""
    query = select(Cohort).options(selectinload(Cohort.sessions))
    if service_key:
        query = query.where(Cohort.service_key == service_key)
    if status:
        query = query.where(Cohort.status == status)
    return list(session.scalars(query.order_by(Cohort.first_date.desc(), Cohort.id.desc()).limit(limit)))


@dataclass(frozen=True)
class CohortWithRoster:
    cohort: Cohort
    # Active bookings, by patient name.
    roster: list[Booking]
    # Seats held for waiting-list offers not yet answered: taken, but by nobody on the roster yet.
    held_offers: int = 0


def cohort_with_roster(session: Session, cohort_id: int) -> CohortWithRoster:
    """A cohort with its sessions, facilitators and the patients booked on it, or CourseNotFound."""
    cohort = session.scalars(
        select(Cohort)
        .where(Cohort.id == cohort_id)
        .options(selectinload(Cohort.sessions), selectinload(Cohort.facilitators))
    ).one_or_none()
    if cohort is None:
        raise CourseNotFound(cohort_id)
    roster = list(
        session.scalars(
            select(Booking)
            .join(Patient, Booking.patient_id == Patient.id)
            .where(Booking.cohort_id == cohort.id, Booking.status == "active")
            .options(selectinload(Booking.patient))
            .order_by(Patient.family_name, Patient.given_name, Booking.id)
        )
    )
    held = session.scalar(select(func.count()).select_from(WaitlistEntry).where(
        WaitlistEntry.offer_cohort_id == cohort.id, WaitlistEntry.status == "offered")) or 0
    return CohortWithRoster(cohort=cohort, roster=roster, held_offers=held)


def session_in_cohort(session: Session, cohort_id: int, session_id: int) -> CohortSession:
    """The session, only if it belongs to that cohort (a tampered pair of ids is CourseNotFound)."""
    found = session.get(CohortSession, session_id)
    if found is None or found.cohort_id != cohort_id:
        raise CourseNotFound(session_id)
    return found


def patients_booked(session: Session, cohort_id: int) -> int:
    return session.scalar(
        select(func.count()).select_from(Booking).where(Booking.cohort_id == cohort_id, Booking.status == "active")
    ) or 0


def _booked_patients(session: Session, cohort_id: int) -> list[Booking]:
    # A booking or cancellation still in flight has changed the cohort's seat count: FOR SHARE on the cohort
    # waits for it to commit, so a seat taken while a session changes is among those texted (PostgreSQL;
    # SQLite's writers already run one at a time). Bookings that start later see the change themselves.
    session.execute(select(Cohort.id).where(Cohort.id == cohort_id).with_for_update(read=True))
    return list(
        session.scalars(
            select(Booking)
            .where(Booking.cohort_id == cohort_id, Booking.status == "active")
            .options(selectinload(Booking.patient))
            .order_by(Booking.id)
        )
    )


def _venue_words(cohort: Cohort) -> str:
    return "online" if cohort.venue.is_online else cohort.venue.short_name


@dataclass(frozen=True)
class SessionChange:
    """What a move or cancellation did: ``changed`` is False for a repeat of a change already made."""

    session: CohortSession
    changed: bool
    previous_start: dt.datetime
    texts_queued: int = 0
    # Patients with an active seat; those who do not accept texts are in it but got none.
    patients_booked: int = 0
    # (patient id, mark) of the marks taken on the session's register before the change (it opens before the
    # start, as people arrive): the session did not go ahead then, so they are removed, for the caller to audit.
    marks_cleared: list[tuple[int, str]] = field(default_factory=list)


def _check_order(cohort: Cohort, moving: CohortSession, starts: dt.datetime, ends: dt.datetime, *,
                 now: dt.datetime) -> None:
    """Session k stays between sessions k-1 and k+1 (cancelled ones aside): the weekly reading and the texts
    follow the numbers, and a session on top of another of its own course is no session. Sessions already over
    are left out: a course put out of order before this rule can still have its sessions to come moved."""
    others = sorted((s for s in cohort.sessions
                     if s.id != moving.id and s.status == "scheduled" and s.ends_at > now), key=lambda s: s.number)
    before = [s for s in others if s.number < moving.number]
    after = [s for s in others if s.number > moving.number]
    if before and starts < before[-1].ends_at:
        raise SessionChangeRefused(
            f"Session {moving.number} must be after session {before[-1].number}, on "
            f"{written_date(before[-1].starts_at)}. Choose a later date", field="date")
    if after and ends > after[0].starts_at:
        raise SessionChangeRefused(
            f"Session {moving.number} must be before session {after[0].number}, on "
            f"{written_date(after[0].starts_at)}. Choose an earlier date", field="date")


def clear_marks(session: Session, cohort_session_id: int) -> list[tuple[int, str]]:
    """Remove the marks of a session that is not going ahead at its time, and say which they were."""
    found = [(patient_id, mark) for patient_id, mark in session.execute(
        select(Attendance.patient_id, Attendance.mark).where(Attendance.cohort_session_id == cohort_session_id)
        .order_by(Attendance.patient_id))]
    if found:
        session.execute(delete(Attendance).where(Attendance.cohort_session_id == cohort_session_id)
                        .execution_options(synchronize_session=False))
    return found


def move_session(
    session: Session,
    domain: DomainConfig,
    cohort_session: CohortSession,
    *,
    new_date: dt.date,
    new_time: dt.time,
    reason: str,
    now: dt.datetime,
    others: OtherClashes | None = None,
) -> SessionChange:
    """Move one session to a new local date and time and text every patient booked on the cohort.

    Refuses (SessionChangeRefused) a session that has started or is cancelled, a time in the past, a local time
    the clocks skip, a time from which the session would run past midnight (the rule a new cohort keeps) or
    through a clock change, a time out of the course's order (before the session before it ends, or running into
    the one after it), and a time when its room or a facilitator has another group or (``others``) a weekly
    clinic. Moving it again to where it already is changes nothing and texts nobody.
    """
    cohort = cohort_session.cohort
    previous = cohort_session.starts_at
    if cohort_session.status == "cancelled":
        raise SessionChangeRefused("This session is cancelled, so it cannot be moved", field="date")
    if previous <= now:
        raise SessionChangeRefused("This session has already started, so it cannot be moved", field="date")
    try:
        new_start = wall_clock_to_utc(new_date, new_time, cohort.timezone)
    except NonexistentLocalTime:
        raise SessionChangeRefused(
            f"The clocks go forward on that date, so {new_time:%H:%M} does not exist. Enter another time",
            field="time",
        ) from None
    length = cohort_session.ends_at - cohort_session.starts_at
    if not ends_by_midnight(new_time, length // dt.timedelta(minutes=1)):
        raise SessionChangeRefused(f"{MIDNIGHT_RULE}. Enter an earlier start time", field="time")
    if clocks_change_during(new_start, length, cohort.timezone):
        raise SessionChangeRefused("The clocks change during the session on that date. Enter another time",
                                   field="time")
    if new_start <= now:
        raise SessionChangeRefused("The new date and time must be in the future", field="date")
    if new_start == previous:
        if cohort_session.moved_from is not None:
            # A resubmitted form: the move it asks for has been made already.
            return SessionChange(session=cohort_session, changed=False, previous_start=previous)
        raise SessionChangeRefused("The session is already at this date and time. Enter a new one", field="date")

    _check_order(cohort, cohort_session, new_start, new_start + length, now=now)
    # The room, then its facilitators as they are now: a clinic or a group planned for them meanwhile waits.
    hold_rooms_and_people(session, venue_ids=[cohort.venue_id])
    facilitators = _facilitators_now(session, cohort.id)
    hold_rooms_and_people(session, people=[user.id for user in facilitators])
    found = clashes(session, venue=cohort.venue, facilitators=facilitators,
                    planned=[(new_start, new_start + length)], other_than=cohort.id, others=others)
    if found:
        raise SessionChangeRefused(f"{found[0].message}. Choose another date or time", field="date")
    # The original time is kept through later moves, so staff can always see where the session was planned.
    original = cohort_session.moved_from or previous
    moved = session.execute(
        update(CohortSession)
        .where(
            CohortSession.id == cohort_session.id,
            CohortSession.status == "scheduled",
            CohortSession.starts_at == previous,
        )
        .values(
            starts_at=new_start,
            ends_at=new_start + length,
            moved_from=None if original == new_start else original,
            change_reason=reason,
            revision=CohortSession.revision + 1,
        )
        .execution_options(synchronize_session=False)
    ).rowcount == 1
    session.refresh(cohort_session)
    if not moved and cohort_session.starts_at == new_start and cohort_session.status == "scheduled":
        # A double submit racing the first: that one moved it and texted the patients.
        return SessionChange(session=cohort_session, changed=False, previous_start=previous)
    if not moved:
        # Someone else changed the session between our read and this write.
        raise SessionChangeRefused(
            "Someone else has just changed this session. Check its new date and time", field="date"
        )

    cleared = clear_marks(session, cohort_session.id)
    cancel_pending_reminders(session, cohort_id=cohort.id, starts_at=previous, now=now)
    body = texts.session_moved(was=previous, now_at=new_start, venue_short_name=_venue_words(cohort),
                               phone=domain.policy.service.phone)
    booked = _booked_patients(session, cohort.id)
    queued = sum(
        _enqueue_for(session, booking, key=f"session-moved:{cohort_session.id}:{new_start.isoformat()}:{booking.id}",
                     kind="session_moved", body=body, now=now, expires_at=new_start)
        for booking in booked
    )
    return SessionChange(session=cohort_session, changed=True, previous_start=previous, texts_queued=queued,
                         patients_booked=len(booked), marks_cleared=cleared)


def _enqueue_for(
    session: Session, booking: Booking, *, key: str, kind: str, body: str, now: dt.datetime, expires_at: dt.datetime
) -> int:
    return int(enqueue_sms(session, key=key, patient=booking.patient, kind=kind, body=body, now=now,
                           booking_id=booking.id, expires_at=expires_at))


def cancel_session(
    session: Session, domain: DomainConfig, cohort_session: CohortSession, *, reason: str, now: dt.datetime
) -> SessionChange:
    """Cancel one session (the other weeks go ahead) and text every patient booked on the cohort.

    Refuses a session that has started. Cancelling a cancelled session again changes nothing.
    """
    starts = cohort_session.starts_at
    if cohort_session.status == "cancelled":
        return SessionChange(session=cohort_session, changed=False, previous_start=starts)
    if starts <= now:
        raise SessionChangeRefused("This session has already started, so it cannot be cancelled", field="reason")
    cancelled = session.execute(
        update(CohortSession)
        .where(CohortSession.id == cohort_session.id, CohortSession.status == "scheduled")
        .values(status="cancelled", change_reason=reason, revision=CohortSession.revision + 1)
        .execution_options(synchronize_session=False)
    ).rowcount == 1
    session.refresh(cohort_session)
    if not cancelled:
        # A double submit racing the first: that one cancelled it and sent the texts.
        return SessionChange(session=cohort_session, changed=False, previous_start=starts)
    cleared = clear_marks(session, cohort_session.id)
    cancel_pending_reminders(session, cohort_id=cohort_session.cohort_id, starts_at=starts, now=now)
    body = texts.session_cancelled(was=starts, phone=domain.policy.service.phone)
    booked = _booked_patients(session, cohort_session.cohort_id)
    queued = sum(
        _enqueue_for(session, booking, key=f"session-cancelled:{cohort_session.id}:{booking.id}",
                     kind="session_cancelled", body=body, now=now, expires_at=starts)
        for booking in booked
    )
    return SessionChange(session=cohort_session, changed=True, previous_start=starts, texts_queued=queued,
                         patients_booked=len(booked), marks_cleared=cleared)

