"""A new referral after a discharge: the discharge ends and is kept, waiting-list places from before it end, the
change is audited and the patient told; questionnaires start a new baseline, and the triage import says where to
record it."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.audit.services import SYSTEM
from portal.booking import services as booking
from portal.booking import waitlist
from portal.booking.models import Cohort, WaitlistEntry
from portal.dates import london_today
from portal.db import utcnow
from portal.messaging import texts
from portal.messaging.models import SmsMessage
from portal.patients import referrals
from portal.patients.models import Patient, PatientReferral
from portal.patients.referrals import NewReferral
from portal.patients.triage_import import Row, import_rows
from portal.questionnaires import services as questionnaires
from portal.questionnaires.models import QuestionnaireResponse
from tests import factories
from tests.booking.helpers import seats_consistent
from tests.races import count_together, in_transaction

REASON = "Did not attend twice; back to the GP"


def _discharged(session, *, days_ago: int = 10, **kw) -> Patient:
    patient = kw.pop("patient", None) or factories.create_patient(session, **kw)
    patient.discharge(utcnow() - dt.timedelta(days=days_ago), REASON)
    session.commit()
    return patient


def _referral(*, days_ago: int = 2, tier: int = 1, team: str | None = None, note: str = "GP, Dr Shah") -> NewReferral:
    return NewReferral(triage_date=london_today() - dt.timedelta(days=days_ago), tier=tier, team=team, note=note)


def _record(session, domain, patient, referral=None, **kw):
    result = referrals.record_new_referral(session, domain, patient.id, referral or _referral(), actor=SYSTEM,
                                           now=utcnow(), **kw)
    session.commit()
    session.expire_all()
    return result


def test_a_new_referral_ends_the_discharge_keeps_it_and_tells_the_patient(session, domain):
    patient = _discharged(session, triage_date=london_today() - dt.timedelta(days=200))
    discharged_at = patient.discharged_at
    history, ended = _record(session, domain, patient, _referral(tier=2, team="haringey", note="  GP,   Dr Shah "))

    patient = session.get(Patient, patient.id)
    assert not patient.discharged and patient.discharge_reason is None
    assert (patient.tier, patient.team) == (2, "haringey")
    assert patient.triage_date == patient.episode_started_on == london_today() - dt.timedelta(days=2)
    kept = session.scalars(select(PatientReferral).where(PatientReferral.patient_id == patient.id)).one()
    assert kept.discharged_at == discharged_at and kept.discharge_reason == REASON
    assert kept.previous_triage_date == london_today() - dt.timedelta(days=200)
    assert (kept.tier, kept.team, kept.note) == (2, "haringey", "GP, Dr Shah")
    assert ended == 0
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "patient_referred_again")).one()
    assert event.patient_id == patient.id
    assert "Dr Shah" not in event.detail and REASON not in event.detail  # free text stays on the record
    text = session.scalars(select(SmsMessage).where(SmsMessage.patient_id == patient.id)).one()
    assert text.kind == "referred_again"
    assert text.body == texts.referred_again(phone=domain.policy.service.phone)
    assert texts.clinical_words_in(text.body) == [] and texts.gsm7_length(text.body) <= 160


def test_a_tier_2_referral_takes_its_team_from_the_postcode_as_registration_does(session, domain):
    in_catchment = _discharged(session, postcode="N19 5NF")
    nowhere = _discharged(session, postcode="N1 1AA")
    _record(session, domain, in_catchment, _referral(tier=2))
    _record(session, domain, nowhere, _referral(tier=2))
    assert session.get(Patient, in_catchment.id).team == "whittington"
    assert session.get(Patient, nowhere.id).team is None  # on the "needs a team" queue: never guessed
    tier_1 = _discharged(session, tier=2)
    _record(session, domain, tier_1, _referral(tier=1))
    assert (session.get(Patient, tier_1.id).tier, session.get(Patient, tier_1.id).team) == (1, None)


def test_a_patient_we_may_not_text_is_not_texted(session, domain):
    patient = _discharged(session, no_texts=True)
    _record(session, domain, patient)
    assert not session.get(Patient, patient.id).discharged
    assert session.scalars(select(SmsMessage)).all() == []


def test_only_a_discharged_patient_is_referred_again(session, domain):
    patient = factories.create_patient(session)
    with pytest.raises(referrals.NotDischarged):
        _record(session, domain, patient)
    session.rollback()
    discharged = _discharged(session)
    _record(session, domain, discharged)
    with pytest.raises(referrals.NotDischarged):  # the second press of the button
        _record(session, domain, discharged)
    session.rollback()
    assert len(session.scalars(select(PatientReferral)).all()) == 1
    assert session.scalars(select(SmsMessage)).all() != []
    with pytest.raises(LookupError):
        _record(session, domain, Patient(id=2**30))


@pytest.mark.parametrize(("referral", "field", "message"), [
    (_referral(days_ago=-1), "triage_date", "Triage date must be today or in the past"),
    (_referral(days_ago=11), "triage_date", "Triage date must be on or after the discharge on"),
    (_referral(note="   "), "note", "Enter who referred the patient"),
    (_referral(note="x" * 201), "note", "Note must be 200 characters or fewer"),
    (_referral(tier=3), "tier", "Select the tier"),
    (_referral(tier=1, team="whittington"), "team", "Select a team from the list"),
    (_referral(tier=2, team="elsewhere"), "team", "Select a team from the list"),
])
def test_a_referral_with_a_bad_detail_changes_nothing(session, domain, referral, field, message):
    patient = _discharged(session)
    with pytest.raises(referrals.ReferralRefused) as refused:
        _record(session, domain, patient, referral)
    session.rollback()
    assert refused.value.field == field and str(refused.value).startswith(message)
    assert session.get(Patient, patient.id).discharged
    assert session.scalars(select(PatientReferral)).all() == []


def test_the_triage_date_may_be_the_day_of_the_discharge(session, domain):
    patient = _discharged(session, days_ago=0)
    _record(session, domain, patient, _referral(days_ago=0))
    assert not session.get(Patient, patient.id).discharged


def test_waiting_list_places_from_before_the_discharge_end_and_a_held_seat_moves_on(session, domain):
    """Chosen: a new referral is a new wait. Left alone, the old places would come back to life unseen (offers
    skip only discharged patients), ahead of everyone who joined while the patient was away."""
    cohort = factories.create_cohort(session, capacity=1)
    holder = factories.create_patient(session)
    seat = booking.book_seat(session, domain, holder, cohort.id, now=utcnow())
    patient, other = factories.create_patient(session), factories.create_patient(session)
    service = domain.catalogue.get("t1-group")
    offered = waitlist.join(session, domain, patient, service, cohort=cohort, now=utcnow())
    waiting = waitlist.join(session, domain, other, service, cohort=cohort, now=utcnow())
    booking.withdraw_seat(session, domain, holder, seat.id, reason="x", now=utcnow())
    session.commit()
    assert session.get(WaitlistEntry, offered.id).status == "offered"
    _discharged(session, patient=patient, days_ago=0)

    _, ended = _record(session, domain, patient, _referral(days_ago=0))
    assert ended == 1
    assert session.get(WaitlistEntry, offered.id).status == "left"
    assert session.get(WaitlistEntry, waiting.id).status == "offered"  # the held seat went to the next patient
    assert session.get(Cohort, cohort.id).seats_taken == 1 and seats_consistent(session, cohort.id)
    withdrawn = session.scalars(select(SmsMessage).where(
        SmsMessage.idempotency_key == waitlist.offer_text_key(offered.id, cohort.id))).one()
    assert withdrawn.status == "cancelled"


def _submit_baseline(session, domain, patient, now):
    due = questionnaires.due_questionnaire(session, domain, patient, now=now)
    assert due is not None and due.occasion.occasion == "baseline"
    for instrument in due.instruments:
        session.add(QuestionnaireResponse(
            patient_id=patient.id, instrument=instrument.key, set_key=due.set_key, occasion="baseline",
            due_on=due.due_on, status="submitted", answers={}, score=1.0, submitted_at=now, updated_at=now))
    session.commit()
    return due


def test_no_questionnaire_is_due_while_discharged_and_a_new_referral_starts_a_new_baseline(session, domain):
    user = factories.create_patient_user(session)
    patient = user.patient
    now = utcnow()
    first = _submit_baseline(session, domain, patient, now)
    assert questionnaires.due_questionnaire(session, domain, patient, now=now) is None  # baseline done
    # Activated and answered long ago: the follow-up is due.
    user.created_at = now - dt.timedelta(days=400)
    for response in session.scalars(select(QuestionnaireResponse)):
        response.due_on -= dt.timedelta(days=400)
    session.commit()
    assert questionnaires.due_questionnaire(session, domain, patient, now=now) is not None

    _discharged(session, patient=patient, days_ago=5)
    assert questionnaires.due_questionnaire(session, domain, patient, now=now) is None

    _record(session, domain, patient, _referral(days_ago=1))
    patient = session.get(Patient, patient.id)
    due = questionnaires.due_questionnaire(session, domain, patient, now=now)
    assert due.occasion.occasion == "baseline" and due.due_on == london_today() - dt.timedelta(days=1)
    assert due.set_key != first.set_key and due.submitted == frozenset()


def test_a_course_begun_before_the_new_referral_belongs_to_the_old_episode(session, domain):
    user = factories.create_patient_user(session)
    patient = user.patient
    old = factories.create_cohort(session)
    booking.book_seat(session, domain, patient, old.id, now=utcnow())
    for course_session in old.sessions:  # the course began before the discharge, and the seat was kept
        course_session.starts_at -= dt.timedelta(days=70)
        course_session.ends_at -= dt.timedelta(days=70)
    session.commit()
    assert questionnaires.due_questionnaire(session, domain, patient, now=utcnow()).set_key.startswith("course-")
    _discharged(session, patient=patient, days_ago=5)
    _record(session, domain, patient, _referral(days_ago=1))
    patient = session.get(Patient, patient.id)
    due = questionnaires.due_questionnaire(session, domain, patient, now=utcnow())
    assert due.set_key.startswith("general@")


def test_the_triage_import_points_a_new_referral_for_a_discharged_patient_to_the_record(app, session, domain):
    patient = _discharged(session, given_name="Amira", family_name="Haddad",
                          triage_date=london_today() - dt.timedelta(days=300))
    base = {
        "nhs_number": patient.nhs_number, "given_name": patient.given_name, "family_name": patient.family_name,
        "date_of_birth": patient.date_of_birth.isoformat(), "mobile": "07700 900 111", "postcode": patient.postcode,
        "tier": "1", "pain_duration": "1-5-years", "diagnosis_recorded": "yes", "investigations_recorded": "yes",
        "treatment_recorded": "yes", "letters_received": "yes", "email": "", "team": "", "override_reason": "",
    }
    new = Row(1, {**base, "triage_date": (london_today() - dt.timedelta(days=1)).isoformat()})
    old = Row(2, {**base, "nhs_number": patient.nhs_number, "triage_date": patient.triage_date.isoformat()})
    report = import_rows(app.extensions["db"], domain, [new], base_url="http://portal.test", now=utcnow(),
                         today=london_today(), allow_drama_range=True)
    assert [r.line for r in report.rejected] == [1]
    assert f"/staff/patients/{patient.id}/referral" in report.rejected[0].reasons[0]
    assert "was discharged on" in report.rejected[0].reasons[0]
    session.expire_all()
    assert session.get(Patient, patient.id).discharged
    # The referral the discharge closed, sent again with a new mobile: its details still update.
    report = import_rows(app.extensions["db"], domain, [old], base_url="http://portal.test", now=utcnow(),
                         today=london_today(), allow_drama_range=True)
    assert (report.updated, report.rejected) == (1, [])
    session.expire_all()
    assert session.get(Patient, patient.id).mobile == "+447700900111"


def test_reception_saving_the_same_referral_twice_at_once_records_one(session, race_db, domain):
    """The patient's row lock: the second save waits, then finds the patient no longer discharged."""
    patient_id = _discharged(session).id  # read here: the racers must not touch the test's session
    jobs = [in_transaction(race_db, lambda s: referrals.record_new_referral(
        s, domain, patient_id, _referral(), actor=SYSTEM, now=utcnow())) for _ in range(5)]
    outcomes = count_together(jobs)
    assert outcomes == {"done": 1, "NotDischarged": 4}
    assert len(session.scalars(select(PatientReferral)).all()) == 1
    assert len(session.scalars(select(SmsMessage).where(SmsMessage.kind == "referred_again")).all()) == 1
