"""Diary, goal, check-in and plan forms fed arbitrary text never answer 500 and never write half a record."""

import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select

from portal.diary.models import DiaryEntry, FlareUpPlan, Goal, GoalCheckIn
from tests.diary.factories import create_goal, today
from tests.pages import csrf_token, get_page

TEXT = st.one_of(
    st.just(""),
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=120),
    st.integers(min_value=100, max_value=2000).map(lambda n: "\u00e9\U0001f600" * n),
    st.sampled_from(["0", "10", "11", "-1", "5", " 3 ", "1e3", "2147483648", "a\x00b", "=1+1", "\r\n" * 40,
                     "done", "partly", "achieved", "active", "2026-02-30"]),
)
# Days near the edges of the fillable week, and not dates at all.
DAY = st.one_of(TEXT, st.integers(min_value=-3, max_value=10).map(
    lambda n: (today() - dt.timedelta(days=n)).isoformat()))
FUZZ = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.data_too_large])


def _count(session, model):
    return session.scalar(select(func.count()).select_from(model))


def _post(client, url, values):
    token = csrf_token(get_page(client, url))
    return client.post(url, data={**values, "csrf_token": token})


@FUZZ
@given(values=st.fixed_dictionaries({"pain": TEXT, "sleep": TEXT, "mood": TEXT, "activity": TEXT, "note": TEXT}),
       day=DAY)
def test_diary_entry_form(patient_client, session, values, day):
    session.execute(delete(DiaryEntry))
    session.commit()
    response = _post(patient_client, "/diary", {**values, "day": day})
    assert response.status_code in (302, 400)
    entries = session.scalars(select(DiaryEntry)).all()
    if response.status_code == 400:
        assert entries == []
        return
    [entry] = entries
    assert 0 <= entry.pain <= 10 and all(1 <= v <= 5 for v in (entry.sleep, entry.mood, entry.activity))
    assert today() - dt.timedelta(days=7) <= entry.entry_date <= today()
    assert len(entry.note) <= 500 and "\x00" not in entry.note


GOAL_FIELDS = ["what", "how_much", "target_date[day]", "target_date[month]", "target_date[year]", "why",
               "confidence"]


@FUZZ
@given(values=st.fixed_dictionaries({name: TEXT for name in GOAL_FIELDS}))
def test_goal_forms(patient_client, session, values):
    before = _count(session, Goal)
    response = _post(patient_client, "/goals/new", values)
    assert response.status_code in (302, 400)
    assert _count(session, Goal) == before + (response.status_code == 302)
    goal = create_goal(session, patient_client.user.patient_id)
    edited = _post(patient_client, f"/goals/{goal.id}/edit", values)
    assert edited.status_code in (302, 400)
    session.expire_all()
    changed = session.get(Goal, goal.id)
    if edited.status_code == 400:
        assert (changed.what, changed.confidence) == ("Walk to the park", 7)
    else:
        assert 0 <= changed.confidence <= 10 and 0 < len(changed.what) <= 200


@FUZZ
@given(values=st.fixed_dictionaries({"outcome": TEXT, "note": TEXT}), status=TEXT)
def test_check_in_and_status_forms(patient_client, session, values, status):
    goal = create_goal(session, patient_client.user.patient_id)
    response = _post(patient_client, f"/goals/{goal.id}/check-in", values)
    assert response.status_code in (302, 400)
    rows = session.scalars(select(GoalCheckIn).where(GoalCheckIn.goal_id == goal.id)).all()
    assert len(rows) == (response.status_code == 302)
    token = csrf_token(get_page(patient_client, f"/goals/{goal.id}"))
    changed = patient_client.post(f"/goals/{goal.id}/status", data={"status": status, "csrf_token": token})
    assert changed.status_code in (302, 400)
    session.expire_all()
    assert session.get(Goal, goal.id).status == (status if changed.status_code == 302 else "active")


@FUZZ
@given(values=st.fixed_dictionaries({name: TEXT for name in
                                      ["what_helps", "what_to_reduce", "who_to_tell", "when_to_seek_help"]}))
def test_flare_plan_form(patient_client, session, values):
    session.execute(delete(FlareUpPlan))
    session.commit()
    response = _post(patient_client, "/flare-up-plan", values)
    assert response.status_code in (302, 400)
    plans = session.scalars(select(FlareUpPlan)).all()
    assert len(plans) == (response.status_code == 302)
    for plan in plans:
        assert not plan.is_empty
        assert all(len(getattr(plan, name)) <= 600 for name in values)
