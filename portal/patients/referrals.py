"""A new referral for a discharged patient: the way back into the service after a clinician's discharge.

The GP refers again, SPOA triages again (Tier 1 or 2, and for Tier 2 a team), and reception records it on the
patient's record. In one transaction, under the patient's row lock: the discharge ends (kept in
``patient_referral`` with the triage it replaced), waiting-list places from before it end, the change is audited,
and the patient is told by text if they may be texted. No Flask here: the view in staff/referrals.py calls it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.audit.services import Actor, record
from portal.booking import waitlist
from portal.dates import london_today, written_date
from portal.messaging import texts
from portal.messaging.services import enqueue_sms
from portal.patients.identifiers import team_for_postcode
from portal.patients.models import Patient, PatientReferral
from portal.settings import DomainConfig

NOTE_MAX = 200


class NotDischarged(Exception):
    """The patient is not discharged (never was, or someone recorded the new referral first)."""


class ReferralRefused(ValueError):
    """A detail of the referral is not acceptable: ``field`` names the form field, the message is for staff."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class NewReferral:
    triage_date: dt.date
    tier: int
    # Tier 2 only; None works it out from the postcode, as registration does (no catchment: needs a team).
    team: str | None
    # Who referred, in a few words ("GP, Dr Shah, letter of 3 November"): kept on the record, not in the trail.
    note: str


def discharged_on(patient: Patient) -> dt.date | None:
    """The London day of the patient's discharge, or None if they are not discharged."""
    return london_today(patient.discharged_at) if patient.discharged_at is not None else None


def triage_date_problem(patient: Patient, triage_date: dt.date, *, today: dt.date) -> str | None:
    """Why ``triage_date`` cannot be the new referral's, or None: it is not in the future, and not before the
    discharge (a referral triaged before it is the one the discharge closed)."""
    if triage_date > today:
        return "Triage date must be today or in the past"
    discharged = discharged_on(patient)
    if discharged is not None and triage_date < discharged:
        return f"Triage date must be on or after the discharge on {written_date(discharged)}"
    return None


def locked_patient(session: Session, patient_id: int) -> Patient | None:
    """The patient's row, locked for the rest of the transaction and read afresh (SQLite: the write lock)."""
    return session.scalars(
        select(Patient).where(Patient.id == patient_id).with_for_update().execution_options(populate_existing=True)
    ).one_or_none()


def record_new_referral(session: Session, domain: DomainConfig, patient_id: int, referral: NewReferral, *,
                        actor: Actor, now: dt.datetime) -> tuple[PatientReferral, int]:
    """Record a new referral for a discharged patient; returns the history row and how many waiting-list places
    from before the discharge ended. Raises LookupError (no such patient), NotDischarged, or ReferralRefused."""
    patient = locked_patient(session, patient_id)
    if patient is None:
        raise LookupError(patient_id)
    if not patient.discharged:
        raise NotDischarged(patient_id)
    note = " ".join(referral.note.split())
    if not note:
        raise ReferralRefused("note", "Enter who referred the patient")
    if len(note) > NOTE_MAX:
        raise ReferralRefused("note", f"Note must be {NOTE_MAX} characters or fewer")
    problem = triage_date_problem(patient, referral.triage_date, today=london_today(now))
    if problem:
        raise ReferralRefused("triage_date", problem)
    if referral.tier not in (1, 2):
        raise ReferralRefused("tier", "Select the tier the referral was triaged to")
    if referral.team is not None and (referral.tier != 2 or domain.teams.get(referral.team) is None):
        raise ReferralRefused("team", "Select a team from the list")
    team = None
    if referral.tier == 2:
        team = referral.team or team_for_postcode(domain.teams, patient.postcode)

    history = PatientReferral(
        patient_id=patient.id, triage_date=referral.triage_date, tier=referral.tier, team=team, note=note,
        discharged_at=patient.discharged_at, discharge_reason=patient.discharge_reason,
        previous_triage_date=patient.triage_date, recorded_by_id=actor.user_id, recorded_at=now,
    )
    session.add(history)
    # Before the discharge ends: a seat held for an old offer is passed on while the patient is still passed over.
    ended = waitlist.end_for_new_referral(session, domain, patient.id, now=now)
    patient.refer_again(triage_date=referral.triage_date, tier=referral.tier, team=team)
    session.flush()
    # Codes only: the note and the old discharge reason are free text, kept on the record.
    record(session, actor, "patient_referred_again", patient_id=patient.id,
           detail=f"referral {history.id}: tier {referral.tier}{f' ({team})' if team else ''}, "
                  f"{ended} waiting-list place{'s' if ended != 1 else ''} ended")
    enqueue_sms(session, key=f"referred-again:{history.id}", patient=patient, kind="referred_again",
                body=texts.referred_again(phone=domain.policy.service.phone), now=now)
    return history, ended


def referral_history(session: Session, patient_id: int) -> list[PatientReferral]:
    """The patient's new referrals after discharges, newest first, each with the discharge it ended."""
    return list(session.scalars(
        select(PatientReferral).where(PatientReferral.patient_id == patient_id)
        .order_by(PatientReferral.recorded_at.desc(), PatientReferral.id.desc())
    ))
