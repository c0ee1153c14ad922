"""Two planners at once, each in its own transaction and released together by a threading.Barrier, write
every reminder once; a planner racing a cancellation leaves nothing pending for what was cancelled.
The same tests run on SQLite and on PostgreSQL (make test-postgres)."""

import datetime as dt
from collections import Counter

import pytest
from sqlalchemy import func, select

from portal.appointments import services as appointments
from portal.messaging.models import SmsMessage
from portal.patients.models import Patient
from portal.reminders import services
from portal.reminders.models import ReminderCall
from tests import factories
from tests.races import run_together
from tests.reminders.helpers import appointment_at, london, plan, reminder_texts, seat_on, utc

NOW = utc(2027, 3, 21, 6)  # before every reminder of the appointments below


def _arrange(session):
    """20 appointments (3 of them for patients we may not text) and a group of 6 seats (1 not texted)."""
    venue = factories.create_venue(session)
    for number in range(20):
        appointment_at(session, london(2027, 3, 28, 9) + dt.timedelta(minutes=30 * number),
                       booked_at=NOW - dt.timedelta(days=1), venue=venue, no_texts=number % 7 == 0)
    cohort = factories.create_cohort(session, first_date=dt.date(2027, 3, 23), venue=venue)
    for number in range(6):
        seat_on(session, cohort, booked_at=NOW - dt.timedelta(days=2), no_texts=number == 0)


def _counts(session):
    session.expire_all()
    texts = session.scalar(select(func.count()).select_from(SmsMessage).where(SmsMessage.kind == "reminder"))
    distinct = session.scalar(select(func.count(func.distinct(SmsMessage.idempotency_key)))
                              .where(SmsMessage.kind == "reminder"))
    calls = session.scalar(select(func.count()).select_from(ReminderCall))
    return texts, distinct, calls


@pytest.mark.parametrize("planners", [2, 4])
def test_planners_running_at_once_write_each_reminder_once(session, race_db, planners):
    _arrange(session)
    outcomes = run_together([lambda: plan(race_db, NOW)] * planners)
    assert not [o for o in outcomes if isinstance(o, str)], outcomes
    # Each reminder was written by exactly one of the planners.
    assert sum(o.texts for o in outcomes) == 17 * 2 + 5 * 2
    assert sum(o.calls for o in outcomes) == 3 * 2 + 1 * 2
    assert _counts(session) == (44, 44, 8)
    # And a later run, alone, finds nothing to add or cancel.
    assert plan(race_db, NOW + dt.timedelta(minutes=5)) == services.PlanResult()


def test_a_planner_racing_a_cancellation_leaves_nothing_pending_after_the_next_run(session, race_db):
    appointment = appointment_at(session, london(2027, 3, 29, 10), booked_at=NOW - dt.timedelta(days=1))

    def cancel():
        with race_db.transaction() as s:
            appointments.cancel_appointment(s, factories.domain(), s.get(Patient, appointment.patient_id),
                                            appointment.id, reason="x", now=NOW)
        return "cancelled"

    outcomes = run_together([cancel, lambda: plan(race_db, NOW)])
    assert "cancelled" in outcomes, outcomes
    # Whichever committed first, the next run leaves no reminder pending for the cancelled appointment.
    plan(race_db, NOW + dt.timedelta(minutes=5))
    assert reminder_texts(session, status="pending") == []
    assert Counter(row.status for row in reminder_texts(session)) in (Counter(), Counter({"cancelled": 2}))


def test_planners_at_once_cancel_stale_reminders_once_and_plan_the_new_ones_once(session, race_db):
    from sqlalchemy import update

    from portal.appointments.models import Appointment

    _arrange(session)
    plan(race_db, NOW)
    # Half the appointments end behind planning's back (no service call), and more are booked.
    ended = session.scalars(select(Appointment.id).order_by(Appointment.id)).all()[::2]
    session.execute(update(Appointment).where(Appointment.id.in_(ended)).values(status="cancelled"))
    session.commit()
    for number in range(5):
        appointment_at(session, london(2027, 3, 27, 10) + dt.timedelta(minutes=30 * number), booked_at=NOW)
    outcomes = run_together([lambda: plan(race_db, NOW + dt.timedelta(minutes=5))] * 4)
    assert not [o for o in outcomes if isinstance(o, str)], outcomes
    # The 10 ended appointments had 2 reminders each; 2 of the ended ones (numbers 0 and 14) were on the call list.
    assert sum(o.cancelled for o in outcomes) == 8 * 2
    # The new ones are 6 days off: only their day-before reminders are still to come.
    assert sum(o.texts for o in outcomes) == 5
    assert Counter(row.status for row in reminder_texts(session)) == {"pending": 44 - 16 + 5, "cancelled": 16}
