"""Cohorts, their sessions, and booking a seat.

A seat is taken with one conditional UPDATE (``seats_taken < capacity``), so two patients can never
take the last seat together; a partial unique index stops one patient holding two seats on a course.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, delete, func, select, text, update
from sqlalchemy.orm import Session, aliased, selectinload

from portal.auth.models import User
from portal.booking import notices, waitlist
from portal.booking.listing import open_cohort_conditions, open_cohort_params
from portal.booking.models import Booking, Cohort, CohortSession, Venue
from portal.booking.schedule import weekly_sessions
from portal.booking.seats import release_seat, take_seat
from portal.booking.sessions import Clash, OtherClashes, hold_rooms_and_people, new_cohort_clashes
from portal.dates import written_date
from portal.db import UTCDateTime, read_rows, upsert_insert
from portal.patients.models import Patient
from portal.reminders.services import cancel_pending_reminders
from portal.settings import DomainConfig, Service


class BookingError(Exception):
    """A booking could not be made; the message is fit to show the patient."""


class CohortNotFound(BookingError):
    pass


class CohortFull(BookingError):
    pass


class BookingNotFound(BookingError):
    pass


class BookingEnded(BookingNotFound):
    """The patient's own seat, already cancelled or moved (a double submit, or Back to a form already sent): the
    page can say so, since it tells the patient only about their own booking."""


MOVED_REASON = "Moved to another group"


def _ended(session: Session, booking: Booking) -> BookingEnded:
    """What to tell the patient about their seat that ended, read afresh (another request may just have ended it)."""
    session.refresh(booking)
    if booking.cancel_reason == MOVED_REASON:
        return BookingEnded("This place has already moved to another group")
    return BookingEnded("This place is already cancelled")


class CourseStarted(BookingError):
    """The seat's group has had its first session: a patient cannot move out of a running course."""


class CourseFinished(BookingError):
    """The seat's group has had its last session: the place is a course done, so there is nothing to cancel (staff
    may still move the patient to a later group, as a review decision may ask)."""


class DuplicateCohort(ValueError):
    """An active cohort with the same course, team, venue, first date and start time exists already: almost
    always the same form sent twice. The message is fit to show staff next to the start time."""


class CohortClashes(ValueError):
    """The planned cohort's sessions meet another group, or a weekly clinic, in its room or of its facilitators:
    ``clashes`` says which, each with the form field it belongs to."""

    def __init__(self, clashes: list[Clash]) -> None:
        super().__init__("; ".join(clash.message for clash in clashes))
        self.clashes = clashes


class AlreadyBooked(BookingError):
    def __init__(self, booking_id: int | None) -> None:
        super().__init__("You already have a place on this course")
        self.booking_id = booking_id


def create_cohort(
    session: Session,
    domain: DomainConfig,
    *,
    service_key: str,
    team: str | None,
    venue: Venue,
    first_date: dt.date,
    start_time: dt.time,
    session_minutes: int,
    capacity: int,
    online_link: str | None = None,
    facilitators: Sequence[User] = (),
    others: OtherClashes | None = None,
) -> Cohort:
    """A cohort with its weekly sessions at the same local time; callers validate input for the user first.

    Raises DuplicateCohort if an active cohort identical in course, team, venue, first date and start time
    exists, even one committed a moment ago by the same form sent twice at once. Otherwise CohortClashes if a
    session would meet another group in the room or of a facilitator, or (``others``, the weekly clinics) a
    clinic. The twin is asked first: a twin at a room would otherwise read as another group in it.
    """
    service, team = _course_and_team(domain, service_key, team)
    if venue.is_online != bool(online_link):
        raise ValueError("an online cohort needs a joining link, and only an online one has one")
    # It locks the room and the facilitators, so the clash check after it stands until the cohort is saved.
    _refuse_duplicate_cohort(session, domain, service_key=service_key, team=team, venue=venue, first_date=first_date,
                            start_time=start_time, facilitators=facilitators)
    found = new_cohort_clashes(session, domain, service=service, venue=venue, facilitators=list(facilitators),
                               first_date=first_date, start_time=start_time, minutes=session_minutes, others=others)
    if found:
        raise CohortClashes(found)
    cohort = Cohort(
        service_key=service_key,
        team=team,
        venue=venue,
        first_date=first_date,
        weekday=first_date.weekday(),
        start_time=start_time,
        timezone=domain.policy.service.timezone,
        session_minutes=session_minutes,
        capacity=capacity,
        online_link=online_link or None,
        facilitators=list(facilitators),
    )
    for number, (starts, ends) in enumerate(
        weekly_sessions(
            first_date=first_date,
            start_time=start_time,
            minutes=session_minutes,
            count=service.weeks,
            timezone=cohort.timezone,
        ),
        start=1,
    ):
        cohort.sessions.append(CohortSession(number=number, starts_at=starts, ends_at=ends))
    session.add(cohort)
    session.flush()
    return cohort


def _course_and_team(domain: DomainConfig, service_key: str, team: str | None) -> tuple[Service, str | None]:
    """The course in the catalogue, and the team it belongs to (None for a course every team shares)."""
    service = domain.catalogue.get(service_key)
    if service is None or service.kind != "course" or service.weeks is None:
        raise ValueError(f"{service_key!r} is not a course in the catalogue")
    if service.team_scoped and domain.teams.get(team) is None:
        raise ValueError(f"{service.name} needs a team")
    return service, team if service.team_scoped else None


def _refuse_duplicate_cohort(
    session: Session, domain: DomainConfig, *, service_key: str, team: str | None, venue: Venue, first_date: dt.date,
    start_time: dt.time, facilitators: Sequence[User] = (),
) -> None:
    """DuplicateCohort if an active twin of the planned cohort exists (``create_cohort`` asks this first).

    First it locks the venue's row and the facilitators' (``sessions.hold_rooms_and_people``), so of two identical
    forms sent together the second waits for the first to commit and then finds its cohort; and what
    ``create_cohort`` checks after it in the same transaction (another group in the room, a clinic of a
    facilitator) cannot change under it.

    A unique index could not do it: a cancelled twin must not block a new one, and cohorts duplicated before
    this check would stop the migration that added it.
    """
    service, team = _course_and_team(domain, service_key, team)
    hold_rooms_and_people(session, venue_ids=[venue.id], people=[user.id for user in facilitators])
    twin = session.scalar(
        select(Cohort.id).where(
            Cohort.service_key == service.key,
            Cohort.team.is_(None) if team is None else Cohort.team == team,
            Cohort.venue_id == venue.id,
            Cohort.first_date == first_date,
            Cohort.start_time == start_time,
            Cohort.status != "cancelled",
        ).limit(1)
    )
    if twin is not None:
        raise DuplicateCohort(
            f"The {service.name} at {venue.name} starting {written_date(first_date)} at "
            f"{start_time:%H:%M} already exists. Enter another date or start time, or use the existing group"
        )


def bookable_services(domain: DomainConfig, patient: Patient) -> list[Service]:
    return [s for s in domain.catalogue.for_tier(patient.tier) if s.self_bookable]


def course_for_patient(domain: DomainConfig, patient: Patient, service_key: str) -> Service | None:
    service = domain.catalogue.get(service_key)
    if service is None or service.kind != "course" or service.tier != patient.tier:
        return None
    return service


@functools.cache
def _open_cohorts_statement(team_scoped: bool, *, with_sessions: bool):
    """The open cohorts (``listing.open_cohort_conditions``) as ORM objects. Built once per shape, with bound
    parameters: building costs more than running."""
    query = select(Cohort).where(*open_cohort_conditions(team_scoped)).order_by(Cohort.first_date, Cohort.id)
    return query.options(selectinload(Cohort.sessions)) if with_sessions else query


def open_cohorts(
    session: Session,
    domain: DomainConfig,
    patient: Patient,
    service: Service,
    *,
    now: dt.datetime,
    override_closing: bool = False,
) -> list[Cohort]:
    """Cohorts this patient may book now: their tier, their team (Tier 2), booking not yet closed.

    ``override_closing``: for staff, also those whose booking has closed but whose first session is to come.
    """
    statement = _open_cohorts_statement(service.team_scoped, with_sessions=True)
    return list(session.scalars(
        statement, open_cohort_params(domain, patient, service, now, override_closing=override_closing)))


def cohort_for_patient(
    session: Session,
    domain: DomainConfig,
    patient: Patient,
    cohort_id: int,
    *,
    now: dt.datetime,
    override_closing: bool = False,
) -> Cohort:
    """A cohort the patient may book, or CohortNotFound (so a tampered id reveals nothing).

    ``override_closing``: staff may book a cohort whose booking has closed, until its first session starts.
    """
    cohort = session.get(Cohort, cohort_id)
    service = domain.catalogue.get(cohort.service_key) if cohort else None
    if cohort is None or service is None or course_for_patient(domain, patient, service.key) is None:
        raise CohortNotFound("This group is not available to book")
    query = _open_cohorts_statement(service.team_scoped, with_sessions=False).where(Cohort.id == cohort_id)
    params = open_cohort_params(domain, patient, service, now, override_closing=override_closing)
    if session.scalars(query, params).one_or_none() is None:
        raise CohortNotFound("This group is not available to book")
    return cohort


def booking_closed(domain: DomainConfig, cohort: Cohort, *, now: dt.datetime) -> bool:
    """True once patients can no longer book this cohort themselves (staff may still, with a reason)."""
    closes = dt.timedelta(hours=domain.policy.booking.course_booking_closes_hours)
    return cohort.first_session.starts_at <= now + closes


def course_started(cohort: Cohort, *, now: dt.datetime) -> bool:
    """True once the cohort's first session has begun: from then on patients keep their group (staff may move
    them, with a reason)."""
    return cohort.first_session.starts_at <= now


def course_finished(cohort: Cohort, *, now: dt.datetime) -> bool:
    """True once the last session going ahead has ended (a cohort with every session cancelled never finishes)."""
    going = [s.ends_at for s in cohort.sessions if s.status == "scheduled"]
    return bool(going) and max(going) <= now


def booking_for_patient(session: Session, patient: Patient, booking_id: int) -> Booking:
    """The patient's own active seat; BookingEnded if their seat has ended; else BookingNotFound, so another
    patient's id looks like no booking at all."""
    booking = session.get(Booking, booking_id)
    if booking is None or booking.patient_id != patient.id:
        raise BookingNotFound("This booking is not open")
    if booking.status != "active":
        raise _ended(session, booking)
    return booking


@dataclass(frozen=True)
class SeatBooked:
    id: int
    cohort_id: int
    service_key: str
    first_session_at: dt.datetime


# Built once: booking is the hottest write, so it reads plain columns in one statement (no ORM objects).
_FIRST_SESSION_AT = (
    select(CohortSession.starts_at)
    .where(CohortSession.cohort_id == Cohort.id, CohortSession.number == 1)
    .correlate(Cohort)
    .scalar_subquery()
)
# What the confirmation text names as the start (Cohort.first_session_going_ahead): a cancelled week 1 is not it.
_FIRST_GOING_AHEAD_AT = (
    select(func.min(CohortSession.starts_at))
    .where(CohortSession.cohort_id == Cohort.id, CohortSession.status == "scheduled")
    .correlate(Cohort)
    .scalar_subquery()
)
_COHORT_TO_BOOK = (
    select(Cohort.service_key, Cohort.team, Cohort.status, Venue.short_name, Venue.is_online, _FIRST_SESSION_AT,
           _FIRST_GOING_AHEAD_AT)
    .join(Venue, Cohort.venue_id == Venue.id)
    .where(Cohort.id == bindparam("cohort_id"))
)


@functools.cache
def _insert_booking_statement(dialect: str):
    insert = upsert_insert(dialect)
    columns = ("patient_id", "service_key", "cohort_id", "status", "booked_by_staff", "cancelled_by_staff",
               "created_at")
    return (
        insert(Booking)
        .values({name: bindparam(name, type_=Booking.__table__.c[name].type) for name in columns})
        .on_conflict_do_nothing(index_elements=["patient_id", "service_key"], index_where=text("status = 'active'"))
        .returning(Booking.id)
    )


def _insert_booking(session: Session, values: dict) -> int | None:
    """Insert an active seat unless the patient holds one on this course already; the new id, or None."""
    connection = session.connection()
    return connection.execute(_insert_booking_statement(connection.dialect.name), values).scalar()


def book_seat(
    session: Session,
    domain: DomainConfig,
    patient: Patient,
    cohort_id: int,
    *,
    now: dt.datetime,
    by_staff: bool = False,
    override_closing: bool = False,
) -> SeatBooked:
    """Take a seat in a cohort and write the confirmation text, in the caller's transaction.

    The seat row goes in first with ON CONFLICT DO NOTHING on the one-active-seat-per-course index, so a
    double tap is answered by the index itself; then the conditional seat UPDATE, and if the cohort is full the
    row just inserted is deleted again. No savepoint, no ORM objects: this is the hottest write of the portal.
    """
    # Core statements on the session's connection throughout: same transaction, none of the ORM's per-call work.
    connection = session.connection()
    row = read_rows(session, _COHORT_TO_BOOK, {"cohort_id": cohort_id}).first() if 0 < cohort_id < 2**31 else None
    if row is None:
        raise CohortNotFound("This group is not available to book")
    service_key, team, status, venue_short_name, is_online, first_at, going_ahead_at = row
    service = course_for_patient(domain, patient, service_key)
    closes = dt.timedelta(hours=0 if override_closing else domain.policy.booking.course_booking_closes_hours)
    if (
        service is None
        or status != "open"
        or first_at is None
        or first_at <= now + closes
        or (service.team_scoped and team != patient.team)
    ):
        raise CohortNotFound("This group is not available to book")
    booking_id = _insert_booking(session, {
        "patient_id": patient.id, "service_key": service_key, "cohort_id": cohort_id, "status": "active",
        "booked_by_staff": by_staff, "cancelled_by_staff": False, "created_at": now,
    })
    if booking_id is None:
        raise AlreadyBooked(None)
    # A patient offered a seat here who books the group rather than accepting the offer books the seat held for
    # them; anyone else takes a free seat, and their place on the waiting list ends.
    entry = waitlist.live_entry(session, patient.id, service_key)
    if entry is None or not waitlist.book_held_seat(session, entry, cohort_id, now=now):
        if not take_seat(session, cohort_id):
            connection.execute(delete(Booking).where(Booking.id == booking_id))
            raise CohortFull("This group has just filled up")
        if entry is not None:
            waitlist.end_for_booking(session, domain, entry, now=now)
    notices.seat_booked(
        session, domain, patient, booking_id=booking_id, first_session_at=going_ahead_at or first_at,
        venue_short_name="online" if is_online else venue_short_name, now=now,
    )
    return SeatBooked(id=booking_id, cohort_id=cohort_id, service_key=service_key, first_session_at=first_at)


def withdraw_seat(
    session: Session,
    domain: DomainConfig,
    patient: Patient,
    booking_id: int,
    *,
    reason: str,
    now: dt.datetime,
    by_staff: bool = False,
) -> Booking:
    """Give up a seat: the booking ends, the seat frees, and the next patient waiting is offered it.

    Refuses (CourseFinished) a seat whose group has finished: cancelling it would text the patient that their
    place is cancelled and end the follow-up that a finished course brings."""
    booking = booking_for_patient(session, patient, booking_id)
    if course_finished(booking.cohort, now=now):
        raise CourseFinished("This group has finished, so the place cannot be cancelled")
    cancelled = session.execute(
        update(Booking)
        .where(Booking.id == booking.id, Booking.status == "active")
        .values(status="cancelled", cancelled_at=now, cancel_reason=reason, cancelled_by_staff=by_staff)
        .execution_options(synchronize_session=False)
    ).rowcount == 1
    if not cancelled:
        # A double submit: the first request already withdrew, and freed the seat once.
        raise _ended(session, booking)
    session.refresh(booking)
    release_seat(session, booking.cohort_id)
    cancel_pending_reminders(session, booking_id=booking.id, now=now)
    notices.seat_cancelled(session, domain, patient, booking, now=now)
    session.refresh(booking.cohort)
    waitlist.offer_free_seats(session, domain, booking.cohort, now=now)
    return booking


def move_seat(
    session: Session,
    domain: DomainConfig,
    patient: Patient,
    booking_id: int,
    to_cohort_id: int,
    *,
    now: dt.datetime,
    by_staff: bool = False,
    override_closing: bool = False,
    override_started: bool = False,
) -> Booking:
    """Move to another cohort of the same course in one step: if the new seat cannot be had, the old one stands.

    A seat in a group that has started stays put (CourseStarted) unless ``override_started``: staff moving one
    patient with a reason, or rehousing everyone from a cancelled session.
    """
    old = booking_for_patient(session, patient, booking_id)
    if course_started(old.cohort, now=now) and not override_started:
        raise CourseStarted("This group has already started, so your place cannot be moved")
    target = cohort_for_patient(session, domain, patient, to_cohort_id, now=now, override_closing=override_closing)
    if target.service_key != old.service_key or target.id == old.cohort_id:
        raise CohortNotFound("Choose a different group of the same course")
    with session.begin_nested():
        if not take_seat(session, target.id):
            raise CohortFull("This group has just filled up")
        moved = session.execute(
            update(Booking)
            .where(Booking.id == old.id, Booking.status == "active")
            .values(status="cancelled", cancelled_at=now, cancel_reason=MOVED_REASON,
                    cancelled_by_staff=by_staff)
            .execution_options(synchronize_session=False)
        ).rowcount == 1
        if not moved:
            # Rolls back the new seat too: a double submit moves once.
            raise _ended(session, old)
        release_seat(session, old.cohort_id)
        booking = Booking(
            patient_id=patient.id, service_key=target.service_key, cohort_id=target.id, booked_by_staff=by_staff,
            created_at=now,
        )
        session.add(booking)
        session.flush()
    session.refresh(old)
    session.refresh(target)
    cancel_pending_reminders(session, booking_id=old.id, now=now)
    notices.seat_moved(session, domain, patient, booking, now=now)
    session.refresh(old.cohort)
    waitlist.offer_free_seats(session, domain, old.cohort, now=now)
    return booking


@dataclass(frozen=True)
class VenueDetails:
    name: str
    short_name: str
    address: str
    access_notes: str


@dataclass(frozen=True)
class UpcomingSession:
    starts_at: dt.datetime
    ends_at: dt.datetime
    number: int
    of: int
    service_key: str
    venue: VenueDetails


# Built once: the home page runs it on every request. One query returning plain columns (no ORM objects
# to build), with the cohort's number of sessions counted in SQL rather than by loading them all.
_all_sessions = aliased(CohortSession)
_NEXT_SESSION = (
    select(
        CohortSession.starts_at,
        CohortSession.ends_at,
        CohortSession.number,
        select(func.count(_all_sessions.id))
        .where(_all_sessions.cohort_id == Cohort.id)
        .correlate(Cohort)
        .scalar_subquery()
        .label("session_count"),
        Cohort.service_key,
        Venue.name,
        Venue.short_name,
        Venue.address,
        Venue.access_notes,
    )
    .join(Cohort, CohortSession.cohort_id == Cohort.id)
    .join(Venue, Cohort.venue_id == Venue.id)
    .join(Booking, Booking.cohort_id == Cohort.id)
    .where(
        Booking.patient_id == bindparam("patient_id"),
        Booking.status == "active",
        CohortSession.status == "scheduled",
        CohortSession.ends_at > bindparam("now", type_=UTCDateTime()),
    )
    .order_by(CohortSession.starts_at)
    .limit(1)
)


def next_session(session: Session, patient: Patient, *, now: dt.datetime) -> UpcomingSession | None:
    """The patient's next group session across all their active bookings."""
    # On the session's connection (same transaction), skipping the ORM layer: nothing here is an entity.
    row = read_rows(session, _NEXT_SESSION, {"patient_id": patient.id, "now": now}).first()
    if row is None:
        return None
    starts_at, ends_at, number, session_count, service_key, *venue = row
    return UpcomingSession(
        starts_at=starts_at,
        ends_at=ends_at,
        number=number,
        of=session_count,
        service_key=service_key,
        venue=VenueDetails(*venue),
    )


def bookings_for_patient(session: Session, patient: Patient) -> list[Booking]:
    return list(
        session.scalars(
            select(Booking)
            .where(Booking.patient_id == patient.id)
            .options(selectinload(Booking.cohort).selectinload(Cohort.sessions))
            .order_by(Booking.created_at.desc())
        )
    )
