"""Accounts: invitations after triage, activation, sign-in, and loading the signed-in user."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.auth.models import Invitation, Role, User
from portal.auth.passwords import hash_password, needs_rehash, verify_password
from portal.messaging import texts
from portal.messaging.services import enqueue_sms
from portal.patients.identifiers import InvalidIdentifier, parse_uk_mobile
from portal.patients.models import Patient
from portal.settings import DomainConfig

MIN_PASSWORD_LENGTH = 8


class InvitationUnusable(Exception):
    """The link is unknown, expired, already used or replaced by a newer one."""


class WrongDateOfBirth(Exception):
    def __init__(self, patient_id: int) -> None:
        super().__init__("date of birth does not match")
        self.patient_id = patient_id


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invite_patient(
    session: Session, domain: DomainConfig, patient: Patient, *, base_url: str, now: dt.datetime
) -> Invitation:
    """Create a single-use activation link, revoke any earlier one, and text it to the patient."""
    for earlier in session.scalars(
        select(Invitation).where(
            Invitation.patient_id == patient.id, Invitation.used_at.is_(None), Invitation.revoked_at.is_(None)
        )
    ):
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


def check_date_of_birth(
    session: Session, token: str, date_of_birth: dt.date, *, now: dt.datetime
) -> Invitation:
    invitation = find_usable_invitation(session, token, now=now)
    if invitation.patient.date_of_birth != date_of_birth:
        invitation.failed_attempts += 1
        raise WrongDateOfBirth(invitation.patient_id)
    return invitation


def activate(
    session: Session, token: str, date_of_birth: dt.date, password: str, *, now: dt.datetime
) -> User:
    """Use the invitation: create (or re-credential) the patient's account. The link dies with it."""
    invitation = check_date_of_birth(session, token, date_of_birth, now=now)
    patient = invitation.patient
    user = session.scalars(select(User).where(User.patient_id == patient.id)).one_or_none()
    if user is None:
        user = User(role=Role.PATIENT.value, patient=patient, display_name=patient.full_name)
        session.add(user)
    else:
        user.end_all_sessions()
    user.password_hash = hash_password(password)
    user.is_active = True
    invitation.used_at = now
    session.flush()
    return user


def password_problem(password: str) -> str | None:
    """Why this password is not acceptable, or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Password must be {MIN_PASSWORD_LENGTH} characters or more"
    if len(password) > 200:
        return "Password must be 200 characters or fewer"
    return None


def _find_account(session: Session, identifier: str, *, allow_drama_range: bool) -> User | None:
    identifier = identifier.strip()
    if "@" in identifier:
        return session.scalars(select(User).where(User.email == identifier.lower())).one_or_none()
    if not re.fullmatch(r"[0-9+() -]{6,20}", identifier):
        return None
    try:
        mobile = parse_uk_mobile(identifier, allow_drama_range=allow_drama_range)
    except InvalidIdentifier:
        return None
    users = session.scalars(select(User).join(User.patient).where(Patient.mobile == mobile)).all()
    # A mobile shared by two patients cannot identify either: they sign in with email instead.
    return users[0] if len(users) == 1 else None


def authenticate(
    session: Session, identifier: str, password: str, *, now: dt.datetime, allow_drama_range: bool
) -> User | None:
    """The user if the identifier (email or mobile) and password match an active account.

    An unknown account and a wrong password take the same time and give the same answer.
    """
    user = _find_account(session, identifier, allow_drama_range=allow_drama_range)
    if not verify_password(user.password_hash if user else None, password):
        return None
    if user is None or not user.is_active:
        return None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_sign_in_at = now
    return user


def load_user_for_session(session: Session, session_id: str) -> User | None:
    """Flask-Login's loader: the id carries the session version, so old sessions stop loading."""
    user_id, _, version = (session_id or "").partition(":")
    if not (user_id.isdigit() and version.isdigit()):
        return None
    user = session.get(User, int(user_id))
    if user is None or not user.is_active or user.session_version != int(version):
        return None
    return user


def sign_out_everywhere(user: User) -> None:
    user.end_all_sessions()


def create_staff_user(session: Session, *, email: str, display_name: str, role: Role, password: str) -> User:
    user = User(
        role=role.value, email=email.lower(), display_name=display_name, password_hash=hash_password(password)
    )
    session.add(user)
    session.flush()
    return user
