"""A patient's answers to one measure on one occasion, and the urgent flags their answers raise."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, CheckConstraint, Date, Float, ForeignKey, Index, Integer, SmallInteger, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.auth.models import User
from portal.db import Base, UTCDateTime, utcnow
from portal.patients.models import Patient
from portal.questionnaires.instruments import PHQ9


class ResponseAlreadySubmitted(ValueError):
    """Submitted answers are final: they are never changed, so the scores over time stay true."""


class QuestionnaireResponse(Base):
    """One measure (say PHQ-9) answered for one due set (say the baseline of the Tier 1 Group).

    A draft holds whatever the patient has answered so far and is never scored. Submitting scores it, once.
    """

    __tablename__ = "questionnaire_response"
    __table_args__ = (
        CheckConstraint("status IN ('draft', 'submitted')", name="status_known"),
        CheckConstraint("occasion IN ('baseline', 'end', 'follow_up')", name="occasion_known"),
        # Drafts are never scored; a submitted response always is.
        CheckConstraint(
            "(status = 'draft' AND score IS NULL AND submitted_at IS NULL)"
            " OR (status = 'submitted' AND score IS NOT NULL AND submitted_at IS NOT NULL)",
            name="scored_only_when_submitted",
        ),
        # One response per measure per due set: a second tab or a double submit finds the same row.
        Index("uq_questionnaire_response_set_instrument", "patient_id", "set_key", "instrument", unique=True),
        Index("ix_questionnaire_response_patient_submitted", "patient_id", "status", "submitted_at"),
        # Service reports (portal.reports): end and follow-up responses by the month they were submitted.
        Index("ix_questionnaire_response_report", "occasion", "status", "submitted_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"))
    instrument: Mapped[str] = mapped_column(String(30))
    # The due set: "{plan}:{occasion}", plan being "general" or "course-{service_key}".
    set_key: Mapped[str] = mapped_column(String(80))
    occasion: Mapped[str] = mapped_column(String(20))
    # The local (Europe/London) date the set fell due, kept for staff to read scores against.
    due_on: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20), default="draft")
    # Item key -> the chosen option's value (an int). Only answered items are present.
    answers: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    score: Mapped[float | None] = mapped_column(Float)
    band: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    submitted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    @property
    def submitted(self) -> bool:
        return self.status == "submitted"

    def save_draft(self, answers: dict[str, int], *, now: dt.datetime) -> None:
        if self.submitted:
            raise ResponseAlreadySubmitted("these answers are already submitted")
        self.answers = dict(answers)
        self.updated_at = now

    def submit(self, answers: dict[str, int], *, score: float, band: str | None, now: dt.datetime) -> None:
        if self.submitted:
            raise ResponseAlreadySubmitted("these answers are already submitted")
        self.answers = dict(answers)
        self.score = score
        self.band = band
        self.status = "submitted"
        self.submitted_at = now
        self.updated_at = now


class UrgentFlag(Base):
    """An answer that needs a clinician to act (PHQ-9 item 9 above "not at all"), open until acknowledged.

    At most one open flag per response: saving the same answers again, or submitting the draft that raised it,
    raises no other. Once a clinician has acknowledged it, a graver answer to the same response raises a new
    one: the clinician acted on the answer they read, not on the one given since.
    """

    __tablename__ = "urgent_flag"
    __table_args__ = (
        CheckConstraint(
            "(acknowledged_at IS NULL AND acknowledged_by_id IS NULL AND action_note IS NULL)"
            " OR (acknowledged_at IS NOT NULL AND acknowledged_by_id IS NOT NULL AND action_note IS NOT NULL)",
            name="acknowledgement_complete",
        ),
        Index("ix_urgent_flag_open", "acknowledged_at", "raised_at"),
        Index("uq_urgent_flag_open_response", "response_id", unique=True,
              sqlite_where=text("acknowledged_at IS NULL"), postgresql_where=text("acknowledged_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"), index=True)
    response_id: Mapped[int] = mapped_column(ForeignKey("questionnaire_response.id"), index=True)
    reason: Mapped[str] = mapped_column(String(40))
    # The answer that raised it (PHQ-9 item 9: 1 several days, 2 more than half the days, 3 nearly every day).
    answer_value: Mapped[int] = mapped_column(SmallInteger)
    raised_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    # What the clinician did: required to acknowledge.
    action_note: Mapped[str | None] = mapped_column(Text)

    patient: Mapped[Patient] = relationship(lazy="joined")
    acknowledged_by: Mapped[User | None] = relationship()
    response: Mapped[QuestionnaireResponse] = relationship()

    @property
    def is_open(self) -> bool:
        return self.acknowledged_at is None

    @property
    def answer_label(self) -> str:
        """The answer in the patient's words, e.g. "Several days"."""
        item = PHQ9.item(PHQ9.safety_item or "")
        return next((o.label for o in item.options if o.value == self.answer_value), str(self.answer_value))

    def acknowledge(self, *, by: User, note: str, now: dt.datetime) -> None:
        if not self.is_open:
            raise FlagAlreadyAcknowledged("this flag is already acknowledged")
        if not note.strip():
            raise ValueError("acknowledging needs a note of the action taken")
        self.acknowledged_at = now
        self.acknowledged_by_id = by.id
        self.action_note = note.strip()


class FlagAlreadyAcknowledged(ValueError):
    pass
