"""Which cohorts are open to a patient, and the course page's list of them as plain rows.

The course page is the most viewed booking page. It reads its cohorts, their venues and their sessions in two
statements built once, into frozen rows (no ORM objects): the template shows them exactly as it shows a
``Cohort`` (``first_session``, ``sessions``, ``venue``, ``seats_left``). Booking itself reads the cohort again,
in the statement that takes the seat, so nothing here needs to be current to the millisecond.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from portal.booking.models import Booking, Cohort, CohortSession, Venue
from portal.db import UTCDateTime, read_rows
from portal.patients.models import Patient
from portal.settings import DomainConfig, Service


def open_cohort_conditions(team_scoped: bool) -> list:
    """Open cohorts of ``:service_key`` whose first session starts after ``:opens_after`` (and, for a
    team-scoped course, of ``:team``: a Tier 2 patient without a team sees none until staff assign one)."""
    first_session = (
        select(CohortSession.starts_at)
        .where(CohortSession.cohort_id == Cohort.id, CohortSession.number == 1)
        .scalar_subquery()
    )
    conditions = [
        Cohort.service_key == bindparam("service_key"),
        Cohort.status == "open",
        first_session > bindparam("opens_after", type_=UTCDateTime()),
    ]
    if team_scoped:
        conditions.append(Cohort.team == bindparam("team"))
    return conditions


def open_cohort_params(
    domain: DomainConfig, patient: Patient, service: Service, now: dt.datetime, *, override_closing: bool = False
) -> dict:
    hours = 0 if override_closing else domain.policy.booking.course_booking_closes_hours
    return {"service_key": service.key, "opens_after": now + dt.timedelta(hours=hours), "team": patient.team}


@dataclass(frozen=True, slots=True)
class VenueRow:
    name: str
    address: str
    access_notes: str
    is_online: bool


@dataclass(frozen=True, slots=True)
class SessionRow:
    starts_at: dt.datetime
    ends_at: dt.datetime
    status: str
    moved_from: dt.datetime | None


@dataclass(frozen=True, slots=True)
class CohortListing:
    """One open cohort as the course page lists it. It carries no joining link: that is for booked patients."""

    id: int
    capacity: int
    seats_taken: int
    venue: VenueRow
    sessions: tuple[SessionRow, ...]

    @property
    def seats_left(self) -> int:
        return self.capacity - self.seats_taken

    @property
    def first_session(self) -> SessionRow:
        return self.sessions[0]


@functools.cache
def _cohorts_statement(team_scoped: bool):
    return (
        select(Cohort.id, Cohort.capacity, Cohort.seats_taken,
               Venue.name, Venue.address, Venue.access_notes, Venue.is_online)
        .join(Venue, Cohort.venue_id == Venue.id)
        .where(*open_cohort_conditions(team_scoped))
        .order_by(Cohort.first_date, Cohort.id)
    )


_SESSIONS = (
    select(CohortSession.cohort_id, CohortSession.starts_at, CohortSession.ends_at, CohortSession.status,
           CohortSession.moved_from)
    .where(CohortSession.cohort_id.in_(bindparam("cohort_ids", expanding=True)))
    .order_by(CohortSession.cohort_id, CohortSession.number)
)

_SEAT_STARTS = (
    select(CohortSession.starts_at)
    .join(Booking, Booking.cohort_id == CohortSession.cohort_id)
    .where(
        Booking.patient_id == bindparam("patient_id"), Booking.service_key == bindparam("service_key"),
        Booking.status == "active", CohortSession.number == 1,
    )
)


def open_cohort_listing(
    session: Session, domain: DomainConfig, patient: Patient, service: Service, *, now: dt.datetime
) -> list[CohortListing]:
    """The cohorts of a course this patient may book now (as ``services.open_cohorts``), with every session."""
    cohorts = read_rows(session, _cohorts_statement(service.team_scoped),
                    open_cohort_params(domain, patient, service, now)).all()
    if not cohorts:
        return []
    sessions: dict[int, list[SessionRow]] = {row[0]: [] for row in cohorts}
    for cohort_id, *values in read_rows(session, _SESSIONS, {"cohort_ids": list(sessions)}):
        sessions[cohort_id].append(SessionRow(*values))
    return [
        CohortListing(cohort_id, capacity, taken, VenueRow(name, address, notes, is_online),
                      tuple(sessions[cohort_id]))
        for cohort_id, capacity, taken, name, address, notes, is_online in cohorts
    ]


def has_free_seat(session: Session, domain: DomainConfig, patient: Patient, service: Service, *,
                  now: dt.datetime, override_closing: bool = False) -> bool:
    """Whether any cohort of the course this patient may book now (staff: up to its start) has a place left."""
    rows = read_rows(session, _cohorts_statement(service.team_scoped),
                     open_cohort_params(domain, patient, service, now, override_closing=override_closing))
    return any(capacity > taken for _, capacity, taken, *_ in rows)


def current_seat_starts(session: Session, patient_id: int, service_key: str) -> dt.datetime | None:
    """When the first session of the patient's active seat on this course starts, or None without a seat."""
    return read_rows(session, _SEAT_STARTS, {"patient_id": patient_id, "service_key": service_key}).scalar()
