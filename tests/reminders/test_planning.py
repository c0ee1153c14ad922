"""The time rules of reminders, without a database: days before in London wall-clock time, the send window,
reminders already past, and both clock changes of 2027 (28 March and 31 October)."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from portal.reminders import planning
from portal.settings import ReminderPolicy
from tests import factories

LONDON = ZoneInfo("Europe/London")
UTC = dt.UTC
WINDOW = (dt.time(9), dt.time(19))


def london(year, month, day, hour, minute=0):
    return dt.datetime(year, month, day, hour, minute, tzinfo=LONDON).astimezone(UTC)


def utc(year, month, day, hour, minute=0):
    return dt.datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def policy():
    return factories.domain().policy.reminders


LONG_AGO = utc(2020, 1, 1, 0)


def test_the_policy_in_config_is_the_one_in_the_issue(policy):
    assert policy.window == WINDOW
    assert policy.appointment_days_before == [7, 1]
    assert policy.course_first_session_days_before == 2
    assert policy.course_each_session_days_before == 1
    assert planning.horizon_days(policy) == 8


def test_a_reminder_inside_the_window_keeps_the_appointments_wall_clock_time(policy):
    start = london(2027, 6, 15, 10, 30)
    reminders = planning.appointment_reminders(start, policy, now=LONG_AGO)
    assert [(r.kind, r.due_at) for r in reminders] == [
        ("d7", london(2027, 6, 8, 10, 30)),
        ("d1", london(2027, 6, 14, 10, 30)),
    ]


@pytest.mark.parametrize(("start", "expected"), [
    # Before the window opens: later the same (previous) day, at 09:00.
    (london(2027, 6, 15, 8, 30), london(2027, 6, 14, 9, 0)),
    (london(2027, 6, 15, 3, 0), london(2027, 6, 14, 9, 0)),
    # After it closes: earlier the same day, at 19:00.
    (london(2027, 6, 15, 20, 0), london(2027, 6, 14, 19, 0)),
    (london(2027, 6, 15, 23, 45), london(2027, 6, 14, 19, 0)),
    # The edges are inside.
    (london(2027, 6, 15, 9, 0), london(2027, 6, 14, 9, 0)),
    (london(2027, 6, 15, 19, 0), london(2027, 6, 14, 19, 0)),
    # Nearer to 19:00 the evening before than to 09:00 (00:30 is 5.5 hours from 19:00, 8.5 from 09:00).
    (london(2027, 6, 15, 0, 30), london(2027, 6, 13, 19, 0)),
    # 02:00 is 7 hours from both: the earlier one, which gives more notice.
    (london(2027, 6, 15, 2, 0), london(2027, 6, 13, 19, 0)),
])
def test_the_day_before_moves_into_the_send_window(start, expected):
    assert planning.reminder_time(start, 1, window=WINDOW) == expected


def test_a_window_start_after_the_appointment_is_not_used():
    # The wall-clock time lands at 19:30; 09:00 next morning would be after an 08:00 appointment: 19:00 it is.
    appointment = london(2027, 6, 15, 8, 0)
    wall = dt.datetime(2027, 6, 14, 19, 30)
    assert planning.into_send_window(wall, before=appointment, window=WINDOW) == london(2027, 6, 14, 19, 0)
    # 07:00 on the morning of an 08:00 appointment: 09:00 is too late, so 19:00 the evening before.
    early = dt.datetime(2027, 6, 15, 7, 0)
    assert planning.into_send_window(early, before=appointment, window=WINDOW) == london(2027, 6, 14, 19, 0)


def test_no_time_in_the_window_before_the_appointment_means_none():
    # Asked for a time after the appointment (the callers never do): no candidate is before it.
    assert planning.into_send_window(dt.datetime(2027, 6, 15, 12), before=london(2027, 6, 15, 8),
                                     window=WINDOW) is None


def test_reminders_whose_time_has_passed_are_not_planned(policy):
    start = london(2027, 6, 15, 10, 0)
    # Booked three days ahead: the 7-day reminder's time has gone.
    assert [r.kind for r in planning.appointment_reminders(start, policy, now=london(2027, 6, 12, 10, 0))] == ["d1"]
    # Exactly at the reminder time is too late too: it would go after the moment it was meant for.
    assert planning.appointment_reminders(start, policy, now=london(2027, 6, 14, 10, 0)) == []
    assert [r.kind for r in planning.appointment_reminders(start, policy, now=london(2027, 6, 14, 9, 59))] == ["d1"]


def test_the_first_session_gets_two_days_and_one_day_the_others_one_day(policy):
    start = london(2027, 6, 15, 18, 0)
    first = planning.session_reminders(start, policy, first=True, now=LONG_AGO)
    assert [(r.kind, r.due_at) for r in first] == [
        ("first2", london(2027, 6, 13, 18, 0)),
        ("d1", london(2027, 6, 14, 18, 0)),
    ]
    later = planning.session_reminders(start, policy, first=False, now=LONG_AGO)
    assert [(r.kind, r.due_at) for r in later] == [("d1", london(2027, 6, 14, 18, 0))]


def test_a_first_session_reminder_at_the_same_moment_as_the_day_before_one_is_sent_once():
    same = ReminderPolicy(send_window_start="09:00", send_window_end="19:00", appointment_days_before=[1],
                          course_first_session_days_before=1, course_each_session_days_before=1)
    reminders = planning.session_reminders(london(2027, 6, 15, 18), same, first=True, now=LONG_AGO)
    assert [r.kind for r in reminders] == ["first1"]


def test_the_key_names_the_booking_the_reminder_and_the_start_in_utc():
    key = planning.reminder_key("appointment", 42, "d7", london(2027, 3, 29, 10))
    assert key == "reminder:appointment:42:d7:2027-03-29T09:00:00+00:00"


# The clock changes. The 2027 ones: forward on Sunday 28 March (01:00 GMT -> 02:00 BST), back on Sunday
# 31 October (02:00 BST -> 01:00 GMT).

def test_march_an_appointment_the_day_after_the_clocks_go_forward(policy):
    start = london(2027, 3, 29, 10)  # Monday 10:00 BST
    assert start == utc(2027, 3, 29, 9)
    reminders = {r.kind: r.due_at for r in planning.appointment_reminders(start, policy, now=LONG_AGO)}
    assert reminders["d1"] == utc(2027, 3, 28, 9)  # Sunday 28 March 10:00 BST: 23 hours before
    assert reminders["d7"] == utc(2027, 3, 22, 10)  # Monday 22 March 10:00 GMT
    assert {k: v.astimezone(LONDON).strftime("%a %d %H:%M %Z") for k, v in reminders.items()} == {
        "d1": "Sun 28 10:00 BST", "d7": "Mon 22 10:00 GMT"}


def test_march_an_appointment_on_the_day_the_clocks_go_forward(policy):
    start = london(2027, 3, 28, 10)  # Sunday 10:00 BST = 09:00 UTC
    reminders = {r.kind: r.due_at for r in planning.appointment_reminders(start, policy, now=LONG_AGO)}
    assert reminders["d1"] == utc(2027, 3, 27, 10)  # Saturday 10:00 GMT
    assert reminders["d7"] == utc(2027, 3, 21, 10)


def test_march_an_early_appointment_shifted_into_the_window_on_the_day_of_the_change(policy):
    start = london(2027, 3, 29, 8)  # Monday 08:00 BST: the day before at 08:00 is too early
    reminders = {r.kind: r.due_at for r in planning.appointment_reminders(start, policy, now=LONG_AGO)}
    assert reminders["d1"] == london(2027, 3, 28, 9) == utc(2027, 3, 28, 8)  # Sunday 09:00 BST
    assert reminders["d7"] == london(2027, 3, 22, 9) == utc(2027, 3, 22, 9)  # Monday 09:00 GMT


def test_october_an_appointment_the_day_after_the_clocks_go_back(policy):
    start = london(2027, 11, 1, 10)  # Monday 10:00 GMT
    assert start == utc(2027, 11, 1, 10)
    reminders = {r.kind: r.due_at for r in planning.appointment_reminders(start, policy, now=LONG_AGO)}
    assert reminders["d1"] == utc(2027, 10, 31, 10)  # Sunday 31 October 10:00 GMT: 24 hours before
    assert reminders["d7"] == utc(2027, 10, 25, 9)  # Monday 25 October 10:00 BST


def test_october_an_evening_appointment_on_the_day_the_clocks_go_back(policy):
    start = london(2027, 10, 31, 20)  # Sunday 20:00 GMT: the day before at 20:00 BST is after the window
    reminders = {r.kind: r.due_at for r in planning.appointment_reminders(start, policy, now=LONG_AGO)}
    assert reminders["d1"] == london(2027, 10, 30, 19) == utc(2027, 10, 30, 18)  # Saturday 19:00 BST
    assert reminders["d7"] == london(2027, 10, 24, 19) == utc(2027, 10, 24, 18)


@pytest.mark.parametrize(("sessions", "first_two_days", "days_before"), [
    # A weekly group at 18:00 on Tuesdays, either side of the March change...
    ([london(2027, 3, 23, 18), london(2027, 3, 30, 18)],
     utc(2027, 3, 21, 18),
     [utc(2027, 3, 22, 18), utc(2027, 3, 29, 17)]),
    # ...and of the October one.
    ([london(2027, 10, 26, 18), london(2027, 11, 2, 18)],
     utc(2027, 10, 24, 17),
     [utc(2027, 10, 25, 17), utc(2027, 11, 1, 18)]),
])
def test_a_weekly_group_is_reminded_at_18_00_local_either_side_of_a_clock_change(
        policy, sessions, first_two_days, days_before):
    first = planning.session_reminders(sessions[0], policy, first=True, now=LONG_AGO)
    second = planning.session_reminders(sessions[1], policy, first=False, now=LONG_AGO)
    assert [r.due_at for r in first] == [first_two_days, days_before[0]]
    assert [r.due_at for r in second] == [days_before[1]]
    for reminder in [*first, *second]:
        assert reminder.due_at.astimezone(LONDON).time() == dt.time(18)
