"""The diary, goals and plan are the patient's own: another patient's ids answer 404, staff get 403."""

import pytest
from sqlalchemy import select

from portal.auth.models import Role
from portal.diary.models import Goal, GoalCheckIn
from tests import factories
from tests.conftest import sign_in
from tests.diary.factories import create_goal, today
from tests.pages import csrf_token, get_page

PAGES = ["/diary", "/diary/trends", "/diary/export.csv", "/goals", "/goals/new", "/goals/{goal}", "/goals/{goal}/edit",
         "/goals/{goal}/check-in", "/flare-up-plan", "/flare-up-plan/print"]
POSTS = ["/diary", "/goals/new", "/goals/{goal}/edit", "/goals/{goal}/check-in", "/goals/{goal}/status",
         "/flare-up-plan"]


@pytest.fixture
def others_goal(session):
    return create_goal(session, factories.create_patient(session).id, what="Someone else's goal")


@pytest.mark.parametrize("url", ["/goals/{goal}", "/goals/{goal}/edit", "/goals/{goal}/check-in"])
def test_another_patients_goal_is_not_found(patient_client, others_goal, url):
    assert patient_client.get(url.format(goal=others_goal.id)).status_code == 404


@pytest.mark.parametrize("url, data", [
    ("/goals/{goal}/edit", {"what": "Mine now", "how_much": "x", "why": "x", "confidence": "5",
                            "target_date[day]": "1", "target_date[month]": "1", "target_date[year]": "2099"}),
    ("/goals/{goal}/check-in", {"outcome": "done"}),
    ("/goals/{goal}/status", {"status": "stopped"}),
])
def test_another_patients_goal_cannot_be_changed(patient_client, session, others_goal, url, data):
    token = csrf_token(get_page(patient_client, "/goals"))
    response = patient_client.post(url.format(goal=others_goal.id), data={**data, "csrf_token": token})
    assert response.status_code == 404
    session.expire_all()
    goal = session.get(Goal, others_goal.id)
    assert (goal.what, goal.status) == ("Someone else's goal", "active")
    assert session.scalars(select(GoalCheckIn)).all() == []


def test_the_goal_list_shows_only_the_patients_own(patient_client, others_goal):
    assert "Someone else's goal" not in get_page(patient_client, "/goals").get_text()


@pytest.mark.parametrize("role", [Role.RECEPTION, Role.FACILITATOR, Role.ADMIN])
def test_staff_get_403(app, session, others_goal, role):
    staff = factories.create_staff(session, role=role)
    client = app.test_client()
    assert sign_in(client, staff.email).status_code == 302
    token = csrf_token(get_page(client, "/staff"))
    for url in PAGES:
        assert client.get(url.format(goal=others_goal.id)).status_code == 403, url
    for url in POSTS:
        response = client.post(url.format(goal=others_goal.id), data={"csrf_token": token, "day": today().isoformat()})
        assert response.status_code == 403, url


def test_anonymous_visitors_are_sent_to_sign_in(client, others_goal):
    for url in PAGES:
        response = client.get(url.format(goal=others_goal.id))
        assert response.status_code == 302 and response.headers["Location"].startswith("/sign-in"), url


def test_the_patient_menu_links_to_the_diary(patient_client):
    page = get_page(patient_client, "/")
    assert page.select_one("header a[href='/diary']").get_text(strip=True) == "Diary and goals"
