"""Goals with weekly check-ins, and the flare-up plan with its one-page print view."""

import datetime as dt

import pytest
from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.diary.models import FlareUpPlan, Goal, GoalCheckIn
from portal.diary.services import week_start
from tests.diary.factories import create_check_in, create_goal, today
from tests.pages import csrf_token, error_for, get_page, parse


def _post(client, url, data, *, page_url=None):
    token = csrf_token(get_page(client, page_url or url))
    return client.post(url, data={**data, "csrf_token": token})


def _goal_data(**kw):
    target = today() + dt.timedelta(days=21)
    data = {"what": "Walk to the park", "how_much": "15 minutes, 3 times a week", "target_date[day]": str(target.day),
            "target_date[month]": str(target.month), "target_date[year]": str(target.year),
            "why": "To meet my friends there", "confidence": "7"}
    data.update(kw)
    return data


def test_adding_a_goal_then_seeing_it_listed(patient_client, session):
    assert "You have not set any goals yet." in get_page(patient_client, "/goals").get_text()
    response = _post(patient_client, "/goals/new", _goal_data())
    goal = session.scalars(select(Goal)).one()
    assert response.status_code == 302 and response.headers["Location"] == f"/goals/{goal.id}"
    assert (goal.patient_id, goal.what, goal.confidence, goal.status) == (
        patient_client.user.patient_id, "Walk to the park", 7, "active")
    assert goal.target_date == today() + dt.timedelta(days=21)
    listing = get_page(patient_client, "/goals")
    card = listing.find(id=f"goal-{goal.id}").find_parent("section")
    assert "15 minutes, 3 times a week" in card.get_text()
    assert "not checked in yet" in card.get_text()
    assert card.find("a", href=f"/goals/{goal.id}/check-in")
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "goal_added")).one()
    assert event.detail == f"goal {goal.id}"


def test_a_goal_sent_twice_is_one_goal_and_one_audit_event(patient_client, session):
    first = _post(patient_client, "/goals/new", _goal_data())
    again = _post(patient_client, "/goals/new", _goal_data())
    goal = session.scalars(select(Goal)).one()
    assert first.headers["Location"] == again.headers["Location"] == f"/goals/{goal.id}"
    assert len(session.scalars(select(AuditEvent).where(AuditEvent.action == "goal_added")).all()) == 1


def test_goal_problems_show_next_to_their_fields(patient_client, session):
    past = today() - dt.timedelta(days=1)
    response = _post(patient_client, "/goals/new", _goal_data(
        what="  ", how_much="x" * 201, why="", confidence="11", **{
            "target_date[day]": str(past.day), "target_date[month]": str(past.month),
            "target_date[year]": str(past.year)}))
    assert response.status_code == 400
    page = parse(response)
    assert error_for(page, "what") == "Enter what you want to do"
    assert error_for(page, "how_much") == "How much or how often must be 200 characters or fewer"
    assert error_for(page, "target_date") == "The date must be today or in the future"
    assert error_for(page, "why") == "Enter why this goal matters to you"
    assert error_for(page, "confidence") == "Select how confident you are, from 0 to 10"
    assert len(page.select(".nhsuk-error-summary a")) == 5
    assert session.scalars(select(Goal)).all() == []


@pytest.mark.parametrize("parts, message", [
    ({"target_date[day]": "", "target_date[month]": "", "target_date[year]": ""}, "Enter the date"),
    ({"target_date[month]": ""}, "The date must include a month"),
    ({"target_date[day]": "31", "target_date[month]": "2"}, "The date must be a real date"),
    ({"target_date[year]": str(today().year + 3)}, "The date must be within the next 2 years"),
])
def test_the_goal_date_is_checked(patient_client, parts, message):
    page = parse(_post(patient_client, "/goals/new", _goal_data(**parts)))
    assert error_for(page, "target_date").startswith(message)


def test_editing_a_goal_keeps_a_date_that_has_passed_but_refuses_another_past_one(patient_client, session):
    goal = create_goal(session, patient_client.user.patient_id, target_date=today() - dt.timedelta(days=5))
    page = get_page(patient_client, f"/goals/{goal.id}/edit")
    assert page.find("input", attrs={"name": "what"})["value"] == "Walk to the park"
    assert page.select_one("input[name=confidence][checked]")["value"] == "7"
    kept = goal.target_date
    response = patient_client.post(f"/goals/{goal.id}/edit", data=_goal_data(
        what="Walk round the park", **{"target_date[day]": str(kept.day), "target_date[month]": str(kept.month),
                                       "target_date[year]": str(kept.year)}, csrf_token=csrf_token(page)))
    assert response.status_code == 302
    session.expire_all()
    assert (session.get(Goal, goal.id).what, session.get(Goal, goal.id).target_date) == ("Walk round the park", kept)
    earlier = kept - dt.timedelta(days=1)
    refused = _post(patient_client, f"/goals/{goal.id}/edit", _goal_data(**{
        "target_date[day]": str(earlier.day), "target_date[month]": str(earlier.month),
        "target_date[year]": str(earlier.year)}))
    assert error_for(parse(refused), "target_date") == "The date must be today or in the future"


def test_one_check_in_per_goal_per_week(patient_client, session):
    goal = create_goal(session, patient_client.user.patient_id)
    url = f"/goals/{goal.id}/check-in"
    page = get_page(patient_client, url)
    assert f"Check in for the week starting {week_start(today()):%A} {week_start(today()).day}" in page.h1.get_text()
    first = _post(patient_client, url, {"outcome": "partly", "note": "Managed twice"})
    second = _post(patient_client, url, {"outcome": "done", "note": "Managed three times"})
    assert first.status_code == second.status_code == 302
    assert second.headers["Location"] == f"/goals/{goal.id}"
    rows = session.execute(select(GoalCheckIn.week_start, GoalCheckIn.outcome, GoalCheckIn.note)).all()
    assert rows == [(week_start(today()), "done", "Managed three times")]
    again = get_page(patient_client, url)
    assert again.select_one("input[name=outcome][checked]")["value"] == "done"
    goal_page = get_page(patient_client, f"/goals/{goal.id}")
    assert "Done: Managed three times" in goal_page.find("table").get_text(" ", strip=True)
    assert "Change this week's check-in" in goal_page.get_text()


def test_a_check_in_needs_an_answer(patient_client, session):
    goal = create_goal(session, patient_client.user.patient_id)
    response = _post(patient_client, f"/goals/{goal.id}/check-in", {"outcome": "maybe", "note": "y" * 301})
    assert response.status_code == 400
    page = parse(response)
    assert error_for(page, "outcome") == "Select how it went this week"
    assert error_for(page, "note") == "Your note must be 300 characters or fewer"
    assert session.scalars(select(GoalCheckIn)).all() == []


def test_the_goal_page_lists_earlier_check_ins(patient_client, session):
    goal = create_goal(session, patient_client.user.patient_id)
    create_check_in(session, goal, week_start(today()) - dt.timedelta(days=7), outcome="not", note="Flare-up")
    page = get_page(patient_client, f"/goals/{goal.id}")
    assert "Not this week: Flare-up" in page.find("table").get_text(" ", strip=True)
    assert "not checked in yet" in page.get_text()


@pytest.mark.parametrize("status, message", [
    ("achieved", "Well done. Your goal is marked as achieved."),
    ("stopped", "Your goal is stopped."),
])
def test_a_goal_is_marked_achieved_or_stopped_then_started_again(patient_client, session, status, message):
    goal = create_goal(session, patient_client.user.patient_id)
    response = _post(patient_client, f"/goals/{goal.id}/status", {"status": status}, page_url=f"/goals/{goal.id}")
    assert response.status_code == 302
    session.expire_all()
    assert session.get(Goal, goal.id).status == status
    page = get_page(patient_client, f"/goals/{goal.id}")
    assert message in page.get_text()
    assert page.find("input", attrs={"name": "status", "value": "active"})
    # A finished goal takes no check-in: the page sends the patient back to the goal.
    response = patient_client.get(f"/goals/{goal.id}/check-in")
    assert response.status_code == 302 and response.headers["Location"] == f"/goals/{goal.id}"
    listing = get_page(patient_client, "/goals")
    assert listing.find("h2", string="Finished goals")
    _post(patient_client, f"/goals/{goal.id}/status", {"status": "active"}, page_url=f"/goals/{goal.id}")
    session.expire_all()
    assert session.get(Goal, goal.id).status == "active"
    actions = session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert actions[-2:] == [f"goal_{status}", "goal_restarted"]


def test_an_unknown_status_is_refused(patient_client, session):
    goal = create_goal(session, patient_client.user.patient_id)
    response = _post(patient_client, f"/goals/{goal.id}/status", {"status": "deleted"}, page_url=f"/goals/{goal.id}")
    assert response.status_code == 400


# Flare-up plan

PLAN = {"what_helps": "Heat pack\nBreathing exercise", "what_to_reduce": "Hoovering", "who_to_tell": "My partner",
        "when_to_seek_help": "If it lasts over a week, call the GP on 020 7946 0000"}


def test_writing_the_plan_then_printing_it(patient_client, session):
    page = get_page(patient_client, "/flare-up-plan")
    assert "111" in page.get_text() and "999" in page.get_text()
    assert patient_client.get("/flare-up-plan/print").status_code == 302  # nothing to print yet
    response = _post(patient_client, "/flare-up-plan", PLAN)
    assert response.status_code == 302 and response.headers["Location"] == "/flare-up-plan"
    plan = session.scalars(select(FlareUpPlan)).one()
    assert (plan.patient_id, plan.what_helps) == (patient_client.user.patient_id, "Heat pack\nBreathing exercise")
    saved = get_page(patient_client, "/flare-up-plan")
    assert saved.find("textarea", attrs={"name": "who_to_tell"}).get_text() == "My partner"
    assert saved.find("a", href="/flare-up-plan/print")

    printed = get_page(patient_client, "/flare-up-plan/print")
    assert printed.h1.get_text(strip=True) == "My flare-up plan"
    sections = printed.select(".portal-print-plan__section")
    assert [s.h2.get_text(strip=True) for s in sections] == [
        "What helps me in a flare-up", "What I will cut down on or put off",
        "Who I will tell, and what I will ask them", "When I will get help"]
    assert [s.p.get_text() for s in sections] == list(PLAN.values())
    urgent = printed.select_one(".portal-print-plan .nhsuk-warning-callout").get_text(" ", strip=True)
    assert "111" in urgent and "999" in urgent
    # The print stylesheet hides the header, footer and menus, and fits the page to A4.
    assert printed.find("link", href="/static/diary.css")
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "flare_plan_saved")).one()
    assert event.detail == f"plan {plan.id}" and "Heat" not in event.detail


def test_the_print_stylesheet_hides_the_page_furniture(client):
    response = client.get("/static/diary.css")
    assert response.status_code == 200
    css = response.get_data(as_text=True)
    response.close()
    print_rules = css[css.index("@media print"):]
    for selector in (".nhsuk-header", ".nhsuk-footer", ".nhsuk-skip-link", ".nhsuk-back-link"):
        assert selector in print_rules.split("display: none")[0]
    assert "size: A4" in print_rules


def test_saving_the_plan_twice_keeps_one(patient_client, session):
    _post(patient_client, "/flare-up-plan", PLAN)
    _post(patient_client, "/flare-up-plan", {**PLAN, "what_helps": ""})
    plan = session.scalars(select(FlareUpPlan)).one()
    assert plan.what_helps == "" and plan.who_to_tell == "My partner"


def test_the_plan_can_be_deleted_after_a_confirmation(patient_client, session):
    assert patient_client.get("/flare-up-plan/delete").status_code == 302  # no plan: nothing to ask about
    assert not get_page(patient_client, "/flare-up-plan").find("a", href="/flare-up-plan/delete")
    _post(patient_client, "/flare-up-plan", PLAN)
    plan_id = session.scalars(select(FlareUpPlan.id)).one()
    link = get_page(patient_client, "/flare-up-plan").find("a", href="/flare-up-plan/delete")
    assert link.get_text(strip=True) == "Delete my plan"
    confirm = get_page(patient_client, "/flare-up-plan/delete")
    assert confirm.h1.get_text(strip=True) == "Are you sure you want to delete your flare-up plan?"
    assert confirm.find("a", href="/flare-up-plan", string="No, keep my plan")
    assert session.scalars(select(FlareUpPlan)).all(), "asking deletes nothing"
    response = _post(patient_client, "/flare-up-plan/delete", {})
    assert response.status_code == 302 and response.headers["Location"] == "/flare-up-plan"
    session.expire_all()
    assert session.scalars(select(FlareUpPlan)).all() == []
    page = get_page(patient_client, "/flare-up-plan")
    assert "Your flare-up plan is deleted." in page.get_text()
    assert all(not box.get_text() for box in page.find_all("textarea"))
    assert patient_client.get("/flare-up-plan/print").status_code == 302
    events = session.scalars(select(AuditEvent).where(AuditEvent.action == "flare_plan_deleted")).all()
    assert [(e.patient_id, e.detail) for e in events] == [(patient_client.user.patient_id, f"plan {plan_id}")]


def test_deleting_the_plan_needs_the_form_token(patient_client, session):
    _post(patient_client, "/flare-up-plan", PLAN)
    assert patient_client.post("/flare-up-plan/delete", data={}).status_code == 400
    assert session.scalars(select(FlareUpPlan)).all()


def test_plan_problems_show_next_to_their_fields(patient_client, session):
    empty = parse(_post(patient_client, "/flare-up-plan", {name: "  " for name in PLAN}))
    assert error_for(empty, "what_helps") == "Fill in at least one part of your plan"
    too_long = parse(_post(patient_client, "/flare-up-plan", {
        "what_helps": "a" * 601, "who_to_tell": "line\n" * 10, "when_to_seek_help": "ok"}))
    assert error_for(too_long, "what_helps") == "What helps me in a flare-up must be 600 characters or fewer"
    assert error_for(too_long, "who_to_tell") == ("Who I will tell, and what I will ask them is too long to fit on "
                                                  "one printed page. Use fewer or shorter lines")
    assert error_for(too_long, "when_to_seek_help") is None
    assert session.scalars(select(FlareUpPlan)).all() == []


def test_a_plan_part_is_measured_in_printed_lines():
    from portal.diary.forms import printed_lines

    assert printed_lines("") == 0
    assert printed_lines("a") == 1
    assert printed_lines("a" * 70) == 1 and printed_lines("a" * 71) == 2
    assert printed_lines("a\n\nb") == 3
    assert printed_lines("x" * 600) == 9  # the longest part of one paragraph fits
