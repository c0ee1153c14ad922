"""`portal import-triage FILE.csv`: good rows in, bad rows reported by line, nothing half-written, idempotent."""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from portal.appointments.models import Appointment
from portal.audit.models import AuditEvent
from portal.auth.models import Invitation
from portal.booking.models import WaitlistEntry
from portal.cli import main
from portal.dates import london_today, written_date
from portal.db import utcnow
from portal.messaging.models import SmsMessage
from portal.patients import onboarding
from portal.patients.intake import age_on
from portal.patients.models import Patient
from portal.patients.triage_import import OPTIONAL_COLUMNS, REQUIRED_COLUMNS
from tests import factories
from tests.appointments import factories as appointment_factories
from tests.pages import error_for, parse
from tests.staff.registration import VALID, post_registration

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "examples" / "triage-export-sample.csv"
HEADER = list(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)

# Three good rows, as the export would hold them.
GOOD = [
    {"nhs_number": "999 030 0003", "given_name": "Maryam", "family_name": "Okafor", "date_of_birth": "1971-04-12",
     "mobile": "07700 900201", "email": "", "postcode": "N7 6PA", "tier": "1", "team": "",
     "triage_date": "2026-10-05", "pain_duration": "1-5-years", "diagnosis_recorded": "yes",
     "investigations_recorded": "yes", "treatment_recorded": "yes", "letters_received": "yes", "override_reason": ""},
    {"nhs_number": "9990300011", "given_name": "Tomasz", "family_name": "Nowak", "date_of_birth": "30/09/1963",
     "mobile": "07700900202", "email": "t.nowak@example.com", "postcode": "N19 5NF", "tier": "2", "team": "",
     "triage_date": "05/10/2026", "pain_duration": "over-5-years", "diagnosis_recorded": "yes",
     "investigations_recorded": "no", "treatment_recorded": "yes", "letters_received": "no", "override_reason": ""},
    {"nhs_number": "9990300038", "given_name": "Dylan", "family_name": "O'Brien", "date_of_birth": "1958-02-03",
     "mobile": "+44 7700 900203", "email": "", "postcode": "N4 3LS", "tier": "2", "team": "",
     "triage_date": "2026-10-06", "pain_duration": "6-12-months", "diagnosis_recorded": "y",
     "investigations_recorded": "y", "treatment_recorded": "n", "letters_received": "y", "override_reason": ""},
]


def write_csv(path: Path, rows: list[dict], header: list[str] = HEADER) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([row.get(name, "") for name in header] if isinstance(row, dict) else row)
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def run_import(app, path: Path, *args: str):
    return app.test_cli_runner().invoke(main, ["import-triage", str(path), *args])


def count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def snapshot(session) -> tuple:
    """Everything an import could write: patients (every column), invitations, texts and audit events."""
    session.expire_all()
    patients = [tuple(getattr(p, c.key) for c in Patient.__table__.columns)
                for p in session.scalars(select(Patient).order_by(Patient.id))]
    invitations = [(i.id, i.patient_id, i.revoked_at)
                   for i in session.scalars(select(Invitation).order_by(Invitation.id))]
    return patients, invitations, count(session, SmsMessage), count(session, AuditEvent)


# The shipped sample

def test_the_sample_file_imports_good_rows_and_reports_every_bad_one(app, session):
    result = run_import(app, SAMPLE)
    assert result.exit_code == 0, result.output
    assert "Importing 16 rows" in result.output  # the progress bar's label (a bar on a terminal)
    assert result.stdout.splitlines()[-2:] == [
        "Summary: 10 imported, 0 updated, 0 unchanged, 6 rejected.",
        "10 invitation texts queued; the scheduler sends them.",
    ]
    assert result.stderr.splitlines() == [
        "Line 12: nhs_number: This is not a valid NHS number. Check it and try again",
        "Line 13: mobile: This is not a mobile number. Enter a UK mobile number, like 07700 900 982",
        "Line 14: pain_duration: The service is for people who have had pain for more than 6 months",
        "Line 14: override_reason: Give a reason for registering the patient despite the warning",
        "Line 15: nhs_number: the same NHS number is on line 3",
        "Line 16: tier: Select Tier 1 or Tier 2",
        "Line 16: triage_date: Triage date must be a real date",
        "Line 17: has 8 values, but the header has 16 columns",
    ]
    assert count(session, Patient) == 10
    assert count(session, Invitation) == 10 and count(session, SmsMessage) == 10
    by_name = {p.family_name: p for p in session.scalars(select(Patient))}
    assert by_name["O'Brien"].needs_team  # N4: in the area, in no catchment
    assert by_name["Boateng"].team == "haringey"  # the export named the team
    assert by_name["Nowak"].team == "whittington"
    assert by_name["Carvalho"].warning_codes == ["outside-area"]
    assert by_name["Carvalho"].override_reason.startswith("Moved to E8")
    assert by_name["Rahman"].referral_checklist == [
        ("Diagnosis recorded", True), ("Relevant investigations", False), ("Treatment to date", True),
        ("Secondary care letters received", False),
    ]
    events = session.scalars(select(AuditEvent).where(AuditEvent.action == "patient_registered")).all()
    assert len(events) == 10
    assert {(e.actor_role, e.actor_user_id) for e in events} == {("system", None)}
    assert len({e.request_id for e in events}) == 1 and events[0].request_id.startswith("triage-import-")


def test_importing_the_same_file_again_changes_nothing(app, session):
    assert run_import(app, SAMPLE).exit_code == 0
    before = snapshot(session)
    again = run_import(app, SAMPLE)
    assert again.exit_code == 0
    assert "Summary: 0 imported, 0 updated, 10 unchanged, 6 rejected." in again.stdout
    assert "invitation" not in again.stdout
    assert snapshot(session) == before


def test_the_sample_is_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "## Importing the triage export" in readme
    for column in HEADER:
        assert f"`{column}`" in readme, column
    assert "examples/triage-export-sample.csv" in readme


# Updates

def test_changed_rows_are_updated_and_a_new_mobile_gets_a_new_link(app, session, tmp_path):
    assert run_import(app, write_csv(tmp_path / "first.csv", GOOD)).exit_code == 0
    changed = [dict(GOOD[0], mobile="07700 900299"), dict(GOOD[1], postcode="N8 8JD"), GOOD[2]]
    result = run_import(app, write_csv(tmp_path / "second.csv", changed))
    assert "Summary: 0 imported, 2 updated, 1 unchanged, 0 rejected." in result.stdout
    assert "1 invitation texts queued" in result.stdout
    session.expire_all()
    okafor, nowak = (session.scalars(select(Patient).where(Patient.family_name == name)).one()
                     for name in ("Okafor", "Nowak"))
    assert okafor.mobile == "+447700900299"
    assert nowak.postcode == "N8 8JD" and nowak.team == "haringey"  # routed again by the new postcode
    invitations = session.scalars(select(Invitation).where(Invitation.patient_id == okafor.id)
                                  .order_by(Invitation.id)).all()
    assert len(invitations) == 2 and invitations[0].revoked_at is not None and invitations[1].revoked_at is None
    newest = session.scalars(select(SmsMessage).where(SmsMessage.patient_id == okafor.id)
                             .order_by(SmsMessage.id.desc())).first()
    assert newest.to_number == "+447700900299"
    details = [e.detail for e in session.scalars(select(AuditEvent).where(AuditEvent.action == "patient_updated")
               .order_by(AuditEvent.id))]
    assert sorted(details) == ["triage import, line 2: mobile", "triage import, line 3: postcode, team"]


def test_a_new_tier_closes_dead_waiting_list_places_and_lists_what_is_still_booked(app, session, tmp_path):
    assert run_import(app, write_csv(tmp_path / "first.csv", GOOD[:2])).exit_code == 0
    okafor, nowak = (session.scalars(select(Patient).where(Patient.family_name == name)).one()
                     for name in ("Okafor", "Nowak"))
    now = utcnow()
    entry = WaitlistEntry(patient_id=okafor.id, service_key="t1-group", position=1, status="waiting",
                          created_at=now, updated_at=now)
    session.add(entry)
    session.commit()
    starts_at = appointment_factories.days_ahead(5, hour=10)
    slot = appointment_factories.create_slot(session, service_key="t1-pharmacy", starts_at=starts_at)
    appointment = appointment_factories.book(session, okafor, slot)
    session.add(WaitlistEntry(patient_id=nowak.id, service_key="t2-programme", position=2, status="waiting",
                              created_at=now, updated_at=now))
    session.commit()

    # Okafor moves to Tier 2; Nowak's team changes, which leaves a place for any group of the course open.
    changed = [dict(GOOD[0], tier="2"), dict(GOOD[1], team="haringey")]
    result = run_import(app, write_csv(tmp_path / "second.csv", changed))
    assert result.exit_code == 0
    assert (f"Line 2: now Tier 2, still booked from Tier 1: Pharmacy-led medication review, {written_date(starts_at)} "
            "10:00. "
            f"Nothing was cancelled: cancel or keep each on the patient's record (/staff/patients/{okafor.id})"
            ) in result.stdout
    assert ("Summary: 0 imported, 2 updated, 0 unchanged, 0 rejected; 1 waiting-list place closed; "
            "1 patient still booked from their old tier, for staff to cancel or keep.") in result.stdout
    session.expire_all()
    assert session.get(WaitlistEntry, entry.id).status == "left"
    assert session.get(Appointment, appointment.id).status == "active"  # listed for staff, never cancelled
    closed = session.scalars(select(AuditEvent).where(AuditEvent.action == "waitlist_closed_on_retriage")).one()
    assert closed.patient_id == okafor.id
    assert closed.detail == f"triage import, line 2: entry {entry.id}, t1-group; now Tier 2"
    assert session.scalars(select(SmsMessage.kind).where(SmsMessage.patient_id == okafor.id)
                           .order_by(SmsMessage.id.desc())).first() == "waiting_list_closed"
    # Importing the same file again changes nothing, and closes and lists nothing more.
    again = run_import(app, write_csv(tmp_path / "second.csv", changed))
    assert "Summary: 0 imported, 0 updated, 2 unchanged, 0 rejected." in again.stdout
    assert "still booked" not in again.stdout


def test_a_patient_with_an_account_is_not_sent_a_new_link(app, session, tmp_path):
    assert run_import(app, write_csv(tmp_path / "first.csv", GOOD[:1])).exit_code == 0
    patient = session.scalars(select(Patient)).one()
    factories.create_patient_user(session, patient=patient)
    result = run_import(app, write_csv(tmp_path / "second.csv", [dict(GOOD[0], mobile="07700 900299")]))
    assert "0 imported, 1 updated" in result.stdout
    assert count(session, Invitation) == 1


def test_a_team_staff_assigned_is_kept_on_reimport(app, session, tmp_path):
    path = write_csv(tmp_path / "export.csv", GOOD)
    assert run_import(app, path).exit_code == 0
    obrien = session.scalars(select(Patient).where(Patient.family_name == "O'Brien")).one()
    obrien.team = "whittington"  # assigned from the needs-a-team queue
    session.commit()
    assert "0 imported, 0 updated, 3 unchanged" in run_import(app, path).stdout
    session.expire_all()
    assert session.get(Patient, obrien.id).team == "whittington"


def test_a_patient_registered_on_the_form_is_matched_by_nhs_number(app, session, tmp_path, reception_client):
    assert post_registration(reception_client).status_code == 302
    row = dict(GOOD[1], nhs_number=VALID["nhs_number"])
    result = run_import(app, write_csv(tmp_path / "export.csv", [row]))
    assert "0 imported, 1 updated" in result.stdout
    assert count(session, Patient) == 1


# Bad rows

BAD_ROWS = [
    pytest.param({"nhs_number": "999 030 0005"}, ["nhs_number: This is not a valid NHS number. Check it and try again"],
                 id="nhs-number"),
    pytest.param({"given_name": ""}, ["given_name: Enter the patient's first name"], id="no-name"),
    pytest.param({"date_of_birth": "12 April 1971"},
                 ["date_of_birth: Date of birth must be a date like 10/12/1975 or 1975-12-10"], id="date-format"),
    pytest.param({"date_of_birth": "2031-01-01"}, ["date_of_birth: Date of birth must be in the past"],
                 id="born-later"),
    pytest.param({"triage_date": "2099-01-01"}, ["triage_date: Triage date must be today or in the past"],
                 id="triage-later"),
    pytest.param({"mobile": "07700 90"}, ["mobile: Enter a UK mobile number, like 07700 900 982"], id="mobile"),
    pytest.param({"email": "maryam@"}, ["email: Enter an email address like name@example.com"], id="email"),
    pytest.param({"postcode": "N7"}, ["postcode: Enter a full UK postcode, like N19 5NF"], id="postcode"),
    pytest.param({"tier": ""}, ["tier: Select the tier the patient was triaged to"], id="no-tier"),
    pytest.param({"team": "haringey"},
                 ["team: Only Tier 2 patients have a team. Leave it to be worked out from the postcode"],
                 id="tier-1-team"),
    pytest.param({"tier": "2", "team": "islington-south"}, ["team: Select a team from the list"], id="unknown-team"),
    pytest.param({"pain_duration": "2 years"},
                 ["pain_duration: Select how long the patient has had pain, from the list"], id="pain-duration"),
    pytest.param({"letters_received": "pending"},
                 ["letters_received: Secondary care letters received: enter yes or no"], id="yes-no"),
    pytest.param({"postcode": "E8 1DY"}, [
        "postcode: E8 is outside Haringey and Islington",
        "override_reason: Give a reason for registering the patient despite the warning",
    ], id="warning-without-reason"),
    pytest.param({"date_of_birth": "2015-01-01", "pain_duration": "under-6-months"}, [
        "date_of_birth: The patient is 11. The service is for adults aged 18 and over",
        "pain_duration: The service is for people who have had pain for more than 6 months",
        "override_reason: Give a reason for registering the patient despite the warning",
    ], id="two-warnings"),
    # Line 2 (GOOD[1]) goes in first: a later row with its mobile and no email would leave one of them unable to
    # sign in; and its email is its own.
    pytest.param({"mobile": "07700900202"}, [
        "email: Another patient is registered with this mobile number. Patients who share a mobile sign in with "
        "their email address: enter one for this patient",
    ], id="shared-mobile-no-email"),
    pytest.param({"email": "T.Nowak@example.com"}, [
        "email: Another patient is registered with this email address. Enter the patient's own email address, or "
        "leave it out",
    ], id="email-on-another-record"),
]


@pytest.mark.parametrize(("changes", "reasons"), BAD_ROWS)
def test_each_bad_row_is_reported_with_its_line_and_the_rows_around_it_go_in(app, session, tmp_path, changes, reasons):
    if changes.get("date_of_birth") == "2015-01-01":  # the age in the message grows with the years
        reasons = [reasons[0].replace("is 11.", f"is {age_on(dt.date(2015, 1, 1), london_today())}."), *reasons[1:]]
    rows = [GOOD[1], dict(GOOD[0], **changes), GOOD[2]]
    result = run_import(app, write_csv(tmp_path / "export.csv", rows))
    assert result.exit_code == 0
    assert result.stderr.splitlines() == [f"Line 3: {reason}" for reason in reasons]
    assert "Summary: 2 imported, 0 updated, 0 unchanged, 1 rejected." in result.stdout
    assert session.scalars(select(Patient.family_name).order_by(Patient.family_name)).all() == ["Nowak", "O'Brien"]
    assert count(session, Invitation) == 2


def test_a_warning_with_a_reason_is_imported_and_recorded(app, session, tmp_path):
    row = dict(GOOD[0], postcode="E8 1DY", override_reason="Moved after referral; Islington GP")
    result = run_import(app, write_csv(tmp_path / "export.csv", [row]))
    assert "1 imported" in result.stdout
    patient = session.scalars(select(Patient)).one()
    assert (patient.warning_codes, patient.override_reason) == (["outside-area"], "Moved after referral; Islington GP")
    [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "eligibility_warnings_overridden"))
    assert event.detail == "triage import, line 2: outside-area"


def test_rows_with_the_wrong_number_of_values_and_repeated_nhs_numbers_are_rejected(app, session, tmp_path):
    rows = [GOOD[0], ["9990300011", "Tomasz"], GOOD[1], dict(GOOD[2], nhs_number=GOOD[1]["nhs_number"])]
    result = run_import(app, write_csv(tmp_path / "export.csv", rows))
    assert result.stderr.splitlines() == [
        "Line 3: has 2 values, but the header has 16 columns",
        "Line 5: nhs_number: the same NHS number is on line 4",
    ]
    assert "2 imported, 0 updated, 0 unchanged, 2 rejected" in result.stdout


def test_line_numbers_count_lines_of_the_file_not_records(app, session, tmp_path):
    path = tmp_path / "export.csv"
    first = dict(GOOD[0], postcode="E8 1DY", override_reason="Moved after referral.\nGP is in Islington.")
    write_csv(path, [first, GOOD[1], dict(GOOD[2], mobile="bad")])
    # A byte order mark (Excel's "CSV UTF-8") and blank lines at the end are fine.
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes() + b"\r\n,,,,\r\n\r\n")
    result = run_import(app, path)
    assert result.stderr.splitlines() == ["Line 5: mobile: Enter a UK mobile number, like 07700 900 982"]
    assert "2 imported" in result.stdout


def test_a_row_that_fails_while_saving_leaves_no_half_written_patient(app, session, tmp_path, monkeypatch):
    real_invite = onboarding.auth.invite_patient

    def invite_failing_for_nowak(s, domain, patient, **kw):
        if patient.family_name == "Nowak":
            raise OperationalError("INSERT INTO invitation", {}, Exception("disk I/O error"))
        return real_invite(s, domain, patient, **kw)

    monkeypatch.setattr(onboarding.auth, "invite_patient", invite_failing_for_nowak)
    result = run_import(app, write_csv(tmp_path / "export.csv", GOOD))
    assert result.stderr.splitlines() == [
        "Line 3: could not be saved (OperationalError); nothing was written for this row"]
    assert "2 imported, 0 updated, 0 unchanged, 1 rejected" in result.stdout
    # The patient row inserted before the failure was rolled back with it, and nothing else of theirs stayed.
    assert session.scalars(select(Patient.family_name).order_by(Patient.family_name)).all() == ["O'Brien", "Okafor"]
    assert count(session, Invitation) == 2 and count(session, SmsMessage) == 2
    audited = session.scalars(select(AuditEvent.detail).where(AuditEvent.action == "patient_registered")).all()
    assert sorted(audited) == ["triage import, line 2", "triage import, line 4"]

    # Once the fault is gone, importing the same file again finishes the job.
    monkeypatch.setattr(onboarding.auth, "invite_patient", real_invite)
    assert "1 imported, 0 updated, 2 unchanged, 0 rejected" in run_import(app, tmp_path / "export.csv").stdout


def test_no_invite_imports_without_texting(app, session, tmp_path, reception_client):
    result = run_import(app, write_csv(tmp_path / "export.csv", GOOD), "--no-invite")
    assert "3 imported" in result.stdout and "invitation" not in result.stdout
    assert count(session, Invitation) == 0 and count(session, SmsMessage) == 0
    patient = session.scalars(select(Patient)).first()
    record = parse(reception_client.get(f"/staff/patients/{patient.id}")).get_text(" ", strip=True)
    assert "Not sent" in record and "Send invitation" in record


# The file as a whole

@pytest.mark.parametrize(
    ("header", "message"),
    [
        ([c for c in HEADER if c != "tier"], "wrong header (missing columns: tier)"),
        ([*HEADER, "gp_practice"], "unknown columns: 'gp_practice'"),
        ([*HEADER, "tier"], "repeated columns: tier"),
        ([c.upper() for c in REQUIRED_COLUMNS], None),  # case and order do not matter; optional ones may go
    ],
)
def test_the_header_is_checked_before_anything_is_written(app, session, tmp_path, header, message):
    rows = [[row.get(name.lower(), "") for name in header] for row in GOOD]
    result = run_import(app, write_csv(tmp_path / "export.csv", rows, header=header))
    if message is None:
        assert result.exit_code == 0 and "3 imported" in result.stdout
        return
    assert result.exit_code == 1
    assert message in result.stderr and "Expected the columns nhs_number, given_name" in result.stderr
    assert count(session, Patient) == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        (b"", "the file is empty"),
        ("nhs_number,given_name\n".encode("utf-16"), "not a UTF-8 text file"),
        ("nhs_number,given_name\n9990300003,Zoë\n".encode("latin-1"), "not a UTF-8 text file"),
    ],
)
def test_a_file_that_cannot_be_read_is_an_error(app, session, tmp_path, content, message):
    path = tmp_path / "export.csv"
    if content is not None:
        path.write_bytes(content)
    result = run_import(app, path)
    assert result.exit_code == 1
    assert message in result.stderr
    assert count(session, Patient) == 0


# The form and the import never disagree

@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("nhs_number", "943 476 5918"),
        ("nhs_number", "12345"),
        ("given_name", "A" * 101),
        ("mobile", "020 7946 0000"),
        ("email", "not-an-email"),
        ("postcode", "nowhere"),
        ("tier", "3"),
        ("pain_duration", "forever"),
        ("team", "made-up-team"),
    ],
)
def test_the_form_and_the_import_give_the_same_message(app, session, tmp_path, reception_client, field, value):
    page = parse(post_registration(reception_client, **{field: value}))
    on_the_form = error_for(page, field)
    assert on_the_form
    row = dict(GOOD[1], **{field: value})
    from_the_file = run_import(app, write_csv(tmp_path / "export.csv", [row])).stderr.splitlines()
    assert from_the_file == [f"Line 2: {field}: {on_the_form}"]


def test_dates_are_judged_alike_on_the_form_and_in_the_file(app, session, tmp_path, reception_client):
    page = parse(post_registration(reception_client, **{"triage_date[day]": "30", "triage_date[month]": "2"}))
    on_the_form = error_for(page, "triage_date")
    row = dict(GOOD[1], triage_date=f"30/02/{VALID['triage_date[year]']}")
    from_the_file = run_import(app, write_csv(tmp_path / "export.csv", [row])).stderr.splitlines()
    assert on_the_form == "Triage date must be a real date"
    assert from_the_file == [f"Line 2: triage_date: {on_the_form}"]


# The real command, in its own process

def test_the_portal_command_imports_into_the_configured_database(app, database_url, session, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PORTAL_", "TWILIO_"))}
    env.update(DATABASE_URL=database_url, SECRET_KEY="test-secret-key", PORTAL_INSTANCE_DIR=str(tmp_path),
               SMS_BACKEND="console", PUBLIC_BASE_URL="https://portal.test")
    portal = Path(sys.executable).parent / "portal"
    done = subprocess.run([str(portal), "import-triage", str(SAMPLE)], env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "Summary: 10 imported, 0 updated, 0 unchanged, 6 rejected." in done.stdout
    assert "Line 12: nhs_number" in done.stderr
    assert count(session, Patient) == 10

    bad = write_csv(tmp_path / "bad.csv", [], header=["nhs_number", "name"])
    done = subprocess.run([str(portal), "import-triage", str(bad)], env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 1
    assert "wrong header" in done.stderr
