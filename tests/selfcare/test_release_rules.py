"""The release rules on their own: week k of a track opens at 00:00 London time on its day, in UTC, on both
sides of both clock changes of 2027 (28 March and 31 October)."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from portal.selfcare.release import (
    CourseSeat,
    course_plan,
    general_plan,
    local_midnight,
    midnights_between,
    nudge_times,
    nudge_week,
    place,
    week_from_slug,
)
from tests.selfcare.helpers import london

ZONE = ZoneInfo("Europe/London")
WEEKS = {"tier-1-group": 8, "tier-2-programme": 12, "tier-1-general": 8, "tier-2-general": 8}
UTC = dt.UTC


def test_local_midnight_on_the_clock_change_days():
    # Clocks change at 01:00 UTC, so midnight on the change day is still on the old offset.
    assert local_midnight(dt.date(2027, 3, 28), ZONE) == dt.datetime(2027, 3, 28, 0, 0, tzinfo=UTC)
    assert local_midnight(dt.date(2027, 3, 29), ZONE) == dt.datetime(2027, 3, 28, 23, 0, tzinfo=UTC)
    assert local_midnight(dt.date(2027, 10, 31), ZONE) == dt.datetime(2027, 10, 30, 23, 0, tzinfo=UTC)
    assert local_midnight(dt.date(2027, 11, 1), ZONE) == dt.datetime(2027, 11, 1, 0, 0, tzinfo=UTC)


def test_general_track_across_the_spring_change():
    # Activated on Wednesday 24 March 2027 at 3pm (GMT); week 2 opens on Wednesday 31 March, in BST.
    plan = general_plan(tier=1, activated_at=london(2027, 3, 24, 15), weeks=8, zone=ZONE)
    assert plan.track == "tier-1-general"
    assert [w.opens_on for w in plan.weeks[:3]] == [dt.date(2027, 3, 24), dt.date(2027, 3, 31), dt.date(2027, 4, 7)]
    assert plan.week(1).opens_at == dt.datetime(2027, 3, 24, 0, 0, tzinfo=UTC)
    assert plan.week(2).opens_at == dt.datetime(2027, 3, 30, 23, 0, tzinfo=UTC)
    assert plan.current(dt.datetime(2027, 3, 30, 22, 59, tzinfo=UTC)).week == 1
    assert plan.current(dt.datetime(2027, 3, 30, 23, 0, tzinfo=UTC)).week == 2
    # Seven days after week 1 in UTC would be an hour late: a naive UTC schedule gets this wrong.
    assert plan.week(2).opens_at != plan.week(1).opens_at + dt.timedelta(days=7)


def test_general_track_across_the_autumn_change():
    plan = general_plan(tier=2, activated_at=london(2027, 10, 27, 9), weeks=8, zone=ZONE)
    assert plan.track == "tier-2-general"
    assert plan.week(1).opens_at == dt.datetime(2027, 10, 26, 23, 0, tzinfo=UTC)
    assert plan.week(2).opens_at == dt.datetime(2027, 11, 3, 0, 0, tzinfo=UTC)
    assert plan.current(dt.datetime(2027, 11, 2, 23, 59, tzinfo=UTC)).week == 1
    assert plan.current(dt.datetime(2027, 11, 3, 0, 0, tzinfo=UTC)).week == 2


def test_activation_just_after_midnight_in_summer_is_that_local_day():
    # 00:30 BST on 1 July is 23:30 UTC on 30 June: week 1 is the London day, 1 July.
    plan = general_plan(tier=1, activated_at=london(2027, 7, 1, 0, 30), weeks=8, zone=ZONE)
    assert plan.week(1).opens_on == dt.date(2027, 7, 1)
    assert plan.week(1).opens_at == dt.datetime(2027, 6, 30, 23, 0, tzinfo=UTC)


def _weekly(first: dt.datetime, count: int) -> dict[int, dt.datetime]:
    """Session starts at the same London time each week (as booking.schedule expands them)."""
    local = first.astimezone(ZONE)
    return {n: dt.datetime.combine(local.date() + dt.timedelta(weeks=n - 1), local.time(), tzinfo=ZONE)
            .astimezone(UTC) for n in range(1, count + 1)}


def test_course_weeks_open_on_session_days_across_the_spring_change():
    # A Monday 6pm group: 22 March (GMT), 29 March (BST), ...
    seat = CourseSeat(service_key="t1-group", sessions=_weekly(london(2027, 3, 22, 18), 8))
    plan = course_plan(seat=seat, weeks=8)
    assert plan.track == "tier-1-group"
    assert plan.week(1).opens_at == dt.datetime(2027, 3, 22, 0, 0, tzinfo=UTC)
    assert plan.week(2).opens_at == dt.datetime(2027, 3, 28, 23, 0, tzinfo=UTC)
    assert [w.opens_on.weekday() for w in plan.weeks] == [0] * 8


def test_course_weeks_open_on_session_days_across_the_autumn_change():
    # A Sunday group: 24 October (BST), 31 October (the change day), 7 November (GMT).
    seat = CourseSeat(service_key="t2-programme", sessions=_weekly(london(2027, 10, 24, 10), 12))
    plan = course_plan(seat=seat, weeks=12)
    assert plan.track == "tier-2-programme" and len(plan.weeks) == 12
    assert plan.week(1).opens_at == dt.datetime(2027, 10, 23, 23, 0, tzinfo=UTC)
    assert plan.week(2).opens_at == dt.datetime(2027, 10, 30, 23, 0, tzinfo=UTC)  # 00:00 BST on 31 October
    assert plan.week(3).opens_at == dt.datetime(2027, 11, 7, 0, 0, tzinfo=UTC)
    assert plan.current(dt.datetime(2027, 10, 30, 22, 59, tzinfo=UTC)).week == 1
    assert plan.current(dt.datetime(2027, 10, 30, 23, 0, tzinfo=UTC)).week == 2


def test_a_moved_session_moves_its_week():
    sessions = _weekly(london(2027, 3, 22, 18), 8)
    sessions[3] = london(2027, 4, 7, 14)  # week 3 moved from Monday 5 April to Wednesday 7 April
    plan = course_plan(seat=CourseSeat(service_key="t1-group", sessions=sessions), weeks=8)
    assert plan.week(3).opens_on == dt.date(2027, 4, 7)
    assert plan.current(london(2027, 4, 6, 23, 59)).week == 2
    assert plan.current(london(2027, 4, 7, 0, 0)).week == 3


def test_a_week_without_a_session_follows_a_week_after_the_one_before():
    sessions = _weekly(london(2027, 5, 3, 18), 7)  # a course with one session fewer than its weeks of reading
    plan = course_plan(seat=CourseSeat(service_key="t1-group", sessions=sessions), weeks=8)
    assert plan.week(8).opens_on == plan.week(7).opens_on + dt.timedelta(days=7)


def test_a_booked_patient_follows_the_general_track_until_the_course_starts():
    seat = CourseSeat(service_key="t1-group", sessions=_weekly(london(2027, 5, 3, 18), 8))
    activated = london(2027, 4, 1, 12)
    before = place(tier=1, activated_at=activated, seat=seat, now=london(2027, 5, 2, 23, 59),
                   weeks_in_track=WEEKS, zone=ZONE)
    assert before.plan.track == "tier-1-general"
    assert before.upcoming.track == "tier-1-group" and before.upcoming.starts_at == london(2027, 5, 3)
    started = place(tier=1, activated_at=activated, seat=seat, now=london(2027, 5, 3), weeks_in_track=WEEKS,
                    zone=ZONE)
    assert started.plan.track == "tier-1-group" and started.upcoming is None
    assert started.plan.current(london(2027, 5, 3)).week == 1


def test_nobody_to_place_without_an_account_or_a_course():
    assert place(tier=1, activated_at=None, seat=None, now=london(2027, 5, 3), weeks_in_track=WEEKS,
                 zone=ZONE) is None


@pytest.mark.parametrize(("now", "due", "expires"), [
    # Opened at midnight, run just after: due at 09:00 that day, worthless after 19:00.
    (london(2027, 3, 29, 0, 5), london(2027, 3, 29, 9), london(2027, 3, 29, 19)),
    # Run within the window: due at once.
    (london(2027, 3, 29, 12, 30), london(2027, 3, 29, 12, 30), london(2027, 3, 29, 19)),
    # Run after the window closed: the next morning.
    (london(2027, 3, 29, 21), london(2027, 3, 30, 9), london(2027, 3, 30, 19)),
])
def test_nudges_wait_for_the_send_window(now, due, expires):
    assert nudge_times(opens_at=london(2027, 3, 29), now=now, window=(dt.time(9), dt.time(19)), zone=ZONE) == (
        due, expires)


def test_only_the_newest_fresh_week_is_worth_a_text():
    plan = general_plan(tier=1, activated_at=london(2027, 1, 4, 10), weeks=8, zone=ZONE)
    now = london(2027, 1, 25, 0, 10)  # week 4 opened ten minutes ago
    assert nudge_week(plan.opened(now), activated_at=london(2027, 1, 4, 10), now=now).week == 4
    # Only old weeks newly recorded (after a move, or an outage): no text.
    assert nudge_week(plan.opened(now)[:3], activated_at=london(2027, 1, 4, 10), now=now) is None
    # Week 1 opened at midnight before the patient signed up: no text while they look at it.
    assert nudge_week(plan.opened(london(2027, 1, 4, 10, 5))[:1], activated_at=london(2027, 1, 4, 10),
                      now=london(2027, 1, 4, 10, 5)) is None


def test_midnights_between_counts_local_days():
    assert midnights_between(london(2027, 3, 27, 23), london(2027, 3, 29, 0, 1), ZONE) == [
        dt.date(2027, 3, 28), dt.date(2027, 3, 29)]
    assert midnights_between(london(2027, 3, 28, 10), london(2027, 3, 28, 10, 10), ZONE) == []


@pytest.mark.parametrize(("slug", "week"), [("week-01", 1), ("week-12", 12), ("week-1", None), ("week-00", None),
                                            ("week-ab", None), ("../etc", None), ("week-001", None)])
def test_week_from_slug(slug, week):
    assert week_from_slug(slug) == week
