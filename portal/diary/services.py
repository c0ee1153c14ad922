"""The patient's diary, goals with weekly check-ins, and flare-up plan.

Every function takes the patient's id from the caller, which has it from the signed-in patient: a record is
only ever read or changed through its owner, so another patient's id finds nothing.

The three "one per ..." records (a diary day, a goal's week, the flare-up plan) are written with one
``INSERT ... ON CONFLICT DO UPDATE`` each: a double tap, or two tabs, update one row, never add a second, and
the diary POST costs one statement.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import Session

from portal.db import read_rows, upsert_insert
from portal.diary.models import PLAN_SECTIONS, DiaryEntry, FlareUpPlan, Goal, GoalCheckIn
from portal.patients.models import Patient

# How far back a missed day may be filled in: today and the 7 days before it.
BACKFILL_DAYS = 7
TREND_WEEKS = (4, 12)


class DiaryError(ValueError):
    """The change cannot be made; the message is fit to show next to the field at fault."""


class FutureDay(DiaryError):
    def __init__(self) -> None:
        super().__init__("You cannot fill in a day that has not happened yet")


class TooLongAgo(DiaryError):
    def __init__(self) -> None:
        super().__init__(f"You can only fill in today or the {BACKFILL_DAYS} days before it")


class DayFilledIn(DiaryError):
    """The day chosen already has an entry, and it is not the one the form was showing."""

    def __init__(self, day: dt.date) -> None:
        super().__init__(f"There is already an entry for {day.isoformat()}")
        self.day = day


class GoalNotFound(LookupError):
    """Not a goal of this patient (answer 404)."""


class GoalClosed(DiaryError):
    def __init__(self) -> None:
        super().__init__("This goal is finished. Start working on it again to check in")


# Diary -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EntryValues:
    pain: int
    sleep: int
    mood: int
    activity: int
    note: str = ""


def fillable_days(today: dt.date) -> list[dt.date]:
    """The days a patient may fill in, newest first: today and the BACKFILL_DAYS before it."""
    return [today - dt.timedelta(days=n) for n in range(BACKFILL_DAYS + 1)]


def check_fillable(day: dt.date, *, today: dt.date) -> None:
    if day > today:
        raise FutureDay()
    if day < today - dt.timedelta(days=BACKFILL_DAYS):
        raise TooLongAgo()


def save_entry(
    session: Session, patient_id: int, day: dt.date, values: EntryValues, *, today: dt.date, now: dt.datetime,
    shown_day: dt.date | None,
) -> int:
    """Record the patient's entry for ``day`` (their local date), or replace that day's answers. Returns its id.

    ``shown_day`` is the day whose entry the form was showing. Only that day's entry is replaced: when the patient
    moves the form to another day that is already filled in, the answers they were looking at belong to a different
    day, so DayFilledIn is raised and both entries stay as they were.

    One statement, whatever was there: the patient and the day are unique together, so submitting twice
    leaves one entry with the last answers. Raises FutureDay or TooLongAgo for a day that cannot be filled in.
    """
    check_fillable(day, today=today)
    connection = session.connection()
    statement = (_upsert_entry if day == shown_day else _insert_entry)(connection.dialect.name)
    entry_id = connection.execute(statement, {
        "patient_id": patient_id, "entry_date": day, "pain": values.pain, "sleep": values.sleep,
        "mood": values.mood, "activity": values.activity, "note": values.note.strip(),
        "created_at": now, "updated_at": now,
    }).scalar_one_or_none()
    if entry_id is None:
        raise DayFilledIn(day)
    return entry_id


def _insert(model, dialect: str, *, columns: tuple[str, ...]):
    """The dialect's INSERT of ``columns`` with bound parameters, to add an ON CONFLICT clause to."""
    table = model.__table__
    return upsert_insert(dialect)(model).values({name: bindparam(name, type_=table.c[name].type) for name in columns})


def _upsert(model, dialect: str, *, columns: tuple[str, ...], key: tuple[str, ...], keep: tuple[str, ...] = ()):
    """INSERT ... ON CONFLICT (key) DO UPDATE SET every column but the key, ``keep`` and created_at,
    RETURNING id: built once per model and dialect, with bound parameters."""
    table = model.__table__
    statement = _insert(model, dialect, columns=columns)
    unchanged = set(key) | set(keep) | {"created_at"}
    return statement.on_conflict_do_update(
        index_elements=list(key),
        set_={name: statement.excluded[name] for name in columns if name not in unchanged},
    ).returning(table.c.id)


_ENTRY_COLUMNS = (
    "patient_id", "entry_date", "pain", "sleep", "mood", "activity", "note", "created_at", "updated_at")


@functools.cache
def _upsert_entry(dialect: str):
    return _upsert(DiaryEntry, dialect, key=("patient_id", "entry_date"), columns=_ENTRY_COLUMNS)


@functools.cache
def _insert_entry(dialect: str):
    """A new day's entry, or nothing (no id returned) when the day already has one: still one statement."""
    return _insert(DiaryEntry, dialect, columns=_ENTRY_COLUMNS).on_conflict_do_nothing(
        index_elements=["patient_id", "entry_date"]).returning(DiaryEntry.__table__.c.id)


def entries_between(session: Session, patient_id: int, first: dt.date, last: dt.date) -> dict[dt.date, DiaryEntry]:
    """The patient's entries from ``first`` to ``last`` (both included), by day."""
    rows = session.scalars(
        select(DiaryEntry)
        .where(DiaryEntry.patient_id == patient_id, DiaryEntry.entry_date.between(first, last))
        .order_by(DiaryEntry.entry_date)
    )
    return {entry.entry_date: entry for entry in rows}


_FILLED_IN = (
    select(DiaryEntry.id)
    .where(DiaryEntry.patient_id == bindparam("patient_id"), DiaryEntry.entry_date == bindparam("day"))
)


def filled_in(session: Session, patient_id: int, day: dt.date) -> bool:
    """Whether the patient has an entry for ``day`` (the home page asks about today)."""
    return read_rows(session, _FILLED_IN, {"patient_id": patient_id, "day": day}).first() is not None


@dataclass(frozen=True)
class EntryPage:
    """What the entry form shows for one day."""

    day: dt.date
    entry: DiaryEntry | None
    # The answers to start from when the day has no entry yet: the latest entry's of the fillable week.
    defaults_from: DiaryEntry | None
    # The fillable days, newest first, each with its entry if there is one.
    recent: list[tuple[dt.date, DiaryEntry | None]]


def entry_page(session: Session, patient_id: int, day: dt.date, *, today: dt.date) -> EntryPage:
    days = fillable_days(today)
    found = entries_between(session, patient_id, days[-1], today)
    entry = found.get(day)
    # Start an empty day from the latest answers of the week: most days are much like the last one filled in.
    others = [found[d] for d in sorted(found) if d != day]
    defaults_from = others[-1] if entry is None and others else None
    return EntryPage(day=day, entry=entry, defaults_from=defaults_from, recent=[(d, found.get(d)) for d in days])


@dataclass(frozen=True)
class Trend:
    """Every day of the period, oldest first, with the entries found (a missing day is a gap)."""

    first: dt.date
    last: dt.date
    entries: dict[dt.date, DiaryEntry]

    @property
    def days(self) -> list[dt.date]:
        return [self.first + dt.timedelta(days=n) for n in range((self.last - self.first).days + 1)]

    def series(self, name: str) -> list[int | None]:
        return [getattr(self.entries[day], name) if day in self.entries else None for day in self.days]

    def average(self, name: str) -> float | None:
        values = [getattr(entry, name) for entry in self.entries.values()]
        return sum(values) / len(values) if values else None


def trend(session: Session, patient_id: int, *, weeks: int, today: dt.date) -> Trend:
    """The last ``weeks`` weeks up to today (4 or 12)."""
    if weeks not in TREND_WEEKS:
        raise ValueError(f"a trend covers {' or '.join(map(str, TREND_WEEKS))} weeks, not {weeks}")
    first = today - dt.timedelta(days=weeks * 7 - 1)
    return Trend(first=first, last=today, entries=entries_between(session, patient_id, first, today))


CSV_HEADER = ("date", "pain (0 to 10)", "sleep (1 to 5)", "mood (1 to 5)", "activity (1 to 5)", "pacing note")
# A cell starting with one of these is read as a formula by spreadsheet programs (CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: str) -> str:
    """Text a spreadsheet shows as text: a leading formula character is escaped with a quote."""
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def export_csv(session: Session, patient_id: int) -> str:
    """All the patient's entries, oldest first, as CSV text (dates as YYYY-MM-DD)."""
    entries = session.scalars(
        select(DiaryEntry).where(DiaryEntry.patient_id == patient_id).order_by(DiaryEntry.entry_date)
    )
    return csv_text(
        (e.entry_date.isoformat(), e.pain, e.sleep, e.mood, e.activity, spreadsheet_safe(e.note or ""))
        for e in entries
    )


def csv_text(rows: Iterable[tuple]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    writer.writerows(rows)
    return buffer.getvalue()


# Goals -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GoalValues:
    what: str
    how_much: str
    target_date: dt.date
    why: str
    confidence: int


def week_start(day: dt.date) -> dt.date:
    """The Monday of the ISO week ``day`` falls in."""
    return day - dt.timedelta(days=day.weekday())


def goals_for(session: Session, patient_id: int) -> list[Goal]:
    """The patient's goals: active ones first (soonest target first), then finished ones (latest first)."""
    goals = list(session.scalars(select(Goal).where(Goal.patient_id == patient_id)))
    active = sorted((g for g in goals if g.is_active), key=lambda g: (g.target_date, g.id))
    finished = sorted((g for g in goals if not g.is_active), key=lambda g: (g.closed_at, g.id), reverse=True)
    return active + finished


def check_ins_for_week(session: Session, goals: Iterable[Goal], week: dt.date) -> dict[int, GoalCheckIn]:
    """Each goal's check-in for the week starting ``week``, by goal id (goals without one are left out)."""
    ids = [goal.id for goal in goals]
    if not ids:
        return {}
    rows = session.scalars(select(GoalCheckIn).where(GoalCheckIn.goal_id.in_(ids), GoalCheckIn.week_start == week))
    return {row.goal_id: row for row in rows}


def goal_for_patient(session: Session, patient_id: int, goal_id: int) -> Goal:
    goal = session.scalars(select(Goal).where(Goal.id == goal_id, Goal.patient_id == patient_id)).first()
    if goal is None:
        raise GoalNotFound(goal_id)
    return goal


@dataclass(frozen=True)
class GoalAdded:
    goal: Goal
    new: bool  # False: the same goal was active already (the form sent twice), and nothing was added


def add_goal(session: Session, patient_id: int, values: GoalValues, *, now: dt.datetime) -> GoalAdded:
    """Add an active goal, or return the patient's active goal that says exactly the same, so a form sent
    twice (a double tap, or a resend after a slow reply) leaves one goal."""
    # FOR UPDATE on the patient serialises their goal requests on PostgreSQL, so the second one sees the
    # first one's goal; SQLite's writers already run one at a time (BEGIN IMMEDIATE).
    session.execute(select(Patient.id).where(Patient.id == patient_id).with_for_update())
    same = session.scalars(select(Goal).where(
        Goal.patient_id == patient_id, Goal.status == "active", Goal.what == values.what,
        Goal.how_much == values.how_much, Goal.target_date == values.target_date, Goal.why == values.why,
        Goal.confidence == values.confidence,
    ).order_by(Goal.id).limit(1)).first()
    if same is not None:
        return GoalAdded(same, new=False)
    goal = Goal(patient_id=patient_id, what=values.what, how_much=values.how_much, target_date=values.target_date,
                why=values.why, confidence=values.confidence, status="active", created_at=now, updated_at=now)
    session.add(goal)
    session.flush()
    return GoalAdded(goal, new=True)


def change_goal(session: Session, goal: Goal, values: GoalValues, *, now: dt.datetime) -> None:
    goal.change(what=values.what, how_much=values.how_much, target_date=values.target_date, why=values.why,
                confidence=values.confidence, now=now)
    session.flush()


def set_goal_status(session: Session, goal: Goal, status: str, *, now: dt.datetime) -> None:
    """Mark the goal achieved or stopped, or ``active`` to work on it again."""
    if status == "active":
        goal.reopen(now=now)
    else:
        goal.close(status, now=now)
    session.flush()


def check_in(
    session: Session, goal: Goal, *, outcome: str, note: str, today: dt.date, now: dt.datetime
) -> int:
    """Record how the goal went this (ISO) week, or replace this week's answer. Returns the check-in's id."""
    if not goal.is_active:
        raise GoalClosed()
    connection = session.connection()
    return connection.execute(_upsert_check_in(connection.dialect.name), {
        "goal_id": goal.id, "week_start": week_start(today), "outcome": outcome, "note": note.strip(),
        "created_at": now, "updated_at": now,
    }).scalar_one()


@functools.cache
def _upsert_check_in(dialect: str):
    return _upsert(GoalCheckIn, dialect, key=("goal_id", "week_start"),
                   columns=("goal_id", "week_start", "outcome", "note", "created_at", "updated_at"))


def check_in_history(session: Session, goal: Goal, *, limit: int = 52) -> list[GoalCheckIn]:
    return list(session.scalars(
        select(GoalCheckIn).where(GoalCheckIn.goal_id == goal.id).order_by(GoalCheckIn.week_start.desc()).limit(limit)
    ))


# Flare-up plan ---------------------------------------------------------------------------------------------


def flare_plan_for(session: Session, patient_id: int) -> FlareUpPlan | None:
    return session.scalars(select(FlareUpPlan).where(FlareUpPlan.patient_id == patient_id)).first()


def save_flare_plan(session: Session, patient_id: int, sections: Mapping[str, str], *, now: dt.datetime) -> int:
    """Write the patient's plan (their only one), replacing every part. Returns its id."""
    unknown = set(sections) - set(PLAN_SECTIONS)
    if unknown:
        raise ValueError(f"unknown flare-up plan parts: {sorted(unknown)}")
    connection = session.connection()
    values = {name: (sections.get(name) or "").strip() for name in PLAN_SECTIONS}
    return connection.execute(_upsert_plan(connection.dialect.name), {
        "patient_id": patient_id, **values, "created_at": now, "updated_at": now,
    }).scalar_one()


def delete_flare_plan(session: Session, patient_id: int) -> int | None:
    """Delete the patient's plan. Returns the id it had, or None if they had none (a second tap deletes nothing)."""
    return session.execute(
        delete(FlareUpPlan).where(FlareUpPlan.patient_id == patient_id).returning(FlareUpPlan.id)
    ).scalar_one_or_none()


@functools.cache
def _upsert_plan(dialect: str):
    return _upsert(FlareUpPlan, dialect, key=("patient_id",),
                   columns=("patient_id", *PLAN_SECTIONS, "created_at", "updated_at"))
