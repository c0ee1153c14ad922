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
    # Runs 1:1 clinics (physiotherapy, acupuncture, pharmacy review) and decides did-not-attend reviews.
    CLINICIAN = "clinician"
    RECEPTION = "reception"
    ADMIN = "admin"

    @property
    def is_staff(self) -> bool:
        return self is not Role.PATIENT


class User(Base):
    __tablename__ = "user_account"
    __table_args__ = (
        CheckConstraint("role IN ('patient', 'facilitator', 'clinician', 'reception', 'admin')", name="role_known"),
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
    # Wrong passwords since the last success; past FREE_FAILED_SIGN_INS each one locks the account
    # for twice as long as the last (see lock_after_failure).
    failed_sign_ins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    password_changed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

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
        # Counted in the UPDATE, not from the loaded value, so two requests ending sessions at once both count.
        self.session_version = User.session_version + 1

    # Failed sign-ins allowed before the first lock, and how long locks last: 1, 2, 4 ... minutes,
    # never more than an hour (a stranger typing wrong passwords must not shut a patient out for a day).
    FREE_FAILED_SIGN_INS = 5
    FIRST_LOCK = dt.timedelta(minutes=1)
    LONGEST_LOCK = dt.timedelta(hours=1)

    def is_locked(self, now: dt.datetime) -> bool:
        return self.locked_until is not None and now < self.locked_until

    def lock_after_failure(self, now: dt.datetime) -> dt.timedelta | None:
        """Called once failed_sign_ins counts the latest failure: lock if past the free tries."""
        beyond = self.failed_sign_ins - self.FREE_FAILED_SIGN_INS
        if beyond < 0:
            return None
        length = min(self.FIRST_LOCK * 2 ** min(beyond, 16), self.LONGEST_LOCK)
        self.locked_until = now + length
        return length

    def record_sign_in(self, now: dt.datetime) -> None:
        self.failed_sign_ins = 0
        self.locked_until = None
        self.last_sign_in_at = now


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

    # Wrong answers (date of birth and postcode) allowed before the link locks until staff send a new one.
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


class EndedSession(Base):
    """A signed-in session ended by signing out, by the key its cookie carries (portal.auth.sessions).

    The session lives in a signed cookie, so signing out only asks the browser to drop it: a copy taken before
    (from a shared computer, a proxy log) would still sign in. A key listed here signs nobody in. Rows older than
    the longest a session can last are deleted: their cookies have expired anyway.
    """

    __tablename__ = "ended_session"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    ended_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)


class StaffSecondFactor(Base):
    """A staff member's authenticator app (TOTP, RFC 6238) and the sign-in waiting for its code.

    It is unconfirmed until they type a code from the app; only a confirmed factor lets them sign in.
    The secret is kept as it is: the server must compute the same codes as the app, so it cannot be hashed.
    """

    __tablename__ = "staff_second_factor"
    __table_args__ = (CheckConstraint("failed_attempts >= 0", name="failed_attempts_not_negative"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), unique=True)
    secret: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    confirmed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # The newest 30-second time step whose code was accepted: that code, and any older one, never works again.
    last_used_step: Mapped[int | None] = mapped_column(Integer)
    # The pending sign-in: a hash of the token held in the person's session cookie, when it began, and
    # wrong codes so far. Kept here, not in the cookie, so replaying an old cookie cannot reset the count.
    challenge_hash: Mapped[str | None] = mapped_column(String(64))
    challenge_started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)

    @property
    def confirmed(self) -> bool:
        return self.confirmed_at is not None

    def begin_challenge(self, challenge_hash: str, now: dt.datetime) -> None:
        """A new pending sign-in replaces any earlier one (its cookie stops working)."""
        self.challenge_hash = challenge_hash
        self.challenge_started_at = now
        self.failed_attempts = 0

    def end_challenge(self) -> None:
        self.challenge_hash = None
        self.challenge_started_at = None
        self.failed_attempts = 0


class RecoveryCode(Base):
    """A single-use code for a staff member who cannot use their app. Only a salted hash is stored."""

    __tablename__ = "staff_recovery_code"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    salt: Mapped[str] = mapped_column(String(32))
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class StaffSetUpLink(Base):
    """A single-use link an admin gives a new staff member to choose their password. Only a hash of its
    token is stored; the admin sees the link once (the portal has no email to send it with)."""

    __tablename__ = "staff_set_up_link"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship(foreign_keys=[user_id], lazy="joined")
    # None for a link made on the command line (the first admin of a deployment).
    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])

    def usable(self, now: dt.datetime) -> bool:
        return self.used_at is None and self.revoked_at is None and now < self.expires_at
