"""Accounts for patients and staff, and the invitations that turn a triaged patient into a user."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db import Base, UTCDateTime, utcnow
from portal.patients.models import Patient


class Role(enum.StrEnum):
    PATIENT = "patient"
    FACILITATOR = "facilitator"
    RECEPTION = "reception"
    ADMIN = "admin"

    @property
    def is_staff(self) -> bool:
        return self is not Role.PATIENT


class User(Base):
    __tablename__ = "user_account"
    __table_args__ = (
        CheckConstraint("role IN ('patient', 'facilitator', 'reception', 'admin')", name="role_known"),
        CheckConstraint("(role = 'patient') = (patient_id IS NOT NULL)", name="patient_link_matches_role"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    role: Mapped[str] = mapped_column(String(20))
    display_name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254), unique=True)
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patient.id"), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    # Part of the Flask-Login id: bumping it ends every other session of this user.
    session_version: Mapped[int] = mapped_column(Integer, default=1)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_sign_in_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    patient: Mapped[Patient | None] = relationship(lazy="joined")

    # Flask-Login protocol
    is_authenticated = True
    is_anonymous = False

    def get_id(self) -> str:
        return f"{self.id}:{self.session_version}"

    @property
    def role_enum(self) -> Role:
        return Role(self.role)

    @property
    def is_staff(self) -> bool:
        return self.role_enum.is_staff

    def end_all_sessions(self) -> None:
        self.session_version += 1


class Invitation(Base):
    """A single-use activation link sent by SMS. Only a hash of its token is stored."""

    __tablename__ = "invitation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)

    patient: Mapped[Patient] = relationship(lazy="joined")

    # Wrong dates of birth allowed before the link locks until staff send a new one.
    MAX_FAILED_ATTEMPTS = 3

    def usable(self, now: dt.datetime) -> bool:
        return (
            self.used_at is None
            and self.revoked_at is None
            and now < self.expires_at
            and self.failed_attempts < self.MAX_FAILED_ATTEMPTS
        )


class OneTimeCode(Base):
    """A 6-digit code sent by SMS to prove the person holds a phone (password reset, new mobile).

    Only a hash is stored. A code is single-use, expires, and allows a few tries.
    """

    __tablename__ = "one_time_code"
    __table_args__ = (Index("ix_one_time_code_lookup", "user_id", "purpose", "used_at"),)

    MAX_TRIES = 5

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    purpose: Mapped[str] = mapped_column(String(30))
    # Where the code was sent (E.164): for a new mobile, the number being proved.
    sent_to: Mapped[str] = mapped_column(String(16))
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    tries: Mapped[int] = mapped_column(Integer, default=0)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    def usable(self, now: dt.datetime) -> bool:
        return self.used_at is None and now < self.expires_at and self.tries < self.MAX_TRIES
