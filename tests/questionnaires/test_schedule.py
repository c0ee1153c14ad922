"""When questionnaires fall due: baseline, end of course and follow-up, on London calendar days."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from portal.messaging.models import SmsMessage
from portal.questionnaires import services
from portal.questionnaires.jobs import nudge_due_questionnaires
from portal.questionnaires.schedule import (
    CourseDates,
    Occasion,
    add_months,
    courses_by_patient,
    current_occasion,
    plan,
)
from tests.questionnaires.helpers import all_answers, book_course, london, patient_user

COURSE_TIERS = {"t1-group": 1, "t2-programme": 2}


@pytest.mark.parametrize(("start", "months", "expected"), [
    (dt.date(2026, 1, 15), 3, dt.date(2026, 4, 15)),
    (dt.date(2026, 8, 31), 3, dt.date(2026, 11, 30)),  # no 31 November: the month's last day
    (dt.date(2026, 11, 30), 3, dt.date(2027, 2, 28)),
    (dt.date(2027, 11, 30), 3, dt.date(2028, 2, 29)),  # leap year
    (dt.date(2026, 12, 1), 1, dt.date(2027, 1, 1)),
])
def test_add_months(start, months, expected):
    assert add_months(start, months) == expected


def test_a_course_patients_plan_runs_from_the_first_to_the_last_session():
    course = CourseDates("t1-group", dt.date(2026, 3, 3), dt.date(2026, 4, 21))
    assert plan(activated_on=dt.date(2026, 1, 5), course=course, follow_up_months=3) == [
        Occasion("baseline", "course-t1-group", dt.date(2026, 3, 3)),
        Occasion("end", "course-t1-group", dt.date(2026, 4, 21)),
        Occasion("follow_up", "course-t1-group", dt.date(2026, 7, 21)),
    ]


def test_a_patient_not_in_a_course_has_a_baseline_at_activation_and_a_follow_up():
    assert plan(activated_on=dt.date(2026, 1, 5), course=None, follow_up_months=3) == [
        Occasion("baseline", "general", dt.date(2026, 1, 5)),
        Occasion("follow_up", "general", dt.date(2026, 4, 5)),
    ]


def test_follow_up_months_is_configurable():
    assert plan(activated_on=dt.date(2026, 1, 5), course=None, follow_up_months=6)[-1].due_on == dt.date(2026, 7, 5)


def test_the_latest_occasion_reached_is_the_current_one():
    occasions = plan(activated_on=None, course=CourseDates("t1-group", dt.date(2026, 3, 3), dt.date(2026, 4, 21)),
                     follow_up_months=3)
    assert current_occasion(occasions, dt.date(2026, 3, 2)) is None
    assert current_occasion(occasions, dt.date(2026, 3, 3)).occasion == "baseline"
    assert current_occasion(occasions, dt.date(2026, 4, 20)).occasion == "baseline"
    assert current_occasion(occasions, dt.date(2026, 4, 21)).occasion == "end"
    assert current_occasion(occasions, dt.date(2026, 7, 20)).occasion == "end"
    assert current_occasion(occasions, dt.date(2026, 7, 21)).occasion == "follow_up"
    assert current_occasion(occasions, dt.date(2027, 7, 21)).occasion == "follow_up"


def test_set_keys_name_the_plan_and_occasion():
    assert Occasion("end", "course-t2-programme", dt.date(2026, 1, 1)).set_key == "course-t2-programme:end"


# From the database.

def test_course_days_are_the_local_days_of_the_first_and_last_sessions(session):
    # 8 weekly sessions at 18:00 from Tuesday 17 March 2026: the clocks go forward on 29 March.
    user = patient_user(session)
    book_course(session, user.patient, first_date=dt.date(2026, 3, 17))
    course = courses_by_patient(session, COURSE_TIERS, [user.patient.id])[user.patient.id]
    assert course == CourseDates("t1-group", dt.date(2026, 3, 17), dt.date(2026, 5, 5))


def test_a_programme_across_the_autumn_clock_change_ends_on_its_twelfth_tuesday(session):
    user = patient_user(session, tier=2)
    book_course(session, user.patient, first_date=dt.date(2026, 9, 8), service_key="t2-programme",
                team="whittington")
    course = courses_by_patient(session, COURSE_TIERS, [user.patient.id])[user.patient.id]
    assert (course.first_day, course.last_day) == (dt.date(2026, 9, 8), dt.date(2026, 11, 24))


def test_cancelled_sessions_and_seats_do_not_count(session):
    user = patient_user(session)
    cohort, booking = book_course(session, user.patient, first_date=dt.date(2026, 3, 17))
    cohort.sessions[0].status = "cancelled"
    cohort.sessions[-1].status = "cancelled"
    session.commit()
    course = courses_by_patient(session, COURSE_TIERS, [user.patient.id])[user.patient.id]
    assert (course.first_day, course.last_day) == (dt.date(2026, 3, 24), dt.date(2026, 4, 28))
    booking.status = "cancelled"
    session.commit()
    assert courses_by_patient(session, COURSE_TIERS, [user.patient.id]) == {}


def test_a_cancelled_cohort_is_no_course(session):
    user = patient_user(session)
    cohort, _ = book_course(session, user.patient, first_date=dt.date(2026, 3, 17))
    cohort.status = "cancelled"
    session.commit()
    assert courses_by_patient(session, COURSE_TIERS, [user.patient.id]) == {}


def _due(session, domain, patient, now):
    due = services.due_questionnaire(session, domain, patient, now=now)
    return None if due is None else (due.occasion.occasion, due.due_on)


def test_a_patient_re_triaged_to_tier_2_follows_their_programme_not_the_group_they_finished(session, domain):
    user = patient_user(session, activated=london(2026, 1, 5))
    patient = user.patient
    book_course(session, patient, first_date=dt.date(2026, 1, 13))  # the Group, ends 3 March; its seat stays
    assert _due(session, domain, patient, london(2026, 3, 10)) == ("end", dt.date(2026, 3, 3))
    patient.tier, patient.team = 2, "whittington"
    session.commit()
    book_course(session, patient, first_date=dt.date(2026, 4, 7), service_key="t2-programme", team="whittington")
    # The Programme's plan takes over, as the weekly reading does: its baseline on its first day, not the
    # Group's end still (or the Group's follow-up in June), and its own end after twelve weeks.
    assert services.due_questionnaire(session, domain, patient, now=london(2026, 4, 7)).set_key == (
        "course-t2-programme:baseline")
    assert _due(session, domain, patient, london(2026, 6, 10)) == ("baseline", dt.date(2026, 4, 7))
    assert _due(session, domain, patient, london(2026, 6, 23)) == ("end", dt.date(2026, 6, 23))


def test_a_tier_2_patient_still_holding_only_their_group_seat_keeps_its_follow_up(session, domain):
    user = patient_user(session, activated=london(2026, 1, 5))
    book_course(session, user.patient, first_date=dt.date(2026, 1, 13))
    user.patient.tier, user.patient.team = 2, "whittington"
    session.commit()
    assert _due(session, domain, user.patient, london(2026, 6, 3)) == ("follow_up", dt.date(2026, 6, 3))


def test_activation_just_after_midnight_in_summer_is_that_london_day(session, domain):
    # 00:30 BST on 1 July is 23:30 UTC on 30 June: the baseline is due on 1 July, the day the patient sees.
    user = patient_user(session, activated=london(2026, 7, 1, 0, 30))
    assert user.created_at.date() == dt.date(2026, 6, 30)
    assert _due(session, domain, user.patient, london(2026, 7, 1, 8)) == ("baseline", dt.date(2026, 7, 1))
    assert _due(session, domain, user.patient, london(2026, 9, 30, 23, 59)) == ("baseline", dt.date(2026, 7, 1))
    assert _due(session, domain, user.patient, london(2026, 10, 1, 0, 0)) == ("follow_up", dt.date(2026, 10, 1))


def test_the_follow_up_falls_due_at_local_midnight_across_the_clock_change(session, domain):
    # Activated 29 July (BST); follow-up on 29 October (GMT, after the clocks go back on 25 October).
    user = patient_user(session, activated=london(2026, 7, 29, 10))
    assert _due(session, domain, user.patient, london(2026, 10, 28, 23, 59))[0] == "baseline"
    assert _due(session, domain, user.patient, london(2026, 10, 29, 0, 0)) == ("follow_up", dt.date(2026, 10, 29))


def test_a_course_patients_sets_fall_due_on_session_days(session, domain):
    user = patient_user(session, activated=london(2026, 1, 5))
    book_course(session, user.patient, first_date=dt.date(2026, 3, 17))
    patient = user.patient
    # Booked, course not started: the general baseline is replaced by the course's, not yet due.
    assert _due(session, domain, patient, london(2026, 3, 16, 23, 59)) is None
    assert _due(session, domain, patient, london(2026, 3, 17, 0, 0)) == ("baseline", dt.date(2026, 3, 17))
    assert _due(session, domain, patient, london(2026, 5, 5, 0, 1)) == ("end", dt.date(2026, 5, 5))
    assert _due(session, domain, patient, london(2026, 8, 5, 0, 1)) == ("follow_up", dt.date(2026, 8, 5))


def test_a_finished_set_is_no_longer_due(session, domain):
    now = london(2026, 2, 1)
    user = patient_user(session, activated=london(2026, 2, 1, 9))
    due = services.due_questionnaire(session, domain, user.patient, now=now)
    assert [i.key for i in due.remaining] == ["pain_intensity", "pain_interference", "phq9", "gad7"]
    from tests.questionnaires.helpers import all_answers

    for instrument in due.instruments[:-1]:
        services.save_answers(session, user.patient, due, instrument, all_answers(instrument, 1), submit=True,
                              now=now)
    session.commit()
    left = services.due_questionnaire(session, domain, user.patient, now=now)
    assert [i.key for i in left.remaining] == ["gad7"] and left.status_of("phq9") == "done"
    services.save_answers(session, user.patient, left, due.instruments[-1], all_answers(due.instruments[-1], 1),
                          submit=True, now=now)
    session.commit()
    assert services.due_questionnaire(session, domain, user.patient, now=now) is None
    # Three months on, the follow-up is due.
    assert _due(session, domain, user.patient, london(2026, 5, 1)) == ("follow_up", dt.date(2026, 5, 1))


def test_a_patient_with_no_account_has_nothing_due(session, domain):
    from tests import factories

    patient = factories.create_patient(session)
    assert services.due_questionnaire(session, domain, patient, now=london(2026, 2, 1)) is None


# Withdrawing from a course: one baseline per episode of care, not one per track.

def _answer_all(session, domain, patient, now):
    due = services.due_questionnaire(session, domain, patient, now=now)
    for instrument in due.instruments:
        services.save_answers(session, patient, due, instrument, all_answers(instrument, 1), submit=True, now=now)
    session.commit()
    return due.set_key


def _withdrawn_from_the_group(session, domain):
    """Activated in January, the Group from 13 January (its baseline answered that day), withdrawn in February."""
    user = patient_user(session, activated=london(2026, 1, 5))
    _, booking = book_course(session, user.patient, first_date=dt.date(2026, 1, 13))
    assert _answer_all(session, domain, user.patient, london(2026, 1, 13, 19)) == "course-t1-group:baseline"
    booking.status = "cancelled"
    session.commit()
    return user.patient


def test_a_patient_who_withdraws_mid_course_is_not_asked_a_baseline_again(session, domain):
    patient = _withdrawn_from_the_group(session, domain)
    # The old code fell back to the general track, whose baseline (on activation, 5 January) they never answered.
    assert _due(session, domain, patient, london(2026, 2, 10)) is None
    assert _due(session, domain, patient, london(2026, 4, 12, 23, 59)) is None


def test_a_withdrawn_patient_is_followed_up_months_after_the_baseline_they_answered(session, domain):
    patient = _withdrawn_from_the_group(session, domain)
    due = services.due_questionnaire(session, domain, patient, now=london(2026, 4, 13))
    # On the course's track, so that reports pair it with the baseline it follows.
    assert (due.set_key, due.due_on) == ("course-t1-group:follow_up", dt.date(2026, 4, 13))


def test_the_nudge_job_follows_the_same_rule_for_a_withdrawn_patient(db, session, domain):
    patient = _withdrawn_from_the_group(session, domain)
    assert nudge_due_questionnaires(db, domain, now=london(2026, 2, 10, 11)) == 0
    assert nudge_due_questionnaires(db, domain, now=london(2026, 4, 13, 11)) == 1
    session.expire_all()
    keys = session.scalars(select(SmsMessage.idempotency_key).where(SmsMessage.patient_id == patient.id)).all()
    assert keys == [f"questionnaire:{patient.id}:course-t1-group:follow_up"]


def test_a_withdrawn_patient_who_answered_part_of_the_baseline_finishes_that_one(session, domain):
    user = patient_user(session, activated=london(2026, 1, 5))
    _, booking = book_course(session, user.patient, first_date=dt.date(2026, 1, 13))
    due = services.due_questionnaire(session, domain, user.patient, now=london(2026, 1, 13, 19))
    first = due.instruments[0]
    services.save_answers(session, user.patient, due, first, all_answers(first, 1), submit=True,
                          now=london(2026, 1, 13, 19))
    booking.status = "cancelled"
    session.commit()
    left = services.due_questionnaire(session, domain, user.patient, now=london(2026, 2, 10))
    assert left.set_key == "course-t1-group:baseline" and left.status_of(first.key) == "done"


def test_a_patient_who_never_answered_a_baseline_keeps_the_general_track(session, domain):
    user = patient_user(session, activated=london(2026, 1, 5))
    _, booking = book_course(session, user.patient, first_date=dt.date(2026, 1, 13))
    booking.status = "cancelled"
    session.commit()
    due = services.due_questionnaire(session, domain, user.patient, now=london(2026, 2, 10))
    assert (due.set_key, due.due_on) == ("general:baseline", dt.date(2026, 1, 5))


def test_rebooking_the_same_course_does_not_ask_its_baseline_again(session, domain):
    patient = _withdrawn_from_the_group(session, domain)
    book_course(session, patient, first_date=dt.date(2026, 3, 3))
    assert _due(session, domain, patient, london(2026, 3, 3, 19)) is None
    assert _due(session, domain, patient, london(2026, 4, 21, 19)) == ("end", dt.date(2026, 4, 21))


def test_an_answered_baseline_carries_its_plan_into_the_schedule():
    baseline = Occasion("baseline", "course-t1-group", dt.date(2026, 1, 13))
    assert plan(activated_on=dt.date(2026, 1, 5), course=None, follow_up_months=3, answered_baseline=baseline) == [
        baseline, Occasion("follow_up", "course-t1-group", dt.date(2026, 4, 13)),
    ]
    # A course held now has its own plan, whatever was answered before.
    course = CourseDates("t2-programme", dt.date(2026, 5, 5), dt.date(2026, 7, 21))
    assert plan(activated_on=None, course=course, follow_up_months=3, answered_baseline=baseline)[0] == (
        Occasion("baseline", "course-t2-programme", dt.date(2026, 5, 5)))
