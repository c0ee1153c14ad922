"""Changing a whole cohort (admins): its number of places, or cancelling it outright.

Both read the seat count only with the cohort's row locked (SELECT ... FOR NO KEY UPDATE), so a booking racing the
change waits for it: ``seats.take_seat`` is a conditional UPDATE of that row, and once the change commits it sees
the new capacity (or the cancelled status) and takes a seat only if one is really there. SQLite's BEGIN IMMEDIATE
already runs writers one at a time.

Before the cohort, both lock its active bookings and then its live waiting-list entries (``_hold``). Those who change
one of them (a patient cancelling their place, declining an offer) lock it first and the cohort after, to free the
seat; taking the rows in the same order means such a request finishes before the change starts, instead of each
waiting for the other in a deadlock (PostgreSQL would end one of them with an error).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session, selectinload

from portal.booking import notices, waitlist
from portal.booking.models import WAITING_STATUSES, Booking, Cohort, CohortSession, WaitlistEntry
from portal.booking.seats import release_seat
from portal.booking.services import course_finished
from portal.booking.sessions import clear_marks
from portal.messaging import texts
from portal.messaging.services import enqueue_sms
from portal.patients.models import Patient
from portal.reminders.services import cancel_pending_reminders
from portal.settings import DomainConfig

CANCELLED_REASON = "Group cancelled"


class CohortLocked(ValueError):
    """The cohort's state refuses the change (it has finished, has met, or is cancelled): a conflict, not a typing
    slip. The message is fit to show staff."""


class CapacityTooLow(ValueError):
    """Fewer places than the seats already taken: booked ones and those held for waiting-list offers."""

    def __init__(self, *, booked: int, held: int) -> None:
        self.booked = booked
        self.held = held
        said = f"{booked} {'place is' if booked == 1 else 'places are'} booked"
        if held:
            said += f" and {held} {'is' if held == 1 else 'are'} held for waiting-list offers"
        super().__init__(f"Number of places must be {booked + held} or more: {said}")


def _hold(session: Session, cohort: Cohort) -> None:
    """Lock, until the transaction ends, the cohort's active bookings, its live waiting-list entries (waiting for it,
    or holding an offer of its seats), then its row; and read it (and its sessions) afresh, as what was loaded before
    may be out of date. The cohort's row FOR NO KEY UPDATE: it holds up the seat UPDATEs, not the inserts of rows
    that only point at the cohort."""
    session.execute(select(Booking.id).where(Booking.cohort_id == cohort.id, Booking.status == "active")
                    .order_by(Booking.id).with_for_update())
    session.execute(select(WaitlistEntry.id).where(
        or_(WaitlistEntry.cohort_id == cohort.id, WaitlistEntry.offer_cohort_id == cohort.id),
        WaitlistEntry.status.in_(WAITING_STATUSES)).order_by(WaitlistEntry.id).with_for_update())
    session.execute(select(Cohort.id).where(Cohort.id == cohort.id).with_for_update(key_share=True))
    session.refresh(cohort)
    session.expire(cohort, ["sessions"])


def _held_offers(session: Session, cohort_id: int) -> int:
    return session.scalar(select(func.count()).select_from(WaitlistEntry).where(
        WaitlistEntry.offer_cohort_id == cohort_id, WaitlistEntry.status == "offered")) or 0


# Changing the number of places.

@dataclass(frozen=True)
class CapacityChange:
    before: int
    after: int
    # Seats offered to the waiting list at once, when the change freed some.
    offers_made: int = 0

    @property
    def changed(self) -> bool:
        return self.before != self.after


def capacity_refusal(cohort: Cohort, *, now: dt.datetime) -> str | None:
    """Why the cohort's places cannot change, or None if they can."""
    if cohort.status == "cancelled":
        return "This cohort is cancelled, so its number of places cannot change"
    if course_finished(cohort, now=now):
        return "This cohort has finished, so its number of places cannot change"
    return None


def places_taken(session: Session, cohort: Cohort) -> tuple[int, int]:
    """(booked, held for offers): the seats taken, as the capacity page explains them."""
    held = _held_offers(session, cohort.id)
    return cohort.seats_taken - held, held


def change_capacity(
    session: Session, domain: DomainConfig, cohort: Cohort, capacity: int, *, now: dt.datetime
) -> CapacityChange:
    """Set the cohort's number of places (the form checks the bounds a new cohort has).

    Raising it frees seats, and the waiting list is offered them at once (``waitlist.offer_free_seats``, as when a
    patient gives up a place). Lowering it is refused (CapacityTooLow) below the seats taken, which count the seats
    held for open offers. A cancelled or finished cohort is refused (CohortLocked). The same number changes nothing.
    """
    if capacity < 1:
        raise ValueError("a cohort has at least one place")
    _hold(session, cohort)
    refused = capacity_refusal(cohort, now=now)
    if refused:
        raise CohortLocked(refused)
    before = cohort.capacity
    if capacity == before:
        return CapacityChange(before=before, after=before)
    if capacity < cohort.seats_taken:
        booked, held = places_taken(session, cohort)
        raise CapacityTooLow(booked=booked, held=held)
    session.execute(
        update(Cohort).where(Cohort.id == cohort.id, Cohort.seats_taken <= capacity).values(capacity=capacity)
        .execution_options(synchronize_session=False)
    )
    session.refresh(cohort)
    made = waitlist.offer_free_seats(session, domain, cohort, now=now) if capacity > before else 0
    return CapacityChange(before=before, after=capacity, offers_made=made)


# Cancelling the whole cohort.

def cancel_refusal(cohort: Cohort, *, now: dt.datetime) -> str | None:
    """Why the cohort cannot be cancelled as a whole, or None. A group that has met has patients part way through:
    staff cancel its sessions to come one at a time (each texts the patients) and move them as they see fit."""
    if any(s.status == "scheduled" and s.starts_at <= now for s in cohort.sessions):
        return ("This cohort has already met, so it cannot be cancelled as a whole. "
                "Cancel the sessions still to come one at a time instead")
    return None


@dataclass(frozen=True)
class CancellationPreview:
    """What cancelling would do, for the confirmation page."""

    patients_booked: int
    # Booked patients who take texts; the others are to be phoned.
    patients_texted: int
    # Waiting for this cohort only (an offer held here included): they are told and their wait ends.
    waiting_here: int
    # Waiting for any cohort of the course, holding an offer here: the offer is withdrawn and they wait on.
    offers_elsewhere: int


def cancellation_preview(session: Session, cohort: Cohort) -> CancellationPreview:
    booked = list(session.scalars(select(Booking).where(Booking.cohort_id == cohort.id, Booking.status == "active")
                                  .options(selectinload(Booking.patient))))
    waiting = select(func.count()).select_from(WaitlistEntry).where(WaitlistEntry.status.in_(WAITING_STATUSES))
    return CancellationPreview(
        patients_booked=len(booked),
        patients_texted=sum(1 for b in booked if b.patient.may_text),
        waiting_here=session.scalar(waiting.where(WaitlistEntry.cohort_id == cohort.id)) or 0,
        offers_elsewhere=session.scalar(waiting.where(WaitlistEntry.cohort_id.is_(None),
                                                      WaitlistEntry.offer_cohort_id == cohort.id)) or 0,
    )


@dataclass(frozen=True)
class CohortCancellation:
    """What cancelling did: ``changed`` is False when the cohort was already cancelled (a form sent twice)."""

    changed: bool
    sessions_cancelled: int = 0
    # (patient id, booking id) of each place cancelled, for the audit trail.
    bookings: list[tuple[int, int]] = field(default_factory=list)
    texts_queued: int = 0
    # (patient id, entry id): waits for this cohort only, ended; and waits for any cohort whose offer here ended.
    waits_ended: list[tuple[int, int]] = field(default_factory=list)
    offers_withdrawn: list[tuple[int, int]] = field(default_factory=list)
    # Offers made in the course's other cohorts once those offers were withdrawn.
    offered_in_other_cohorts: int = 0
    # (session number, patient id, mark) of marks taken as people arrived for the first session.
    marks_cleared: list[tuple[int, int, str]] = field(default_factory=list)


def cancel_cohort(
    session: Session, domain: DomainConfig, cohort: Cohort, *, reason: str, now: dt.datetime
) -> CohortCancellation:
    """Cancel a cohort that has not met, in the caller's transaction: every session, every active place (each
    patient texted as when staff cancel a place), the waits for this cohort only (each patient texted), and the
    offers of its seats (a patient waiting for any cohort keeps their place in the queue, and is told, and any seat
    free in another cohort of the course is offered to the queue). Waits for any cohort of the course are otherwise
    left alone. The cohort is no longer listed or bookable.

    Refuses (CohortLocked) a cohort that has met. Cancelling a cancelled cohort again changes nothing."""
    _hold(session, cohort)
    if cohort.status == "cancelled":
        return CohortCancellation(changed=False)
    refused = cancel_refusal(cohort, now=now)
    if refused:
        raise CohortLocked(refused)
    # What the waiting patients are told: the start they were waiting for, before the sessions are cancelled.
    starting = cohort.first_session_going_ahead.starts_at
    session.execute(update(Cohort).where(Cohort.id == cohort.id).values(status="cancelled")
                    .execution_options(synchronize_session=False))
    cancelled, cleared = _cancel_sessions(session, cohort, reason=reason)
    ended, withdrawn = _end_waits(session, domain, cohort, starting=starting, now=now)
    places, queued = _cancel_places(session, domain, cohort, reason=reason, now=now)
    offered = _offer_other_cohorts(session, domain, cohort, now=now) if withdrawn else 0
    session.refresh(cohort)
    session.expire(cohort, ["sessions"])
    return CohortCancellation(changed=True, sessions_cancelled=cancelled, bookings=places, texts_queued=queued,
                              waits_ended=ended, offers_withdrawn=withdrawn, offered_in_other_cohorts=offered,
                              marks_cleared=cleared)


def _offer_other_cohorts(session: Session, domain: DomainConfig, cohort: Cohort, *, now: dt.datetime) -> int:
    """Patients whose offer here was withdrawn wait for any cohort of the course again. A seat free in another
    cohort (its offers declined or run out while they held this one) goes to the queue now, as any freed seat
    does, rather than waiting for someone to give one back.

    Each other cohort's row is locked before its offers are made, as a seat freed by a cancellation is: the
    cohort, then the entries offered it. One being booked at this moment is skipped, not waited for: its booker
    holds its row and may next want the entry of a patient whose offer this cancellation has just withdrawn,
    which this transaction holds. Its free seat goes to the queue the next time a seat there changes hands."""
    others = session.scalars(
        select(Cohort).where(Cohort.service_key == cohort.service_key, Cohort.id != cohort.id,
                             Cohort.status == "open", Cohort.seats_taken < Cohort.capacity)
        .order_by(Cohort.first_date, Cohort.id).with_for_update(key_share=True, skip_locked=True, of=Cohort)
        .execution_options(populate_existing=True)  # the seat counts as locked, not as loaded earlier
    ).all()
    return sum(waitlist.offer_free_seats(session, domain, other, now=now) for other in others)


def _cancel_sessions(session: Session, cohort: Cohort, *, reason: str) -> tuple[int, list[tuple[int, int, str]]]:
    """Every session still scheduled (none has started) is cancelled, its revision raised for the calendar feeds."""
    cancelled = 0
    cleared = []
    for cohort_session in cohort.sessions:
        if cohort_session.status != "scheduled":
            continue
        session.execute(
            update(CohortSession).where(CohortSession.id == cohort_session.id, CohortSession.status == "scheduled")
            .values(status="cancelled", change_reason=reason, revision=CohortSession.revision + 1)
            .execution_options(synchronize_session=False)
        )
        cancelled += 1
        cleared += [(cohort_session.number, patient_id, mark)
                    for patient_id, mark in clear_marks(session, cohort_session.id)]
    return cancelled, cleared


def _end_waits(
    session: Session, domain: DomainConfig, cohort: Cohort, *, starting: dt.datetime, now: dt.datetime
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """End the waits for this cohort only (status 'expired': the wait ended without a place), and send the waits for
    any cohort that hold an offer here back to the queue at their place. Each seat held for an offer is freed (the
    cohort being cancelled, nobody else is offered it), its offer text withdrawn if not yet sent, and the patient
    told."""
    ended = session.execute(
        update(WaitlistEntry)
        .where(WaitlistEntry.cohort_id == cohort.id, WaitlistEntry.status.in_(WAITING_STATUSES))
        .values(status="expired", updated_at=now)
        .returning(WaitlistEntry.id, WaitlistEntry.patient_id, WaitlistEntry.offer_cohort_id)
        .execution_options(synchronize_session=False)
    ).all()
    withdrawn = session.execute(
        update(WaitlistEntry)
        .where(WaitlistEntry.cohort_id.is_(None), WaitlistEntry.offer_cohort_id == cohort.id,
               WaitlistEntry.status == "offered")
        .values(status="waiting", offer_cohort_id=None, offer_expires_at=None, updated_at=now)
        .returning(WaitlistEntry.id, WaitlistEntry.patient_id)
        .execution_options(synchronize_session=False)
    ).all()
    held = [entry_id for entry_id, _, offered_here in ended if offered_here == cohort.id]
    held += [entry_id for entry_id, _ in withdrawn]
    for entry_id in held:
        waitlist.withdraw_offer_text(session, entry_id, now=now)
        release_seat(session, cohort.id)
    phone = domain.policy.service.phone
    for entry_id, patient_id, _ in ended:
        enqueue_sms(session, key=f"wait-ended:{entry_id}", patient=session.get(Patient, patient_id),
                    kind="waiting_group_cancelled", now=now,
                    body=texts.waiting_group_cancelled(first_session=starting, phone=phone))
    for entry_id, patient_id in withdrawn:
        enqueue_sms(session, key=f"offer-withdrawn:{entry_id}:{cohort.id}", patient=session.get(Patient, patient_id),
                    kind="offer_withdrawn", now=now, body=texts.offer_withdrawn(first_session=starting, phone=phone))
    return ([(patient_id, entry_id) for entry_id, patient_id, _ in ended],
            [(patient_id, entry_id) for entry_id, patient_id in withdrawn])


def _cancel_places(
    session: Session, domain: DomainConfig, cohort: Cohort, *, reason: str, now: dt.datetime
) -> tuple[list[tuple[int, int]], int]:
    """Cancel every active place as staff cancelling one would (``services.withdraw_seat``): the seat freed, its
    reminders cancelled, the patient texted."""
    ids = list(session.scalars(
        update(Booking)
        .where(Booking.cohort_id == cohort.id, Booking.status == "active")
        .values(status="cancelled", cancelled_at=now, cancel_reason=f"{CANCELLED_REASON}: {reason}",
                cancelled_by_staff=True)
        .returning(Booking.id)
        .execution_options(synchronize_session=False)
    ))
    bookings = session.scalars(
        select(Booking).where(Booking.id.in_(ids)).options(selectinload(Booking.patient)).order_by(Booking.id)
        .execution_options(populate_existing=True)
    ).all() if ids else []
    queued = 0
    for booking in bookings:
        release_seat(session, cohort.id)
        cancel_pending_reminders(session, booking_id=booking.id, now=now)
        queued += notices.seat_cancelled(session, domain, booking.patient, booking, now=now)
    return [(booking.patient_id, booking.id) for booking in bookings], queued
