"""The diary pages: one quick entry a day (a double tap never duplicates it), missed days, trends and CSV."""

import csv
import datetime as dt
import io

import pytest
from sqlalchemy import func, select

from portal.audit.models import AuditEvent
from portal.diary.models import DiaryEntry
from tests import factories
from tests.diary.factories import create_entry, today
from tests.pages import csrf_token, error_for, get_page, parse

ANSWERS = {"pain": "6", "sleep": "2", "mood": "4", "activity": "3", "note": "Gardening in two 15 minute goes"}


def _post(client, data, *, url="/diary"):
    """Post ``data`` as the page at ``url`` would, with the day it was showing (which ``data`` may override)."""
    page = get_page(client, url)
    shown = page.select_one("input[name=shown_day]")["value"]
    return client.post(url, data={"shown_day": shown, **data, "csrf_token": csrf_token(page)})


def _entries(session):
    return session.execute(select(DiaryEntry.entry_date, DiaryEntry.pain, DiaryEntry.sleep, DiaryEntry.mood,
                                  DiaryEntry.activity, DiaryEntry.note).order_by(DiaryEntry.entry_date)).all()


def test_the_entry_page_is_one_form_with_today_chosen(patient_client):
    page = get_page(patient_client, "/diary")
    assert page.h1.get_text(strip=True) == "Your pain diary"
    assert page.title.get_text(strip=True).startswith("Your pain diary for today")
    yesterday = get_page(patient_client, f"/diary?day={(today() - dt.timedelta(days=1)).isoformat()}")
    assert yesterday.title.get_text(strip=True).startswith("Your pain diary for yesterday")
    form = page.select_one("main form[method=post]")
    assert [o["value"] for o in form.select("select[name=day] option")] == [
        (today() - dt.timedelta(days=n)).isoformat() for n in range(8)]
    assert form.select_one("select[name=day] option[selected]")["value"] == today().isoformat()
    assert [r["value"] for r in form.select("input[name=pain]")] == [str(n) for n in range(11)]
    for name in ("sleep", "mood", "activity"):
        assert [r["value"] for r in form.select(f"input[name={name}]")] == ["1", "2", "3", "4", "5"]
    assert form.find("textarea", attrs={"name": "note"}) is not None
    assert not page.find("script"), "the diary needs no JavaScript"


def test_saving_today_and_a_double_tap_leave_one_entry(patient_client, session):
    data = {**ANSWERS, "day": today().isoformat()}
    token = csrf_token(get_page(patient_client, "/diary"))
    first = patient_client.post("/diary", data={**data, "csrf_token": token, "shown_day": today().isoformat()})
    second = patient_client.post("/diary", data={**data, "csrf_token": token, "shown_day": today().isoformat()})
    assert first.status_code == second.status_code == 302 and first.headers["Location"] == "/diary"
    assert _entries(session) == [(today(), 6, 2, 4, 3, "Gardening in two 15 minute goes")]
    page = get_page(patient_client, "/diary")
    assert "Your diary for today is saved." in page.get_text()
    assert "You have filled in today." in page.get_text()
    # The saved answers are shown again, ready to change.
    assert page.select_one("input[name=pain][checked]")["value"] == "6"
    assert page.find("textarea", attrs={"name": "note"}).get_text() == "Gardening in two 15 minute goes"


def test_changing_a_day_updates_its_entry(patient_client, session):
    create_entry(session, patient_client.user.patient_id, today(), pain=8)
    response = _post(patient_client, {**ANSWERS, "pain": "3", "note": "", "day": today().isoformat()})
    assert response.status_code == 302
    assert _entries(session) == [(today(), 3, 2, 4, 3, "")]


def test_a_missed_day_is_filled_in_from_its_link(patient_client, session):
    missed = today() - dt.timedelta(days=3)
    page = get_page(patient_client, "/diary")
    link = page.find("a", href=f"/diary?day={missed.isoformat()}")
    assert link.get_text(" ", strip=True).startswith("Fill in")
    day_page = get_page(patient_client, link["href"])
    assert day_page.select_one("select[name=day] option[selected]")["value"] == missed.isoformat()
    response = patient_client.post(link["href"], data={**ANSWERS, "day": missed.isoformat(),
                                                       "shown_day": missed.isoformat(),
                                                       "csrf_token": csrf_token(day_page)})
    assert response.status_code == 302
    assert [row[0] for row in _entries(session)] == [missed]
    assert get_page(patient_client, "/diary").find("a", href=f"/diary?day={missed.isoformat()}").get_text(
        " ", strip=True).startswith("Change")


@pytest.mark.parametrize("days", [-1, 8, 30])
def test_a_day_outside_the_week_is_refused_next_to_the_field(patient_client, session, days):
    response = _post(patient_client, {**ANSWERS, "day": (today() - dt.timedelta(days=days)).isoformat()})
    assert response.status_code == 400
    page = parse(response)
    assert error_for(page, "day") == "Select today or one of the 7 days before it"
    assert page.title.string.startswith("Error:")
    assert _entries(session) == []


def test_a_day_asked_for_outside_the_week_shows_today(patient_client):
    for asked in ("2020-01-01", (today() + dt.timedelta(days=1)).isoformat(), "nonsense"):
        page = get_page(patient_client, f"/diary?day={asked}")
        assert page.select_one("select[name=day] option[selected]")["value"] == today().isoformat()


def test_an_empty_day_starts_from_the_last_answers(patient_client, session):
    create_entry(session, patient_client.user.patient_id, today() - dt.timedelta(days=1), pain=7, sleep=5, mood=1,
                 activity=2, note="Not carried over")
    page = get_page(patient_client, "/diary")
    assert "We have filled in your scores from yesterday: change any that are different today." in page.get_text()
    checked = {r["name"]: r["value"] for r in page.select("input[type=radio][checked]")}
    assert checked == {"pain": "7", "sleep": "5", "mood": "1", "activity": "2"}
    assert page.find("textarea", attrs={"name": "note"}).get_text() == ""


def test_moving_a_form_to_another_filled_in_day_replaces_neither_entry(patient_client, session):
    """Yesterday's form, switched to today (already filled in), must not overwrite today's entry."""
    yesterday = today() - dt.timedelta(days=1)
    patient_id = patient_client.user.patient_id
    create_entry(session, patient_id, today(), pain=2, note="Today")
    create_entry(session, patient_id, yesterday, pain=8, note="Yesterday")
    response = _post(patient_client, {**ANSWERS, "pain": "4", "day": today().isoformat()},
                     url=f"/diary?day={yesterday.isoformat()}")
    assert response.status_code == 400
    page = parse(response)
    assert error_for(page, "day") == ("You have already filled in your diary for today. "
                                      "Open today's entry to change it")
    assert page.find("a", href=f"/diary?day={today().isoformat()}", string="Open your diary for today")
    # Shown again as the form for yesterday, so choosing yesterday back saves over yesterday alone.
    assert page.select_one("input[name=shown_day]")["value"] == yesterday.isoformat()
    assert [(row.entry_date, row.pain, row.note) for row in _entries(session)] == [
        (yesterday, 8, "Yesterday"), (today(), 2, "Today")]


def test_moving_a_form_to_an_empty_day_fills_it_in(patient_client, session):
    yesterday = today() - dt.timedelta(days=1)
    create_entry(session, patient_client.user.patient_id, yesterday, pain=8, note="Yesterday")
    response = _post(patient_client, {**ANSWERS, "day": today().isoformat()}, url=f"/diary?day={yesterday.isoformat()}")
    assert response.status_code == 302
    assert [(row.entry_date, row.pain) for row in _entries(session)] == [(yesterday, 8), (today(), 6)]


@pytest.mark.parametrize("shown", ["", "2020-01-01", "nonsense"])
def test_a_form_without_a_fillable_shown_day_replaces_nothing(patient_client, session, shown):
    create_entry(session, patient_client.user.patient_id, today(), pain=2)
    response = _post(patient_client, {**ANSWERS, "day": today().isoformat(), "shown_day": shown})
    assert response.status_code == 400
    assert error_for(parse(response), "day") is not None
    assert [(row.entry_date, row.pain) for row in _entries(session)] == [(today(), 2)]


def test_every_problem_shows_next_to_its_field_and_in_the_summary(patient_client, session):
    response = _post(patient_client, {"day": today().isoformat(), "pain": "11", "mood": "x", "note": "n" * 501})
    assert response.status_code == 400
    page = parse(response)
    expected = {
        "pain": "Select how bad your pain was, from 0 to 10",
        "sleep": "Select how you slept",
        "mood": "Select how your mood was",
        "activity": "Select how active you were",
        "note": "Pacing note must be 500 characters or fewer",
    }
    for field, message in expected.items():
        assert error_for(page, field) == message, field
    summary = page.select_one(".nhsuk-error-summary")
    assert [a.get_text(strip=True) for a in summary.select("a")] == list(expected.values())
    assert [a["href"] for a in summary.select("a")] == ["#pain", "#sleep", "#mood", "#activity", "#note"]
    # What was typed stays, so nothing needs typing again.
    assert page.find("textarea", attrs={"name": "note"}).get_text() == "n" * 501
    assert _entries(session) == []


def test_a_note_must_be_plain_text(patient_client, session):
    response = _post(patient_client, {**ANSWERS, "day": today().isoformat(), "note": "tab\tand\nline ok\x00"})
    assert error_for(parse(response), "note") == "Pacing note must be plain text, without special characters"
    # Line breaks count once however the browser sends them (CRLF).
    ok = _post(patient_client, {**ANSWERS, "day": today().isoformat(), "note": ("a" * 9 + "\r\n") * 50})
    assert ok.status_code == 302
    assert len(_entries(session)[0].note) == 499


def test_saving_is_audited_without_health_values(patient_client, session):
    _post(patient_client, {**ANSWERS, "day": today().isoformat()})
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "diary_entry_saved")).one()
    assert event.patient_id == patient_client.user.patient_id
    assert event.detail.endswith(f"for {today().isoformat()}")
    assert "Gardening" not in event.detail and "pain" not in event.detail


def test_the_diary_post_runs_few_statements(app, patient_client, session):
    """It is benchmarked against a one-row insert: no reads before the upsert, one audit insert after."""
    from tests.test_query_counts import recorded_statements

    token = csrf_token(get_page(patient_client, "/diary"))
    with recorded_statements(app.extensions["db"].engine) as statements:
        response = patient_client.post("/diary", data={**ANSWERS, "day": today().isoformat(), "csrf_token": token})
    assert response.status_code == 302
    writes = [s for s in statements if s.split()[0].upper() in ("INSERT", "UPDATE", "DELETE")]
    reads = [s for s in statements if s.split()[0].upper() == "SELECT"]
    assert len(writes) == 2 and "diary_entry" in writes[0] and "audit_event" in writes[1]
    assert len(reads) <= 1  # the signed-in user, with their patient record joined


# Trends


@pytest.mark.parametrize("weeks", ["4", "12"])
def test_the_trend_page_has_two_charts_and_a_table_of_the_same_numbers(patient_client, session, weeks):
    pid = patient_client.user.patient_id
    create_entry(session, pid, today(), pain=3, sleep=4, mood=5, activity=2)
    create_entry(session, pid, today() - dt.timedelta(days=2), pain=8, sleep=1, mood=2, activity=5)
    page = get_page(patient_client, f"/diary/trends?weeks={weeks}")
    assert page.title.get_text(strip=True).startswith(f"Your diary trends: last {weeks} weeks")
    svgs = page.select("main svg[role=img]")
    assert [s["aria-labelledby"] for s in svgs] == ["pain-chart-title", "sleep-mood-chart-title"]
    assert svgs[0].find("title").get_text() == f"Pain over the last {weeks} weeks"
    pain_points = [(c["data-day"], c["data-value"]) for c in svgs[0].select("[data-day]")]
    assert pain_points == [((today() - dt.timedelta(days=2)).isoformat(), "8"), (today().isoformat(), "3")]
    rows = page.select("details table tbody tr")
    assert len(rows) == int(weeks) * 7
    cells = {row["id"]: [td.get_text(strip=True) for td in row.select("td")] for row in rows}
    assert cells[f"day-{today().isoformat()}"] == ["3", "4", "5", "2"]
    assert cells[f"day-{(today() - dt.timedelta(days=1)).isoformat()}"] == ["No entry"]
    assert cells[f"day-{(today() - dt.timedelta(days=2)).isoformat()}"] == ["8", "1", "2", "5"]
    current = page.select_one("[aria-current=page]")
    assert current.get_text(strip=True) == f"Last {weeks} weeks"
    assert "average pain was 5.5 out of 10" in page.get_text()


def test_an_unknown_period_shows_4_weeks(patient_client):
    page = get_page(patient_client, "/diary/trends?weeks=52")
    assert len(page.select("details table tbody tr")) == 28


def test_the_trend_page_with_no_entries_says_so(patient_client):
    page = get_page(patient_client, "/diary/trends")
    assert "There is nothing to show yet." in page.get_text()
    assert page.select("svg[role=img] [data-day]") == []


def test_the_trend_page_shows_only_the_patients_own_entries(patient_client, session):
    other = factories.create_patient(session)
    create_entry(session, other.id, today(), pain=9)
    page = get_page(patient_client, "/diary/trends")
    assert page.select("svg [data-day]") == []


# CSV export


def test_the_export_is_every_entry_of_the_patient_as_csv(patient_client, session):
    pid = patient_client.user.patient_id
    create_entry(session, pid, today() - dt.timedelta(days=40), pain=2, sleep=5, mood=4, activity=3,
                 note="Café, then a rest, \"paced\"\nwell")
    create_entry(session, pid, today(), pain=7, sleep=1, mood=2, activity=1)
    create_entry(session, factories.create_patient(session).id, today(), pain=9, note="someone else")
    response = patient_client.get("/diary/export.csv")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == f'attachment; filename="pain-diary-{today().isoformat()}.csv"'
    text = response.get_data().decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows == [
        ["date", "pain (0 to 10)", "sleep (1 to 5)", "mood (1 to 5)", "activity (1 to 5)", "pacing note"],
        [(today() - dt.timedelta(days=40)).isoformat(), "2", "5", "4", "3", "Café, then a rest, \"paced\"\nwell"],
        [today().isoformat(), "7", "1", "2", "1", ""],
    ]


@pytest.mark.parametrize("note, cell", [
    ("=HYPERLINK(\"http://evil\")", "'=HYPERLINK(\"http://evil\")"),
    ("+1+1", "'+1+1"),
    ("-2+3", "'-2+3"),
    ("@SUM(A1)", "'@SUM(A1)"),
    ("\t=1", "'\t=1"),
    ("fine = not a formula", "fine = not a formula"),
    ("", ""),
])
def test_the_export_defuses_spreadsheet_formulas_in_notes(patient_client, session, note, cell):
    create_entry(session, patient_client.user.patient_id, today(), note=note)
    rows = list(csv.reader(io.StringIO(patient_client.get("/diary/export.csv").get_data().decode("utf-8-sig"))))
    assert rows[1][5] == cell


def test_an_export_with_no_entries_is_the_header_alone(patient_client):
    text = patient_client.get("/diary/export.csv").get_data().decode("utf-8-sig")
    assert text == "date,pain (0 to 10),sleep (1 to 5),mood (1 to 5),activity (1 to 5),pacing note\r\n"


def test_read_pages_write_nothing(patient_client, session):
    before = session.scalar(select(func.count()).select_from(AuditEvent))
    for url in ("/diary", "/diary/trends", "/diary/export.csv"):
        assert patient_client.get(url).status_code == 200
    assert session.scalar(select(func.count()).select_from(AuditEvent)) == before


def test_the_home_page_asks_for_today_until_it_is_filled_in(patient_client, session):
    patient_id = patient_client.user.patient_id
    create_entry(session, patient_id, today() - dt.timedelta(days=1))
    section = get_page(patient_client, "/").find("h2", string="Today's diary").find_next("a")
    assert (section.get_text(strip=True), section["href"]) == ("Fill in today's diary", "/diary")
    create_entry(session, patient_id, today())
    page = get_page(patient_client, "/")
    assert "You have filled in today's diary." in page.get_text()
    assert page.find("a", string="Fill in today's diary") is None
