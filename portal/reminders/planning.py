"""The time rules of reminders, with no database: when each reminder of one appointment or session is due.

"N days before" is the same local wall-clock time N local days earlier, in Europe/London, so a Monday 10:00
appointment is reminded at 10:00 on the Sunday whether or not the clocks changed in between (a calendar day
across a clock change is 23 or 25 hours, never a fixed 24). The wall-clock time is chosen first and only then
converted to UTC.

A time outside the send window (09:00-19:00 by default, both ends included) moves to the nearest time inside
it that is still before the appointment: 08:30 becomes 09:00 the same day, 20:00 becomes 19:00 the same day,
and a time in the small hours goes to whichever of 19:00 the evening before or 09:00 that morning is nearer
on the clock (a tie, at 02:00, goes to the evening before: more notice). 09:00 on the morning is never used
if the appointment itself is earlier.

Courses: the first session gets a reminder ``course_first_session_days_before`` days ahead, and every session,
the first included, one ``course_each_session_days_before`` days ahead. A first session gets both because it
is the one most often missed (a new place, a new group); the two cost two texts per patient per course. If
both land at the same moment only one is kept.

A reminder whose time has passed when it is planned is never planned (so a booking made three days ahead
gets no 7-day reminder).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from portal.settings import ReminderPolicy

LONDON = ZoneInfo("Europe/London")


@dataclass(frozen=True)
class Reminder:
    # Part of the idempotency key: "d7", "d1" (days before), "first2" (days before the first session).
    kind: str
    due_at: dt.datetime


def _to_utc(wall: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    # fold=0: an hour repeated in October means its first occurrence. A time the clocks skip in March
    # (never inside a daytime window in London) comes out an hour later, as zoneinfo reads it.
    return wall.replace(tzinfo=zone).astimezone(dt.UTC)


def into_send_window(
    wall: dt.datetime, *, before: dt.datetime, window: tuple[dt.time, dt.time], zone: ZoneInfo = LONDON
) -> dt.datetime | None:
    """``wall`` (a naive local wall-clock time) moved into the send window, as UTC; None if no time in the
    window before ``before`` (a UTC instant, the appointment) is near it.

    Inside the window it stays. Outside, the two window edges either side of it are candidates (the window's
    end earlier, its start later), those not before the appointment are dropped, and the nearer on the clock
    wins; a tie goes to the earlier one.
    """
    opens, closes = window
    if opens <= wall.time() <= closes:
        candidates = [wall]
    elif wall.time() < opens:
        candidates = [dt.datetime.combine(wall.date() - dt.timedelta(days=1), closes),
                      dt.datetime.combine(wall.date(), opens)]
    else:
        candidates = [dt.datetime.combine(wall.date(), closes),
                      dt.datetime.combine(wall.date() + dt.timedelta(days=1), opens)]
    usable = [c for c in candidates if _to_utc(c, zone) < before]
    if not usable:
        return None
    # min() keeps the first of equals: candidates are in time order, so a tie goes to the earlier one.
    best = min(usable, key=lambda c: abs(c - wall))
    return _to_utc(best, zone)


def reminder_time(
    starts_at: dt.datetime, days_before: int, *, window: tuple[dt.time, dt.time], zone: ZoneInfo = LONDON
) -> dt.datetime | None:
    """When to remind of something starting at ``starts_at`` (UTC), ``days_before`` local days ahead, as UTC."""
    local = starts_at.astimezone(zone)
    wall = dt.datetime.combine(local.date() - dt.timedelta(days=days_before), local.time().replace(tzinfo=None))
    return into_send_window(wall, before=starts_at, window=window, zone=zone)


def _plan(starts_at: dt.datetime, wanted: list[tuple[str, int]], policy: ReminderPolicy, now: dt.datetime,
          zone: ZoneInfo) -> list[Reminder]:
    reminders: list[Reminder] = []
    window = policy.window
    for kind, days in wanted:
        due = reminder_time(starts_at, days, window=window, zone=zone)
        if due is None or due <= now or any(r.due_at == due for r in reminders):
            continue
        reminders.append(Reminder(kind=kind, due_at=due))
    return sorted(reminders, key=lambda r: r.due_at)


def appointment_reminders(
    starts_at: dt.datetime, policy: ReminderPolicy, *, now: dt.datetime, zone: ZoneInfo = LONDON
) -> list[Reminder]:
    """The reminders still to come for a 1:1 appointment (``appointment_days_before``), earliest first."""
    return _plan(starts_at, [(f"d{days}", days) for days in policy.appointment_days_before], policy, now, zone)


def session_reminders(
    starts_at: dt.datetime, policy: ReminderPolicy, *, first: bool, now: dt.datetime, zone: ZoneInfo = LONDON
) -> list[Reminder]:
    """The reminders still to come for one group session; ``first``: it is the cohort's first session."""
    wanted = [(f"first{policy.course_first_session_days_before}", policy.course_first_session_days_before)] \
        if first else []
    wanted.append((f"d{policy.course_each_session_days_before}", policy.course_each_session_days_before))
    return _plan(starts_at, wanted, policy, now, zone)


def horizon_days(policy: ReminderPolicy) -> int:
    """How many days ahead planning looks: the furthest reminder, plus a day for the window shift (at most
    half the quiet hours earlier) and for a planner that ran late."""
    return max([*policy.appointment_days_before, policy.course_first_session_days_before,
                policy.course_each_session_days_before]) + 1


def reminder_key(subject: str, subject_id: int, kind: str, starts_at: dt.datetime) -> str:
    """``reminder:{booking|appointment}:{id}:{kind}:{start in UTC, ISO}``: the same reminder planned twice has
    the same key, and one for a moved start has a new one."""
    return f"reminder:{subject}:{subject_id}:{kind}:{starts_at.astimezone(dt.UTC).isoformat()}"
