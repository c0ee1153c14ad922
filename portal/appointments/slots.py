"""Generating appointment slots from clinicians' availability templates.

Safe to run as often as you like (it is a scheduled job, and admins can run it by hand): a slot is
inserted only if the clinician has none at that start, so a second run, or two at once, adds nothing.
Each slot is placed at its local wall-clock time in Europe/London first and only then converted to UTC,
so a 9am clinic is at 9am on both sides of a clock change.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from portal.appointments.models import AppointmentSlot, AvailabilityTemplate, ClinicianLeave
from portal.booking.holidays import england_bank_holiday
from portal.dates import london_today
from portal.db import upsert_insert
from portal.settings import DomainConfig

# Rows per INSERT: well under SQLite's limit of bound parameters per statement.
_BATCH = 400


def local_slot_times(
    day: dt.date, *, start: dt.time, end: dt.time, minutes: int, timezone: str
) -> Iterator[tuple[dt.datetime, dt.datetime]]:
    """(start, end) in UTC of each whole slot between ``start`` and ``end`` wall-clock time on ``day``.

    Slots are counted in wall-clock time, so a 9:00 to 12:00 clinic has the same slots every week. A wall
    time that does not exist (the hour skipped in March) is left out rather than shifted onto another
    slot; one that happens twice (October) is taken at its first occurrence. A slot the clocks change during
    is left out too: its times would read wrongly ("1:30am to 1am"), as a group session's would (a cohort
    refuses those).
    """
    zone = ZoneInfo(timezone)
    length = dt.timedelta(minutes=minutes)
    cursor = dt.datetime.combine(day, start)
    last_start = dt.datetime.combine(day, end) - length
    while cursor <= last_start:
        local = cursor.replace(tzinfo=zone)
        utc = local.astimezone(dt.UTC)
        ends = utc + length
        if utc.astimezone(zone).replace(tzinfo=None) == cursor and \
                ends.astimezone(zone).replace(tzinfo=None) == cursor + length:
            yield utc, ends
        cursor += length


def _days(first: dt.date, last: dt.date) -> Iterator[dt.date]:
    day = first
    while day <= last:
        yield day
        day += dt.timedelta(days=1)


def planned_slots(
    templates: Iterable[AvailabilityTemplate],
    leave: Iterable[ClinicianLeave],
    *,
    first_day: dt.date,
    last_day: dt.date,
    now: dt.datetime,
) -> list[dict]:
    """The slot rows the templates call for between two local days, without leave days, bank holidays
    or times already past."""
    leave_by_clinician: dict[int, list[ClinicianLeave]] = {}
    for item in leave:
        leave_by_clinician.setdefault(item.clinician_id, []).append(item)
    rows = []
    for template in templates:
        away = leave_by_clinician.get(template.clinician_id, [])
        for day in _days(max(first_day, template.valid_from), min(last_day, template.valid_until or last_day)):
            if not template.covers(day) or england_bank_holiday(day) or any(item.covers(day) for item in away):
                continue
            for starts, ends in local_slot_times(
                day, start=template.start_time, end=template.end_time, minutes=template.slot_minutes,
                timezone=template.timezone,
            ):
                if starts <= now:
                    continue
                rows.append({
                    "clinician_id": template.clinician_id, "template_id": template.id,
                    "service_key": template.service_key, "team": template.team, "venue_id": template.venue_id,
                    "starts_at": starts, "ends_at": ends, "status": "open", "created_at": now,
                })
    return rows


def generate_slots(session: Session, domain: DomainConfig, *, now: dt.datetime) -> int:
    """Create the slots of the next ``slot_weeks_ahead`` weeks that do not exist yet; return how many."""
    today = london_today(now)
    horizon = today + dt.timedelta(weeks=domain.policy.booking.slot_weeks_ahead)
    templates = session.scalars(
        select(AvailabilityTemplate).where(
            AvailabilityTemplate.valid_from <= horizon,
            or_(AvailabilityTemplate.valid_until.is_(None), AvailabilityTemplate.valid_until >= today),
        ).order_by(AvailabilityTemplate.id)
    ).all()
    if not templates:
        return 0
    leave = session.scalars(
        select(ClinicianLeave).where(
            ClinicianLeave.clinician_id.in_({t.clinician_id for t in templates}),
            ClinicianLeave.last_day >= today,
            ClinicianLeave.first_day <= horizon,
        )
    ).all()
    rows = planned_slots(templates, leave, first_day=today, last_day=horizon, now=now)
    insert = upsert_insert(session.get_bind().dialect.name)
    created = 0
    for offset in range(0, len(rows), _BATCH):
        statement = (
            insert(AppointmentSlot)
            .values(rows[offset:offset + _BATCH])
            .on_conflict_do_nothing(index_elements=["clinician_id", "starts_at"])
            # RETURNING counts the rows really inserted (rowcount is unreliable here on PostgreSQL).
            .returning(AppointmentSlot.id)
        )
        created += len(session.execute(statement).all())
    return created
