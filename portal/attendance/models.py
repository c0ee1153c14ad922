"""Who came: one attendance mark per patient per group session or 1:1 appointment, and the did-not-attend
reviews that clinicians decide.

DNA, late cancellation and "could not attend" (cancelled with notice) are kept apart, because only a DNA
counts towards a review, and the NHS Standard Contract allows no automatic discharge after one.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.auth.models import User
from portal.db import Base, UTCDateTime, utcnow
from portal.patients.models import Patient

# The marks a register offers, in the order it shows them, with the words staff see.
MARKS: dict[str, str] = {
    "attended": "Attended",
    "late": "Attended late",
    "dna": "Did not attend",
    "could_not_attend": "Cancelled with notice",
    "late_cancellation": "Late cancellation",
}
ATTENDED_MARKS = frozenset({"attended", "late"})
# Marks that only make sense once the session or appointment has started: nobody is late, nor has failed to
# come, before then (the register opens early, for people as they arrive).
MARKS_AFTER_START = frozenset({"late", "dna"})

# What a clinician may decide on a review. Only "contacted" leaves the review open.
REVIEW_ACTIONS: dict[str, str] = {
    "contacted": "Contacted the patient",
    "kept_on": "Keep them on",
    "offered_later": "Offer a later cohort",
    "discharged": "Discharge back to the referrer",
}


def _known(column: str, values) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Attendance(Base):
    """One patient's mark for one group session, or for one 1:1 appointment (exactly one of the two)."""

    __tablename__ = "attendance"
    __table_args__ = (
        CheckConstraint(_known("mark", MARKS), name="mark_known"),
        CheckConstraint("(cohort_session_id IS NULL) <> (appointment_id IS NULL)", name="session_or_appointment"),
        # Saving a register twice finds the same rows: these are the ON CONFLICT targets.
        Index("uq_attendance_session_patient", "cohort_session_id", "patient_id", unique=True,
              sqlite_where=text("cohort_session_id IS NOT NULL"),
              postgresql_where=text("cohort_session_id IS NOT NULL")),
        Index("uq_attendance_appointment", "appointment_id", unique=True,
              sqlite_where=text("appointment_id IS NOT NULL"),
              postgresql_where=text("appointment_id IS NOT NULL")),
        Index("ix_attendance_patient_time", "patient_id", "starts_at"),
        Index("ix_attendance_time", "starts_at"),
        # Service reports (portal.reports): marks by month, service and mark, read from the index alone.
        Index("ix_attendance_report", "starts_at", "service_key", "mark", "patient_id"),
        # ...and each patient's first attendance (the waits report), from the index alone.
        Index("ix_attendance_patient_first", "patient_id", "starts_at", "mark"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"))
    cohort_session_id: Mapped[int | None] = mapped_column(ForeignKey("cohort_session.id"))
    appointment_id: Mapped[int | None] = mapped_column(ForeignKey("appointment.id"))
    # The service and start of what was attended, copied here so counts and reports read one table.
    service_key: Mapped[str] = mapped_column(String(40))
    starts_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    mark: Mapped[str] = mapped_column(String(20))
    recorded_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    patient: Mapped[Patient] = relationship()
    recorded_by: Mapped[User] = relationship()

    @property
    def attended(self) -> bool:
        return self.mark in ATTENDED_MARKS


class DnaReview(Base):
    """A patient who reached the did-not-attend threshold of one service, waiting for a clinician's decision.

    At most one open review per patient and service. Every action on it is a row of DnaReviewAction.
    """

    __tablename__ = "dna_review"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'closed')", name="status_known"),
        CheckConstraint(f"decision IS NULL OR {_known('decision', REVIEW_ACTIONS)}", name="decision_known"),
        Index("uq_dna_review_open", "patient_id", "service_key", unique=True,
              sqlite_where=text("status = 'open'"), postgresql_where=text("status = 'open'")),
        Index("ix_dna_review_status_opened", "status", "opened_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"))
    service_key: Mapped[str] = mapped_column(String(40))
    cohort_id: Mapped[int | None] = mapped_column(ForeignKey("cohort.id"))
    # Why it opened, in words staff read ("2 did not attend in this course").
    trigger: Mapped[str] = mapped_column(String(200))
    opened_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    status: Mapped[str] = mapped_column(String(20), default="open")
    decision: Mapped[str | None] = mapped_column(String(20))
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    patient: Mapped[Patient] = relationship()
    actions: Mapped[list[DnaReviewAction]] = relationship(order_by=lambda: DnaReviewAction.id,
                                                          back_populates="review")

    @property
    def is_open(self) -> bool:
        return self.status == "open"

    @property
    def withdrawn(self) -> bool:
        """Closed with no decision: a corrected mark took the patient back under the threshold."""
        return self.status == "closed" and self.decision is None

    def withdraw(self, now: dt.datetime) -> None:
        self.status = "closed"
        self.closed_at = now

    def close(self, decision: str, now: dt.datetime) -> None:
        if decision not in REVIEW_ACTIONS or decision == "contacted":
            raise ValueError(f"{decision!r} does not close a review")
        self.status = "closed"
        self.decision = decision
        self.closed_at = now


class DnaReviewAction(Base):
    """One recorded human decision on a review, with who made it and why."""

    __tablename__ = "dna_review_action"
    __table_args__ = (
        CheckConstraint(_known("action", REVIEW_ACTIONS), name="action_known"),
        Index("ix_dna_review_action_review", "review_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("dna_review.id"))
    action: Mapped[str] = mapped_column(String(20))
    note: Mapped[str] = mapped_column(Text)
    decided_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    decided_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    review: Mapped[DnaReview] = relationship(back_populates="actions")
    decided_by: Mapped[User] = relationship()
