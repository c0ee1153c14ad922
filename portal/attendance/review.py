"""Did-not-attend reviews: opened when a patient reaches a threshold from config, decided only by a clinician.

The thresholds are local rules (``[attendance]`` in config/policy.toml): ``course_dna_threshold`` DNAs in one
cohort, or ``appointment_dna_in_a_row`` DNAs in a row at the 1:1 appointments of one service (cancellations,
with notice or late, neither count nor break a run; an attendance ends it). Counting starts again after each
decision, so a patient kept on is not flagged again for the same DNAs; a DNA recorded after the decision counts,
even for a session before it.

Opening is an INSERT ... ON CONFLICT DO NOTHING on the one-open-review-per-patient-and-service index, so two
saves at once open one review. Nothing here discharges anyone: only ``decide`` with a clinician's note does.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, or_, select, text
from sqlalchemy.orm import Session, selectinload

from portal.attendance.models import REVIEW_ACTIONS, Attendance, DnaReview, DnaReviewAction
from portal.audit.services import Actor, record
from portal.booking.models import Booking, Cohort, CohortSession
from portal.dates import written_date
from portal.db import upsert_insert
from portal.patients.models import Patient
from portal.settings import DomainConfig


class ReviewNotFound(LookupError):
    pass


class ReviewClosed(Exception):
    """Someone decided this review already."""


def _counting_since(session: Session, patient_id: int, service_key: str) -> dt.datetime | None:
    """When the last decision on this patient's reviews of the service closed one: DNAs before it are settled.
    A review withdrawn because its marks were corrected had no decision, so it settles nothing."""
    return session.scalar(
        select(func.max(DnaReview.closed_at))
        .where(DnaReview.patient_id == patient_id, DnaReview.service_key == service_key, DnaReview.status == "closed",
               DnaReview.decision.is_not(None))
    )


def _not_settled(since: dt.datetime):
    """Marks a decision closed at ``since`` did not settle: those of sessions and appointments after it, and any
    marked or changed after it (last Tuesday's DNA, recorded the day after a clinician kept the patient on, was
    never before them)."""
    return or_(Attendance.starts_at > since, Attendance.updated_at > since)


def _open(session: Session, *, patient_id: int, service_key: str, cohort_id: int | None, trigger: str,
          actor: Actor, now: dt.datetime) -> int | None:
    connection = session.connection()
    insert = upsert_insert(connection.dialect.name)(DnaReview)
    new_id = connection.execute(
        insert.values(patient_id=patient_id, service_key=service_key, cohort_id=cohort_id, trigger=trigger,
                      opened_at=now, status="open")
        .on_conflict_do_nothing(index_elements=["patient_id", "service_key"], index_where=text("status = 'open'"))
        .returning(DnaReview.id)
    ).scalar()
    if new_id is not None:
        record(session, actor, "dna_review_opened", patient_id=patient_id, detail=f"review {new_id}: {trigger}")
    return new_id


def open_if_course_threshold(session: Session, domain: DomainConfig, *, patient_id: int, cohort: Cohort,
                             actor: Actor, now: dt.datetime) -> int | None:
    """Open a review if the patient has reached the DNA threshold in this cohort; the new review's id, or None."""
    dnas = _course_dnas(session, patient_id, cohort.id, since=_counting_since(session, patient_id, cohort.service_key))
    if dnas < domain.policy.attendance.course_dna_threshold:
        return None
    return _open(session, patient_id=patient_id, service_key=cohort.service_key, cohort_id=cohort.id,
                 trigger=f"{dnas} did not attend in the course starting {written_date(cohort.first_date)}",
                 actor=actor, now=now)


def _course_dnas(session: Session, patient_id: int, cohort_id: int, *, since: dt.datetime | None) -> int:
    """The patient's DNAs in one cohort not settled by a decision."""
    query = (
        select(func.count())
        .select_from(Attendance)
        .join(CohortSession, Attendance.cohort_session_id == CohortSession.id)
        .where(CohortSession.cohort_id == cohort_id, Attendance.patient_id == patient_id, Attendance.mark == "dna")
    )
    if since is not None:
        query = query.where(_not_settled(since))
    return session.scalar(query) or 0


def dnas_in_a_row(session: Session, patient_id: int, service_key: str, *, since: dt.datetime | None = None) -> int:
    """How many of the patient's latest 1:1 appointments of the service were DNAs in a row (newest first)."""
    query = (
        select(Attendance.mark)
        .where(Attendance.patient_id == patient_id, Attendance.service_key == service_key,
               Attendance.appointment_id.is_not(None),
               Attendance.mark.in_(("attended", "late", "dna")))
        .order_by(Attendance.starts_at.desc(), Attendance.id.desc())
        .limit(50)
    )
    if since is not None:
        query = query.where(_not_settled(since))
    run = 0
    for mark in session.scalars(query):
        if mark != "dna":
            break
        run += 1
    return run


def open_if_appointment_threshold(session: Session, domain: DomainConfig, *, patient_id: int, service_key: str,
                                  actor: Actor, now: dt.datetime) -> int | None:
    """Open a review if the patient's latest appointments of the service were DNAs in a row, enough of them."""
    threshold = domain.policy.attendance.appointment_dna_in_a_row
    run = dnas_in_a_row(session, patient_id, service_key, since=_counting_since(session, patient_id, service_key))
    if run < threshold:
        return None
    return _open(session, patient_id=patient_id, service_key=service_key, cohort_id=None,
                 trigger=f"{run} did not attend in a row", actor=actor, now=now)


def withdraw_if_no_longer_met(session: Session, domain: DomainConfig, *, patient_id: int, service_key: str,
                              actor: Actor, now: dt.datetime) -> int | None:
    """After a DNA was corrected to another mark: withdraw the patient's open review of the service if its
    threshold is no longer met (the withdrawn review's id, or None). It closes with no decision, so it settles
    no DNAs, and its history stays; a clinician's "contacted" note on it stays with it."""
    found = session.scalars(
        select(DnaReview).where(DnaReview.patient_id == patient_id, DnaReview.service_key == service_key,
                                DnaReview.status == "open").with_for_update()
    ).one_or_none()
    if found is None:
        return None
    since = _counting_since(session, patient_id, service_key)
    policy = domain.policy.attendance
    if found.cohort_id is not None:
        still_met = _course_dnas(session, patient_id, found.cohort_id, since=since) >= policy.course_dna_threshold
    else:
        still_met = dnas_in_a_row(session, patient_id, service_key, since=since) >= policy.appointment_dna_in_a_row
    if still_met:
        return None
    found.withdraw(now)
    session.flush()
    record(session, actor, "dna_review_withdrawn", patient_id=patient_id,
           detail=f"review {found.id} ({service_key}): a did-not-attend mark behind it was corrected")
    return found.id


def open_reviews(session: Session) -> list[DnaReview]:
    """Open reviews, oldest first: the queue clinicians work through."""
    return list(session.scalars(
        select(DnaReview)
        .where(DnaReview.status == "open")
        .options(selectinload(DnaReview.patient), selectinload(DnaReview.actions))
        .order_by(DnaReview.opened_at, DnaReview.id)
    ))


def count_open(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(DnaReview).where(DnaReview.status == "open")) or 0


def get_review(session: Session, review_id: int) -> DnaReview:
    review = session.get(DnaReview, review_id) if 0 < review_id < 2**31 else None
    if review is None:
        raise ReviewNotFound(review_id)
    return review


def active_seat(session: Session, review: DnaReview) -> Booking | None:
    """The patient's active seat on the review's course, if they hold one (staff can move it to a later cohort)."""
    return session.scalars(
        select(Booking).where(Booking.patient_id == review.patient_id, Booking.service_key == review.service_key,
                              Booking.status == "active")
    ).first()


def decide(session: Session, review_id: int, action: str, note: str, *, actor: Actor,
           now: dt.datetime) -> DnaReviewAction:
    """Record a clinician's decision on an open review, with their note (the reason, for a discharge).

    'contacted' keeps the review open; every other action closes it. 'discharged' discharges the patient back
    to the referrer: it records the discharge on the patient and cancels nothing (staff cancel any remaining
    bookings, and tell the patient, themselves). Raises ReviewNotFound, ReviewClosed or ValueError.
    """
    if action not in REVIEW_ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    note = note.strip()
    if not note:
        raise ValueError("a decision needs a note")
    if not 0 < review_id < 2**31:
        raise ReviewNotFound(review_id)
    # Locked, so two clinicians deciding at once cannot both close it.
    review = session.scalars(select(DnaReview).where(DnaReview.id == review_id).with_for_update()).one_or_none()
    if review is None:
        raise ReviewNotFound(review_id)
    if review.status != "open":
        raise ReviewClosed(review_id)
    decision = DnaReviewAction(review_id=review.id, action=action, note=note, decided_by_id=actor.user_id,
                               decided_at=now)
    session.add(decision)
    if action != "contacted":
        review.close(action, now)
    if action == "discharged":
        patient = session.get(Patient, review.patient_id)
        patient.discharge(now, note)
    session.flush()
    # The note is clinical free text: it stays on the review, not in the trail.
    record(session, actor, f"dna_review_{action}", patient_id=review.patient_id,
           detail=f"review {review.id} ({review.service_key})")
    return decision


def review_history(session: Session, patient_id: int) -> list[DnaReview]:
    """The patient's reviews, newest first, each with its actions in order (who decided what, and why)."""
    return list(session.scalars(
        select(DnaReview)
        .where(DnaReview.patient_id == patient_id)
        .options(selectinload(DnaReview.actions).selectinload(DnaReviewAction.decided_by))
        .order_by(DnaReview.opened_at.desc(), DnaReview.id.desc())
    ))
