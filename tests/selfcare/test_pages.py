"""The patient's reading pages and the staff views: what opens, catch-up, marking done, and who may see what."""

import datetime as dt

import pytest
from sqlalchemy import func, select

from portal.audit.models import AuditEvent
from portal.auth.models import Role
from portal.db import utcnow
from portal.selfcare import services
from portal.selfcare.models import ContentRelease, ReadingProgress
from portal.selfcare.release import general_plan
from portal.templating import local_date
from tests import factories
from tests.conftest import sign_in
from tests.pages import csrf_token, get_page, parse
from tests.selfcare.helpers import LONDON, activated_patient, seat

TEN_DAYS = dt.timedelta(days=10)


def patient_signed_in(app, session, *, activated_ago=TEN_DAYS, **kw):
    """A patient who set up their account ``activated_ago`` (10 days: weeks 1 and 2 are open, 3 is not)."""
    user = activated_patient(session, activated_at=utcnow() - activated_ago, **kw)
    client = app.test_client()
    assert sign_in(client, user.patient.mobile).status_code == 302
    client.user = user
    return client


def staff_signed_in(app, session, role):
    user = factories.create_staff(session, role=role)
    client = app.test_client()
    assert sign_in(client, user.email).status_code == 302
    return client


def progress(session, patient_id):
    session.expire_all()
    return list(session.scalars(select(ReadingProgress).where(ReadingProgress.patient_id == patient_id)
                                .order_by(ReadingProgress.track, ReadingProgress.week)))


def mark_done(client, track, slug):
    page = get_page(client, f"/self-care/{track}/{slug}")
    return client.post(f"/self-care/{track}/{slug}/done", data={"csrf_token": csrf_token(page)})


def done_button(page):
    return next((b for b in page.find_all("button") if "Mark as done" in b.get_text()), None)


def task_statuses(page) -> dict[str, str]:
    return {item.select_one(".nhsuk-task-list__link, .nhsuk-task-list__name-and-hint > div").get_text(" ", strip=True):
            item.select_one(".nhsuk-task-list__status").get_text(" ", strip=True)
            for item in page.select("#maincontent ul.nhsuk-task-list > li")}


def test_the_week_list_shows_open_weeks_catch_up_and_when_later_weeks_open(app, session):
    client = patient_signed_in(app, session)
    page = get_page(client, "/self-care")
    assert page.h1.get_text(strip=True) == "Your weekly reading"
    statuses = task_statuses(page)
    assert len(statuses) == 8
    assert statuses["Week 1: Understanding persistent pain"] == "Catch up"
    assert statuses["Week 2: Pacing your day"] == "This week"
    assert statuses["Week 3: Setting small goals"] == "Not open yet"
    week_3 = general_plan(tier=1, activated_at=client.user.created_at, weeks=8, zone=LONDON).week(3)
    assert f"Opens on {local_date(week_3.opens_on)}" in page.get_text()
    links = [a["href"] for a in page.select("a.nhsuk-task-list__link")]
    assert links == ["/self-care/tier-1-general/week-01", "/self-care/tier-1-general/week-02"]
    assert page.select_one(".nhsuk-card--care--urgent")

    mark_done(client, "tier-1-general", "week-01")
    statuses = task_statuses(get_page(client, "/self-care"))
    assert statuses["Week 1: Understanding persistent pain"] == "Done"


def test_an_item_has_its_task_urgent_help_a_done_button_and_the_weeks_around_it(app, session):
    client = patient_signed_in(app, session)
    page = get_page(client, "/self-care/tier-1-general/week-02")
    assert page.h1.get_text(strip=True) == "Pacing your day"
    assert "Week 2 of 8" in page.get_text()
    task = page.find("h2", string="Your task this week")
    assert task and task.find_next("p").get_text(strip=True)
    urgent = page.select_one(".nhsuk-card--care.nhsuk-card--care--urgent")
    assert urgent and "When to get urgent help" in urgent.get_text()
    assert {a["href"] for a in urgent.find_all("a")} >= {"https://111.nhs.uk", "tel:111", "tel:999"}
    assert "A&E" in urgent.get_text()
    assert done_button(page) and "week 2" in done_button(page).get_text()
    nav = page.select_one("nav.nhsuk-pagination")
    assert [a["href"] for a in nav.find_all("a")] == ["/self-care/tier-1-general/week-01"]  # week 3 is not open
    # Opening the item is recorded once.
    [opened] = progress(session, client.user.patient_id)
    assert (opened.track, opened.week, opened.done_at) == ("tier-1-general", 2, None)
    get_page(client, "/self-care/tier-1-general/week-02")
    assert len(progress(session, client.user.patient_id)) == 1


def test_going_back_to_an_earlier_week(app, session):
    client = patient_signed_in(app, session, activated_ago=dt.timedelta(days=30))
    page = get_page(client, "/self-care/tier-1-general/week-02")
    nav = [a["href"] for a in page.select_one("nav.nhsuk-pagination").find_all("a")]
    assert nav == ["/self-care/tier-1-general/week-01", "/self-care/tier-1-general/week-03"]
    page = get_page(client, "/self-care/tier-1-general/week-01")
    assert "Catch up" in page.get_text()


def test_marking_done_is_idempotent(app, session):
    client = patient_signed_in(app, session)
    response = mark_done(client, "tier-1-general", "week-01")
    assert response.status_code == 302 and response.headers["Location"] == "/self-care/tier-1-general/week-01"
    page = get_page(client, "/self-care/tier-1-general/week-01")
    assert "Week 1 is marked as done." in page.get_text()
    assert done_button(page) is None and "You marked this week as done" in page.get_text()
    [first] = progress(session, client.user.patient_id)
    done_at = first.done_at
    assert done_at is not None

    response = client.post("/self-care/tier-1-general/week-01/done", data={"csrf_token": csrf_token(page)})
    assert response.status_code == 302
    assert "already marked week 1 as done" in get_page(client, "/self-care/tier-1-general/week-01").get_text()
    [again] = progress(session, client.user.patient_id)
    assert again.done_at == done_at


def _audited(session, action):
    return [(e.patient_id, e.detail) for e in session.scalars(select(AuditEvent).where(AuditEvent.action == action)
                                                                         .order_by(AuditEvent.id))]


def test_marking_done_can_be_undone(app, session):
    client = patient_signed_in(app, session)
    patient_id = client.user.patient_id
    mark_done(client, "tier-1-general", "week-01")
    assert _audited(session, "selfcare_marked_done") == [(patient_id, "tier-1-general week 1")]
    page = get_page(client, "/self-care/tier-1-general/week-01")
    form = page.find("form", action="/self-care/tier-1-general/week-01/not-done")
    assert form.find("button").get_text(" ", strip=True) == "Mark as not done : week 1"
    response = client.post(form["action"], data={"csrf_token": csrf_token(page)})
    assert response.status_code == 302 and response.headers["Location"] == "/self-care/tier-1-general/week-01"
    [row] = progress(session, patient_id)
    assert row.done_at is None and row.opened_at is not None
    page = get_page(client, "/self-care/tier-1-general/week-01")
    assert "Week 1 is no longer marked as done." in page.get_text()
    assert done_button(page) is not None and "You marked this week as done" not in page.get_text()
    assert _audited(session, "selfcare_marked_not_done") == [(patient_id, "tier-1-general week 1")]
    # A second tap changes nothing and is not audited again.
    client.post(form["action"], data={"csrf_token": csrf_token(page)})
    assert "Week 1 was not marked as done." in get_page(client, "/self-care/tier-1-general/week-01").get_text()
    assert len(_audited(session, "selfcare_marked_not_done")) == 1


def test_marking_not_done_needs_the_csrf_token_and_an_open_week(app, session):
    client = patient_signed_in(app, session)
    mark_done(client, "tier-1-general", "week-01")
    assert client.post("/self-care/tier-1-general/week-01/not-done").status_code == 400
    token = csrf_token(get_page(client, "/self-care"))
    for week in ("week-03", "week-99"):
        assert client.post(f"/self-care/tier-1-general/{week}/not-done", data={"csrf_token": token}).status_code == 404
    assert client.post("/self-care/tier-2-general/week-01/not-done", data={"csrf_token": token}).status_code == 404
    [row] = progress(session, client.user.patient_id)
    assert row.done_at is not None


def test_marking_done_needs_the_csrf_token(app, session):
    client = patient_signed_in(app, session)
    assert client.post("/self-care/tier-1-general/week-01/done").status_code == 400
    assert progress(session, client.user.patient_id) == []


def test_a_future_week_says_when_it_opens_and_cannot_be_marked_done(app, session):
    client = patient_signed_in(app, session)
    response = client.get("/self-care/tier-1-general/week-03")
    assert response.status_code == 404
    page = parse(response)
    assert page.h1.get_text(strip=True) == "This reading is not open yet"
    week_3 = general_plan(tier=1, activated_at=client.user.created_at, weeks=8, zone=LONDON).week(3)
    assert f"opens on {local_date(week_3.opens_on)}" in page.get_text()
    # The reading itself is not on the page.
    assert "Your task this week" not in page.get_text()
    token = csrf_token(get_page(client, "/self-care"))
    assert client.post("/self-care/tier-1-general/week-03/done", data={"csrf_token": token}).status_code == 404
    assert progress(session, client.user.patient_id) == []


@pytest.mark.parametrize("url", [
    "/self-care/tier-2-general/week-01",  # another tier's track
    "/self-care/tier-1-group/week-01",  # a course the patient is not on
    "/self-care/tier-1-general/week-09",  # no such week
    "/self-care/tier-1-general/week-1",
    "/self-care/tier-1-general/..%2F..%2Fetc",
    "/self-care/nothing/week-01",
])
def test_other_tracks_and_odd_addresses_are_not_found(app, session, url):
    client = patient_signed_in(app, session)
    assert client.get(url).status_code == 404


def test_a_course_patient_reads_the_course_track(app, session):
    today = dt.datetime.now(LONDON).date()
    cohort = factories.create_cohort(session, first_date=today - dt.timedelta(days=8), start_time=dt.time(18))
    client = patient_signed_in(app, session, activated_ago=dt.timedelta(days=60))
    seat(session, client.user.patient_id, cohort)
    statuses = task_statuses(get_page(client, "/self-care"))
    assert len(statuses) == 8
    assert statuses["Week 2: Pacing and finding your baseline"] == "This week"
    assert statuses["Week 3: Setting goals that matter to you"] == "Not open yet"
    page = get_page(client, "/self-care/tier-1-group/week-02")
    assert page.h1.get_text(strip=True) == "Pacing and finding your baseline"
    assert client.get("/self-care/tier-1-group/week-03").status_code == 404
    # The general track it followed before is no longer its own, except what it opened.
    assert client.get("/self-care/tier-1-general/week-03").status_code == 404


def test_a_booked_patient_sees_when_the_course_reading_starts(app, session):
    today = dt.datetime.now(LONDON).date()
    cohort = factories.create_cohort(session, first_date=today + dt.timedelta(days=20), start_time=dt.time(18))
    client = patient_signed_in(app, session)
    seat(session, client.user.patient_id, cohort)
    page = get_page(client, "/self-care")
    assert f"starts on {local_date(cohort.first_date)}" in page.get_text()
    assert task_statuses(page)["Week 2: Pacing your day"] == "This week"
    response = client.get("/self-care/tier-1-group/week-01")
    assert response.status_code == 404 and f"opens on {local_date(cohort.first_date)}" in parse(response).get_text()


def test_items_read_earlier_stay_readable_after_a_tier_move(app, session):
    client = patient_signed_in(app, session)
    get_page(client, "/self-care/tier-1-general/week-01")
    patient = client.user.patient
    patient.tier, patient.team = 2, "whittington"
    session.commit()
    get_page(client, "/self-care/tier-1-general/week-01")  # opened before the move: still theirs
    assert client.get("/self-care/tier-1-general/week-02").status_code == 404  # never opened: not any more
    page = get_page(client, "/self-care")
    assert task_statuses(page)["Week 2: Pacing and the activity cycle"] == "This week"
    assert page.find("h2", string="Your earlier reading")
    assert "Week 1: Understanding persistent pain" in page.get_text()


def test_a_week_released_earlier_stays_open_when_its_session_moves_later(app, session):
    today = dt.datetime.now(LONDON).date()
    cohort = factories.create_cohort(session, first_date=today - dt.timedelta(days=8), start_time=dt.time(18))
    client = patient_signed_in(app, session, activated_ago=dt.timedelta(days=60))
    seat(session, client.user.patient_id, cohort)
    # Week 3 was released, then its session moved a week later.
    session.add(ContentRelease(patient_id=client.user.patient_id, track="tier-1-group", week=3,
                               opens_at=utcnow(), recorded_at=utcnow()))
    session.commit()
    get_page(client, "/self-care/tier-1-group/week-03")


def test_the_home_page_links_this_weeks_reading(app, session):
    client = patient_signed_in(app, session)
    home = get_page(client, "/")
    card = home.find("a", href="/self-care/tier-1-general/week-02")
    assert card and card.get_text(strip=True) == "Pacing your day"
    assert "1 earlier week to catch up on" in home.get_text()
    assert home.find("a", href="/self-care")


def test_the_old_reading_address_goes_to_the_week_list(app, session):
    client = patient_signed_in(app, session)
    response = client.get("/reading/week-01")
    assert response.status_code == 302 and response.headers["Location"] == "/self-care"


# Who may see what.

@pytest.mark.parametrize("role", [Role.FACILITATOR, Role.RECEPTION, Role.ADMIN])
def test_staff_cannot_open_patient_reading_pages(app, session, role):
    client = staff_signed_in(app, session, role)
    for url in ("/self-care", "/self-care/tier-1-general/week-01"):
        assert client.get(url).status_code == 403, url
    token = csrf_token(parse(client.get("/staff")))
    assert client.post("/self-care/tier-1-general/week-01/done", data={"csrf_token": token}).status_code == 403


def test_patients_cannot_open_staff_reading_pages(app, session):
    client = patient_signed_in(app, session)
    cohort = factories.create_cohort(session)
    for url in (f"/staff/patients/{client.user.patient_id}/self-care", f"/staff/courses/{cohort.id}/self-care",
                "/staff/admin/self-care-content"):
        page = get_page(client, url, status=403)
        assert page.h1.get_text(strip=True) == "You cannot see this page"


def test_anonymous_visitors_are_sent_to_sign_in(client):
    for url in ("/self-care", "/self-care/tier-1-general/week-01"):
        response = client.get(url)
        assert response.status_code == 302 and response.headers["Location"].startswith("/sign-in")


@pytest.mark.parametrize("role", [Role.FACILITATOR, Role.RECEPTION])
def test_only_admins_see_the_content_review_list(app, session, role):
    assert staff_signed_in(app, session, role).get("/staff/admin/self-care-content").status_code == 403


# What staff see.

@pytest.mark.parametrize("role", [Role.FACILITATOR, Role.RECEPTION, Role.ADMIN])
def test_staff_see_a_patients_track_week_and_what_they_read(app, session, role):
    patient_client = patient_signed_in(app, session)
    mark_done(patient_client, "tier-1-general", "week-01")
    get_page(patient_client, "/self-care/tier-1-general/week-02")
    pid = patient_client.user.patient_id
    client = staff_signed_in(app, session, role)
    page = get_page(client, f"/staff/patients/{pid}/self-care")
    text = page.get_text(" ", strip=True)
    assert "Tier 1 general" in text and "Week 2 of 8" in text
    assert "2 of 2 open weeks" in text  # opened
    rows = {row["id"]: row.get_text(" ", strip=True) for row in page.select("tbody tr")}
    assert "Done" in rows["tier-1-general-week-01"]
    assert "Not open yet" in rows["tier-1-general-week-03"]
    assert session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "selfcare_progress_viewed", AuditEvent.patient_id == pid)) == 1
    assert client.get("/staff/patients/99999999/self-care").status_code == 404


def test_staff_see_a_cohorts_reading(app, session):
    today = dt.datetime.now(LONDON).date()
    cohort = factories.create_cohort(session, first_date=today - dt.timedelta(days=8), start_time=dt.time(18))
    reader = patient_signed_in(app, session, activated_ago=dt.timedelta(days=60))
    seat(session, reader.user.patient_id, cohort)
    mark_done(reader, "tier-1-group", "week-01")
    not_yet = factories.create_patient(session)  # booked by reception, no account yet
    seat(session, not_yet.id, cohort)
    client = staff_signed_in(app, session, Role.FACILITATOR)
    page = get_page(client, f"/staff/courses/{cohort.id}/self-care")
    rows = {row["id"]: row.get_text(" ", strip=True) for row in page.select("tbody tr")}
    assert "Tier 1 group, week 2 of 8" in rows[f"patient-{reader.user.patient_id}"]
    assert "Done 1 of 2" in rows[f"patient-{reader.user.patient_id}"]
    assert "Tier 1 group, not started" not in rows[f"patient-{not_yet.id}"]
    assert client.get("/staff/courses/99999999/self-care").status_code == 404


def test_the_record_section_summarises_the_patients_reading(app, session):
    from flask import render_template
    from flask_login import login_user

    patient_client = patient_signed_in(app, session)
    staff = factories.create_staff(session, role=Role.FACILITATOR)
    unregistered = factories.create_patient(session)
    with app.test_request_context("/staff/patients"):
        login_user(staff)
        html = render_template("staff/selfcare/_record_section.html", patient=patient_client.user.patient)
        empty = render_template("staff/selfcare/_record_section.html", patient=unregistered)
    assert "Self-care reading" in html and "Week 2 of 8" in html and "Tier 1 general" in html
    assert f'href="/staff/patients/{patient_client.user.patient_id}/self-care"' in html
    assert "starts when" in empty


def test_admins_see_the_content_review_list(app, session):
    client = staff_signed_in(app, session, Role.ADMIN)
    page = get_page(client, "/staff/admin/self-care-content")
    rows = page.select("tbody tr")
    assert len(rows) == 36
    assert "Week 1: Welcome to the group, and how persistent pain works" in rows[0].get_text(" ", strip=True)
    names = [row.find("a").get_text(" ", strip=True) for row in rows]
    assert len(set(names)) == 36  # the tracks share titles: each link's name says its track
    # Each item opens as patients read it, with its review date.
    item = get_page(client, rows[0].find("a")["href"])
    assert item.h1.get_text(strip=True) == "Welcome to the group, and how persistent pain works"
    assert "Your task this week" in item.get_text() and "Review due" in item.get_text()
    assert "111" in item.get_text()  # the urgent-help box


@pytest.mark.parametrize("url", ["/staff/admin/self-care-content/tier-1-group/week-99",
                                 "/staff/admin/self-care-content/no-such-track/week-01",
                                 "/staff/admin/self-care-content/tier-1-group/week-1x"])
def test_a_content_preview_of_nothing_is_not_found(app, session, url):
    get_page(staff_signed_in(app, session, Role.ADMIN), url, status=404)


@pytest.mark.parametrize("role", [Role.FACILITATOR, Role.RECEPTION])
def test_only_admins_preview_content(app, session, role):
    url = "/staff/admin/self-care-content/tier-1-group/week-01"
    assert staff_signed_in(app, session, role).get(url).status_code == 403


def test_review_dates_past_are_flagged_overdue():
    items = services.content_review(today=dt.date(2027, 11, 2))
    assert len(items) == 36 and all(i.overdue for i in items)
    soon = services.content_review(today=dt.date(2027, 10, 1))
    assert not any(i.overdue for i in soon) and all(i.due_soon for i in soon)
    assert not any(i.overdue or i.due_soon for i in services.content_review(today=dt.date(2027, 1, 1)))


# Page views stay cheap: no SQLite write lock once an item has been opened, and a fixed number of statements.

def test_reading_pages_are_read_only_after_the_first_open(app, db, session):
    from tests.test_query_counts import recorded_statements

    client = patient_signed_in(app, session)
    url = "/self-care/tier-1-general/week-02"
    with recorded_statements(db.engine) as first:
        assert client.get(url).status_code == 200
    with recorded_statements(db.engine) as again:
        assert client.get(url).status_code == 200
    with recorded_statements(db.engine) as week_list:
        assert client.get("/self-care").status_code == 200
    if db.is_sqlite:
        # The first view records the open in a short write transaction of its own; later views only read.
        assert [s for s in first if s.startswith("BEGIN")] == ["BEGIN", "BEGIN IMMEDIATE"]
        assert [s for s in again if s.startswith("BEGIN")] == ["BEGIN"]
        assert [s for s in week_list if s.startswith("BEGIN")] == ["BEGIN"]
    assert not [s for s in again if s.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))]
    assert len(again) <= 8 and len(week_list) <= 8, (again, week_list)
