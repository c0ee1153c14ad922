"""Importing the SPOA triage export (``portal import-triage FILE.csv``).

Every row is checked by ``patients.intake.check_registration``, exactly as the registration form is,
and written in its own transaction: a bad row is reported with its line number and leaves nothing
behind, and the good rows around it still go in. Rows are matched by NHS number, so importing the
same file again changes nothing. The columns are described in README.md ("Importing the triage export").
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from portal.audit.services import Actor, record
from portal.dates import LONDON, written_date
from portal.db import Database
from portal.patients import services as patients
from portal.patients.intake import Problems, check_registration
from portal.patients.onboarding import admit, update_from_triage
from portal.patients.referrals import discharged_on
from portal.patients.retriage import StillBooked
from portal.settings import DomainConfig

REQUIRED_COLUMNS = (
    "nhs_number", "given_name", "family_name", "date_of_birth", "mobile", "postcode", "tier", "triage_date",
    "pain_duration", "diagnosis_recorded", "investigations_recorded", "treatment_recorded", "letters_received",
)
OPTIONAL_COLUMNS = ("email", "team", "override_reason")


class ExportUnusable(Exception):
    """The file cannot be imported at all (unreadable, not UTF-8 CSV, or the wrong header)."""


class NewReferralAfterDischarge(Exception):
    """The row is a new referral (triaged on or after the day of the discharge) for a discharged patient. The import
    does not end a discharge by itself: reception records the new referral on the record (patients.referrals), which
    also ends the old waiting-list places and tells the patient."""

    def __init__(self, patient_id: int, discharged: dt.date) -> None:
        super().__init__(
            f"nhs_number: the patient was discharged on {written_date(discharged)} and this is a new referral; record "
            f"it on their record (/staff/patients/{patient_id}/referral), which ends the discharge"
        )


@dataclass(frozen=True)
class Row:
    line: int
    values: dict[str, str]
    # Set when the row cannot even be read as a record (the wrong number of values).
    problem: str | None = None


@dataclass(frozen=True)
class Rejection:
    line: int
    reasons: list[str]


@dataclass(frozen=True)
class LeftBooked:
    """An updated row whose patient changed tier and still holds bookings of their old tier's services."""

    line: int
    patient_id: int
    new_tier: int
    bookings: list[StillBooked]

    def explain(self) -> str:
        old = ", ".join(sorted({f"Tier {b.tier}" for b in self.bookings}))
        items = "; ".join(f"{b.service_name}, {written_date(b.starts_at)} {b.starts_at.astimezone(LONDON):%H:%M}"
                          for b in self.bookings)
        return (f"now Tier {self.new_tier}, still booked from {old}: {items}. Nothing was cancelled: "
                f"cancel or keep each on the patient's record (/staff/patients/{self.patient_id})")


@dataclass
class ImportReport:
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    invited: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    # Waiting-list places closed because a new tier (or team) means they can never be offered.
    waiting_closed: int = 0
    still_booked: list[LeftBooked] = field(default_factory=list)

    def summary(self) -> str:
        counts = (f"{self.imported} imported, {self.updated} updated, {self.unchanged} unchanged, "
                  f"{len(self.rejected)} rejected")
        if self.waiting_closed:
            counts += f"; {self.waiting_closed} waiting-list place{'s' if self.waiting_closed != 1 else ''} closed"
        if self.still_booked:
            patients_left = len(self.still_booked)
            counts += (f"; {patients_left} patient{'s' if patients_left != 1 else ''} still booked from their old "
                       "tier, for staff to cancel or keep")
        return counts


def read_export(path: Path | str) -> list[Row]:
    """The data rows of the export, with the line each starts on. Raises ExportUnusable."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8-sig", newline="") as file:
            text = file.read()
    except FileNotFoundError:
        raise ExportUnusable(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise ExportUnusable(f"{path}: not a UTF-8 text file (save the export as CSV UTF-8)") from None
    except OSError as problem:
        raise ExportUnusable(f"{path}: cannot be read: {problem.strerror or problem}") from None

    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[Row] = []
    header: list[str] | None = None
    try:
        while True:
            start = reader.line_num + 1
            try:
                record = next(reader)
            except StopIteration:
                break
            if not any(value.strip() for value in record):
                continue  # blank lines, and lines of empty cells that spreadsheets leave at the end
            if header is None:
                header = _check_header(path, record)
                continue
            if len(record) != len(header):
                rows.append(Row(start, {}, f"has {len(record)} values, but the header has {len(header)} columns"))
                continue
            rows.append(Row(start, dict(zip(header, record, strict=True))))
    except csv.Error as problem:
        raise ExportUnusable(f"{path}, line {reader.line_num}: not valid CSV: {problem}") from None
    if header is None:
        raise ExportUnusable(f"{path}: the file is empty; expected a header line: {','.join(REQUIRED_COLUMNS)}")
    return rows


def _check_header(path: Path, record: list[str]) -> list[str]:
    names = [name.strip().lower() for name in record]
    missing = [name for name in REQUIRED_COLUMNS if name not in names]
    unknown = [name for name in names if name not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    repeated = sorted({name for name in names if names.count(name) > 1})
    problems = []
    if missing:
        problems.append("missing columns: " + ", ".join(missing))
    if unknown:
        problems.append("unknown columns: " + ", ".join(repr(name) for name in unknown))
    if repeated:
        problems.append("repeated columns: " + ", ".join(repeated))
    if problems:
        raise ExportUnusable(
            f"{path}: wrong header ({'; '.join(problems)}). Expected the columns "
            f"{', '.join(REQUIRED_COLUMNS)}, and optionally {', '.join(OPTIONAL_COLUMNS)}"
        )
    return names


def import_rows(
    db: Database,
    domain: DomainConfig,
    rows: Iterable[Row],
    *,
    base_url: str,
    now: dt.datetime,
    today: dt.date,
    allow_drama_range: bool,
    invite: bool = True,
) -> ImportReport:
    """Import each row in its own transaction; count and explain what happened to every row."""
    report = ImportReport()
    # One id for the whole run, so the audit trail shows which events one import made.
    actor = Actor(user_id=None, role="system", request_id=f"triage-import-{uuid.uuid4().hex[:16]}")
    first_line: dict[str, int] = {}
    for row in rows:
        if row.problem:
            report.rejected.append(Rejection(row.line, [row.problem]))
            continue
        raw = {name: row.values.get(name, "") for name in REQUIRED_COLUMNS + OPTIONAL_COLUMNS}
        details = check_registration(raw, domain=domain, today=today, allow_drama_range=allow_drama_range)
        if isinstance(details, Problems):
            report.rejected.append(Rejection(row.line, details.messages()))
            continue
        if details.nhs_number in first_line:
            report.rejected.append(Rejection(
                row.line, [f"nhs_number: the same NHS number is on line {first_line[details.nhs_number]}"]))
            continue
        first_line[details.nhs_number] = row.line
        try:
            with db.transaction() as session:
                outcome = _import_one(session, domain, details, line=row.line, actor=actor, base_url=base_url,
                                      now=now, invite=invite)
        except patients.DuplicateNhsNumber:
            report.rejected.append(Rejection(
                row.line, ["nhs_number: registered by someone else during the import; import the file again"]))
            continue
        except patients.SharedContact as problem:
            report.rejected.append(Rejection(row.line, [f"{problem.field}: {problem}"]))
            continue
        except NewReferralAfterDischarge as problem:
            report.rejected.append(Rejection(row.line, [str(problem)]))
            continue
        except SQLAlchemyError as problem:
            report.rejected.append(Rejection(
                row.line, [f"could not be saved ({type(problem).__name__}); nothing was written for this row"]))
            continue
        kind, invited, closed, left_booked = outcome
        setattr(report, kind, getattr(report, kind) + 1)
        report.invited += invited
        report.waiting_closed += closed
        if left_booked is not None:
            report.still_booked.append(left_booked)
    return report


def _import_one(
    session: Session, domain: DomainConfig, details: patients.Registration, *, line: int, actor: Actor,
    base_url: str, now: dt.datetime, invite: bool,
) -> tuple[str, bool, int, LeftBooked | None]:
    """Write one checked row: ("imported" | "updated" | "unchanged", whether a link was texted, waiting-list places
    closed, and what the patient still holds of an old tier)."""
    where = f"triage import, line {line}"
    existing = patients.find_by_nhs_number(session, details.nhs_number)
    if existing is None:
        patient = admit(session, domain, details, base_url=base_url, now=now, invite=invite)
        record(session, actor, "patient_registered", patient_id=patient.id, detail=where)
        if patient.warning_codes:
            record(session, actor, "eligibility_warnings_overridden", patient_id=patient.id,
                   detail=f"{where}: {', '.join(patient.warning_codes)}")
        if invite:
            record(session, actor, "invitation_sent", patient_id=patient.id, detail=where)
        return "imported", invite, 0, None
    discharged = discharged_on(existing)
    if discharged is not None and details.triage_date is not None and details.triage_date >= discharged:
        raise NewReferralAfterDischarge(existing.id, discharged)
    update = update_from_triage(session, domain, existing, details, base_url=base_url, now=now, invite=invite)
    if not update.changed:
        return "unchanged", False, 0, None
    record(session, actor, "patient_updated", patient_id=existing.id, detail=f"{where}: {', '.join(update.changed)}")
    if update.reinvited:
        record(session, actor, "invitation_sent", patient_id=existing.id, detail=f"{where}: new mobile")
    for entry in update.closed:
        record(session, actor, "waitlist_closed_on_retriage", patient_id=existing.id,
               detail=f"{where}: entry {entry.id}, {entry.service_key}; now Tier {existing.tier}")
    left_booked = LeftBooked(line, existing.id, existing.tier, update.still_booked) if update.still_booked else None
    return "updated", update.reinvited, len(update.closed), left_booked
