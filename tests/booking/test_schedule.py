import datetime as dt
from zoneinfo import ZoneInfo

from portal.booking.schedule import weekly_sessions

LONDON = ZoneInfo("Europe/London")


def _local_times(sessions):
    return [start.astimezone(LONDON).strftime("%a %H:%M") for start, _ in sessions]


def test_weekly_sessions_keep_local_time_across_the_march_clock_change():
    # 2026 clocks go forward on Sunday 29 March.
    sessions = weekly_sessions(first_date=dt.date(2026, 3, 10), start_time=dt.time(18, 0), minutes=120, count=8,
                               timezone="Europe/London")
    assert _local_times(sessions) == ["Tue 18:00"] * 8
    assert sessions[2][0] == dt.datetime(2026, 3, 24, 18, 0, tzinfo=dt.UTC)  # GMT
    assert sessions[3][0] == dt.datetime(2026, 3, 31, 17, 0, tzinfo=dt.UTC)  # BST
    assert all(end - start == dt.timedelta(minutes=120) for start, end in sessions)


def test_weekly_sessions_keep_local_time_across_the_october_clock_change():
    # 2026 clocks go back on Sunday 25 October.
    sessions = weekly_sessions(first_date=dt.date(2026, 10, 1), start_time=dt.time(10, 30), minutes=150, count=12,
                               timezone="Europe/London")
    assert _local_times(sessions) == ["Thu 10:30"] * 12
    assert sessions[3][0] == dt.datetime(2026, 10, 22, 9, 30, tzinfo=dt.UTC)
    assert sessions[4][0] == dt.datetime(2026, 10, 29, 10, 30, tzinfo=dt.UTC)


def test_a_session_that_spans_the_change_still_lasts_its_length():
    # A Saturday-night session running over 01:00 on the night the clocks go forward.
    sessions = weekly_sessions(first_date=dt.date(2026, 3, 28), start_time=dt.time(23, 30), minutes=120, count=1,
                               timezone="Europe/London")
    start, end = sessions[0]
    assert end - start == dt.timedelta(hours=2)
