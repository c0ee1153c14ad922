"""When each week of self-management reading opens: the pure rules, with no database.

- A patient in a course (an active seat on the Tier 1 Group or the Tier 2 Programme of their own tier)
  follows the course's track: week k opens at the start of the day (00:00 London time) of session k, from
  the session's actual start, so a moved session moves its week.
- Everyone else follows their tier's general track, weekly from activation: week 1 opens at 00:00 on the
  day they set up their account, week k at 00:00 on that day + 7(k - 1) days.
- The course track takes over on the day its week 1 opens. Until then a booked patient keeps following the
  general track (the general tracks are for patients "not yet in a course"), so nobody waits weeks for the
  group to start with nothing new to read.

Everything is worked out in local dates and turned into a UTC instant at local midnight with zoneinfo, so a
week opens at midnight on both sides of the clock changes. (London changes its clocks at 01:00 UTC, never
at midnight, so local midnight always exists and is never ambiguous.)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from portal.plain_text import is_plain_number

# The course behind each course track, by catalogue service key.
COURSE_TRACKS: Mapping[str, str] = {"t1-group": "tier-1-group", "t2-programme": "tier-2-programme"}

# What staff call each track.
TRACK_LABELS: Mapping[str, str] = {
    "tier-1-group": "Tier 1 group",
    "tier-2-programme": "Tier 2 programme",
    "tier-1-general": "Tier 1 general",
    "tier-2-general": "Tier 2 general",
}

# A nudge is texted only for a week that opened this recently: a run after an outage records older weeks
# without texting about them.
NUDGE_WITHIN = dt.timedelta(days=1)


def general_track(tier: int) -> str:
    return f"tier-{tier}-general"


def is_course_track(track: str) -> bool:
    return track in COURSE_TRACKS.values()


def slug(week: int) -> str:
    """The week's part of its address: week-03."""
    return f"week-{week:02d}"


def week_from_slug(value: str) -> int | None:
    """The week number in ``week-03``, or None for anything else."""
    if len(value) != 7 or not value.startswith("week-") or not is_plain_number(value[5:]):
        return None
    week = int(value[5:])
    return week if week >= 1 else None


def local_midnight(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    """00:00 on ``day`` in ``zone``, as a UTC instant."""
    return dt.datetime.combine(day, dt.time(0), tzinfo=zone).astimezone(dt.UTC)


def local_date(instant: dt.datetime, zone: ZoneInfo) -> dt.date:
    return instant.astimezone(zone).date()


@dataclass(frozen=True)
class Opening:
    week: int
    opens_on: dt.date  # the local date
    opens_at: dt.datetime  # local midnight of opens_on, in UTC

    def is_open(self, now: dt.datetime) -> bool:
        return self.opens_at <= now


@dataclass(frozen=True)
class Plan:
    """One track's weeks for one patient, with the day each opens."""

    track: str
    weeks: tuple[Opening, ...]

    def week(self, number: int) -> Opening | None:
        return next((w for w in self.weeks if w.week == number), None)

    def opened(self, now: dt.datetime) -> list[Opening]:
        return [w for w in self.weeks if w.is_open(now)]

    def current(self, now: dt.datetime) -> Opening | None:
        """The newest week open now (weeks open in order, but a moved session could put one out of it)."""
        opened = self.opened(now)
        return max(opened, key=lambda w: w.week) if opened else None

    @property
    def starts_at(self) -> dt.datetime | None:
        first = self.week(1)
        return first.opens_at if first else None


@dataclass(frozen=True)
class CourseSeat:
    """A patient's active seat on a course: the course's service key, and its sessions' starts by number."""

    service_key: str
    sessions: Mapping[int, dt.datetime]
    timezone: str = "Europe/London"


@dataclass(frozen=True)
class Placement:
    """Which plan a patient follows now, and the course plan that will take over later, if booked."""

    plan: Plan
    upcoming: Plan | None = None


def general_plan(*, tier: int, activated_at: dt.datetime, weeks: int, zone: ZoneInfo) -> Plan:
    start = local_date(activated_at, zone)
    openings = []
    for week in range(1, weeks + 1):
        day = start + dt.timedelta(days=7 * (week - 1))
        openings.append(Opening(week=week, opens_on=day, opens_at=local_midnight(day, zone)))
    return Plan(track=general_track(tier), weeks=tuple(openings))


def course_plan(*, seat: CourseSeat, weeks: int) -> Plan:
    """Week k opens on session k's local day. A week with no session (a course with fewer sessions than
    weeks of reading) opens seven days after the week before it."""
    zone = ZoneInfo(seat.timezone)
    openings: list[Opening] = []
    for week in range(1, weeks + 1):
        starts = seat.sessions.get(week)
        if starts is not None:
            day = local_date(starts, zone)
        elif openings:
            day = openings[-1].opens_on + dt.timedelta(days=7)
        else:
            continue  # no session 1: the course cannot be placed, and week 1 cannot be dated
        openings.append(Opening(week=week, opens_on=day, opens_at=local_midnight(day, zone)))
    return Plan(track=COURSE_TRACKS[seat.service_key], weeks=tuple(openings))


def place(
    *,
    tier: int,
    activated_at: dt.datetime | None,
    seat: CourseSeat | None,
    now: dt.datetime,
    weeks_in_track: Mapping[str, int],
    zone: ZoneInfo,
) -> Placement | None:
    """The plan that fits the patient's current state, or None for a patient without an account and
    without a course (nothing can be dated for them yet).

    ``seat`` must be a seat on the course of the patient's own tier: a patient moved to another tier follows
    that tier's tracks, whatever seat they still hold.
    """
    course = None
    if seat is not None and seat.service_key in COURSE_TRACKS:
        course = course_plan(seat=seat, weeks=weeks_in_track.get(COURSE_TRACKS[seat.service_key], 0))
        if not course.weeks:
            course = None
    if course is not None and (course.starts_at <= now or activated_at is None):
        return Placement(plan=course)
    if activated_at is None:
        return None
    general = general_plan(tier=tier, activated_at=activated_at,
                           weeks=weeks_in_track.get(general_track(tier), 0), zone=zone)
    return Placement(plan=general, upcoming=course)


def nudge_times(
    *, opens_at: dt.datetime, now: dt.datetime, window: tuple[dt.time, dt.time], zone: ZoneInfo
) -> tuple[dt.datetime, dt.datetime]:
    """When to text about a week that opened at ``opens_at``, and when the text is no longer worth sending.

    Weeks open at midnight: the text waits for the local send window (never quiet hours), on the day the
    week opened or, if the run comes after the window has closed, on the next day. It expires when that
    day's window closes.
    """
    start = max(now, opens_at).astimezone(zone)
    day = start.date()
    window_start = dt.datetime.combine(day, window[0], tzinfo=zone)
    window_end = dt.datetime.combine(day, window[1], tzinfo=zone)
    if start >= window_end:
        day += dt.timedelta(days=1)
        window_start = dt.datetime.combine(day, window[0], tzinfo=zone)
        window_end = dt.datetime.combine(day, window[1], tzinfo=zone)
    due = max(start, window_start)
    return due.astimezone(dt.UTC), window_end.astimezone(dt.UTC)


def midnights_between(since: dt.datetime, until: dt.datetime, zone: ZoneInfo) -> list[dt.date]:
    """The local dates whose midnight falls in (since, until]: the days on which weeks opened in that span."""
    days = []
    day = local_date(since, zone) + dt.timedelta(days=1)
    while local_midnight(day, zone) <= until:
        days.append(day)
        day += dt.timedelta(days=1)
    return days


def nudge_week(
    newly_recorded: Sequence[Opening], *, activated_at: dt.datetime | None, now: dt.datetime
) -> Opening | None:
    """Of the weeks one run has just recorded for a patient, the one worth a text: only the newest, only if
    it opened within NUDGE_WITHIN, and not one that opened before the patient had an account (week 1 of a
    general track opens at midnight on the day they sign up, while they are looking at it)."""
    if not newly_recorded:
        return None
    newest = max(newly_recorded, key=lambda w: w.opens_at)
    if newest.opens_at <= now - NUDGE_WITHIN:
        return None
    if activated_at is not None and newest.opens_at < activated_at:
        return None
    return newest
