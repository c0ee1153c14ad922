"""Cohorts, their sessions, and booking a seat.

A seat is taken with one conditional UPDATE (``seats_taken < capacity``), so two patients can never
take the last seat together; a partial unique index stops one patient holding two seats on a course.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased, selectinload

from portal.auth.models import User
from portal.booking.models import Booking, Cohort, CohortSession, Venue
from portal.booking.schedule import weekly_sessions
from portal.db import UTCDateTime
from portal.messaging import texts
from portal.messaging.services import enqueue_sms
from portal.patients.models import Patient
from portal.settings import DomainConfig, Service


class BookingError(Exception):
    """A booking could not be made; the message is fit to show the patient."""


class CohortNotFound(BookingError):
    pass


class CohortFull(BookingError):
    pass


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
) -> Cohort:
    """A cohort with its weekly sessions at the same local time; callers validate input for the user first."""
    service = domain.catalogue.get(service_key)
    if service is None or service.kind != "course" or service.weeks is None:
        raise ValueError(f"{service_key!r} is not a course in the catalogue")
    if service.team_scoped and domain.teams.get(team) is None:
        raise ValueError(f"{service.name} needs a team")
    if venue.is_online != bool(online_link):
        raise ValueError("an online cohort needs a joining link, and only an online one has one")
    cohort = Cohort(
        service_key=service_key,
        team=team if service.team_scoped else None,
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


def bookable_services(domain: DomainConfig, patient: Patient) -> list[Service]:
    return [s for s in domain.catalogue.for_tier(patient.tier) if s.self_bookable]


def course_for_patient(domain: DomainConfig, patient: Patient, service_key: str) -> Service | None:
    service = domain.catalogue.get(service_key)
    if service is None or service.kind != "course" or service.tier != patient.tier:
        return None
    return service


def _open_cohorts_query(domain: DomainConfig, patient: Patient, service: Service, now: dt.datetime):
    closes = dt.timedelta(hours=domain.policy.booking.course_booking_closes_hours)
    first_session = (
        select(CohortSession.starts_at)
        .where(CohortSession.cohort_id == Cohort.id, CohortSession.number == 1)
        .scalar_subquery()
    )
    query = select(Cohort).where(
        Cohort.service_key == service.key,
        Cohort.status == "open",
        first_session > now + closes,
    )
    if service.team_scoped:
        # A Tier 2 patient without a team sees no cohorts until staff assign one.
        query = query.where(Cohort.team == patient.team)
    return query.order_by(Cohort.first_date, Cohort.id)


def open_cohorts(
    session: Session, domain: DomainConfig, patient: Patient, service: Service, *, now: dt.datetime
) -> list[Cohort]:
    """Cohorts this patient may book now: their tier, their team (Tier 2), not yet started."""
    query = _open_cohorts_query(domain, patient, service, now).options(selectinload(Cohort.sessions))
    return list(session.scalars(query))


def cohort_for_patient(
    session: Session, domain: DomainConfig, patient: Patient, cohort_id: int, *, now: dt.datetime
) -> Cohort:
    """A cohort the patient may book, or CohortNotFound (so a tampered id reveals nothing)."""
    cohort = session.get(Cohort, cohort_id)
    service = domain.catalogue.get(cohort.service_key) if cohort else None
    if cohort is None or service is None or course_for_patient(domain, patient, service.key) is None:
        raise CohortNotFound("This group is not available to book")
    allowed = session.scalars(
        _open_cohorts_query(domain, patient, service, now).where(Cohort.id == cohort_id)
    ).one_or_none()
    if allowed is None:
        raise CohortNotFound("This group is not available to book")
    return cohort


def active_course_booking(session: Session, patient: Patient, service_key: str) -> Booking | None:
    return session.scalars(
        select(Booking).where(
            Booking.patient_id == patient.id, Booking.service_key == service_key, Booking.status == "active"
        )
    ).one_or_none()


def book_seat(
    session: Session,
    domain: DomainConfig,
    patient: Patient,
    cohort_id: int,
    *,
    now: dt.datetime,
    by_staff: bool = False,
) -> Booking:
    """Take a seat in a cohort and write the confirmation text, in the caller's transaction."""
    cohort = cohort_for_patient(session, domain, patient, cohort_id, now=now)
    existing = active_course_booking(session, patient, cohort.service_key)
    if existing is not None:
        raise AlreadyBooked(existing.id)
    try:
        with session.begin_nested():
            taken = session.execute(
                update(Cohort)
                .where(Cohort.id == cohort.id, Cohort.seats_taken < Cohort.capacity, Cohort.status == "open")
                .values(seats_taken=Cohort.seats_taken + 1)
                .execution_options(synchronize_session=False)
            )
            if taken.rowcount != 1:
                raise CohortFull("This group has just filled up")
            booking = Booking(
                patient_id=patient.id,
                service_key=cohort.service_key,
                cohort_id=cohort.id,
                booked_by_staff=by_staff,
                created_at=now,
            )
            session.add(booking)
            session.flush()
    except IntegrityError:
        # Another request of the same patient (a double tap) won: the unique index said so.
        raise AlreadyBooked(None) from None
    session.refresh(cohort)
    first = cohort.sessions[0]
    enqueue_sms(
        session,
        key=f"booked:{booking.id}",
        patient=patient,
        kind="booking_confirmation",
        body=texts.seat_booked(
            first_session=first.starts_at,
            venue_short_name=cohort.venue.short_name,
            phone=domain.policy.service.phone,
        ),
        now=now,
        booking_id=booking.id,
        expires_at=first.starts_at,
    )
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
    row = session.connection().execute(_NEXT_SESSION, {"patient_id": patient.id, "now": now}).first()
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
