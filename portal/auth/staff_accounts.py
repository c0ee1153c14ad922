"""Staff accounts, for admins: invite someone with a one-time set-up link, change a role, deactivate and
reactivate, and reset a second factor.

The portal has no email to send with, so an invitation is a link the admin is shown once and passes on.
The account stays inactive, with no password, until the link is used; the new staff member then sets up
an authenticator app at the second step of that first sign-in (portal/auth/mfa.py).

Resetting a second factor works the same way. The password goes with the app: otherwise whoever holds a
stolen password could ask for a reset ("I lost my phone") and enrol their own app at the next sign-in. The
account stays active but cannot sign in until its owner uses the new set-up link, chooses a new password
and sets up an app again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from portal.auth import mfa, services
from portal.auth.models import Role, StaffSecondFactor, StaffSetUpLink, User

# The roles an admin may give: every staff role.
STAFF_ROLES = (Role.FACILITATOR, Role.CLINICIAN, Role.RECEPTION, Role.ADMIN)
# Not an argon2 hash, so no password ever verifies against it: an invited account has none until set up.
NO_PASSWORD = "!not-set-up"  # noqa: S105 - a marker, not a password


class NotAllowed(Exception):
    """The change would leave the service without an admin, or is one an admin may not make to their own
    account. The message says why, in plain English."""


class EmailInUse(Exception):
    """Another account already signs in with this email address."""


class LinkAlreadyMade(Exception):
    """A newer set-up link exists than the one the admin's form was made against: the form was sent again (a page
    refreshed, or Back then Forward), so no link is made. ``link`` is the newest one, already shown once."""

    def __init__(self, link: StaffSetUpLink) -> None:
        super().__init__(f"set-up link {link.id}")
        self.link = link


class SetUpLinkUnusable(Exception):
    """The link is unknown, expired, used, or replaced by a newer one (or its account was deactivated)."""


@dataclass(frozen=True)
class IssuedLink:
    """A new set-up link. ``token`` is in no table: show it once, then it is gone."""

    user: User
    token: str
    expires_at: dt.datetime


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def is_set_up(user: User) -> bool:
    """Whether the person has a password: an invited account has none yet, nor one whose second factor was
    reset until they use their new set-up link."""
    return user.password_hash != NO_PASSWORD


def account_was_reset(user: User) -> bool:
    """No password, but one was set or taken away before: the second factor was reset (not an invitation)."""
    return not is_set_up(user) and user.password_changed_at is not None


def find_staff(session: Session, user_id: int) -> User | None:
    """A staff account by id; None for an unknown id or a patient's account."""
    user = session.get(User, user_id)
    return user if user is not None and user.is_staff else None


def email_in_use(session: Session, email: str) -> bool:
    return session.scalar(select(func.count()).select_from(User).where(func.lower(User.email) == email.lower())) > 0


def invite_staff(
    session: Session, *, email: str, display_name: str, role: Role, invited_by: User | None, valid_days: int,
    now: dt.datetime,
) -> IssuedLink:
    """Create an inactive staff account with no password, and its first set-up link.

    ``email`` must already be a valid address (the form checks it). ``invited_by`` is None from the command
    line (the first admin of a new deployment). Raises EmailInUse.
    """
    if role not in STAFF_ROLES:
        raise ValueError(f"not a staff role: {role}")
    if email_in_use(session, email):
        raise EmailInUse(email)
    user = User(role=role.value, email=email.lower(), display_name=display_name.strip(),
                password_hash=NO_PASSWORD, is_active=False, created_at=now)
    session.add(user)
    session.flush()
    return _issue_link(session, user, issued_by=invited_by, valid_days=valid_days, now=now)


def refuse_resubmission(session: Session, user: User, newest_seen: int | None) -> None:
    """Raise LinkAlreadyMade if the account has a newer set-up link than ``newest_seen``, the id of its newest link
    when the admin's form was made (0: it had none). None checks nothing (a form made before forms carried it).

    The account's row is locked first, so two presses of one button at once (a double click) make one link: the
    second waits, then finds the first one's link."""
    if newest_seen is None:
        return
    session.execute(select(User.id).where(User.id == user.id).with_for_update())
    newest = latest_link(session, user)
    if newest is not None and newest.id != newest_seen:
        raise LinkAlreadyMade(newest)


def new_set_up_link(
    session: Session, user: User, *, issued_by: User, valid_days: int, now: dt.datetime,
    newest_seen: int | None = None,
) -> IssuedLink:
    """A fresh link for someone who has no password: invited and not set up yet, or whose second factor was
    reset (the earlier link is lost or expired). Every earlier link stops working. Raises LinkAlreadyMade for a
    form sent again (refuse_resubmission), and NotAllowed once the account is set up."""
    refuse_resubmission(session, user, newest_seen)
    if is_set_up(user):
        raise NotAllowed(f"{user.display_name} has set up their account already")
    return _issue_link(session, user, issued_by=issued_by, valid_days=valid_days, now=now)


def _revoke_links(session: Session, user: User, now: dt.datetime) -> None:
    session.execute(
        update(StaffSetUpLink)
        .where(StaffSetUpLink.user_id == user.id, StaffSetUpLink.used_at.is_(None), StaffSetUpLink.revoked_at.is_(None))
        .values(revoked_at=now)
    )


def _issue_link(
    session: Session, user: User, *, issued_by: User | None, valid_days: int, now: dt.datetime
) -> IssuedLink:
    _revoke_links(session, user, now)
    token = secrets.token_urlsafe(24)
    link = StaffSetUpLink(user_id=user.id, token_hash=_token_hash(token),
                          created_by_id=issued_by.id if issued_by else None,
                          created_at=now, expires_at=now + dt.timedelta(days=valid_days))
    session.add(link)
    session.flush()
    return IssuedLink(user=user, token=token, expires_at=link.expires_at)


def latest_link(session: Session, user: User) -> StaffSetUpLink | None:
    return session.scalars(
        select(StaffSetUpLink).where(StaffSetUpLink.user_id == user.id)
        .order_by(StaffSetUpLink.created_at.desc(), StaffSetUpLink.id.desc()).limit(1)
    ).first()


def find_usable_link(session: Session, token: str, *, now: dt.datetime) -> StaffSetUpLink:
    link = session.scalars(
        select(StaffSetUpLink).where(StaffSetUpLink.token_hash == _token_hash(token or ""))
    ).one_or_none()
    if link is None or not link.usable(now) or is_set_up(link.user):
        raise SetUpLinkUnusable()
    return link


def complete_set_up(session: Session, token: str, password: str, *, now: dt.datetime) -> User:
    """Use the link: set the person's password and make the account active. The link dies with it.

    Choosing the password counts as signing in, as typing it on the sign-in page does (attempt_sign_in): both
    lead on to the second factor, and staff accounts show when the person last signed in.

    Raises SetUpLinkUnusable, or services.WeakPassword (the link still works: they choose another).
    """
    link = find_usable_link(session, token, now=now)
    user = link.user
    services.reset_password(session, user, password, now=now)
    user.is_active = True
    user.record_sign_in(now)
    link.used_at = now
    session.flush()
    return user


def _refuse_own(user: User, by: User, what: str) -> None:
    if user.id == by.id:
        raise NotAllowed(f"You cannot {what} your own account. Ask another admin")


def _is_last_active_admin(session: Session, user: User) -> bool:
    if user.role != Role.ADMIN.value or not user.is_active:
        return False
    # Locked, in id order as every lock on staff rows is, so two admins demoting each other at once cannot both see
    # the other still there, nor deadlock with a clash check holding a facilitator's row.
    admins = session.scalars(
        select(User.id).where(User.role == Role.ADMIN.value, User.is_active.is_(True))
        .order_by(User.id).with_for_update()
    ).all()
    return set(admins) <= {user.id}


def change_role(session: Session, user: User, role: Role, *, by: User) -> str:
    """Give a staff member another role; returns the old one. Raises NotAllowed for one's own account or
    for the last active admin."""
    if role not in STAFF_ROLES or not user.is_staff:
        raise ValueError(f"not a staff role: {role}")
    _refuse_own(user, by, "change the role of")
    old = user.role
    if old == role.value:
        return old
    if role is not Role.ADMIN and _is_last_active_admin(session, user):
        raise NotAllowed(f"{user.display_name} is the only active admin. Make someone else an admin first")
    user.role = role.value
    session.flush()
    return old


def deactivate(session: Session, user: User, *, by: User, now: dt.datetime) -> None:
    """Stop the account signing in, end every session it has, and cancel any set-up link.
    Raises NotAllowed for one's own account or the last active admin."""
    _refuse_own(user, by, "deactivate")
    if _is_last_active_admin(session, user):
        raise NotAllowed(f"{user.display_name} is the only active admin. Make someone else an admin first")
    user.is_active = False
    user.end_all_sessions()
    _revoke_links(session, user, now)
    session.flush()


def reactivate(session: Session, user: User, *, by: User) -> None:
    """Let a deactivated account sign in again, with its old password and app. An account with no password
    (invited and never set up, or its second factor reset) gets a new set-up link instead (NotAllowed)."""
    _refuse_own(user, by, "reactivate")
    if account_was_reset(user):
        raise NotAllowed(f"{user.display_name} has no password since their second factor was reset. "
                         "Make a new set-up link instead")
    if not is_set_up(user):
        raise NotAllowed(f"{user.display_name} has not set up their account yet. Make a new set-up link instead")
    user.is_active = True
    session.flush()


def reset_second_factor(
    session: Session, user: User, *, by: User, valid_days: int, now: dt.datetime, newest_seen: int | None = None,
) -> IssuedLink:
    """Delete the person's app and recovery codes, end their sessions, take their password away and issue
    a set-up link, to be shown once to the admin and given to the person in person or by phone.

    With the link they choose a new password and set up an app again, as a new member of staff does; until
    then nothing signs in to the account, which stays active. Raises LinkAlreadyMade for a form sent again
    (refuse_resubmission: the reset is done and its link shown), and NotAllowed for one's own account, for an
    account with no password (invited, or reset already: make a new set-up link instead), and for a
    deactivated one (using the link would reactivate it: reactivate it first, on purpose).
    """
    _refuse_own(user, by, "reset the second factor of")
    refuse_resubmission(session, user, newest_seen)
    if not is_set_up(user):
        raise NotAllowed(f"{user.display_name} has no password or authenticator app to reset. "
                         "Make a new set-up link instead")
    if not user.is_active:
        raise NotAllowed(f"{user.display_name} is deactivated. If they are coming back, reactivate the account "
                         "first, then reset its second factor")
    mfa.delete_factor(session, user)
    user.password_hash = NO_PASSWORD
    # When the password was taken away: this tells a reset account from one never set up (account_was_reset).
    user.password_changed_at = now
    return _issue_link(session, user, issued_by=by, valid_days=valid_days, now=now)


@dataclass(frozen=True)
class AccountSummary:
    user: User
    app_enrolled: bool

    @property
    def status(self) -> str:
        """'active'; 'waiting' (active, but its second factor was reset: no password until the set-up link is
        used); 'invited' (never set up); or 'deactivated' (reset or not)."""
        if self.user.is_active:
            return "active" if is_set_up(self.user) else "waiting"
        return "deactivated" if is_set_up(self.user) or account_was_reset(self.user) else "invited"

    @property
    def was_reset(self) -> bool:
        """No password because the second factor was reset: a set-up link brings the account back."""
        return account_was_reset(self.user)


def _summaries(session: Session, *where: object) -> list[AccountSummary]:
    rows = session.execute(
        select(User, StaffSecondFactor.confirmed_at)
        .outerjoin(StaffSecondFactor, StaffSecondFactor.user_id == User.id)
        .where(User.role != Role.PATIENT.value, *where)
        .order_by(User.is_active.desc(), func.lower(User.display_name), User.id)
    )
    return [AccountSummary(user, confirmed_at is not None) for user, confirmed_at in rows]


def staff_list(session: Session) -> list[AccountSummary]:
    """Every staff account, active ones first, then by name."""
    return _summaries(session)


def account_summary(session: Session, user_id: int) -> AccountSummary | None:
    """One staff account; None for an unknown id or a patient's account."""
    found = _summaries(session, User.id == user_id)
    return found[0] if found else None
