"""Staff second factor: an authenticator app (TOTP, RFC 6238) and single-use recovery codes.

After their password, a staff member either enrols (no confirmed app yet) or types a code. That step is
a *pending sign-in*: a random token in their session cookie whose hash, start time and wrong tries are
held on their factor row, so it expires, allows only a few tries, and cannot be revived by replaying an
old cookie. Patients never have a factor.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Literal

import pyotp
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from portal.auth import services
from portal.auth.models import RecoveryCode, StaffSecondFactor, User

STEP_SECONDS = 30
# Codes from the step before and the step after are accepted too, for clocks a little apart.
ACCEPTED_STEPS = (0, -1, 1)
SIGN_IN_LIFETIME = dt.timedelta(minutes=5)
# Longer: setting up means finding, installing and opening an app.
ENROLMENT_LIFETIME = dt.timedelta(minutes=15)
MAX_FAILED_ATTEMPTS = 5
RECOVERY_CODE_COUNT = 10
# Lower case letters and digits that cannot be mistaken for one another (no 0/o, 1/l/i).
RECOVERY_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
RECOVERY_CODE_LENGTH = 12
ISSUER = "NHS Pain management"


class PendingSignInEnded(Exception):
    """The pending sign-in is gone: expired, too many wrong codes, replaced, or never there.

    Too many wrong codes count as a failed sign-in of the account, as a wrong password does: ``locked_for`` is set
    when that locked it.
    """

    def __init__(self, reason: Literal["expired", "too_many_attempts", "gone"],
                 locked_for: dt.timedelta | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.locked_for = locked_for


class CodeRejected(Exception):
    """The code is wrong, or was right but has been used already. The pending sign-in goes on."""

    def __init__(self, *, reused: bool = False, attempts_left: int | None = None) -> None:
        super().__init__("code already used" if reused else "wrong code")
        self.reused = reused
        self.attempts_left = attempts_left


@dataclass(frozen=True)
class Verified:
    method: Literal["authenticator app", "recovery code"]
    recovery_codes_left: int


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _recovery_hash(salt: str, code: str) -> str:
    return hashlib.sha256(f"{salt}:{code}".encode()).hexdigest()


def _normalise_recovery_code(typed: str) -> str:
    return re.sub(r"[\s-]", "", typed or "").lower()


def _factor(session: Session, user_id: int) -> StaffSecondFactor | None:
    # Locked: two requests with the same code must not both see it unused (SQLite serialises writers).
    return session.scalars(
        select(StaffSecondFactor).where(StaffSecondFactor.user_id == user_id).with_for_update()
    ).one_or_none()


def time_step(now: dt.datetime) -> int:
    return int(now.timestamp()) // STEP_SECONDS


def _matching_step(secret: str, code: str, now: dt.datetime) -> int | None:
    """The accepted time step whose code this is, or None."""
    totp = pyotp.TOTP(secret, interval=STEP_SECONDS)
    current = time_step(now)
    match = None
    for offset in ACCEPTED_STEPS:
        # Every candidate is compared, so the time taken does not say which one matched.
        if hmac.compare_digest(totp.generate_otp(current + offset), code) and match is None:
            match = current + offset
    return match


def begin(session: Session, user: User, *, now: dt.datetime) -> tuple[str, bool]:
    """Start the second step of a staff sign-in, after their password.

    Returns the token to keep in their session, and whether they have a confirmed app (if not, they
    enrol one). An unconfirmed secret is kept, so an app set up during an earlier attempt still works.
    """
    if not user.is_staff:
        raise ValueError("only staff have a second factor")
    factor = _factor(session, user.id)
    if factor is None:
        factor = StaffSecondFactor(user_id=user.id, secret=pyotp.random_base32(), created_at=now)
        session.add(factor)
    token = secrets.token_urlsafe(32)
    factor.begin_challenge(_token_hash(token), now)
    session.flush()
    return token, factor.confirmed


def pending_factor(session: Session, user: User, token: str, *, now: dt.datetime) -> StaffSecondFactor:
    """The factor whose pending sign-in ``token`` belongs to, while it lasts. Raises PendingSignInEnded.

    A pending sign-in found expired is ended here, so the caller's transaction records that.
    """
    factor = _factor(session, user.id)
    if (
        factor is None
        or factor.challenge_hash is None
        or factor.challenge_started_at is None
        or not hmac.compare_digest(factor.challenge_hash, _token_hash(token or ""))
    ):
        raise PendingSignInEnded("gone")
    lifetime = SIGN_IN_LIFETIME if factor.confirmed else ENROLMENT_LIFETIME
    if now >= factor.challenge_started_at + lifetime:
        factor.end_challenge()
        raise PendingSignInEnded("expired")
    return factor


def provisioning_uri(factor: StaffSecondFactor, user: User) -> str:
    """The otpauth:// address an authenticator app reads from the QR code."""
    return pyotp.TOTP(factor.secret, interval=STEP_SECONDS).provisioning_uri(
        name=user.email or f"user-{user.id}", issuer_name=ISSUER
    )


def confirm_enrolment(session: Session, user: User, token: str, code: str, *, now: dt.datetime) -> list[str]:
    """Confirm the app with a current code; end the pending sign-in; return new recovery codes.

    The codes are returned once, to be shown once: only salted hashes are kept. Raises CodeRejected
    (wrong code: the person tries again) or PendingSignInEnded.
    """
    factor = pending_factor(session, user, token, now=now)
    if factor.confirmed:
        raise PendingSignInEnded("gone")
    step = _matching_step(factor.secret, code, now)
    if step is None:
        raise CodeRejected()
    factor.confirmed_at = now
    factor.last_used_step = step
    factor.end_challenge()
    user.record_sign_in(now)
    return _replace_recovery_codes(session, user, now=now)


def _replace_recovery_codes(session: Session, user: User, *, now: dt.datetime) -> list[str]:
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        code = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_CODE_LENGTH))
        salt = secrets.token_hex(16)
        session.add(RecoveryCode(user_id=user.id, salt=salt, code_hash=_recovery_hash(salt, code), created_at=now))
        codes.append(code)
    session.flush()
    return [format_recovery_code(code) for code in codes]


def format_recovery_code(code: str) -> str:
    """Groups of four, easier to read and copy: 'abcd-efgh-jkmn'."""
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


def _unused_recovery_codes(session: Session, user: User) -> list[RecoveryCode]:
    return list(session.scalars(
        select(RecoveryCode).where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
    ))


def _wrong(session: Session, user: User, factor: StaffSecondFactor, *, now: dt.datetime,
           reused: bool = False) -> PendingSignInEnded | CodeRejected:
    factor.failed_attempts += 1
    if factor.failed_attempts >= MAX_FAILED_ATTEMPTS:
        factor.end_challenge()
        # Each pending sign-in gives fresh tries: without this, whoever has the password could go on guessing codes
        # for ever, five at a time. Counted as a failed sign-in, it locks the account as wrong passwords do.
        return PendingSignInEnded("too_many_attempts", services.count_failed_sign_in(session, user, now=now))
    return CodeRejected(reused=reused, attempts_left=MAX_FAILED_ATTEMPTS - factor.failed_attempts)


def _confirmed_pending_factor(session: Session, user: User, token: str, now: dt.datetime) -> StaffSecondFactor:
    factor = pending_factor(session, user, token, now=now)
    if not factor.confirmed:
        raise PendingSignInEnded("gone")
    return factor


def verify_app_code(session: Session, user: User, token: str, code: str, *, now: dt.datetime) -> Verified:
    """Check a 6-digit code from the app for the pending sign-in; on success the sign-in may start.

    A code from an accepted time step works once: it, and any code older than the newest used, is refused.
    Every refusal counts; the fifth ends the pending sign-in (PendingSignInEnded), the others raise
    CodeRejected.
    """
    factor = _confirmed_pending_factor(session, user, token, now)
    step = _matching_step(factor.secret, code, now)
    if step is None or (factor.last_used_step is not None and step <= factor.last_used_step):
        raise _wrong(session, user, factor, now=now, reused=step is not None)
    factor.last_used_step = step
    factor.end_challenge()
    user.record_sign_in(now)
    return Verified("authenticator app", len(_unused_recovery_codes(session, user)))


def use_recovery_code(session: Session, user: User, token: str, code: str, *, now: dt.datetime) -> Verified:
    """Use one of the person's recovery codes for the pending sign-in. Each code works once.

    Refusals count towards the same limit as wrong app codes.
    """
    factor = _confirmed_pending_factor(session, user, token, now)
    typed = _normalise_recovery_code(code)
    unused = _unused_recovery_codes(session, user)
    match = None
    for record in unused:
        if hmac.compare_digest(record.code_hash, _recovery_hash(record.salt, typed)) and match is None:
            match = record
    if match is None:
        raise _wrong(session, user, factor, now=now)
    match.used_at = now
    factor.end_challenge()
    user.record_sign_in(now)
    return Verified("recovery code", len(unused) - 1)


def delete_factor(session: Session, user: User) -> bool:
    """Delete the person's app and recovery codes and end their sessions (a pending sign-in ends with its
    factor row). Returns whether they had a factor at all.

    Only half of an admin's reset: the password would still lead to setting up a new app, so whoever has
    it could enrol their own. Call ``staff_accounts.reset_second_factor``, which also takes the password
    away and issues a set-up link.
    """
    if not user.is_staff:
        raise ValueError("only staff have a second factor")
    had_factor = session.execute(
        delete(StaffSecondFactor).where(StaffSecondFactor.user_id == user.id)
    ).rowcount > 0
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    user.end_all_sessions()
    session.flush()
    return had_factor
