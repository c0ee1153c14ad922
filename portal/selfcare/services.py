"""Which reading a patient sees this week.

Week 1 opens on activation (or, in a course, on the day of session 1) and a new week opens every seven
days. Later issues add the release table and the course-matched tracks; this is the one rule today.
"""

from __future__ import annotations

import datetime as dt

from portal.selfcare.content_loader import Reading, load_library


def general_track(tier: int) -> str:
    return f"tier-{tier}-general"


def current_reading(*, tier: int, started: dt.date | None, today: dt.date) -> Reading | None:
    """The newest week the patient has reached on their tier's track (week 1 if not started)."""
    library = load_library()
    track = general_track(tier)
    week = 1 if started is None else max(1, (today - started).days // 7 + 1)
    available = [w for (t, w) in library if t == track and w <= week]
    return library[(track, max(available))] if available else None
