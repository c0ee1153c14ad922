"""Diary test data: entries, goals and check-ins for a patient, committed so the app under test sees them."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from portal.dates import london_today
from portal.db import utcnow
from portal.diary.models import DiaryEntry, Goal, GoalCheckIn


def today() -> dt.date:
    return london_today(utcnow())


def create_entry(session: Session, patient_id: int, day: dt.date, *, pain: int = 5, sleep: int = 3, mood: int = 3,
                 activity: int = 3, note: str = "") -> DiaryEntry:
    entry = DiaryEntry(patient_id=patient_id, entry_date=day, pain=pain, sleep=sleep, mood=mood, activity=activity,
                       note=note)
    session.add(entry)
    session.commit()
    return entry


def create_goal(session: Session, patient_id: int, **kw) -> Goal:
    values = {"what": "Walk to the park", "how_much": "10 minutes, 3 times a week",
              "target_date": today() + dt.timedelta(days=30), "why": "To see my grandchildren play",
              "confidence": 7, "status": "active"}
    values.update(kw)
    if values["status"] != "active":
        values.setdefault("closed_at", utcnow())
    goal = Goal(patient_id=patient_id, **values)
    session.add(goal)
    session.commit()
    return goal


def create_check_in(session: Session, goal: Goal, week_start: dt.date, *, outcome: str = "done",
                    note: str = "") -> GoalCheckIn:
    check_in = GoalCheckIn(goal_id=goal.id, week_start=week_start, outcome=outcome, note=note)
    session.add(check_in)
    session.commit()
    return check_in
