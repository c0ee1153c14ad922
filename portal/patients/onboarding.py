"""Bringing a triaged patient into the portal: register them, invite them, and see how far the invitation got.

This sits above both patients.services and auth.services (the invitation belongs to accounts), so that
the registration form and the triage import admit a patient in exactly the same way.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from portal.auth import services as auth
from portal.auth.models import Invitation, User
from portal.booking.models import WaitlistEntry
from portal.patients import retriage
from portal.patients import services as patients
from portal.patients.models import Patient
from portal.settings import DomainConfig


def admit(
    session: Session, domain: DomainConfig, details: patients.Registration, *, base_url: str, now: dt.datetime,
    invite: bool = True,
) -> Patient:
    """Register the patient and (unless told not to) text them a link to set up their account.

    Raises patients.DuplicateNhsNumber when the NHS number is already registered.
    """
    patient = patients.register_patient(session, domain, details)
    if invite:
        auth.invite_patient(session, domain, patient, base_url=base_url, now=now)
    return patient


@dataclass(frozen=True)
class Update:
    """What newer triage details did to a registered patient's record."""

    changed: list[str]  # the names of the details that changed (patients.update_patient)
    reinvited: bool  # a new set-up link went to their new mobile
    old_tier: int
    # Waiting-list places closed because they could never be offered now (the patient was texted).
    closed: list[WaitlistEntry]
    # Still booked on services their new tier does not offer, for staff to cancel or keep.
    still_booked: list[retriage.StillBooked]


def update_from_triage(
    session: Session, domain: DomainConfig, patient: Patient, details: patients.Registration, *, base_url: str,
    now: dt.datetime, invite: bool = True,
) -> Update:
    """Bring a registered patient's record in line with newer triage details, and follow the change through:
    a patient with no account yet whose mobile changed gets a new link (unless told not to), and a change of
    tier or team closes the waiting-list places that can never be offered now and lists what is still booked
    from the old tier (``patients.retriage``). Raises patients.SharedContact, changing nothing."""
    old_tier = patient.tier
    changed = patients.update_patient(session, domain, patient, details)
    # The first link went to a number that is no longer theirs: send a new one to the new number.
    reinvite = invite and "mobile" in changed and not has_account(session, patient.id)
    if reinvite:
        auth.invite_patient(session, domain, patient, base_url=base_url, now=now)
    closed = retriage.close_waiting_lists(session, domain, patient, now=now) \
        if "tier" in changed or "team" in changed else []
    still = retriage.still_booked(session, domain, patient, now=now) if "tier" in changed else []
    return Update(changed, reinvite, old_tier, closed, still)


@dataclass(frozen=True)
class TeamMove:
    """What putting a Tier 2 patient with a team did."""

    previous: str | None  # the team they had before (None: none)
    # Waiting-list places for one group of the old team, closed: they could never be offered now.
    closed: list[WaitlistEntry]


def move_to_team(session: Session, domain: DomainConfig, patient: Patient, team_key: str, *,
                 now: dt.datetime) -> TeamMove:
    """Staff put a Tier 2 patient with a team (the needs-a-team queue, or a move between teams): as newer triage
    details do, a move closes the places waiting for one group of the old team (``patients.retriage``)."""
    previous = patients.assign_team(session, domain, patient, team_key)
    moved = previous is not None and previous != patient.team
    return TeamMove(previous, retriage.close_waiting_lists(session, domain, patient, now=now) if moved else [])


def has_account(session: Session, patient_id: int) -> bool:
    return session.scalar(select(User.id).where(User.patient_id == patient_id)) is not None


@dataclass(frozen=True)
class InvitationStatus:
    """Where the patient's latest invitation stands, for staff."""

    # "not-sent", "not-needed" (an account made without a link), "sent", "used", "expired", "locked" or "revoked"
    state: str
    label: str
    sent_at: dt.datetime | None = None
    expires_at: dt.datetime | None = None
    used_at: dt.datetime | None = None
    failed_attempts: int = 0
    has_account: bool = False

    @property
    def tag_colour(self) -> str:
        return {"sent": "blue", "used": "green", "not-needed": "green", "expired": "grey",
                "locked": "red"}.get(self.state, "orange")


def invitation_status(session: Session, patient_id: int, *, now: dt.datetime) -> InvitationStatus:
    """The state of the newest invitation. Each new one revokes the older ones, so the newest is the one
    the patient can use (or cannot, and why)."""
    account = has_account(session, patient_id)
    latest = session.scalars(
        select(Invitation).where(Invitation.patient_id == patient_id)
        .order_by(Invitation.created_at.desc(), Invitation.id.desc()).limit(1)
    ).one_or_none()
    if latest is None:
        # An account made without a link (imported, or the demo's) needs none.
        return InvitationStatus("not-needed" if account else "not-sent",
                                "Not needed: account set up" if account else "Not sent", has_account=account)
    common = {
        "sent_at": latest.created_at, "expires_at": latest.expires_at, "used_at": latest.used_at,
        "failed_attempts": latest.failed_attempts, "has_account": account,
    }
    if latest.used_at is not None:
        return InvitationStatus("used", "Used: account set up", **common)
    if latest.revoked_at is not None:
        return InvitationStatus("revoked", "Cancelled", **common)
    if latest.failed_attempts >= Invitation.MAX_FAILED_ATTEMPTS:
        return InvitationStatus(
            "locked", f"Locked after {Invitation.MAX_FAILED_ATTEMPTS} failed identity checks", **common
        )
    if now >= latest.expires_at:
        return InvitationStatus("expired", "Expired", **common)
    return InvitationStatus("sent", "Sent", **common)


# Invitations not yet activated: the reception queue.

def _unactivated(*, now: dt.datetime, older_than: dt.timedelta):
    latest = (
        select(Invitation.patient_id, func.max(Invitation.id).label("invitation_id"))
        .group_by(Invitation.patient_id)
        .subquery()
    )
    return (
        select(Patient, Invitation)
        .join(latest, latest.c.patient_id == Patient.id)
        .join(Invitation, Invitation.id == latest.c.invitation_id)
        .where(
            Invitation.used_at.is_(None),
            Patient.discharged_at.is_(None),
            ~select(User.id).where(User.patient_id == Patient.id).exists(),
            or_(
                Invitation.expires_at <= now,
                Invitation.created_at <= now - older_than,
                Invitation.revoked_at.is_not(None),
                Invitation.failed_attempts >= Invitation.MAX_FAILED_ATTEMPTS,
            ),
        )
    )


def unactivated_invitations(
    session: Session, *, now: dt.datetime, older_than: dt.timedelta, limit: int = 200
) -> list[tuple[Patient, Invitation]]:
    """Patients without an account whose newest link is unused and expired, locked, cancelled or sent more than
    ``older_than`` ago: reception resends or phones them. Longest waiting first."""
    return [tuple(row) for row in session.execute(
        _unactivated(now=now, older_than=older_than).order_by(Invitation.created_at, Invitation.id).limit(limit)
    )]


def count_unactivated_invitations(session: Session, *, now: dt.datetime, older_than: dt.timedelta) -> int:
    query = _unactivated(now=now, older_than=older_than).with_only_columns(func.count(Patient.id))
    return session.scalar(query) or 0
