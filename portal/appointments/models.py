"""Availability templates, clinician leave, appointment slots, and appointments.

A slot is one clinician's time at one start: ``(clinician_id, starts_at)`` is unique, so generating slots
again inserts nothing new. A slot is taken by one conditional UPDATE (``status = 'open'``), and a partial
unique index allows one active appointment per slot whatever happens above it.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Time,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.auth.models import User
from portal.booking.models import Venue
from portal.db import Base, UTCDateTime, utcnow
from portal.patients.models import Patient

SLOT_STATUSES = ("open", "booked", "blocked")
APPOINTMENT_STATUSES = ("active", "cancelled", "moved")


class AvailabilityTemplate(Base):
    """A clinician's weekly clinic for one service at one venue: local wall-clock times, so 9am stays
    9am across the clock changes."""

    __tablename__ = "availability_template"
    __table_args__ = (
        CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday_valid"),
        CheckConstraint("end_time > start_time", name="ends_after_start"),
        CheckConstraint("slot_minutes BETWEEN 5 AND 240", name="slot_minutes_valid"),
        CheckConstraint("valid_until IS NULL OR valid_until >= valid_from", name="valid_range"),
        Index("ix_availability_template_clinician", "clinician_id", "weekday"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    clinician_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    service_key: Mapped[str] = mapped_column(String(40))
    # For a team-scoped (Tier 2) service: only patients of this team see its slots.
    team: Mapped[str | None] = mapped_column(String(40))
    venue_id: Mapped[int] = mapped_column(ForeignKey("venue.id"))
    weekday: Mapped[int] = mapped_column(SmallInteger)
    start_time: Mapped[dt.time] = mapped_column(Time)
    end_time: Mapped[dt.time] = mapped_column(Time)
    slot_minutes: Mapped[int] = mapped_column(Integer)
    timezone: Mapped[str] = mapped_column(String(40), default="Europe/London")
    valid_from: Mapped[dt.date] = mapped_column(Date)
    valid_until: Mapped[dt.date | None] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    clinician: Mapped[User] = relationship(lazy="joined")
    venue: Mapped[Venue] = relationship(lazy="joined")

    def covers(self, day: dt.date) -> bool:
        return (
            day.weekday() == self.weekday
            and day >= self.valid_from
            and (self.valid_until is None or day <= self.valid_until)
        )


# Why a slot is blocked when its clinician is on leave that day.
LEAVE_BLOCK_REASON = "Clinician on leave"


class ClinicianLeave(Base):
    """Days a clinician is away (both ends included): no slots are generated on them."""

    __tablename__ = "clinician_leave"
    __table_args__ = (
        CheckConstraint("last_day >= first_day", name="valid_range"),
        Index("ix_clinician_leave_clinician", "clinician_id", "last_day"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    clinician_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    first_day: Mapped[dt.date] = mapped_column(Date)
    last_day: Mapped[dt.date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    clinician: Mapped[User] = relationship(lazy="joined")

    def covers(self, day: dt.date) -> bool:
        return self.first_day <= day <= self.last_day


class AppointmentSlot(Base):
    __tablename__ = "appointment_slot"
    __table_args__ = (
        # Generation is insert-if-absent on this: running it twice, or from two processes, adds nothing.
        UniqueConstraint("clinician_id", "starts_at", name="uq_appointment_slot_clinician_start"),
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        CheckConstraint("status IN ('open', 'booked', 'blocked')", name="status_known"),
        CheckConstraint("status <> 'blocked' OR blocked_reason IS NOT NULL", name="blocked_has_a_reason"),
        # What patients are offered: open slots of a service, by time.
        Index("ix_appointment_slot_offer", "service_key", "status", "starts_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    clinician_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    # Kept when a template is later ended: the slot and any appointment in it stand.
    template_id: Mapped[int | None] = mapped_column(ForeignKey("availability_template.id", ondelete="SET NULL"))
    service_key: Mapped[str] = mapped_column(String(40))
    team: Mapped[str | None] = mapped_column(String(40))
    venue_id: Mapped[int] = mapped_column(ForeignKey("venue.id"))
    starts_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(20), default="open")
    blocked_reason: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    clinician: Mapped[User] = relationship(lazy="joined")
    venue: Mapped[Venue] = relationship(lazy="joined")


class Appointment(Base):
    """A patient's booking of one slot. Moving it ends this row ('moved') and starts a new one."""

    __tablename__ = "appointment"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'cancelled', 'moved')", name="status_known"),
        # One active appointment per slot: the backstop under the conditional UPDATE that takes a slot.
        Index(
            "uq_appointment_active_slot",
            "slot_id",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
        Index("ix_appointment_patient_service", "patient_id", "service_key", "status"),
        # Service reports (portal.reports): each patient's first appointment booked, from the index alone.
        Index("ix_appointment_patient_created", "patient_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"))
    slot_id: Mapped[int] = mapped_column(ForeignKey("appointment_slot.id"))
    service_key: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20), default="active")
    booked_by_staff: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Why staff booked past the per-service limit, or changed it inside the cut-off.
    override_reason: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    cancel_reason: Mapped[str | None] = mapped_column(String(600))
    ended_by_staff: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Set on a moved appointment: the one that replaced it.
    moved_to_id: Mapped[int | None] = mapped_column(ForeignKey("appointment.id"))
    # When the patient confirmed they will come (a YES reply to a text).
    confirmed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    patient: Mapped[Patient] = relationship()
    slot: Mapped[AppointmentSlot] = relationship(lazy="joined")

    @property
    def starts_at(self) -> dt.datetime:
        return self.slot.starts_at

    @property
    def is_active(self) -> bool:
        return self.status == "active"
