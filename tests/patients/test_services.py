"""Registering and updating triaged patients: teams, overrides, and the rules the database keeps."""

import dataclasses
import datetime as dt

import pytest
from sqlalchemy.exc import IntegrityError

from portal.patients import services
from portal.patients.models import Patient
from portal.patients.services import Registration
from tests import factories

DETAILS = Registration(
    nhs_number="9434765919", given_name="Ada", family_name="Lovelace", date_of_birth=dt.date(1975, 12, 10),
    mobile="+447700900456", postcode="N4 3LS", tier=2, team=None, triage_date=dt.date(2026, 11, 2),
    pain_duration="1-5-years", diagnosis_recorded=True,
)


@pytest.fixture
def registered(session, domain):
    patient = services.register_patient(session, domain, DETAILS)
    session.commit()
    return patient


def test_registering_stores_the_triage_details(registered):
    assert (registered.triage_date, registered.pain_duration) == (dt.date(2026, 11, 2), "1-5-years")
    assert registered.referral_checklist == [
        ("Diagnosis recorded", True), ("Relevant investigations", False), ("Treatment to date", False),
        ("Secondary care letters received", False),
    ]
    assert registered.needs_team  # N4 is in no catchment


def test_the_same_details_change_nothing(session, domain, registered):
    assert services.update_patient(session, domain, registered, DETAILS) == []


def test_a_team_staff_assigned_survives_the_same_details(session, domain, registered):
    services.assign_team(session, domain, registered, "haringey")
    assert services.update_patient(session, domain, registered, DETAILS) == []
    assert registered.team == "haringey"


def test_a_new_postcode_routes_the_team_again(session, domain, registered):
    services.assign_team(session, domain, registered, "haringey")
    changed = services.update_patient(session, domain, registered, dataclasses.replace(DETAILS, postcode="N19 5NF"))
    assert changed == ["postcode", "team"]
    assert registered.team == "whittington"


def test_a_named_team_wins_over_the_postcode(session, domain, registered):
    services.update_patient(session, domain, registered, dataclasses.replace(DETAILS, team="whittington"))
    assert registered.team == "whittington"


def test_moving_to_tier_1_drops_the_team(session, domain, registered):
    services.assign_team(session, domain, registered, "haringey")
    changed = services.update_patient(session, domain, registered, dataclasses.replace(DETAILS, tier=1))
    session.commit()
    assert changed == ["tier", "team"]
    assert (registered.tier, registered.team) == (1, None)


def test_an_earlier_override_stays_when_no_warning_applies_now(session, domain):
    young = dataclasses.replace(DETAILS, eligibility_warnings=("under-18",), override_reason="Transition")
    patient = services.register_patient(session, domain, young)
    # A year later the same row raises no warning: the record of why they were admitted stays.
    assert services.update_patient(session, domain, patient, DETAILS) == []
    assert (patient.warning_codes, patient.override_reason) == (["under-18"], "Transition")
    # A new warning with its reason replaces it.
    moved = dataclasses.replace(DETAILS, postcode="E8 1DY", eligibility_warnings=("outside-area",),
                                override_reason="Moved")
    assert services.update_patient(session, domain, patient, moved) == ["postcode", "eligibility_warnings"]
    assert (patient.warning_codes, patient.override_reason) == (["outside-area"], "Moved")


def test_an_override_without_a_reason_is_refused(session):
    patient = factories.create_patient(session)
    with pytest.raises(ValueError, match="needs a reason"):
        patient.record_override(("under-18",), None)
    patient.eligibility_warnings = "under-18"
    with pytest.raises(IntegrityError):
        session.flush()
    session.rollback()


def test_an_unknown_pain_duration_is_refused_by_the_database(session):
    patient = factories.create_patient(session)
    patient.pain_duration = "forever"
    with pytest.raises(IntegrityError):
        session.flush()
    session.rollback()


def test_only_tier_2_patients_are_assigned_a_team(session, domain):
    patient = factories.create_patient(session, tier=1)
    with pytest.raises(ValueError, match="only Tier 2"):
        services.assign_team(session, domain, patient, "haringey")
    tier_2 = factories.create_patient(session, tier=2, team=None)
    with pytest.raises(ValueError, match="unknown team"):
        services.assign_team(session, domain, tier_2, "nowhere")


def test_the_queue_holds_tier_2_patients_without_a_team(session):
    waiting = factories.create_patient(session, tier=2, team=None)
    factories.create_patient(session, tier=2)
    factories.create_patient(session, tier=1)
    assert [p.id for p in services.patients_needing_a_team(session)] == [waiting.id]
    assert services.count_needing_a_team(session) == 1
    assert isinstance(waiting, Patient)
