"""Turning a cohort's local weekly schedule into UTC session times.

A weekly group at 18:00 stays at 18:00 London time across the clock changes: each date is combined
with the local time in Europe/London first, and only then converted to UTC.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

# Said next to the time (or length) field wherever a session is planned or moved.
MIDNIGHT_RULE = "A session must end by midnight"


def ends_by_midnight(start_time: dt.time, minutes: int) -> bool:
    """Whether a session starting at local ``start_time`` and lasting ``minutes`` ends on the day it starts.

    One rule for creating a cohort and moving a session: a session is listed, texted and registered on one
    date, so one that ran past midnight would be half on a day nobody looks at.
    """
    return start_time.hour * 60 + start_time.minute + minutes <= 24 * 60


def weekly_sessions(
    *, first_date: dt.date, start_time: dt.time, minutes: int, count: int, timezone: str
) -> list[tuple[dt.datetime, dt.datetime]]:
    zone = ZoneInfo(timezone)
    sessions = []
    for week in range(count):
        local_start = dt.datetime.combine(first_date + dt.timedelta(weeks=week), start_time, tzinfo=zone)
        start = local_start.astimezone(dt.UTC)
        # Add the length in UTC so a session spanning a clock change still lasts `minutes`.
        sessions.append((start, start + dt.timedelta(minutes=minutes)))
    return sessions
