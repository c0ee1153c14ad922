"""Concurrency: a goal form sent twice at once (a double tap) leaves one goal. Each thread runs the service
in its own transaction, as a request would (see tests/races.py)."""

import datetime as dt

from sqlalchemy import func, select

from portal.db import utcnow
from portal.diary import services
from portal.diary.models import Goal
from tests import factories
from tests.races import count_together


def _values(**kw):
    values = {"what": "Swim", "how_much": "2 lengths, twice a week",
              "target_date": dt.date.today() + dt.timedelta(days=28), "why": "I used to love it", "confidence": 8}
    return services.GoalValues(**{**values, **kw})


def _add(db, patient_id, values):
    def job():
        with db.transaction() as s:
            return services.add_goal(s, patient_id, values, now=utcnow()).goal.id
    return job


def test_a_goal_sent_twice_at_once_is_added_once(session, race_db):
    patient = factories.create_patient(session)
    outcomes = count_together([_add(race_db, patient.id, _values())] * 6)
    assert len(outcomes) == 1 and sum(outcomes.values()) == 6, outcomes
    assert session.scalar(select(func.count()).select_from(Goal)) == 1


def test_different_goals_sent_at_once_are_all_added(session, race_db):
    patient = factories.create_patient(session)
    outcomes = count_together([_add(race_db, patient.id, _values(what=f"Swim {n}")) for n in range(4)])
    assert len(outcomes) == 4, outcomes
    assert session.scalar(select(func.count()).select_from(Goal)) == 4
