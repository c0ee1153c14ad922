"""Venues, cohorts of a course with their weekly sessions, and bookings."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    Time,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db import Base, UTCDateTime, utcnow
from portal.patients.models import Patient


class Venue(Base):
    __tablename__ = "venue"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    # What a text may call it: short, and with no clinical words.
    short_name: Mapped[str] = mapped_column(String(30))
    address: Mapped[str] = mapped_column(Text)
    access_notes: Mapped[str] = mapped_column(Text, default="")


class Cohort(Base):
    """One run of a course (the 8-week Group or the 12-week Programme): a fixed set of seats."""

    __tablename__ = "cohort"
    __table_args__ = (
        CheckConstraint("seats_taken >= 0 AND seats_taken <= capacity", name="seats_within_capacity"),
        CheckConstraint("capacity > 0", name="capacity_positive"),
        CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday_valid"),
        CheckConstraint("status IN ('open', 'closed', 'cancelled')", name="status_known"),
        Index("ix_cohort_service_status", "service_key", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    service_key: Mapped[str] = mapped_column(String(40))
    team: Mapped[str | None] = mapped_column(String(40))
    venue_id: Mapped[int] = mapped_column(ForeignKey("venue.id"))
    first_date: Mapped[dt.date] = mapped_column(Date)
    # Local wall-clock schedule: sessions stay at this time across the clock changes.
    weekday: Mapped[int] = mapped_column(SmallInteger)
    start_time: Mapped[dt.time] = mapped_column(Time)
    timezone: Mapped[str] = mapped_column(String(40), default="Europe/London")
    session_minutes: Mapped[int] = mapped_column(Integer)
    capacity: Mapped[int] = mapped_column(Integer)
    seats_taken: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(20), default="open")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    venue: Mapped[Venue] = relationship(lazy="joined")
    sessions: Mapped[list[CohortSession]] = relationship(
        back_populates="cohort", order_by="CohortSession.number", cascade="all, delete-orphan"
    )

    @property
    def seats_left(self) -> int:
        return self.capacity - self.seats_taken


class CohortSession(Base):
    __tablename__ = "cohort_session"
    __table_args__ = (
        UniqueConstraint("cohort_id", "number", name="uq_cohort_session_number"),
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        CheckConstraint("status IN ('scheduled', 'cancelled')", name="status_known"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cohort_id: Mapped[int] = mapped_column(ForeignKey("cohort.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    starts_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    ends_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(20), default="scheduled")

    cohort: Mapped[Cohort] = relationship(back_populates="sessions")


class Booking(Base):
    """A patient's seat in a cohort: it books every session of that cohort."""

    __tablename__ = "booking"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'cancelled')", name="status_known"),
        # One active seat per patient per course, whichever cohort it is in.
        Index(
            "uq_booking_active_seat_per_course",
            "patient_id",
            "service_key",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
        Index("ix_booking_cohort_status", "cohort_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"), index=True)
    service_key: Mapped[str] = mapped_column(String(40))
    cohort_id: Mapped[int] = mapped_column(ForeignKey("cohort.id"))
    status: Mapped[str] = mapped_column(String(20), default="active")
    booked_by_staff: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    patient: Mapped[Patient] = relationship()
    cohort: Mapped[Cohort] = relationship(lazy="joined")

    def cancel(self, now: dt.datetime) -> None:
        self.status = "cancelled"
        self.cancelled_at = now
