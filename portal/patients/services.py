"""Registering triaged patients and reading their records."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal.patients.identifiers import team_for_postcode
from portal.patients.models import Patient
from portal.settings import DomainConfig


class DuplicateNhsNumber(Exception):
    def __init__(self, existing_id: int) -> None:
        super().__init__("a patient with this NHS number is already registered")
        self.existing_id = existing_id


@dataclass(frozen=True)
class Registration:
    """Already-validated details of a triaged patient (see staff.forms.RegisterPatientForm)."""

    nhs_number: str
    given_name: str
    family_name: str
    date_of_birth: dt.date
    mobile: str
    postcode: str
    tier: int
    # None: work it out from the postcode (Tier 2 only).
    team: str | None
    email: str | None = None


def find_by_nhs_number(session: Session, nhs_number: str) -> Patient | None:
    return session.scalars(select(Patient).where(Patient.nhs_number == nhs_number)).one_or_none()


def register_patient(session: Session, domain: DomainConfig, details: Registration) -> Patient:
    """Create the patient record. Tier 2 patients whose postcode matches no catchment get no team."""
    existing = find_by_nhs_number(session, details.nhs_number)
    if existing is not None:
        raise DuplicateNhsNumber(existing.id)
    team = None
    if details.tier == 2:
        team = details.team or team_for_postcode(domain.teams, details.postcode)
    patient = Patient(
        nhs_number=details.nhs_number,
        given_name=details.given_name.strip(),
        family_name=details.family_name.strip(),
        date_of_birth=details.date_of_birth,
        mobile=details.mobile,
        email=details.email or None,
        postcode=details.postcode,
        tier=details.tier,
        team=team,
    )
    try:
        with session.begin_nested():
            session.add(patient)
    except IntegrityError:
        # Registered by someone else between our check and our insert.
        existing = find_by_nhs_number(session, details.nhs_number)
        if existing is None:
            raise
        raise DuplicateNhsNumber(existing.id) from None
    return patient


def list_patients(session: Session, *, limit: int = 50) -> list[Patient]:
    return list(session.scalars(select(Patient).order_by(Patient.created_at.desc()).limit(limit)))
