"""`make run`'s demo data: what a demo patient sees must be there from the first sign-in."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from portal import demo_data
from portal.dates import london_today
from portal.db import utcnow
from portal.diary.models import DiaryEntry, FlareUpPlan, Goal, GoalCheckIn
from portal.patients.models import Patient


def test_demo_patients_of_both_tiers_have_a_month_of_diary_a_goal_and_today_left_to_fill_in(session, domain):
    now = utcnow()
    today = london_today(now)
    demo_data.load(session, domain, today=today, now=now, base_url="http://127.0.0.1")
    session.commit()
    for n, tier in ((1, 1), (2, 2)):
        patient = session.scalars(select(Patient).where(Patient.mobile == demo_data.demo_mobile(n))).one()
        assert patient.tier == tier
        days = set(session.scalars(select(DiaryEntry.entry_date).where(DiaryEntry.patient_id == patient.id)))
        assert today not in days, "today is left for the demo patient to fill in"
        assert min(days) >= today - dt.timedelta(weeks=4) and 20 <= len(days) < 28
        goal = session.scalars(select(Goal).where(Goal.patient_id == patient.id)).one()
        assert session.scalars(select(GoalCheckIn).where(GoalCheckIn.goal_id == goal.id)).all()
    plans = session.scalars(select(FlareUpPlan)).all()
    assert len(plans) == 1 and not plans[0].is_empty


def test_demo_patients_part_way_through_a_course_read_their_course_week(session, domain):
    from portal.auth.models import User
    from portal.selfcare import services as selfcare

    now = utcnow()
    logins = demo_data.load(session, domain, today=london_today(now), now=now, base_url="http://127.0.0.1")
    session.commit()
    expected = {"07700 900184": ("tier-1-group", 3), "07700 900006": ("tier-2-programme", 5)}
    assert expected.keys() <= {login.sign_in_as for login in logins}
    for sign_in, (track, week) in expected.items():
        mobile = "+44" + sign_in.replace(" ", "")[1:]
        user = session.scalars(select(User).join(Patient).where(Patient.mobile == mobile)).one()
        mine = selfcare.reading_for_patient(session, domain, user.patient, activated_at=user.created_at, now=now)
        this_week = mine.this_week()
        assert (this_week.track, this_week.week) == (track, week)


def test_make_run_prints_every_demo_sign_in(app, session):
    from portal.auth.models import User
    from portal.cli import main

    result = app.test_cli_runner().invoke(main, ["demo-data"])
    assert result.exit_code == 0, result.output
    staff = session.scalars(select(User.email).where(User.email.is_not(None))).all()
    patients = session.scalars(select(Patient.mobile).join(User, User.patient_id == Patient.id)).all()
    assert len(staff) == 4 and len(patients) == 5
    for email in staff:
        assert email in result.output
    for mobile in patients:
        assert f"07700 900{mobile[-3:]}" in result.output


@pytest.mark.parametrize("hour", [10, 19])
@pytest.mark.parametrize("weekday", range(7))
def test_the_demo_groups_share_no_room_or_facilitator_at_the_same_time(session, domain, weekday, hour):
    """Whatever day and time the demo is loaded (the running group meets an hour before loading, so an evening
    load puts it on the evening groups' time)."""
    from portal.booking.models import Cohort
    from portal.booking.sessions import clashes

    today = dt.date(2026, 11, 23) + dt.timedelta(days=weekday)
    now = dt.datetime.combine(today, dt.time(hour, 30), tzinfo=dt.UTC)
    demo_data.load(session, domain, today=today, now=now, base_url="http://127.0.0.1")
    for cohort in session.scalars(select(Cohort)):
        planned = [(s.starts_at, s.ends_at) for s in cohort.sessions]
        assert clashes(session, venue=cohort.venue, facilitators=list(cohort.facilitators), planned=planned,
                       other_than=cohort.id) == [], f"cohort {cohort.id} ({cohort.service_key})"
