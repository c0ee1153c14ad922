"""Drafts never scored, submitting scores once, the item-9 flag raised once, and the due-nudge text."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from portal.auth.models import Role
from portal.messaging.models import SmsMessage
from portal.questionnaires import services
from portal.questionnaires.instruments import GAD7, PAIN_INTENSITY, PHQ9
from portal.questionnaires.jobs import nudge_due_questionnaires
from portal.questionnaires.models import FlagAlreadyAcknowledged, QuestionnaireResponse, ResponseAlreadySubmitted
from tests import factories
from tests.questionnaires.helpers import all_answers, book_course, flags, london, patient_user, responses

NOW = london(2026, 2, 2, 11)


@pytest.fixture
def patient(session):
    return patient_user(session, activated=london(2026, 2, 2, 9)).patient


def _due(session, domain, patient, now=NOW):
    return services.due_questionnaire(session, domain, patient, now=now)


def _save(session, domain, patient, instrument, answers, *, submit=True, now=NOW):
    saved = services.save_answers(session, patient, _due(session, domain, patient, now), instrument, answers,
                                  submit=submit, now=now)
    session.commit()
    return saved


# Drafts and scoring.

def test_a_draft_keeps_partial_answers_and_is_never_scored(session, domain, patient):
    saved = _save(session, domain, patient, PHQ9, {"phq9_1": 2, "phq9_2": 1}, submit=False)
    assert not saved.submitted and saved.missing == []
    [row] = responses(session, patient.id)
    assert (row.status, row.answers, row.score, row.band, row.submitted_at) == (
        "draft", {"phq9_1": 2, "phq9_2": 1}, None, None, None)
    assert (row.occasion, row.set_key, row.due_on) == ("baseline", "general:baseline", dt.date(2026, 2, 2))


def test_a_form_from_another_tab_adds_to_the_draft_rather_than_wiping_it(session, domain, patient):
    """The second tab was opened before the first saved items 1 and 2, so it sends only items 3 and 4."""
    _save(session, domain, patient, PHQ9, {"phq9_1": 2, "phq9_2": 1}, submit=False)
    _save(session, domain, patient, PHQ9, {"phq9_2": 3, "phq9_3": 0, "phq9_4": 1}, submit=False)
    [row] = responses(session, patient.id)
    assert row.answers == {"phq9_1": 2, "phq9_2": 3, "phq9_3": 0, "phq9_4": 1}
    # And the rest sent later completes it: scored on every answer kept.
    rest = {key: 1 for key in all_answers(PHQ9, 1) if key not in row.answers}
    saved = _save(session, domain, patient, PHQ9, rest)
    assert saved.submitted and saved.response.answers == {**row.answers, **rest}
    assert saved.response.score == 2 + 3 + 0 + 1 + 5  # items 5 to 9 score 1 each; the difficulty item scores none


def test_even_a_complete_draft_is_not_scored(session, domain, patient):
    _save(session, domain, patient, GAD7, all_answers(GAD7, 2), submit=False)
    assert responses(session, patient.id)[0].score is None


def test_submitting_with_items_missing_keeps_a_draft_and_names_them(session, domain, patient):
    answers = all_answers(PHQ9, 1)
    del answers["phq9_4"], answers["phq9_7"]
    saved = _save(session, domain, patient, PHQ9, answers)
    assert saved.missing == ["phq9_4", "phq9_7"]
    assert not saved.submitted
    row = responses(session, patient.id)[0]
    assert (row.status, row.score) == ("draft", None)
    assert row.answers == answers


def test_the_optional_difficulty_question_may_be_left_out(session, domain, patient):
    answers = {f"phq9_{n}": v for n, v in enumerate([1, 2, 1, 0, 3, 2, 1, 0, 1], start=1)}
    saved = _save(session, domain, patient, PHQ9, answers)
    assert saved.submitted
    row = responses(session, patient.id)[0]
    assert (row.status, row.score, row.band) == ("submitted", 11, "Moderate")
    assert row.submitted_at == NOW


def test_a_draft_then_a_submit_is_one_response(session, domain, patient):
    _save(session, domain, patient, GAD7, {"gad7_1": 3}, submit=False)
    _save(session, domain, patient, GAD7, all_answers(GAD7, 3))
    [row] = responses(session, patient.id)
    assert (row.status, row.score, row.band) == ("submitted", 21, "Severe")


def test_submitted_answers_are_final(session, domain, patient):
    due = _due(session, domain, patient)
    services.save_answers(session, patient, due, GAD7, all_answers(GAD7, 0), submit=True, now=NOW)
    session.commit()
    with pytest.raises(ResponseAlreadySubmitted):
        services.save_answers(session, patient, due, GAD7, all_answers(GAD7, 3), submit=True, now=NOW)
    session.rollback()
    assert responses(session, patient.id)[0].score == 0


def test_answers_that_are_not_options_are_dropped(session, domain, patient):
    saved = _save(session, domain, patient, PAIN_INTENSITY, {"pain_average": 11, "other": 2})
    assert saved.missing == ["pain_average"]
    assert responses(session, patient.id)[0].answers == {}


def test_the_database_refuses_a_scored_draft(session, patient):
    session.add(QuestionnaireResponse(patient_id=patient.id, instrument="gad7", set_key="general:baseline",
                                      occasion="baseline", due_on=dt.date(2026, 2, 2), status="draft", answers={},
                                      score=4))
    with pytest.raises(IntegrityError):
        session.flush()
    session.rollback()


# The item-9 flag.

def test_item_9_above_not_at_all_raises_one_flag(session, domain, patient):
    saved = _save(session, domain, patient, PHQ9, all_answers(PHQ9, 0) | {"phq9_9": 2})
    assert saved.needs_support and saved.flag_raised is not None
    [flag] = flags(session, patient.id)
    assert (flag.reason, flag.answer_value, flag.answer_label, flag.raised_at) == (
        "phq9_item9", 2, "More than half the days", NOW)
    assert flag.response_id == saved.response.id and flag.is_open


def test_item_9_not_at_all_raises_nothing(session, domain, patient):
    saved = _save(session, domain, patient, PHQ9, all_answers(PHQ9, 3) | {"phq9_9": 0})
    assert not saved.needs_support and saved.flag_raised is None
    assert flags(session) == []


def test_a_draft_with_item_9_raises_the_flag_and_submitting_it_raises_no_second(session, domain, patient):
    first = _save(session, domain, patient, PHQ9, {"phq9_9": 1}, submit=False)
    assert first.needs_support and first.flag_raised is not None
    again = _save(session, domain, patient, PHQ9, {"phq9_9": 1, "phq9_1": 1}, submit=False)
    final = _save(session, domain, patient, PHQ9, all_answers(PHQ9, 1))
    assert again.needs_support and again.flag_raised is None
    assert final.needs_support and final.flag_raised is None and final.submitted
    assert len(flags(session, patient.id)) == 1


def test_a_graver_item_9_answer_saved_later_shows_on_the_open_flag(session, domain, patient):
    _save(session, domain, patient, PHQ9, {"phq9_9": 1}, submit=False)
    _save(session, domain, patient, PHQ9, {"phq9_9": 3}, submit=False)
    [flag] = flags(session, patient.id)
    assert (flag.answer_value, flag.answer_label) == (3, "Nearly every day")
    # A milder answer afterwards leaves the gravest one given on the flag.
    _save(session, domain, patient, PHQ9, all_answers(PHQ9, 0) | {"phq9_9": 1})
    session.expire_all()
    [flag] = flags(session, patient.id)
    assert flag.answer_value == 3 and flag.is_open


def test_a_graver_answer_after_the_flag_was_acknowledged_raises_a_new_flag(session, domain, patient):
    clinician = factories.create_staff(session, role=Role.FACILITATOR)
    first = _save(session, domain, patient, PHQ9, {"phq9_9": 1}, submit=False)
    services.acknowledge_flag(session, first.flag_raised.id, by=clinician, note="Phoned; safe", now=NOW)
    session.commit()
    # The answer the clinician read, or a milder one, raises nothing more.
    assert _save(session, domain, patient, PHQ9, {"phq9_9": 1, "phq9_1": 2}, submit=False).flag_raised is None
    assert len(flags(session, patient.id)) == 1
    graver = _save(session, domain, patient, PHQ9, {"phq9_9": 3}, submit=False)
    assert graver.flag_raised is not None and graver.needs_support
    acknowledged, open_flag = flags(session, patient.id)
    assert (acknowledged.is_open, acknowledged.answer_value) == (False, 1)
    assert (open_flag.is_open, open_flag.answer_value, open_flag.response_id) == (True, 3, first.response.id)
    assert [f.id for f in services.open_flags(session)] == [open_flag.id]
    # Submitting the same answers leaves the one open flag.
    assert _save(session, domain, patient, PHQ9, all_answers(PHQ9, 0) | {"phq9_9": 3}).flag_raised is None
    assert len(flags(session, patient.id)) == 2


def test_a_response_holds_one_open_flag_at_most(session, domain, patient):
    saved = _save(session, domain, patient, PHQ9, {"phq9_9": 1}, submit=False)
    flag = saved.flag_raised
    session.add(type(flag)(patient_id=patient.id, response_id=saved.response.id, reason=flag.reason,
                           answer_value=2, raised_at=NOW))
    with pytest.raises(IntegrityError):
        session.flush()
    session.rollback()


def test_an_incomplete_submit_with_item_9_raises_the_flag(session, domain, patient):
    saved = _save(session, domain, patient, PHQ9, {"phq9_9": 3})
    assert saved.missing and saved.needs_support and saved.flag_raised is not None


def test_gad7_has_no_safety_item(session, domain, patient):
    assert not _save(session, domain, patient, GAD7, all_answers(GAD7, 3)).needs_support


def test_a_flag_stays_open_until_acknowledged_with_a_note(session, domain, patient):
    saved = _save(session, domain, patient, PHQ9, all_answers(PHQ9, 1))
    clinician = factories.create_staff(session, role=Role.FACILITATOR)
    assert [f.id for f in services.open_flags(session)] == [saved.flag_raised.id]
    assert services.count_open_flags(session) == 1
    with pytest.raises(ValueError, match="note"):
        services.acknowledge_flag(session, saved.flag_raised.id, by=clinician, note="   ", now=NOW)
    later = NOW + dt.timedelta(hours=1)
    flag = services.acknowledge_flag(session, saved.flag_raised.id, by=clinician,
                                     note=" Phoned patient; safety plan agreed. ", now=later)
    session.commit()
    assert (flag.acknowledged_at, flag.acknowledged_by_id, flag.action_note) == (
        later, clinician.id, "Phoned patient; safety plan agreed.")
    assert services.open_flags(session) == [] and services.count_open_flags(session) == 0
    assert [f.id for f in services.recently_acknowledged(session)] == [flag.id]
    with pytest.raises(FlagAlreadyAcknowledged):
        services.acknowledge_flag(session, flag.id, by=clinician, note="Again", now=later)
    session.rollback()


def test_only_clinicians_and_admins_acknowledge(session, domain, patient):
    saved = _save(session, domain, patient, PHQ9, all_answers(PHQ9, 1))
    reception = factories.create_staff(session, role=Role.RECEPTION)
    with pytest.raises(PermissionError):
        services.acknowledge_flag(session, saved.flag_raised.id, by=reception, note="Called", now=NOW)
    session.rollback()
    admin = factories.create_staff(session, role=Role.ADMIN)
    assert services.acknowledge_flag(session, saved.flag_raised.id, by=admin, note="Called", now=NOW).acknowledged_at


def test_acknowledging_no_such_flag(session):
    clinician = factories.create_staff(session, role=Role.FACILITATOR)
    with pytest.raises(LookupError):
        services.acknowledge_flag(session, 999_999, by=clinician, note="x", now=NOW)
    session.rollback()


# Scores over time.

def test_score_history_shows_change_from_baseline_with_reliable_change(session, domain):
    user = patient_user(session, activated=london(2026, 1, 5))
    book_course(session, user.patient, first_date=dt.date(2026, 3, 17))
    patient = user.patient
    baseline, end = london(2026, 3, 17, 19), london(2026, 5, 5, 20)
    _save(session, domain, patient, PHQ9, {f"phq9_{n}": 2 for n in range(1, 10)}, now=baseline)  # 18
    _save(session, domain, patient, GAD7, all_answers(GAD7, 2), now=baseline)  # 14
    _save(session, domain, patient, PAIN_INTENSITY, {"pain_average": 8}, now=baseline)
    _save(session, domain, patient, PHQ9, {f"phq9_{n}": 1 for n in range(1, 10)} | {"phq9_9": 0}, now=end)  # 8
    _save(session, domain, patient, GAD7, all_answers(GAD7, 2) | {"gad7_1": 0, "gad7_2": 1}, now=end)  # 11
    _save(session, domain, patient, PAIN_INTENSITY, {"pain_average": 7}, now=end)
    history = {h.instrument.key: h for h in services.score_history(session, patient.id)}
    assert list(history) == ["pain_intensity", "phq9", "gad7"]
    phq = history["phq9"]
    assert [r.response.score for r in phq.rows] == [18, 8]
    assert phq.rows[0].is_baseline and phq.rows[0].change is None
    assert (phq.latest.change.points, phq.latest.change.verdict, phq.latest.change.reliable) == (
        -10, "Reliable improvement", True)
    assert (history["gad7"].latest.change.points, history["gad7"].latest.change.verdict) == (-3, None)
    pain = history["pain_intensity"].latest.change
    assert (pain.points, pain.verdict, pain.reliable) == (-1, None, False)


def test_answer_labels_read_back_in_words(session, domain, patient):
    saved = _save(session, domain, patient, GAD7, all_answers(GAD7, 0) | {"gad7_4": 3})
    labels = services.answer_labels(GAD7, saved.response)
    assert labels[3] == ("Trouble relaxing", "Nearly every day")
    assert labels[0] == ("Feeling nervous, anxious, or on edge", "Not at all")


# The nudge text.

def _nudges(session):
    session.expire_all()
    return list(session.scalars(select(SmsMessage).where(SmsMessage.kind == "questionnaire_due")))


def test_the_nudge_texts_once_per_due_set(app, db, session, domain, patient):
    assert nudge_due_questionnaires(db, domain, now=NOW) == 1
    assert nudge_due_questionnaires(db, domain, now=NOW + dt.timedelta(hours=1)) == 0
    [text] = _nudges(session)
    assert text.patient_id == patient.id
    assert text.idempotency_key == f"questionnaire:{patient.id}:general:baseline"
    assert text.body == "NHS: you have a short questionnaire to fill in. Sign in to do it."
    assert text.due_at == NOW
    # The follow-up is a new set: one more text.
    assert nudge_due_questionnaires(db, domain, now=london(2026, 5, 2, 11)) == 1
    assert len(_nudges(session)) == 2


def test_no_nudge_for_patients_we_may_not_text(db, session, domain):
    patient_user(session, activated=london(2026, 2, 2, 9), no_texts=True)
    patient_user(session, activated=london(2026, 2, 2, 9), sms_consent=False)
    patient_user(session, activated=london(2026, 2, 2, 9), discharged_at=london(2026, 2, 2, 10),
                 discharge_reason="Back to GP")
    assert nudge_due_questionnaires(db, domain, now=NOW) == 0


def test_no_nudge_once_the_set_is_done_or_before_it_is_due(db, session, domain, patient):
    due = _due(session, domain, patient)
    for instrument in due.instruments:
        services.save_answers(session, patient, due, instrument, all_answers(instrument, 0), submit=True, now=NOW)
    session.commit()
    assert nudge_due_questionnaires(db, domain, now=NOW) == 0
    booked = patient_user(session, activated=london(2026, 2, 2, 9)).patient
    book_course(session, booked, first_date=dt.date(2026, 3, 17))
    assert nudge_due_questionnaires(db, domain, now=NOW) == 0
    assert nudge_due_questionnaires(db, domain, now=london(2026, 3, 17, 9)) == 1


def test_a_nudge_at_night_waits_for_the_send_window(db, session, domain, patient):
    assert nudge_due_questionnaires(db, domain, now=london(2026, 2, 2, 21, 30)) == 1
    [text] = _nudges(session)
    assert text.due_at == london(2026, 2, 3, 9, 0)
    assert text.expires_at == text.due_at + services.NUDGE_VALID_FOR


def test_a_set_long_overdue_is_not_texted(db, session, domain, patient):
    assert nudge_due_questionnaires(db, domain, now=NOW + services.NUDGE_WITHIN + dt.timedelta(days=1)) == 0
