"""`portal synth`: a small synthetic service, its counts and uniqueness, and the refusals that keep it safe."""

from __future__ import annotations

import datetime as dt

import nhs_number
import pytest
from sqlalchemy import func, select

from portal import synth
from portal.appointments.models import Appointment, AppointmentSlot
from portal.attendance.models import Attendance
from portal.booking.models import Booking, Cohort, Venue
from portal.messaging.models import SmsMessage
from portal.models import metadata
from portal.patients.models import Patient
from portal.questionnaires.models import QuestionnaireResponse
from portal.reports import services
from tests import factories


def _count(session, model, *where):
    return session.scalar(select(func.count()).select_from(model).where(*where))


def test_three_hundred_patients(db, session, domain):
    now = dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC)
    with db.transaction() as s:
        summary = synth.generate(s, 300, seed=7, now=now, domain=domain)
    assert summary.counts["patient"] == _count(session, Patient) == 300
    numbers = session.scalars(select(Patient.nhs_number)).all()
    assert len(set(numbers)) == 300
    assert all(n.startswith("999") and nhs_number.is_valid(n) for n in numbers)
    mobiles = session.scalars(select(Patient.mobile).distinct()).all()
    assert all(m.startswith("+447700900") and int(m[-3:]) < 900 for m in mobiles)  # 900-999 stay for tests
    triaged = session.scalars(select(Patient.triage_date)).all()
    assert min(triaged) >= dt.date(2026, 11, 25) - dt.timedelta(days=548) and max(triaged) <= dt.date(2026, 11, 25)
    assert {1, 2} == set(session.scalars(select(Patient.tier).distinct()))
    assert _count(session, Patient, Patient.tier == 1, Patient.team.is_not(None)) == 0
    # Search keys are filled in, as the model would (bulk inserts skip its validators).
    assert _count(session, Patient, Patient.family_name_key == "") == 0

    # Seats: never more than a cohort's capacity, and seats_taken agrees with the active bookings.
    for cohort in session.scalars(select(Cohort)):
        active = _count(session, Booking, Booking.cohort_id == cohort.id, Booking.status == "active")
        assert active == cohort.seats_taken <= cohort.capacity
    assert _count(session, Booking) > 50
    assert _count(session, Appointment) > 150
    assert _count(session, AppointmentSlot) == _count(session, Appointment)
    marks = dict(session.execute(select(Attendance.mark, func.count()).group_by(Attendance.mark)).all())
    assert marks["attended"] > marks["dna"] > 0
    assert _count(session, Attendance, Attendance.starts_at > now) == 0  # nobody is marked for the future
    statuses = set(session.scalars(select(SmsMessage.status).distinct()))
    assert {"delivered", "failed", "pending"} <= statuses
    assert _count(session, SmsMessage, SmsMessage.to_number.not_like("+447700900%")) == 0
    occasions = set(session.scalars(select(QuestionnaireResponse.occasion).distinct()))
    assert {"baseline", "end"} <= occasions

    # Every report runs on it and finds something.
    filters = services.default_filters(dt.date(2026, 11, 25))
    for name in services.REPORTS:
        assert services.run(session, domain, name, filters).rows, name
    assert sum(row["total"] for row in services.patients_triaged(session, domain, filters).rows) > 150
    # A page's rows come from cheaper queries than the CSV's detail: both give the same figures.
    for chosen in (filters, services.Filters(filters.first_month, filters.last_month, team="haringey"),
                   services.Filters(filters.first_month, filters.last_month, service="t1-group")):
        for name in services.REPORTS:
            assert services.run(session, domain, name, chosen).rows == services.run(
                session, domain, name, chosen, detail=True).rows, (name, chosen)


def test_the_same_seed_makes_the_same_service(db, session, domain):
    now = dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC)
    with db.transaction() as s:
        synth.generate(s, 40, seed=3, now=now, domain=domain)
    first = session.execute(select(Patient.given_name, Patient.triage_date, Patient.tier).order_by(Patient.id)).all()
    with db.transaction() as s:
        for table in ("questionnaire_response", "sms_outbox", "attendance", "appointment", "appointment_slot",
                      "booking", "cohort_session", "cohort_facilitator", "cohort", "patient"):
            s.execute(metadata.tables[table].delete())
    with db.transaction() as s:
        synth.generate(s, 40, seed=3, now=now, domain=domain)
    again = session.execute(select(Patient.given_name, Patient.triage_date, Patient.tier).order_by(Patient.id)).all()
    assert again == first


def test_refuses_a_database_with_patients_unless_forced(db, session, domain):
    factories.create_patient(session)  # a test-range patient
    with db.transaction() as s, pytest.raises(synth.SynthRefused, match="--force"):
        synth.generate(s, 5, domain=domain)
    with db.transaction() as s:
        synth.generate(s, 5, domain=domain, force=True)
    assert _count(session, Patient) == 6


def test_a_venue_of_the_same_name_is_used_not_added_again(db, session, domain):
    """Venue names are unique: a run into a database that has one of its venues (a forced second run, say)
    meets there."""
    north = factories.create_venue(session, name="Synthetic Health Centre North")
    with db.transaction() as s:
        synth.generate(s, 5, domain=domain)
    assert _count(session, Venue) == 4 and _count(session, Venue, Venue.name_key.is_(None)) == 0
    assert _count(session, Venue, Venue.name == north.name) == 1


def test_never_adds_to_a_database_with_real_looking_patients(db, session, domain):
    factories.create_patient(session, nhs_number="9434765919")  # a valid number outside the 999 test range
    with db.transaction() as s, pytest.raises(synth.SynthRefused, match="real-looking"):
        synth.generate(s, 5, domain=domain, force=True)
    assert _count(session, Patient) == 1


def test_the_command_refuses_production(app, monkeypatch):
    from portal.cli import main

    monkeypatch.setitem(app.config, "PRODUCTION", True)
    result = app.test_cli_runner().invoke(main, ["synth", "--patients", "5"])
    assert result.exit_code != 0
    assert "never generated in production" in result.output


def test_the_command_generates(app, session):
    from portal.cli import main

    result = app.test_cli_runner().invoke(main, ["synth", "--patients", "20", "--seed", "2"])
    assert result.exit_code == 0, result.output
    assert "20 patient" in result.output
    assert _count(session, Patient) == 20


def test_check_digits_are_modulus_11():
    assert synth.nhs_check_digit("943476591") == 9  # 943 476 5919, the NHS's own example
    for digits in ("999300000", "999300001", "999300002"):
        digit = synth.nhs_check_digit(digits)
        assert (digit is None) == (not any(nhs_number.is_valid(digits + str(d)) for d in range(10)))
