"""Keyword-only factories for test data. Each commits, so the app under test sees the rows."""

from __future__ import annotations

import datetime as dt
import itertools

import pyotp
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.auth.models import Role, StaffSecondFactor, User
from portal.auth.passwords import hash_password
from portal.booking.models import Cohort, Venue, venue_name_key
from portal.booking.services import create_cohort as create_cohort_service
from portal.db import utcnow
from portal.demo_data import demo_mobile, demo_nhs_numbers
from portal.patients.models import Patient
from portal.settings import DomainConfig, load_domain_config

PASSWORD = "correct horse battery"
_numbers = demo_nhs_numbers(start=500_000)
_counter = itertools.count(1)
_domain: DomainConfig | None = None


def domain() -> DomainConfig:
    global _domain
    if _domain is None:
        _domain = load_domain_config()
    return _domain


_DEFAULT_TEAM = object()


def create_patient(session: Session, *, tier: int = 1, team: str | None | object = _DEFAULT_TEAM, **kw) -> Patient:
    """A patient; Tier 2 patients get the Whittington team unless ``team`` is given (None: needs a team)."""
    n = next(_counter)
    if team is _DEFAULT_TEAM:
        team = "whittington" if tier == 2 else None
    values = {
        "nhs_number": next(_numbers),
        "given_name": f"Pat{n}",
        "family_name": f"Ient{n}",
        "date_of_birth": dt.date(1980, 1, 1) + dt.timedelta(days=n),
        # 07700 900900-999 stay free for tests that need a number no factory patient has.
        "mobile": demo_mobile(n % 900),
        "postcode": "N19 5NF" if team == "whittington" else "N8 8JD",
        "tier": tier,
        "team": team if tier == 2 else None,
    }
    values.update(kw)
    patient = Patient(**values)
    session.add(patient)
    session.commit()
    return patient


def create_patient_user(session: Session, *, patient: Patient | None = None, password: str = PASSWORD, **kw) -> User:
    patient = patient or create_patient(session, **kw)
    user = User(role=Role.PATIENT.value, patient=patient, display_name=patient.full_name,
                password_hash=hash_password(password))
    session.add(user)
    session.commit()
    return user


def create_staff(
    session: Session, *, role: Role = Role.RECEPTION, password: str = PASSWORD, enrolled: bool = True, **kw
) -> User:
    """A staff account. Unless ``enrolled=False`` it has a confirmed authenticator app, whose secret is
    on the returned user as ``totp_secret`` (None when not enrolled)."""
    n = next(_counter)
    user = User(role=role.value, email=kw.pop("email", f"{role.value}{n}@test.nhs.uk"),
                display_name=kw.pop("display_name", f"{role.value.title()} {n}"),
                password_hash=hash_password(password), **kw)
    session.add(user)
    session.flush()
    secret = pyotp.random_base32() if enrolled else None
    if secret:
        session.add(StaffSecondFactor(user_id=user.id, secret=secret, confirmed_at=utcnow()))
    session.commit()
    user.totp_secret = secret
    return user


def _free_venue_name(session: Session) -> str:
    """'Test Health Centre', or 'Test Health Centre 2' and on once taken: venue names are unique."""
    taken = set(session.scalars(select(Venue.name_key)))
    name, n = "Test Health Centre", 1
    while venue_name_key(name) in taken:
        n += 1
        name = f"Test Health Centre {n}"
    return name


def create_venue(session: Session, **kw) -> Venue:
    values = {"name": _free_venue_name(session), "short_name": "Test HC", "address": "1 Test Road, London N7 6PA",
              "access_notes": "Step-free."}
    values.update(kw)
    venue = Venue(**values)
    session.add(venue)
    session.commit()
    return venue


def create_cohort(
    session: Session,
    *,
    service_key: str = "t1-group",
    team: str | None = None,
    first_date: dt.date | None = None,
    start_time: dt.time = dt.time(18, 0),
    capacity: int = 12,
    seats_taken: int = 0,
    venue: Venue | None = None,
) -> Cohort:
    if service_key == "t2-programme" and team is None:
        team = "whittington"
    cohort = create_cohort_service(
        session,
        domain(),
        service_key=service_key,
        team=team,
        venue=venue or create_venue(session),
        first_date=first_date or (utcnow().date() + dt.timedelta(days=14)),
        start_time=start_time,
        session_minutes=120,
        capacity=capacity,
    )
    cohort.seats_taken = seats_taken
    session.commit()
    return cohort
