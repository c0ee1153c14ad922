"""Moving every patient of a cohort whose session was cancelled to another cohort of the same course, in one step.

Each patient moves through ``services.move_seat``, the same service a single move uses, so each move is whole on
its own (the new seat, the old booking ended, the old seat freed, the "your place has moved" text in the outbox,
all inside one savepoint) and the caller's transaction commits them together.

Per patient, not all-or-nothing: when the chosen group has fewer free places than patients, the patients booked
earliest move and the others keep their place (and their cancelled session) and are listed, so staff move them to
a second group with the same form. Refusing everyone because one place is missing would leave every patient of
the cancelled session stranded. Nothing half-writes: a patient either moved completely or not at all.

A resubmitted form moves nobody twice: the patients already moved no longer hold a seat in the old cohort, and a
request racing another is stopped by move_seat's conditional UPDATE of the old booking (its savepoint rolls the
new seat back).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from portal.booking import services
from portal.booking.models import Booking, Cohort, CohortSession
from portal.patients.models import Patient
from portal.settings import DomainConfig


@dataclass(frozen=True)
class Moved:
    patient: Patient
    old_booking_id: int
    new_booking_id: int


@dataclass(frozen=True)
class NotMoved:
    patient: Patient
    booking_id: int
    why: str


@dataclass
class BulkMoveReport:
    target: Cohort
    moved: list[Moved] = field(default_factory=list)
    not_moved: list[NotMoved] = field(default_factory=list)

    @property
    def nobody_left(self) -> bool:
        return not self.moved and not self.not_moved


def cancelled_session(session: Session, session_id: int) -> CohortSession | None:
    """A cohort session that is cancelled (or whose cohort is), else None: only those have patients to rehouse."""
    if not 0 < session_id < 2**31:
        return None
    found = session.get(CohortSession, session_id)
    if found is None or (found.status != "cancelled" and found.cohort.status != "cancelled"):
        return None
    return found


def patients_to_move(session: Session, cohort_id: int) -> list[Booking]:
    """The active seats of the cohort, earliest booked first (the order they move in when places are short)."""
    return list(session.scalars(
        select(Booking).where(Booking.cohort_id == cohort_id, Booking.status == "active")
        .options(selectinload(Booking.patient))
        .order_by(Booking.created_at, Booking.id)
    ))


def target_cohorts(session: Session, cohort: Cohort, *, now: dt.datetime) -> list[Cohort]:
    """Open cohorts of the same course (and team) that have not started, other than this one, soonest first."""
    first_session = (
        select(CohortSession.starts_at)
        .where(CohortSession.cohort_id == Cohort.id, CohortSession.number == 1)
        .scalar_subquery()
    )
    query = (
        select(Cohort)
        .where(Cohort.service_key == cohort.service_key, Cohort.status == "open", Cohort.id != cohort.id,
               first_session > now)
        .options(selectinload(Cohort.sessions))
        .order_by(Cohort.first_date, Cohort.id)
    )
    if cohort.team is not None:
        query = query.where(Cohort.team == cohort.team)
    return list(session.scalars(query))


def move_patients(
    session: Session, domain: DomainConfig, cohort: Cohort, to_cohort: Cohort, *, now: dt.datetime
) -> BulkMoveReport:
    """Move every patient with an active seat in ``cohort`` to ``to_cohort`` (one move_seat each, texts through
    the outbox). Those who cannot move keep their seat and are reported with the reason."""
    report = BulkMoveReport(target=to_cohort)
    for booking in patients_to_move(session, cohort.id):
        patient = booking.patient
        # A session cancelled mid-course is itself the reason to move patients out of a group that has started.
        try:
            new = services.move_seat(session, domain, patient, booking.id, to_cohort.id, now=now, by_staff=True,
                                     override_closing=True, override_started=True)
        except services.CohortFull:
            report.not_moved.append(NotMoved(patient, booking.id, "No place left in the chosen group"))
        except services.BookingNotFound:
            report.not_moved.append(NotMoved(patient, booking.id, "Their place changed while moving: check it"))
        except services.CohortNotFound:
            report.not_moved.append(NotMoved(patient, booking.id, "The chosen group is not open to them"))
        else:
            report.moved.append(Moved(patient, booking.id, new.id))
    return report
