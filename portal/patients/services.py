"""Registering triaged patients and reading their records."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal.audit import services as audit_services
from portal.auth.models import User
from portal.patients.identifiers import team_for_postcode
from portal.patients.models import Patient
from portal.settings import DomainConfig


class DuplicateNhsNumber(Exception):
    def __init__(self, existing_id: int) -> None:
        super().__init__("a patient with this NHS number is already registered")
        self.existing_id = existing_id


@dataclass(frozen=True)
class Registration:
    """Already-validated details of a triaged patient: made by ``patients.intake.check_registration``,
    for the registration form and the triage import alike."""

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
    triage_date: dt.date | None = None
    pain_duration: str | None = None
    diagnosis_recorded: bool = False
    investigations_recorded: bool = False
    treatment_recorded: bool = False
    letters_received: bool = False
    # Codes of the eligibility warnings that applied, which staff overrode with this reason.
    eligibility_warnings: tuple[str, ...] = ()
    override_reason: str | None = None


# The details a later import may change, compared one by one to count a row as updated or unchanged.
UPDATABLE = (
    "given_name", "family_name", "date_of_birth", "mobile", "email", "postcode", "tier", "triage_date",
    "pain_duration", "diagnosis_recorded", "investigations_recorded", "treatment_recorded", "letters_received",
)


class SharedContact(Exception):
    """The details would leave someone unable to sign in. ``field`` is the form field, the message is for staff,
    and ``kind`` says which rule it broke, for pages that word it for the patient themselves:
    "email-taken" (on another patient's record, or a staff account's) or "mobile-shared" (with no email)."""

    def __init__(self, field: str, message: str, *, kind: str) -> None:
        super().__init__(message)
        self.field = field
        self.kind = kind


def check_own_contact(session: Session, mobile: str, email: str | None, *, patient_id: int | None = None) -> None:
    """Patients sign in with their mobile, or with their email. A mobile already on another patient's record
    stays theirs to sign in with, so this patient needs an email of their own; an email on two records would
    sign in neither, and a staff account's email signs in only the staff member. Raises SharedContact;
    ``patient_id`` is the patient whose details these are, if they are registered already."""
    others = Patient.id != patient_id if patient_id is not None else true()
    if email and session.scalar(select(User.id).where(User.email == email.lower()).limit(1)):
        raise SharedContact("email", "This email address belongs to a staff account. Enter the patient's own "
                                     "email address, or leave it out", kind="email-taken")
    if email and session.scalar(select(Patient.id).where(func.lower(Patient.email) == email.lower(), others).limit(1)):
        raise SharedContact("email", "Another patient is registered with this email address. Enter the "
                                     "patient's own email address, or leave it out", kind="email-taken")
    if not email and session.scalar(select(Patient.id).where(Patient.mobile == mobile, others).limit(1)):
        raise SharedContact("email", "Another patient is registered with this mobile number. Patients who share "
                                     "a mobile sign in with their email address: enter one for this patient",
                            kind="mobile-shared")


# A refused email address tells the patient who typed it that someone registered with us uses it. The refusals are
# audited (profile_email_refused), and after a few in a day the profile stops answering, whatever the address.
EMAIL_REFUSALS_A_DAY = 3


def email_refusals_used_up(session: Session, patient_id: int, *, now: dt.datetime) -> bool:
    """Whether the patient has had ``EMAIL_REFUSALS_A_DAY`` email addresses refused in the last 24 hours."""
    refused = audit_services.count_since(session, "profile_email_refused", patient_id=patient_id,
                                         since=now - dt.timedelta(days=1))
    return refused >= EMAIL_REFUSALS_A_DAY


def find_by_nhs_number(session: Session, nhs_number: str) -> Patient | None:
    return session.scalars(select(Patient).where(Patient.nhs_number == nhs_number)).one_or_none()


def register_patient(session: Session, domain: DomainConfig, details: Registration) -> Patient:
    """Create the patient record. Tier 2 patients whose postcode matches no catchment get no team.

    Raises DuplicateNhsNumber, or SharedContact when the mobile or email would leave someone unable to sign in."""
    existing = find_by_nhs_number(session, details.nhs_number)
    if existing is not None:
        raise DuplicateNhsNumber(existing.id)
    check_own_contact(session, details.mobile, details.email)
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
        triage_date=details.triage_date,
        pain_duration=details.pain_duration,
        diagnosis_recorded=details.diagnosis_recorded,
        investigations_recorded=details.investigations_recorded,
        treatment_recorded=details.treatment_recorded,
        letters_received=details.letters_received,
    )
    patient.record_override(details.eligibility_warnings, details.override_reason)
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


def update_patient(session: Session, domain: DomainConfig, patient: Patient, details: Registration) -> list[str]:
    """Bring a patient's record in line with newer triage details; return the names of what changed.
    Raises SharedContact (and changes nothing) when a new mobile or email would leave someone unable to sign in.

    The team follows the details only when they name one, or when the tier or postcode changed: a team
    staff assigned by hand is never undone by importing the same details again. An override is recorded
    only when warnings apply now; an earlier one (say, when the patient was 17) stays on the record.
    """
    changed = [name for name in UPDATABLE if getattr(patient, name) != getattr(details, name)]
    if "mobile" in changed or "email" in changed:
        check_own_contact(session, details.mobile, details.email, patient_id=patient.id)
    for name in changed:
        if name == "mobile":
            patient.set_mobile(details.mobile)  # a new number starts clear of the old one's "refused" mark
        else:
            setattr(patient, name, getattr(details, name))
    if details.tier == 1:
        team = None
    elif details.team is not None:
        team = details.team
    elif "tier" in changed or "postcode" in changed:
        team = team_for_postcode(domain.teams, details.postcode)
    else:
        team = patient.team
    if team != patient.team:
        # Tier and team change together: flush the new team with the new tier, never a Tier 1 team.
        patient.team = team
        changed.append("team")
    override = (",".join(details.eligibility_warnings), details.override_reason)
    if details.eligibility_warnings and override != (patient.eligibility_warnings, patient.override_reason):
        patient.record_override(details.eligibility_warnings, details.override_reason)
        changed.append("eligibility_warnings")
    session.flush()
    return changed


def assign_team(session: Session, domain: DomainConfig, patient: Patient, team_key: str) -> str | None:
    """Staff put a Tier 2 patient with a team. Returns the team they had before (None: none)."""
    if domain.teams.get(team_key) is None:
        raise ValueError(f"unknown team {team_key!r}")
    previous = patient.team
    patient.assign_team(team_key)
    session.flush()
    return previous


def patients_needing_a_team(session: Session) -> list[Patient]:
    """Tier 2 patients whose postcode matched no catchment, oldest first: staff decide, never the portal."""
    return list(session.scalars(
        select(Patient).where(Patient.tier == 2, Patient.team.is_(None)).order_by(Patient.created_at, Patient.id)
    ))


def count_needing_a_team(session: Session) -> int:
    return session.scalar(
        select(func.count()).select_from(Patient).where(Patient.tier == 2, Patient.team.is_(None))
    ) or 0


def list_patients(session: Session, *, limit: int = 50) -> list[Patient]:
    return list(session.scalars(select(Patient).order_by(Patient.created_at.desc()).limit(limit)))
