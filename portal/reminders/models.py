"""The staff call list: reminders for patients we may not text, phoned by reception instead."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.appointments.models import AppointmentSlot
from portal.auth.models import User
from portal.db import Base, UTCDateTime, utcnow
from portal.patients.models import Patient

CALL_STATUSES = ("open", "called", "closed")
# What reception records: they spoke to the patient (or their carer), left a message, or got no answer
# (the call stays on the list to try again).
CALL_OUTCOMES = ("reached", "message", "no_answer")

# Planning finds the 1:1 appointments starting in the next few days by their slot's start time; without
# this index it would read every slot ever made. (It belongs to appointment_slot: declared here, beside the
# query that needs it, so the reminders feature carries its own index.)
Index("ix_appointment_slot_starts_at", AppointmentSlot.__table__.c.starts_at)


class ReminderCall(Base):
    """One reminder to give by phone: the patient opted out of texts, never agreed to them, or their
    communication needs say no texts. Planned like a text, under the same idempotency key."""

    __tablename__ = "reminder_call"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'called', 'closed')", name="status_known"),
        CheckConstraint("outcome IS NULL OR outcome IN ('reached', 'message', 'no_answer')", name="outcome_known"),
        CheckConstraint("(booking_id IS NULL) <> (appointment_id IS NULL)", name="one_subject"),
        # The list: open calls, soonest first. Also what the sweep and cancellations search by.
        Index("ix_reminder_call_status_call_at", "status", "call_at"),
        Index("ix_reminder_call_booking", "booking_id", "status"),
        Index("ix_reminder_call_appointment", "appointment_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # reminder:{booking|appointment}:{id}:{kind}:{start}: planning twice, or two planners at once, add one row.
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"), index=True)
    # A course seat (and starts_at says which session), or a 1:1 appointment.
    booking_id: Mapped[int | None] = mapped_column(ForeignKey("booking.id"))
    appointment_id: Mapped[int | None] = mapped_column(ForeignKey("appointment.id"))
    kind: Mapped[str] = mapped_column(String(20))
    service_key: Mapped[str] = mapped_column(String(40))
    # The venue's short name when planned, or "online".
    venue: Mapped[str] = mapped_column(String(40))
    starts_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # When to call: the time the text would have gone.
    call_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(20), default="open")
    outcome: Mapped[str | None] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # The latest call: who made it and when.
    called_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    called_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    # Set when the booking was cancelled or moved before anyone called.
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    patient: Mapped[Patient] = relationship(lazy="joined")
    called_by: Mapped[User | None] = relationship()

    @property
    def about(self) -> str:
        return "appointment" if self.appointment_id is not None else "group session"

    def record_call(self, outcome: str, *, by: User, now: dt.datetime) -> None:
        """Reception called. No answer keeps the call on the list; otherwise it is done."""
        if outcome not in CALL_OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}")
        self.outcome = outcome
        self.attempts += 1
        self.called_at = now
        self.called_by_id = by.id
        if outcome != "no_answer":
            self.status = "called"
