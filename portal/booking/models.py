"""Venues, cohorts of a course with their weekly sessions, and bookings."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Table,
    Text,
    Time,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from portal.auth.models import User
from portal.booking.holidays import england_bank_holiday
from portal.db import Base, UTCDateTime, utcnow
from portal.patients.models import Patient


def venue_name_key(name: str) -> str:
    """What makes two venue names the same to a reader: 'Finsbury  health centre ' is 'Finsbury Health Centre'."""
    return " ".join(name.split()).casefold()


class Venue(Base):
    __tablename__ = "venue"
    __table_args__ = (
        # Two venues of one name would be two identical choices in every list. The services say so politely
        # first; this stops two identical forms sent at once.
        Index("uq_venue_name_key", "name_key", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    # venue_name_key(name), kept by the model. None only for a venue whose name an older venue already had when
    # the index came (migration 0023), until it is renamed.
    name_key: Mapped[str | None] = mapped_column(String(360))  # casefold() can triple a letter: 'ΐ'
    # What a text may call it: short, and with no clinical words.
    short_name: Mapped[str] = mapped_column(String(30))
    address: Mapped[str] = mapped_column(Text)
    access_notes: Mapped[str] = mapped_column(Text, default="")
    # An online "venue" (a video call): its cohorts carry their own joining link.
    is_online: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    @validates("name")
    def _keep_name_key(self, _key: str, name: str) -> str:
        self.name_key = venue_name_key(name)
        return name


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
    # For an online cohort: shown only to patients booked on it.
    online_link: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    venue: Mapped[Venue] = relationship(lazy="joined")
    facilitators: Mapped[list[User]] = relationship(secondary=lambda: cohort_facilitator, order_by=User.email)
    sessions: Mapped[list[CohortSession]] = relationship(
        back_populates="cohort", order_by="CohortSession.number", cascade="all, delete-orphan"
    )

    @property
    def seats_left(self) -> int:
        return self.capacity - self.seats_taken

    @property
    def first_session(self) -> CohortSession:
        return self.sessions[0]

    @property
    def first_session_going_ahead(self) -> CohortSession:
        """The session a patient joining now starts on, as texts tell them: the earliest not cancelled (a
        cancelled week 1 makes week 2 the start), or week 1 if every session is cancelled."""
        going = [s for s in self.sessions if s.status == "scheduled"]
        return min(going, key=lambda s: s.starts_at) if going else self.sessions[0]


cohort_facilitator = Table(
    "cohort_facilitator",
    Base.metadata,
    Column("cohort_id", ForeignKey("cohort.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", ForeignKey("user_account.id"), primary_key=True),
)


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
    # Set when staff move or cancel the session: where it was, and why it changed.
    moved_from: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    change_reason: Mapped[str | None] = mapped_column(Text)
    # How many times staff have changed it (each move, the cancelling): the calendar events' SEQUENCE, which
    # must rise with every change or a subscribed phone keeps the earlier time.
    revision: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    cohort: Mapped[Cohort] = relationship(back_populates="sessions")

    @property
    def local_date(self) -> dt.date:
        return self.starts_at.astimezone(ZoneInfo(self.cohort.timezone)).date()

    @property
    def bank_holiday(self) -> str | None:
        """The name of the England bank holiday this session falls on, if any (staff move these)."""
        return england_bank_holiday(self.local_date)


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
        # Service reports (portal.reports): each patient's first booking, from the index alone.
        Index("ix_booking_patient_created", "patient_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"), index=True)
    service_key: Mapped[str] = mapped_column(String(40))
    cohort_id: Mapped[int] = mapped_column(ForeignKey("cohort.id"))
    status: Mapped[str] = mapped_column(String(20), default="active")
    booked_by_staff: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Why the seat ended: the patient's or staff member's words, or "Moved to another group".
    cancel_reason: Mapped[str | None] = mapped_column(Text)
    cancelled_by_staff: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    patient: Mapped[Patient] = relationship()
    cohort: Mapped[Cohort] = relationship(lazy="joined")

    def cancel(self, now: dt.datetime, *, reason: str | None = None, by_staff: bool = False) -> None:
        self.status = "cancelled"
        self.cancelled_at = now
        self.cancel_reason = reason
        self.cancelled_by_staff = by_staff


WAITING_STATUSES = ("waiting", "offered")


class WaitlistEntry(Base):
    """A patient waiting for a seat on a course: in one cohort, or in any cohort of it (cohort_id NULL).

    When a seat frees, the first waiting entry in ``position`` order is offered it. The seat is held for
    the offer (counted in ``seats_taken``) until the patient accepts, declines, or the offer expires.
    """

    __tablename__ = "waitlist_entry"
    __table_args__ = (
        CheckConstraint(
            "status IN ('waiting', 'offered', 'booked', 'declined', 'expired', 'left')", name="status_known"
        ),
        CheckConstraint(
            "status <> 'offered' OR (offer_cohort_id IS NOT NULL AND offer_expires_at IS NOT NULL)",
            name="offer_complete",
        ),
        # One live place in the queue per patient per course.
        Index(
            "uq_waitlist_live_per_course",
            "patient_id",
            "service_key",
            unique=True,
            sqlite_where=text("status IN ('waiting', 'offered')"),
            postgresql_where=text("status IN ('waiting', 'offered')"),
        ),
        Index("ix_waitlist_queue", "service_key", "status", "position"),
        Index("ix_waitlist_offer_expiry", "status", "offer_expires_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"), index=True)
    service_key: Mapped[str] = mapped_column(String(40))
    # NULL: any cohort of the course (of the patient's team, for a team-scoped course).
    cohort_id: Mapped[int | None] = mapped_column(ForeignKey("cohort.id"))
    team: Mapped[str | None] = mapped_column(String(40))
    position: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default="waiting")
    offer_cohort_id: Mapped[int | None] = mapped_column(ForeignKey("cohort.id"))
    offer_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    joined_by_staff: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    patient: Mapped[Patient] = relationship()
    cohort: Mapped[Cohort | None] = relationship(foreign_keys=[cohort_id])
    offer_cohort: Mapped[Cohort | None] = relationship(foreign_keys=[offer_cohort_id])

    @property
    def live(self) -> bool:
        return self.status in WAITING_STATUSES


class CalendarFeed(Base):
    """A patient's private calendar-feed address. Only a hash of its token is kept; revoking deletes the row."""

    __tablename__ = "calendar_feed"

    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id", ondelete="CASCADE"), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
