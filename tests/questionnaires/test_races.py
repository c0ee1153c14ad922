"""Two submits of the same questionnaire at once (a double tap, two tabs), each in its own transaction and
released together by a threading.Barrier: one response, scored once, and one urgent flag. Two clinicians
acknowledging at once: the first wins. The same tests run on SQLite and on PostgreSQL."""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from portal.auth.models import Role, User
from portal.patients.models import Patient
from portal.questionnaires import services
from portal.questionnaires.instruments import PHQ9
from portal.questionnaires.models import FlagAlreadyAcknowledged, ResponseAlreadySubmitted
from tests import factories
from tests.questionnaires.helpers import all_answers, flags, london, patient_user, responses
from tests.races import count_together

NOW = london(2026, 2, 2, 11)


def test_two_submits_at_once_make_one_scored_response_and_one_flag(race_db, session, domain):
    patient_id = patient_user(session, activated=london(2026, 2, 2, 9)).patient_id

    def submit():
        with race_db.transaction() as s:
            patient = s.get(Patient, patient_id)
            due = services.due_questionnaire(s, domain, patient, now=NOW)
            saved = services.save_answers(s, patient, due, PHQ9, all_answers(PHQ9, 2), submit=True, now=NOW)
            return "flag raised" if saved.flag_raised else "no flag"

    outcomes = count_together([submit] * 4)
    assert outcomes["flag raised"] == 1
    assert outcomes["flag raised"] + outcomes[ResponseAlreadySubmitted.__name__] == 4
    [row] = responses(session, patient_id)
    assert (row.status, row.score) == ("submitted", 18)
    assert len(flags(session, patient_id)) == 1


def test_two_clinicians_acknowledging_at_once(race_db, session, domain):
    user = patient_user(session, activated=london(2026, 2, 2, 9))
    due = services.due_questionnaire(session, domain, user.patient, now=NOW)
    flag_id = services.save_answers(session, user.patient, due, PHQ9, all_answers(PHQ9, 1), submit=True,
                                    now=NOW).flag_raised.id
    session.commit()
    clinicians = [factories.create_staff(session, role=Role.FACILITATOR).id for _ in range(3)]

    def acknowledge(user_id):
        def job():
            with race_db.transaction() as s:
                services.acknowledge_flag(s, flag_id, by=s.get(User, user_id), note=f"Called by {user_id}", now=NOW)
                return "acknowledged"
        return job

    outcomes = count_together([acknowledge(u) for u in clinicians])
    assert outcomes == Counter({"acknowledged": 1, FlagAlreadyAcknowledged.__name__: 2})
    [flag] = flags(session)
    assert flag.action_note == f"Called by {flag.acknowledged_by_id}"


def test_a_draft_saved_while_a_clinician_acknowledges_raises_no_second_flag(race_db, session, domain):
    """The patient saves the same item-9 answer again while a clinician's acknowledgement is still being written.
    The clinician has read that answer: once the acknowledgement lands, no new open flag may appear for it. Only
    PostgreSQL lets the two run at once (SQLite's writers queue on BEGIN IMMEDIATE)."""
    if race_db.is_sqlite:
        pytest.skip("the interleaving needs two concurrent writers: PostgreSQL (make test-postgres)")
    user = patient_user(session, activated=london(2026, 2, 2, 9))
    patient_id = user.patient_id
    answers = {**all_answers(PHQ9, 0), PHQ9.safety_item: 1}
    due = services.due_questionnaire(session, domain, user.patient, now=NOW)
    flag_id = services.save_answers(session, user.patient, due, PHQ9, answers, submit=False, now=NOW).flag_raised.id
    session.commit()
    clinician_id = factories.create_staff(session, role=Role.CLINICIAN).id

    def save_again():
        with race_db.transaction() as s:
            patient = s.get(Patient, patient_id)
            again = services.due_questionnaire(s, domain, patient, now=NOW)
            return services.save_answers(s, patient, again, PHQ9, answers, submit=False, now=NOW).flag_raised

    acknowledging = race_db.sessionmaker()
    try:
        services.acknowledge_flag(acknowledging, flag_id, by=acknowledging.get(User, clinician_id),
                                  note="Called, safe", now=NOW)
        with ThreadPoolExecutor(1) as pool:
            saving = pool.submit(save_again)
            time.sleep(0.3)  # the save is now waiting on the acknowledgement's transaction
            assert not saving.done()
            acknowledging.commit()
            assert saving.result(timeout=10) is None
    finally:
        acknowledging.close()
    assert [(f.id, f.acknowledged_at is not None) for f in flags(session, patient_id)] == [(flag_id, True)]
