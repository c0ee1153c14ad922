"""iCalendar files: events at Europe/London wall-clock times, with a VTIMEZONE that says what that means.

Each event keeps one UID for its whole life, so a calendar app that subscribed to the feed updates a moved
session in place (higher SEQUENCE) and strikes out a cancelled one (STATUS:CANCELLED) instead of duplicating it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event, Timezone, TimezoneDaylight, TimezoneStandard

LONDON = "Europe/London"
PRODID = "-//NHS community pain management service//patient portal//EN"


@dataclass(frozen=True)
class CalendarEvent:
    uid: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    summary: str
    location: str
    description: str
    cancelled: bool = False
    # Raised each time the event changes (moved, then cancelled), so subscribers take the newer copy.
    sequence: int = 0


def _london_timezone() -> Timezone:
    """Europe/London since 1996: GMT, and BST from the last Sunday of March to the last Sunday of October."""
    zone = Timezone()
    zone.add("tzid", LONDON)
    summer = TimezoneDaylight()
    summer.add("tzname", "BST")
    # A VTIMEZONE's DTSTART is local time with no zone, by RFC 5545.
    summer.add("dtstart", dt.datetime(1970, 3, 29, 1, 0))  # noqa: DTZ001
    summer.add("tzoffsetfrom", dt.timedelta(hours=0))
    summer.add("tzoffsetto", dt.timedelta(hours=1))
    summer.add("rrule", {"freq": "yearly", "bymonth": 3, "byday": "-1su"})
    winter = TimezoneStandard()
    winter.add("tzname", "GMT")
    winter.add("dtstart", dt.datetime(1970, 10, 25, 2, 0))  # noqa: DTZ001
    winter.add("tzoffsetfrom", dt.timedelta(hours=1))
    winter.add("tzoffsetto", dt.timedelta(hours=0))
    winter.add("rrule", {"freq": "yearly", "bymonth": 10, "byday": "-1su"})
    zone.add_component(summer)
    zone.add_component(winter)
    return zone


def calendar(events: list[CalendarEvent], *, name: str, now: dt.datetime) -> bytes:
    london = ZoneInfo(LONDON)
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", name)
    cal.add_component(_london_timezone())
    for item in events:
        event = Event()
        event.add("uid", item.uid)
        event.add("dtstamp", now.astimezone(dt.UTC))
        event.add("dtstart", item.starts_at.astimezone(london))
        event.add("dtend", item.ends_at.astimezone(london))
        event.add("summary", item.summary)
        event.add("location", item.location)
        event.add("description", item.description)
        event.add("sequence", item.sequence)
        event.add("status", "CANCELLED" if item.cancelled else "CONFIRMED")
        cal.add_component(event)
    return cal.to_ical()
