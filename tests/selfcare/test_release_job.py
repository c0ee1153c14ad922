"""The scheduler's release job: each week recorded once, a discreet nudge queued once, only for patients
who may be texted, only for patients with something newly due, and safe when two runs meet."""

import datetime as dt

import pytest
from sqlalchemy import func, select

from portal.booking import sessions as course_sessions
from portal.booking.models import CohortSession
from portal.messaging import texts
from portal.messaging.models import SmsMessage
from portal.selfcare import jobs, release_runs
from portal.selfcare.models import ContentRelease, ReleaseCursor
from tests import factories
from tests.races import run_together
from tests.selfcare.helpers import activated_patient, london, seat


def releases(session, patient_id=None):
    query = select(ContentRelease.patient_id, ContentRelease.track, ContentRelease.week).order_by(
        ContentRelease.patient_id, ContentRelease.track, ContentRelease.week)
    if patient_id is not None:
        query = query.where(ContentRelease.patient_id == patient_id)
    return [tuple(row) for row in session.execute(query)]


def nudges(session, patient_id=None):
    query = select(SmsMessage).where(SmsMessage.kind == "selfcare").order_by(SmsMessage.id)
    if patient_id is not None:
        query = query.where(SmsMessage.patient_id == patient_id)
    return list(session.scalars(query))


def run(db, domain, now):
    return jobs.release_weekly_content(db, domain, now=now)


def test_a_general_week_is_recorded_once_and_nudged_in_the_send_window(db, session, domain):
    user = activated_patient(session, activated_at=london(2027, 3, 24, 15))
    pid = user.patient_id
    run(db, domain, london(2027, 3, 24, 15, 5))
    assert releases(session, pid) == [(pid, "tier-1-general", 1)]
    assert nudges(session, pid) == []  # week 1 opened before they signed up: they are looking at it

    # Week 2 opens at 00:00 BST on 31 March (23:00 UTC on the 30th): the first run after records and nudges.
    assert run(db, domain, london(2027, 3, 30, 23, 55)) == 0
    assert run(db, domain, london(2027, 3, 31, 0, 5)) == 1
    assert releases(session, pid) == [(pid, "tier-1-general", 1), (pid, "tier-1-general", 2)]
    [nudge] = nudges(session, pid)
    assert nudge.idempotency_key == f"selfcare:{pid}:tier-1-general:2"
    assert nudge.body == texts.selfcare_week_ready()
    assert nudge.due_at == london(2027, 3, 31, 9) and nudge.expires_at == london(2027, 3, 31, 19)
    assert session.scalar(select(ContentRelease.texted).where(ContentRelease.week == 2))

    # Running again, or again later that day, records and texts nothing more.
    assert run(db, domain, london(2027, 3, 31, 0, 5)) == 0
    assert run(db, domain, london(2027, 3, 31, 10)) == 0
    assert len(releases(session, pid)) == 2 and len(nudges(session, pid)) == 1


def test_general_weeks_across_the_autumn_change(db, session, domain):
    user = activated_patient(session, activated_at=london(2027, 10, 27, 9), tier=2)
    pid = user.patient_id
    run(db, domain, london(2027, 10, 27, 9, 5))
    assert run(db, domain, london(2027, 11, 2, 23, 59)) == 0
    assert run(db, domain, london(2027, 11, 3, 0, 1)) == 1
    assert releases(session, pid)[-1] == (pid, "tier-2-general", 2)
    assert session.scalar(select(ContentRelease.opens_at).where(ContentRelease.week == 2)) == dt.datetime(
        2027, 11, 3, 0, 0, tzinfo=dt.UTC)


def test_course_weeks_follow_the_sessions_across_the_spring_change(db, session, domain):
    cohort = factories.create_cohort(session, first_date=dt.date(2027, 3, 22), start_time=dt.time(18))
    user = activated_patient(session, activated_at=london(2027, 2, 1, 10))
    pid = user.patient_id
    seat(session, pid, cohort)
    run(db, domain, london(2027, 3, 21, 23, 50))
    assert [r for r in releases(session, pid) if r[1] == "tier-1-group"] == []

    assert run(db, domain, london(2027, 3, 22, 0, 1)) == 1
    assert (pid, "tier-1-group", 1) in releases(session, pid)
    # Session 2 is on Monday 29 March, the day after the clocks go forward: its week opens at 23:00 UTC.
    assert run(db, domain, london(2027, 3, 28, 23, 59)) == 0
    assert run(db, domain, dt.datetime(2027, 3, 28, 23, 0, tzinfo=dt.UTC)) == 1
    assert (pid, "tier-1-group", 2) in releases(session, pid)
    assert [n.idempotency_key for n in nudges(session, pid)] == [
        f"selfcare:{pid}:tier-1-group:1", f"selfcare:{pid}:tier-1-group:2"]


def test_course_weeks_across_the_autumn_change(db, session, domain):
    # A Sunday programme: session 2 on 31 October 2027, the day the clocks go back.
    cohort = factories.create_cohort(session, service_key="t2-programme", first_date=dt.date(2027, 10, 24),
                                     start_time=dt.time(10))
    user = activated_patient(session, activated_at=london(2027, 9, 1, 10), tier=2)
    pid = user.patient_id
    seat(session, pid, cohort)
    run(db, domain, london(2027, 10, 24, 0, 1))
    assert run(db, domain, dt.datetime(2027, 10, 30, 22, 59, tzinfo=dt.UTC)) == 0
    assert run(db, domain, dt.datetime(2027, 10, 30, 23, 0, tzinfo=dt.UTC)) == 1
    assert run(db, domain, dt.datetime(2027, 11, 6, 23, 59, tzinfo=dt.UTC)) == 0
    assert run(db, domain, dt.datetime(2027, 11, 7, 0, 0, tzinfo=dt.UTC)) == 1
    assert [r[2] for r in releases(session, pid) if r[1] == "tier-2-programme"] == [1, 2, 3]


def test_a_moved_session_moves_the_unlock(db, session, domain):
    cohort = factories.create_cohort(session, first_date=dt.date(2027, 5, 3), start_time=dt.time(18))
    user = activated_patient(session, activated_at=london(2027, 4, 1, 10))
    pid = user.patient_id
    seat(session, pid, cohort)
    run(db, domain, london(2027, 5, 3, 0, 5))
    # Staff move session 2 from Monday 10 May to Wednesday 12 May.
    with db.transaction() as s:
        second = s.scalars(select(CohortSession).where(CohortSession.cohort_id == cohort.id,
                                                       CohortSession.number == 2)).one()
        course_sessions.move_session(s, domain, second, new_date=dt.date(2027, 5, 12), new_time=dt.time(18),
                                     reason="Room booked", now=london(2027, 5, 4, 12))
    assert run(db, domain, london(2027, 5, 10, 0, 5)) == 0
    assert run(db, domain, london(2027, 5, 12, 0, 5)) == 1
    assert (pid, "tier-1-group", 2) in releases(session, pid)


def test_a_session_moved_onto_today_is_released_the_same_day(db, session, domain):
    cohort = factories.create_cohort(session, first_date=dt.date(2027, 5, 3), start_time=dt.time(18))
    user = activated_patient(session, activated_at=london(2027, 4, 1, 10))
    pid = user.patient_id
    seat(session, pid, cohort)
    run(db, domain, london(2027, 5, 3, 0, 5))
    run(db, domain, london(2027, 5, 5, 8))
    # At 8am on 5 May session 2 (10 May) is brought forward to 6pm today: its midnight has passed already.
    with db.transaction() as s:
        second = s.scalars(select(CohortSession).where(CohortSession.cohort_id == cohort.id,
                                                       CohortSession.number == 2)).one()
        course_sessions.move_session(s, domain, second, new_date=dt.date(2027, 5, 5), new_time=dt.time(18),
                                     reason="Earlier", now=london(2027, 5, 5, 8))
    assert run(db, domain, london(2027, 5, 5, 8, 10)) == 1
    assert (pid, "tier-1-group", 2) in releases(session, pid)


def test_moving_cohort_gives_the_track_and_week_that_fit(db, session, domain):
    first = factories.create_cohort(session, first_date=dt.date(2027, 5, 3), start_time=dt.time(18))
    later = factories.create_cohort(session, first_date=dt.date(2027, 6, 7), start_time=dt.time(18))
    user = activated_patient(session, activated_at=london(2027, 4, 1, 10))
    pid = user.patient_id
    booking = seat(session, pid, first)
    run(db, domain, london(2027, 5, 3, 0, 5))
    assert (pid, "tier-1-group", 1) in releases(session, pid)
    # Moved to a later cohort before week 2: until it starts they follow the general track again, and week 2
    # of the group opens with the later cohort's session 2. Week 1, released already, stays theirs.
    booking.cancel(london(2027, 5, 5, 12), reason="Moved to another group")
    session.commit()
    seat(session, pid, later)
    run(db, domain, london(2027, 5, 10, 0, 5))
    assert (pid, "tier-1-group", 2) not in releases(session, pid)
    assert (pid, "tier-1-general", 6) in releases(session, pid)
    assert run(db, domain, london(2027, 6, 7, 0, 5)) == 0
    assert run(db, domain, london(2027, 6, 14, 0, 5)) == 1
    assert (pid, "tier-1-group", 2) in releases(session, pid)
    assert session.scalar(select(ContentRelease.opens_at).where(
        ContentRelease.track == "tier-1-group", ContentRelease.week == 2)) == london(2027, 6, 14)


def test_a_group_whose_every_session_was_cancelled_is_no_course_to_follow(db, session, domain):
    cohort = factories.create_cohort(session, first_date=dt.date(2027, 5, 3), start_time=dt.time(18))
    user = activated_patient(session, activated_at=london(2027, 4, 5, 10))
    pid = user.patient_id
    seat(session, pid, cohort)
    # Staff call the whole group off before it starts, and the patient keeps their (now empty) seat until
    # reception finds them another group: as for their questionnaires and reminders, there is no course.
    for cohort_session in cohort.sessions:
        course_sessions.cancel_session(session, domain, cohort_session, reason="Facilitator leaving",
                                       now=london(2027, 4, 20, 12))
    session.commit()
    run(db, domain, london(2027, 5, 3, 0, 5))
    assert [r for r in releases(session, pid) if r[1] == "tier-1-group"] == []
    assert (pid, "tier-1-general", 5) in releases(session, pid)


def test_moving_tier_gives_the_new_tiers_track(db, session, domain):
    cohort = factories.create_cohort(session, first_date=dt.date(2027, 5, 3), start_time=dt.time(18))
    user = activated_patient(session, activated_at=london(2027, 4, 5, 10))
    pid = user.patient_id
    seat(session, pid, cohort)
    run(db, domain, london(2027, 5, 3, 0, 5))
    assert (pid, "tier-1-group", 1) in releases(session, pid)
    # Re-triaged to Tier 2: the Tier 1 seat no longer decides, the Tier 2 general track does. The next time
    # one of their weeks opens, every open week of the new track is recorded; only the new one is texted.
    user.patient.tier, user.patient.team = 2, "whittington"
    session.commit()
    run(db, domain, london(2027, 5, 10, 0, 5))
    tier_2 = [r[2] for r in releases(session, pid) if r[1] == "tier-2-general"]
    assert tier_2 == [1, 2, 3, 4, 5, 6]
    assert nudges(session, pid)[-1].idempotency_key == f"selfcare:{pid}:tier-2-general:6"
    assert len([n for n in nudges(session, pid) if "tier-2-general" in n.idempotency_key]) == 1


@pytest.mark.parametrize("refusal", [
    {"sms_consent": False}, {"no_texts": True},
    # Discharged back to their referrer: they may still read, but the service no longer nudges them.
    {"discharged_at": london(2027, 1, 6), "discharge_reason": "Back to GP"},
])
def test_no_text_for_patients_who_may_not_be_texted(db, session, domain, refusal):
    user = activated_patient(session, activated_at=london(2027, 1, 4, 10), **refusal)
    run(db, domain, london(2027, 1, 4, 10, 5))
    assert run(db, domain, london(2027, 1, 11, 0, 5)) == 1
    assert releases(session, user.patient_id)[-1][2] == 2
    assert nudges(session) == []
    assert not session.scalar(select(ContentRelease.texted).where(ContentRelease.week == 2))


def test_no_text_after_stop(db, session, domain):
    user = activated_patient(session, activated_at=london(2027, 1, 4, 10), sms_opted_out_at=london(2027, 1, 5))
    run(db, domain, london(2027, 1, 4, 10, 5))
    assert run(db, domain, london(2027, 1, 11, 0, 5)) == 1
    assert nudges(session, user.patient_id) == []


def test_a_run_looks_only_at_patients_with_something_newly_due(db, session, domain):
    due = activated_patient(session, activated_at=london(2027, 1, 4, 10))
    activated_patient(session, activated_at=london(2027, 1, 5, 10))  # their weeks open on Tuesdays
    activated_patient(session, activated_at=london(2026, 6, 1, 10))  # long past their 8 weeks
    with db.transaction() as s:
        s.add(ReleaseCursor(name=release_runs.CURSOR, covered_until=london(2027, 1, 10, 23, 50)))
    with db.transaction() as s:
        result = release_runs.release_due(s, domain, now=london(2027, 1, 11, 0, 5))
    assert result.patients == 1 and result.recorded == 2  # Monday's patient: weeks 1 and 2 (week 1 never ran)
    assert {r[0] for r in releases(session)} == {due.patient_id}
    # Later that morning, no midnight passed: nobody is looked at.
    with db.transaction() as s:
        assert release_runs.release_due(s, domain, now=london(2027, 1, 11, 9)).patients == 0
    assert session.scalar(select(ReleaseCursor.covered_until)) == london(2027, 1, 11, 9)


def test_a_new_account_is_recorded_on_the_next_run(db, session, domain):
    with db.transaction() as s:
        s.add(ReleaseCursor(name=release_runs.CURSOR, covered_until=london(2027, 1, 11, 10)))
    user = activated_patient(session, activated_at=london(2027, 1, 11, 10, 3))
    with db.transaction() as s:
        result = release_runs.release_due(s, domain, now=london(2027, 1, 11, 10, 10))
    assert result.patients == 1 and releases(session) == [(user.patient_id, "tier-1-general", 1)]


def test_patients_without_an_account_get_nothing(db, session, domain):
    cohort = factories.create_cohort(session, first_date=dt.date(2027, 5, 3), start_time=dt.time(18))
    patient = factories.create_patient(session)
    seat(session, patient.id, cohort)
    assert run(db, domain, london(2027, 5, 3, 0, 5)) == 0
    assert nudges(session) == []


# Two runs at once.

def _race(db, domain, now, runners: int) -> list[str]:
    return run_together([lambda: f"recorded {jobs.release_weekly_content(db, domain, now=now)}"] * runners)


def test_concurrent_runs_record_and_text_each_week_once(session, race_db, domain):
    users = [activated_patient(session, activated_at=london(2027, 1, 4, 10 + n % 8)) for n in range(12)]
    cohort = factories.create_cohort(session, first_date=dt.date(2027, 1, 11), start_time=dt.time(18))
    for user in users[:4]:
        seat(session, user.patient_id, cohort)
    with race_db.transaction() as s:
        s.add(ReleaseCursor(name=release_runs.CURSOR, covered_until=london(2027, 1, 10, 23, 50)))
    outcomes = _race(race_db, domain, london(2027, 1, 11, 0, 5), runners=6)
    assert all(o.startswith("recorded") for o in outcomes), outcomes
    # 8 general patients: weeks 1 and 2; 4 in the group, which starts today: its week 1.
    assert sum(int(o.split()[1]) for o in outcomes) == 8 * 2 + 4
    rows = releases(session)
    assert len(rows) == len(set(rows)) == 8 * 2 + 4
    keys = [n.idempotency_key for n in nudges(session)]
    assert len(keys) == len(set(keys)) == 12
    assert session.scalar(select(func.count()).select_from(ReleaseCursor)) == 1


def test_two_runs_of_the_same_moment_in_a_row_change_nothing(db, session, domain):
    for n in range(3):
        activated_patient(session, activated_at=london(2027, 1, 4, 10 + n))
    run(db, domain, london(2027, 1, 4, 18))
    first = (releases(session), [n.idempotency_key for n in nudges(session)])
    assert run(db, domain, london(2027, 1, 11, 0, 5)) == 3
    assert run(db, domain, london(2027, 1, 11, 0, 5)) == 0
    assert len(releases(session)) == len(first[0]) + 3 and len(nudges(session)) == 3
