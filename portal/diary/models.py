"""A patient's own self-management records: the daily diary, SMART goals with weekly check-ins, and the
flare-up plan.

Each is written by the patient alone and reached only through the signed-in patient. Uniqueness makes the
writes idempotent: one diary entry per patient per (London) day, one check-in per goal per ISO week, and
one flare-up plan per patient, so a double tap updates a row rather than adding one.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, Date, ForeignKey, Integer, SmallInteger, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db import Base, UTCDateTime, utcnow

PAIN_RANGE = (0, 10)
SCALE_RANGE = (1, 5)
CONFIDENCE_RANGE = (0, 10)
NOTE_MAX = 500
CHECK_IN_NOTE_MAX = 300
GOAL_TEXT_MAX = 200
GOAL_WHY_MAX = 500
PLAN_SECTION_MAX = 600

GOAL_STATUSES = ("active", "achieved", "stopped")
CHECK_IN_OUTCOMES = ("done", "partly", "not")
PLAN_SECTIONS = ("what_helps", "what_to_reduce", "who_to_tell", "when_to_seek_help")

# The words of the 5-point scales, from 1 to 5: forms, tables and the CSV header all use these.
SLEEP_SCALE = ("Very badly", "Badly", "OK", "Well", "Very well")
MOOD_SCALE = ("Very low", "Low", "OK", "Good", "Very good")
ACTIVITY_SCALE = ("Much less than usual", "Less than usual", "About as usual", "More than usual",
                  "Much more than usual")
CHECK_IN_WORDS = {"done": "Done", "partly": "Partly done", "not": "Not this week"}


def _between(column: str, bounds: tuple[int, int]) -> str:
    return f"{column} BETWEEN {bounds[0]} AND {bounds[1]}"


class DiaryEntry(Base):
    """One quick entry for one day: pain 0 to 10; sleep, mood and activity on 5-point scales; a pacing note."""

    __tablename__ = "diary_entry"
    __table_args__ = (
        UniqueConstraint("patient_id", "entry_date", name="uq_diary_entry_patient_day"),
        CheckConstraint(_between("pain", PAIN_RANGE), name="pain_in_range"),
        CheckConstraint(_between("sleep", SCALE_RANGE), name="sleep_in_range"),
        CheckConstraint(_between("mood", SCALE_RANGE), name="mood_in_range"),
        CheckConstraint(_between("activity", SCALE_RANGE), name="activity_in_range"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"))
    # The patient's own (Europe/London) day, not a UTC date.
    entry_date: Mapped[dt.date] = mapped_column(Date)
    pain: Mapped[int] = mapped_column(SmallInteger)
    sleep: Mapped[int] = mapped_column(SmallInteger)
    mood: Mapped[int] = mapped_column(SmallInteger)
    activity: Mapped[int] = mapped_column(SmallInteger)
    note: Mapped[str] = mapped_column(String(NOTE_MAX), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Goal(Base):
    """A SMART goal: what, how much or how often, when by, why it matters, and how confident the patient is."""

    __tablename__ = "goal"
    __table_args__ = (
        CheckConstraint(_between("confidence", CONFIDENCE_RANGE), name="confidence_in_range"),
        CheckConstraint("status IN ('active', 'achieved', 'stopped')", name="status_known"),
        CheckConstraint("(status = 'active') = (closed_at IS NULL)", name="closed_when_not_active"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"), index=True)
    what: Mapped[str] = mapped_column(String(GOAL_TEXT_MAX))
    how_much: Mapped[str] = mapped_column(String(GOAL_TEXT_MAX))
    target_date: Mapped[dt.date] = mapped_column(Date)
    why: Mapped[str] = mapped_column(String(GOAL_WHY_MAX))
    confidence: Mapped[int] = mapped_column(SmallInteger)
    status: Mapped[str] = mapped_column(String(20), default="active")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    check_ins: Mapped[list[GoalCheckIn]] = relationship(
        back_populates="goal", order_by="GoalCheckIn.week_start.desc()", cascade="all, delete-orphan",
        passive_deletes=True,
    )

    @property
    def is_active(self) -> bool:
        return self.status == "active"

    def change(self, *, what: str, how_much: str, target_date: dt.date, why: str, confidence: int,
               now: dt.datetime) -> None:
        self.what, self.how_much, self.target_date, self.why = what, how_much, target_date, why
        self.confidence = confidence
        self.updated_at = now

    def close(self, status: str, *, now: dt.datetime) -> None:
        """Mark the goal achieved or stopped. Closing it again with the same status changes nothing."""
        if status not in ("achieved", "stopped"):
            raise ValueError(f"a goal closes as achieved or stopped, not {status!r}")
        if self.status == status:
            return
        self.status, self.closed_at, self.updated_at = status, now, now

    def reopen(self, *, now: dt.datetime) -> None:
        if self.status == "active":
            return
        self.status, self.closed_at, self.updated_at = "active", None, now


class GoalCheckIn(Base):
    """How the goal went in one ISO week (Monday to Sunday): done, partly, or not this week."""

    __tablename__ = "goal_check_in"
    __table_args__ = (
        UniqueConstraint("goal_id", "week_start", name="uq_goal_check_in_goal_week"),
        CheckConstraint("outcome IN ('done', 'partly', 'not')", name="outcome_known"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    goal_id: Mapped[int] = mapped_column(ForeignKey("goal.id", ondelete="CASCADE"))
    # The Monday of the ISO week, in the patient's (London) calendar.
    week_start: Mapped[dt.date] = mapped_column(Date)
    outcome: Mapped[str] = mapped_column(String(10))
    note: Mapped[str] = mapped_column(String(CHECK_IN_NOTE_MAX), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    goal: Mapped[Goal] = relationship(back_populates="check_ins")


class FlareUpPlan(Base):
    """The patient's own plan for a flare-up, in four free-text parts. One per patient."""

    __tablename__ = "flare_up_plan"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"), unique=True)
    what_helps: Mapped[str] = mapped_column(Text, default="")
    what_to_reduce: Mapped[str] = mapped_column(Text, default="")
    who_to_tell: Mapped[str] = mapped_column(Text, default="")
    when_to_seek_help: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def is_empty(self) -> bool:
        return not any((getattr(self, name) or "").strip() for name in PLAN_SECTIONS)
