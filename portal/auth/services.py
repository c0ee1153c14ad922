"""Accounts: invitations after triage, activation, sign-in with lockout, passwords, and loading the
signed-in user."""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import bindparam, exists, func, select, update
from sqlalchemy.orm import Session

from portal.auth import codes
from portal.auth.models import EndedSession, Invitation, Role, User
from portal.auth.passwords import hash_password, needs_rehash, strength_problem, verify_password
from portal.calendars.services import revoke_feed
from portal.db import utcnow
from portal.messaging import texts
from portal.messaging.services import enqueue_sms
from portal.patients.identifiers import InvalidIdentifier, parse_uk_mobile
from portal.patients.models import Patient
from portal.plain_text import ascii_digits, is_plain_number
from portal.settings import DomainConfig

RESET_PURPOSE = "password_reset"


class InvitationUnusable(Exception):
    """The link is unknown, expired, already used or replaced by a newer one."""


class DetailsDoNotMatch(Exception):
    """The date of birth or the postcode typed at activation is not the patient's."""

    def __init__(self, patient_id: int) -> None:
        super().__init__("date of birth or postcode does not match")
        self.patient_id = patient_id


class WeakPassword(Exception):
    """The new password breaks the password rule; ``reason`` says why in plain English."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SessionEnded(Exception):
    """This request's session was ended (signed out everywhere, or the password changed) while it ran."""


class WrongPassword(Exception):
    """The current password typed to change it is wrong, or the account is locked (``locked``).
    ``locked_for`` is set when this wrong password locked the account."""

    def __init__(self, *, locked: bool = False, locked_for: dt.timedelta | None = None) -> None:
        super().__init__("current password not accepted")
        self.locked = locked or locked_for is not None
        self.locked_for = locked_for


class ResetCodeRejected(codes.CodeRejected):
    """A reset code was not accepted. ``account`` is the account asked about, if any: for the audit trail."""

    def __init__(self, account: User | None) -> None:
        super().__init__("reset code not accepted")
        self.account = account


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invite_patient(
    session: Session, domain: DomainConfig, patient: Patient, *, base_url: str, now: dt.datetime,
    unless_sent_since: dt.datetime | None = None,
) -> Invitation | None:
    """Create a single-use activation link, revoke any earlier one, and text it to the patient.

    With ``unless_sent_since``, a usable link made since then stands and nothing is made or sent (None)."""
    # The patient's row lock serialises invitations to one patient on PostgreSQL (SQLite's writers already
    # run one at a time): two at once would each find no newer link to revoke, leaving two live links and
    # sending two texts.
    session.execute(select(Patient.id).where(Patient.id == patient.id).with_for_update())
    live = list(session.scalars(
        select(Invitation).where(
            Invitation.patient_id == patient.id, Invitation.used_at.is_(None), Invitation.revoked_at.is_(None)
        )
    ))
    if unless_sent_since is not None and any(
        earlier.created_at >= unless_sent_since and earlier.usable(now) for earlier in live
    ):
        return None
    for earlier in live:
        earlier.revoked_at = now
    token = secrets.token_urlsafe(16)
    valid_days = domain.policy.invitations.link_valid_days
    invitation = Invitation(
        patient=patient,
        token_hash=_token_hash(token),
        created_at=now,
        expires_at=now + dt.timedelta(days=valid_days),
    )
    session.add(invitation)
    session.flush()
    enqueue_sms(
        session,
        key=f"invitation:{invitation.id}",
        patient=patient,
        kind="invitation",
        body=texts.invitation(link=f"{base_url.rstrip('/')}/activate/{token}", valid_days=valid_days),
        now=now,
        expires_at=invitation.expires_at,
    )
    return invitation


def find_usable_invitation(session: Session, token: str, *, now: dt.datetime) -> Invitation:
    invitation = session.scalars(
        select(Invitation).where(Invitation.token_hash == _token_hash(token or ""))
    ).one_or_none()
    if invitation is None or not invitation.usable(now):
        raise InvitationUnusable()
    return invitation


def _compact_postcode(value: str) -> str:
    return re.sub(r"\s", "", value or "").upper()


def check_identity(
    session: Session, token: str, date_of_birth: dt.date, postcode: str, *, now: dt.datetime
) -> Invitation:
    """The usable invitation if both the date of birth and the postcode are the patient's.

    A wrong answer counts against the link (three lock it) and raises DetailsDoNotMatch, which does not
    say which of the two was wrong.
    """
    invitation = find_usable_invitation(session, token, now=now)
    patient = invitation.patient
    if patient.date_of_birth != date_of_birth or _compact_postcode(patient.postcode) != _compact_postcode(postcode):
        invitation.failed_attempts += 1
        raise DetailsDoNotMatch(invitation.patient_id)
    return invitation


def activate(
    session: Session, token: str, date_of_birth: dt.date, postcode: str, password: str, *, now: dt.datetime
) -> User:
    """Use the invitation: create (or re-credential) the patient's account. The link dies with it.

    The identity check comes before the password rule: the rule's reasons mention the patient's own
    details, which must not be probed by someone who only has the link.
    """
    invitation = check_identity(session, token, date_of_birth, postcode, now=now)
    patient = invitation.patient
    user = session.scalars(select(User).where(User.patient_id == patient.id)).one_or_none() or User(
        role=Role.PATIENT.value, patient=patient, display_name=patient.full_name
    )
    # Raises WeakPassword before the new account joins the session, so nothing half-made is written.
    _set_password(user, password, now=now)
    if user.id is None:
        session.add(user)
    else:
        user.end_all_sessions()
    user.is_active = True
    invitation.used_at = now
    session.flush()
    return user


def personal_words(*, user: User | None = None, patient: Patient | None = None) -> list[str]:
    """What someone who knows the person could guess from: names, date of birth in the ways people
    write it, NHS number, postcode, mobile and email. Fed to the password rule."""
    words: list[str] = []
    if user is not None:
        words += user.display_name.split()
        if user.email:
            words += [user.email, user.email.split("@")[0]]
        patient = patient or user.patient
    if patient is not None:
        born = patient.date_of_birth
        words += [patient.given_name, patient.family_name, *patient.given_name.split(), *patient.family_name.split()]
        words += [
            f"{born:%d%m%Y}", f"{born:%d%m%y}", f"{born:%Y%m%d}", f"{born.day}{born.month}{born.year}",
            f"{born.day}{born.month}{born:%y}", f"{born:%d%m}", str(born.year),
        ]
        words += [patient.nhs_number, _compact_postcode(patient.postcode), patient.postcode.split(" ")[0]]
        words += [patient.mobile, "0" + patient.mobile.removeprefix("+44")]
        if patient.email:
            words += [patient.email, patient.email.split("@")[0]]
    return [word.lower() for word in words if word]


def password_problem(password: str, *, user: User | None = None, patient: Patient | None = None) -> str | None:
    """Why this password may not be used, or None: the one rule for every new password.

    At least 8 characters, and not guessable (zxcvbn), counting the person's own details as guessable.
    """
    return strength_problem(password, personal=personal_words(user=user, patient=patient))


def _set_password(user: User, password: str, *, now: dt.datetime) -> None:
    problem = password_problem(password, user=user)
    if problem:
        raise WeakPassword(problem)
    user.password_hash = hash_password(password)
    user.password_changed_at = now
    # A new password proves nothing about the old guesses, but whoever set it is the owner: unlock.
    user.failed_sign_ins = 0
    user.locked_until = None


def _find_account(session: Session, identifier: str, *, allow_drama_range: bool) -> User | None:
    """The account an email address or mobile number names, or None.

    Staff sign in with their account's email. Patients sign in with their mobile, or with the email on their
    record. Patients who share a mobile (a family's one phone) each need their own email to register (see
    ``patients.services.check_own_contact``); the mobile then names the one of them with no email on record,
    or the first registered. Which account is found never lets anyone in: its own password must match.
    """
    identifier = identifier.strip()
    if "@" in identifier:
        email = identifier.lower()
        staff = session.scalars(select(User).where(User.email == email)).one_or_none()
        if staff is not None:
            return staff
        users = session.scalars(select(User).join(User.patient).where(func.lower(Patient.email) == email)).all()
        # An email on two patients' records identifies neither.
        return users[0] if len(users) == 1 else None
    identifier = ascii_digits(identifier)  # a mobile typed in another script's digits is the same mobile
    if not re.fullmatch(r"[0-9+() -]{6,20}", identifier):
        return None
    try:
        mobile = parse_uk_mobile(identifier, allow_drama_range=allow_drama_range)
    except InvalidIdentifier:
        return None
    return session.scalars(
        select(User).join(User.patient).where(Patient.mobile == mobile)
        .order_by(Patient.email.is_not(None), Patient.id).limit(1)
    ).first()


class SignInOutcome(enum.StrEnum):
    SIGNED_IN = "signed in"
    UNKNOWN_ACCOUNT = "unknown account"
    WRONG_PASSWORD = "wrong password"  # noqa: S105 - an outcome, not a password
    LOCKED = "account locked"
    INACTIVE = "account deactivated"


@dataclass(frozen=True)
class SignInAttempt:
    """What happened. ``account`` is whoever the identifier names, signed in or not: for the audit trail
    only. Callers start a session for ``user``, which is set only on success."""

    outcome: SignInOutcome
    account: User | None = None
    # Set when this failure locked the account.
    locked_for: dt.timedelta | None = None

    @property
    def user(self) -> User | None:
        return self.account if self.outcome is SignInOutcome.SIGNED_IN else None


def count_failed_sign_in(session: Session, user: User, *, now: dt.datetime) -> dt.timedelta | None:
    """Count a failed sign-in against the account (a wrong password, or a staff sign-in ended by wrong codes);
    return how long the account is now locked for, if this failure locked it."""
    # One UPDATE ... SET n = n + 1, so failures racing each other all count.
    user.failed_sign_ins = User.failed_sign_ins + 1
    session.flush()
    return user.lock_after_failure(now)


def attempt_sign_in(
    session: Session, identifier: str, password: str, *, now: dt.datetime, allow_drama_range: bool
) -> SignInAttempt:
    """Check an identifier (email or mobile) and password, counting failures against the account.

    Every attempt checks a password hash, so an unknown account, a wrong password and a locked account
    take the same time; the caller gives them the same answer. A locked account refuses even the right
    password until the lock ends, and tries during a lock do not lengthen it.
    """
    user = _find_account(session, identifier, allow_drama_range=allow_drama_range)
    matches = verify_password(user.password_hash if user else None, password)
    if user is None:
        return SignInAttempt(SignInOutcome.UNKNOWN_ACCOUNT)
    if not user.is_active:
        return SignInAttempt(SignInOutcome.INACTIVE, user)
    if user.is_locked(now):
        return SignInAttempt(SignInOutcome.LOCKED, user)
    if not matches:
        return SignInAttempt(SignInOutcome.WRONG_PASSWORD, user, count_failed_sign_in(session, user, now=now))
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    if not user.is_staff:
        # Staff are signed in only once their second factor is proven (portal.auth.mfa records it then): the
        # password alone must not clear the failures that wrong codes counted against the account.
        user.record_sign_in(now)
    return SignInAttempt(SignInOutcome.SIGNED_IN, user)


# Run on every signed-in request: built once, with bound parameters (building a statement each time, as
# session.get does, costs more than running it). The patient comes with it (User.patient is joined), and the
# ended-session check with it, in the same statement.
_SIGNED_IN_USER = select(User).where(
    User.id == bindparam("user_id"),
    ~exists().where(EndedSession.key == bindparam("session_key")),
)


def load_user_for_session(session: Session, session_id: str, session_key: str | None) -> User | None:
    """Flask-Login's loader: the session's key must not have been signed out (portal.auth.sessions)."""
    return account_for_id(session, session_id, session_key=session_key) if session_key else None


def account_for_id(session: Session, account_id: str, *, session_key: str = "") -> User | None:
    """The active account ``account_id`` ("user id:session version", User.get_id) names, while that version lasts:
    a password changed, or every session ended, since the id was given out, and it names nobody."""
    user_id, _, version = (account_id or "").partition(":")
    if not (is_plain_number(user_id) and is_plain_number(version)):
        return None
    user = session.scalars(_SIGNED_IN_USER, {"user_id": int(user_id), "session_key": session_key}).first()
    if user is None or not user.is_active or user.session_version != int(version):
        return None
    return user


def sign_out_everywhere(session: Session, user: User) -> bool:
    """End every session of this user, on every device, this one included. False if another request (a
    password change, say) had already ended them all."""
    return _end_every_session(session, user)


def _end_every_session(session: Session, user: User) -> bool:
    """Sign the user out on every device, and for a patient stop their calendar address: a phone they no longer
    have, or someone who has had their password, may have subscribed to it. They can make a new one.

    Returns False, changing nothing, if another request ended them first: the session version is no longer
    the one this request loaded (and signed in with)."""
    # Conditional, not ``version += 1`` on the loaded value: a password change on one phone and "sign out
    # everywhere" on another at the same moment both wrote the same next number, and the phone changing
    # its password carried its session over to it, still signed in after signing out everywhere.
    ended = session.execute(
        update(User)
        .where(User.id == user.id, User.session_version == user.session_version)
        .values(session_version=User.session_version + 1)
        .execution_options(synchronize_session=False)
    ).rowcount == 1
    session.expire(user, ["session_version"])
    if ended and user.patient_id is not None:
        revoke_feed(session, user.patient_id)
    return ended


def change_password(session: Session, user: User, current: str, new: str, *, now: dt.datetime) -> None:
    """Set a new password after checking the current one, and end the user's other sessions.

    A wrong current password counts as a failed sign-in (so a borrowed, signed-in phone cannot be used to
    guess it) and raises WrongPassword; a locked account raises it too. A new password that breaks the
    rule raises WeakPassword. The caller keeps its own session going under the new session version.
    """
    matches = verify_password(user.password_hash, current)
    if user.is_locked(now):
        raise WrongPassword(locked=True)
    if not matches:
        raise WrongPassword(locked_for=count_failed_sign_in(session, user, now=now))
    problem = password_problem(new, user=user)
    if problem:
        raise WeakPassword(problem)
    # Sessions first: if another request ended them meanwhile, this one has no session left to keep and
    # the password stays as it was.
    if not _end_every_session(session, user):
        raise SessionEnded()
    _set_password(user, new, now=now)
    session.flush()


def confirm_password(session: Session, user: User, password: str, *, now: dt.datetime) -> None:
    """Check the password again before a sensitive change (a new mobile). A wrong one counts as a failed
    sign-in and raises WrongPassword, as in change_password; a locked account raises it too."""
    matches = verify_password(user.password_hash, password)
    if user.is_locked(now):
        raise WrongPassword(locked=True)
    if not matches:
        raise WrongPassword(locked_for=count_failed_sign_in(session, user, now=now))


def create_staff_user(session: Session, *, email: str, display_name: str, role: Role, password: str) -> User:
    user = User(role=role.value, email=email.lower(), display_name=display_name)
    _set_password(user, password, now=utcnow())
    session.add(user)
    session.flush()
    return user


# Forgotten password: a code by text to the registered mobile, then a new password.

def find_account_for_reset(session: Session, identifier: str, *, allow_drama_range: bool) -> User | None:
    """The active patient account a reset request names (by mobile, or by the email on the patient's
    record), or None. Staff are not reset this way: they have no mobile on record to send a code to."""
    user = _find_account(session, identifier, allow_drama_range=allow_drama_range)
    if user is None or not user.is_active or user.patient is None:
        return None
    return user


def request_password_reset(
    session: Session, identifier: str, *, now: dt.datetime, allow_drama_range: bool
) -> User | None:
    """Text a reset code to the mobile of the account ``identifier`` names, if there is one.

    Returns that account (for the audit trail) or None. The caller must answer the same either way.
    Nothing is sent to a patient who has asked for no texts, nor beyond codes.MAX_CODES_PER_HOUR: past it, asking
    sends nothing and looks the same, whoever asks.
    """
    user = find_account_for_reset(session, identifier, allow_drama_range=allow_drama_range)
    if user is None:
        return None
    if codes.issued_in_last_hour(session, user, purpose=RESET_PURPOSE, now=now) < codes.MAX_CODES_PER_HOUR:
        codes.issue_code(
            session, user, purpose=RESET_PURPOSE, send_to=user.patient.mobile, text=texts.password_reset_code(),
            patient=user.patient, now=now,
        )
    return user


def check_reset_code(
    session: Session, identifier: str, code: str, *, now: dt.datetime, allow_drama_range: bool
) -> User:
    """The account whose newest reset code is ``code``; the code is then used up. Raises
    ResetCodeRejected for a wrong, expired, used-up or unknown code, or an unknown account: each try
    counts against the code (codes.OneTimeCode.MAX_TRIES)."""
    user = find_account_for_reset(session, identifier, allow_drama_range=allow_drama_range)
    if user is None:
        raise ResetCodeRejected(None)
    try:
        codes.check_code(session, user, purpose=RESET_PURPOSE, code=code, now=now)
    except codes.CodeRejected:
        raise ResetCodeRejected(user) from None
    return user


def reset_password(session: Session, user: User, password: str, *, now: dt.datetime) -> None:
    """Set the new password of someone who proved they hold the account's phone, unlock the account and
    end every session (the caller starts a fresh one). Raises WeakPassword."""
    _set_password(user, password, now=now)
    _end_every_session(session, user)
    session.flush()
