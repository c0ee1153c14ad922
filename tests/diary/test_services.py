"""Diary, goal and flare-up plan services: one row per day, week and patient, whatever is submitted twice."""

import datetime as dt

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from portal.db import utcnow
from portal.diary import services
from portal.diary.models import DiaryEntry, FlareUpPlan, Goal, GoalCheckIn
from tests import factories
from tests.diary.factories import create_check_in, create_entry, create_goal

TODAY = dt.date(2026, 3, 30)  # a Monday, the day after the clocks go forward
VALUES = services.EntryValues(pain=6, sleep=2, mood=3, activity=4, note="Walked to the shop, rested after")


def _count(session, model, *where):
    return session.scalar(select(func.count()).select_from(model).where(*where))


@pytest.fixture
def patient(session):
    return factories.create_patient(session)


def test_an_entry_is_saved_once_per_day_and_resubmitting_updates_it(session, patient):
    first = services.save_entry(session, patient.id, TODAY, VALUES, today=TODAY, shown_day=TODAY, now=utcnow())
    again = services.save_entry(session, patient.id, TODAY, VALUES, today=TODAY, shown_day=TODAY, now=utcnow())
    changed = services.save_entry(session, patient.id, TODAY, services.EntryValues(2, 4, 5, 1, "  better  "),
                                  today=TODAY, shown_day=TODAY, now=utcnow())
    session.commit()
    assert first == again == changed
    entry = session.scalars(select(DiaryEntry)).one()
    assert (entry.entry_date, entry.pain, entry.sleep, entry.mood, entry.activity, entry.note) == (
        TODAY, 2, 4, 5, 1, "better")
    assert entry.updated_at >= entry.created_at


def test_the_upsert_is_one_statement(db, session, patient):
    from tests.test_query_counts import recorded_statements

    patient_id = patient.id
    with db.transaction() as s:
        s.connection()  # begin first: the count is of the save alone
        with recorded_statements(db.engine) as statements:
            services.save_entry(s, patient_id, TODAY, VALUES, today=TODAY, shown_day=TODAY, now=utcnow())
    assert len(statements) == 1 and "ON CONFLICT" in statements[0].upper()


def test_another_days_entry_is_not_replaced_from_a_form_showing_a_different_day(session, patient):
    yesterday = TODAY - dt.timedelta(days=1)
    kept = services.save_entry(session, patient.id, TODAY, VALUES, today=TODAY, shown_day=None, now=utcnow())
    for shown in (yesterday, None):
        with pytest.raises(services.DayFilledIn) as refused:
            services.save_entry(session, patient.id, TODAY, services.EntryValues(1, 1, 1, 1, "other day"),
                                today=TODAY, shown_day=shown, now=utcnow())
        assert refused.value.day == TODAY
    entry = session.scalars(select(DiaryEntry).where(DiaryEntry.patient_id == patient.id)).one()
    assert (entry.id, entry.pain, entry.note) == (kept, VALUES.pain, VALUES.note)


def test_each_patient_and_day_has_its_own_entry(session, patient):
    other = factories.create_patient(session)
    yesterday = TODAY - dt.timedelta(days=1)
    ids = {
        services.save_entry(session, patient.id, TODAY, VALUES, today=TODAY, shown_day=TODAY, now=utcnow()),
        services.save_entry(session, patient.id, yesterday, VALUES, today=TODAY, shown_day=None, now=utcnow()),
        services.save_entry(session, other.id, TODAY, VALUES, today=TODAY, shown_day=TODAY, now=utcnow()),
    }
    session.commit()
    assert len(ids) == 3 and _count(session, DiaryEntry) == 3


@pytest.mark.parametrize("days_back", [0, 1, 6, 7])
def test_a_missed_day_may_be_filled_in_up_to_seven_days_back(session, patient, days_back):
    day = TODAY - dt.timedelta(days=days_back)
    services.save_entry(session, patient.id, day, VALUES, today=TODAY, shown_day=day, now=utcnow())
    session.commit()
    assert session.scalars(select(DiaryEntry.entry_date)).one() == day


def test_eight_days_back_is_refused(session, patient):
    with pytest.raises(services.TooLongAgo, match="today or the 7 days before it"):
        services.save_entry(session, patient.id, TODAY - dt.timedelta(days=8), VALUES, today=TODAY,
                            shown_day=None, now=utcnow())
    session.rollback()
    assert _count(session, DiaryEntry) == 0


def test_a_future_day_is_refused(session, patient):
    with pytest.raises(services.FutureDay, match="not happened yet"):
        services.save_entry(session, patient.id, TODAY + dt.timedelta(days=1), VALUES, today=TODAY,
                            shown_day=None, now=utcnow())
    session.rollback()
    assert _count(session, DiaryEntry) == 0


def test_the_fillable_days_run_from_today_back_a_week():
    days = services.fillable_days(TODAY)
    assert days[0] == TODAY and days[-1] == TODAY - dt.timedelta(days=7) and len(days) == 8


@pytest.mark.parametrize("column, value", [("pain", 11), ("pain", -1), ("sleep", 0), ("mood", 6), ("activity", 0)])
def test_the_database_refuses_scores_out_of_range(session, patient, column, value):
    with pytest.raises(IntegrityError):
        create_entry(session, patient.id, TODAY, **{column: value})
    session.rollback()


def test_the_entry_page_starts_an_empty_day_from_the_latest_answers_of_the_week(session, patient):
    assert services.entry_page(session, patient.id, TODAY, today=TODAY).defaults_from is None
    create_entry(session, patient.id, TODAY - dt.timedelta(days=9), pain=9)  # too old to start from
    create_entry(session, patient.id, TODAY - dt.timedelta(days=3), pain=4)
    create_entry(session, patient.id, TODAY - dt.timedelta(days=2), pain=6)
    page = services.entry_page(session, patient.id, TODAY, today=TODAY)
    assert page.entry is None and page.defaults_from.pain == 6
    assert [day for day, _ in page.recent] == services.fillable_days(TODAY)
    assert [entry.pain if entry else None for _, entry in page.recent] == [None, None, 6, 4, None, None, None, None]

    back_filling = services.entry_page(session, patient.id, TODAY - dt.timedelta(days=3), today=TODAY)
    assert back_filling.entry.pain == 4 and back_filling.defaults_from is None
    missed = services.entry_page(session, patient.id, TODAY - dt.timedelta(days=5), today=TODAY)
    assert missed.entry is None and missed.defaults_from.pain == 6


@pytest.mark.parametrize("weeks", [4, 12])
def test_a_trend_covers_every_day_of_the_period_with_gaps(session, patient, weeks):
    create_entry(session, patient.id, TODAY, pain=3)
    create_entry(session, patient.id, TODAY - dt.timedelta(days=2), pain=7, sleep=1)
    create_entry(session, patient.id, TODAY - dt.timedelta(days=weeks * 7), pain=10)  # one day too early
    trend = services.trend(session, patient.id, weeks=weeks, today=TODAY)
    assert len(trend.days) == weeks * 7 and trend.days[-1] == TODAY
    assert trend.series("pain")[-3:] == [7, None, 3]
    assert trend.series("sleep")[-3:] == [1, None, 3]
    assert sum(v is not None for v in trend.series("pain")) == 2
    assert trend.average("pain") == 5


def test_a_trend_is_4_or_12_weeks(session, patient):
    with pytest.raises(ValueError, match="4 or 12"):
        services.trend(session, patient.id, weeks=5, today=TODAY)


# Goals


def _goal_values(**kw):
    values = {"what": "Swim", "how_much": "2 lengths, twice a week", "target_date": TODAY + dt.timedelta(days=28),
              "why": "I used to love it", "confidence": 8}
    values.update(kw)
    return services.GoalValues(**values)


def test_a_goal_is_added_changed_closed_and_reopened(session, patient):
    now = utcnow()
    added = services.add_goal(session, patient.id, _goal_values(), now=now)
    assert added.new
    goal = added.goal
    services.change_goal(session, goal, _goal_values(how_much="3 lengths", confidence=6), now=now)
    assert (goal.how_much, goal.confidence, goal.status) == ("3 lengths", 6, "active")
    services.set_goal_status(session, goal, "achieved", now=now)
    assert goal.status == "achieved" and goal.closed_at == now
    services.set_goal_status(session, goal, "active", now=now)
    assert goal.status == "active" and goal.closed_at is None
    services.set_goal_status(session, goal, "stopped", now=now)
    session.commit()
    assert session.get(Goal, goal.id).status == "stopped"


def test_the_same_goal_added_again_is_the_goal_already_there(session, patient):
    first = services.add_goal(session, patient.id, _goal_values(), now=utcnow())
    again = services.add_goal(session, patient.id, _goal_values(), now=utcnow())
    other = services.add_goal(session, patient.id, _goal_values(confidence=5), now=utcnow())
    assert (first.new, again.new, other.new) == (True, False, True)
    assert again.goal.id == first.goal.id != other.goal.id


def test_a_goal_cannot_close_with_an_unknown_status(session, patient):
    goal = create_goal(session, patient.id)
    with pytest.raises(ValueError):
        services.set_goal_status(session, goal, "deleted", now=utcnow())


def test_the_database_keeps_closed_at_with_the_status(session, patient):
    with pytest.raises(IntegrityError):
        create_goal(session, patient.id, status="achieved", closed_at=None)
    session.rollback()


def test_goals_are_found_only_through_their_patient(session, patient):
    other = factories.create_patient(session)
    goal = create_goal(session, other.id)
    with pytest.raises(services.GoalNotFound):
        services.goal_for_patient(session, patient.id, goal.id)
    assert services.goal_for_patient(session, other.id, goal.id).id == goal.id


def test_goals_list_active_ones_first_soonest_first(session, patient):
    later = create_goal(session, patient.id, target_date=TODAY + dt.timedelta(days=60))
    sooner = create_goal(session, patient.id, target_date=TODAY + dt.timedelta(days=10))
    done = create_goal(session, patient.id, status="achieved")
    create_goal(session, factories.create_patient(session).id)
    assert [g.id for g in services.goals_for(session, patient.id)] == [sooner.id, later.id, done.id]


def test_the_week_starts_on_monday():
    assert services.week_start(dt.date(2026, 4, 5)) == dt.date(2026, 3, 30)  # Sunday
    assert services.week_start(dt.date(2026, 3, 30)) == dt.date(2026, 3, 30)  # Monday
    assert services.week_start(dt.date(2027, 1, 1)) == dt.date(2026, 12, 28)  # ISO week 53 of 2026


def test_one_check_in_per_goal_per_week(session, patient):
    goal = create_goal(session, patient.id)
    monday, sunday, next_monday = TODAY, TODAY + dt.timedelta(days=6), TODAY + dt.timedelta(days=7)
    first = services.check_in(session, goal, outcome="partly", note="", today=monday, now=utcnow())
    same_week = services.check_in(session, goal, outcome="done", note=" did it ", today=sunday, now=utcnow())
    next_week = services.check_in(session, goal, outcome="not", note="", today=next_monday, now=utcnow())
    session.commit()
    assert first == same_week != next_week
    rows = session.execute(select(GoalCheckIn.week_start, GoalCheckIn.outcome, GoalCheckIn.note)
                           .order_by(GoalCheckIn.week_start)).all()
    assert rows == [(monday, "done", "did it"), (next_monday, "not", "")]
    assert services.check_ins_for_week(session, [goal], monday)[goal.id].outcome == "done"
    assert [c.week_start for c in services.check_in_history(session, goal)] == [next_monday, monday]


def test_a_finished_goal_takes_no_check_in(session, patient):
    goal = create_goal(session, patient.id, status="stopped")
    with pytest.raises(services.GoalClosed):
        services.check_in(session, goal, outcome="done", note="", today=TODAY, now=utcnow())


def test_the_database_refuses_a_second_check_in_for_the_week(session, patient):
    goal = create_goal(session, patient.id)
    create_check_in(session, goal, TODAY)
    with pytest.raises(IntegrityError):
        create_check_in(session, goal, TODAY, outcome="not")
    session.rollback()


# Flare-up plan


def test_one_flare_up_plan_per_patient(session, patient):
    first = services.save_flare_plan(session, patient.id, {"what_helps": " Heat pack "}, now=utcnow())
    second = services.save_flare_plan(session, patient.id, {"who_to_tell": "My sister"}, now=utcnow())
    session.commit()
    assert first == second and _count(session, FlareUpPlan) == 1
    plan = services.flare_plan_for(session, patient.id)
    # Every part is replaced: a part left empty on the form is emptied.
    assert (plan.what_helps, plan.who_to_tell, plan.what_to_reduce) == ("", "My sister", "")
    assert services.flare_plan_for(session, factories.create_patient(session).id) is None


def test_a_plan_has_only_its_four_parts(session, patient):
    with pytest.raises(ValueError, match="unknown"):
        services.save_flare_plan(session, patient.id, {"diagnosis": "x"}, now=utcnow())
