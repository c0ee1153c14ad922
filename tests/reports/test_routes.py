"""The report pages and CSV exports: who may see them, the filters' messages, the CSV's safety."""

from __future__ import annotations

import csv
import datetime as dt
import io
import xml.etree.ElementTree as ET

import pytest

from portal.auth.models import Role
from portal.dates import london_today
from portal.db import utcnow
from portal.reports.pages import PAGES
from tests import factories
from tests.conftest import sign_in
from tests.pages import error_for, get_page, parse
from tests.reports import data


def _signed_in(app, session, role: Role):
    user = factories.create_staff(session, role=role)
    client = app.test_client()
    assert sign_in(client, user.email).status_code == 302
    return client


@pytest.fixture
def admin_client(app, session):
    return _signed_in(app, session, Role.ADMIN)


@pytest.mark.parametrize("name", list(PAGES))
def test_each_report_page_shows_a_chart_a_table_and_a_csv_link(reception_client, session, name):
    this_month = london_today(utcnow()).replace(day=1)
    data.patient(session, triaged=this_month, tier=2, team="haringey")
    page = get_page(reception_client, f"/staff/reports/{name}")
    assert page.h1.get_text(strip=True) == PAGES[name].title
    if name != "questionnaires":  # no paired questionnaires here: the page says there is nothing to report
        chart = page.select_one(".portal-chart-box svg")
        assert chart is not None and chart["role"] == "img"
        ET.fromstring(str(chart))  # noqa: S314 - well-formed as XML too (our own markup, parsed in a test)
        region = page.select_one(".portal-table-scroll")
        assert region["tabindex"] == "0" and region["role"] == "region"
        assert page.find(id=region["aria-labelledby"]).get_text(strip=True) == f"{PAGES[name].title}: every figure"
        assert region.find("table").caption is not None
        assert len(page.select("table tbody tr")) == 12  # the last 12 months by default
    link = page.find("a", string=lambda s: s and "Download this report" in s)
    assert link["href"] == f"/staff/reports/{name}.csv"


def test_triaged_page_counts_this_month(reception_client, session):
    this_month = london_today(utcnow()).replace(day=1)
    for _ in range(3):
        data.patient(session, triaged=this_month)
    page = get_page(reception_client, "/staff/reports/triaged")
    last_row = page.select("table tbody tr")[-1]
    assert [cell.get_text(strip=True) for cell in last_row.find_all(["th", "td"])] == [
        f"{this_month:%b %Y}", "3", "0", "3"]


def test_the_csv_export_is_a_spreadsheet_safe_attachment(admin_client, session, monkeypatch):
    from portal.reports import services

    real = services.patients_triaged

    def with_a_formula(*args, **kwargs):
        report = real(*args, **kwargs)
        report.detail.append({"label": "x", "month": dt.date(2026, 1, 1), "tier": 1,
                              "team": "=HYPERLINK(\"http://evil\")", "triaged": 1})
        report.detail.append({"label": "x", "month": dt.date(2026, 1, 1), "tier": 1, "team": "-2+3", "triaged": 2})
        report.detail.append({"label": "x", "month": dt.date(2026, 1, 1), "tier": 1, "team": "@SUM(A1)",
                              "triaged": 3})
        return report

    monkeypatch.setitem(services.REPORTS, "triaged", with_a_formula)
    data.patient(session, triaged=dt.date(2026, 2, 3), tier=2, team="whittington")
    response = admin_client.get("/staff/reports/triaged.csv?first_month=2026-01&last_month=2026-03")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == 'attachment; filename="triaged-2026-01-to-2026-03.csv"'
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).removeprefix("\ufeff"))))
    assert rows[0] == ["Month", "Tier", "Team", "Patients triaged"]
    assert ["2026-02", "2", "Whittington", "1"] in rows
    teams = [row[2] for row in rows[1:]]
    assert "'=HYPERLINK(\"http://evil\")" in teams and "'-2+3" in teams and "'@SUM(A1)" in teams
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)


@pytest.mark.parametrize("name", list(PAGES))
def test_every_csv_has_its_header(reception_client, name):
    response = reception_client.get(f"/staff/reports/{name}.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    header = next(csv.reader(io.StringIO(response.get_data(as_text=True).removeprefix("\ufeff"))))
    assert header[0] == "Month"
    assert len(header) >= 4


def test_the_csv_gives_every_month_team_and_service(reception_client, session):
    person = data.patient(session, triaged=dt.date(2026, 1, 5), tier=2, team="haringey")
    clinician = data.staff(session)
    starts = data.london(dt.date(2026, 2, 3), 10)
    appointment = data.appointment(session, person, booked=starts - dt.timedelta(days=5), starts=starts,
                                   clinician=clinician, service_key="t2-physio")
    data.mark(session, person, appointment, starts, "dna", clinician)
    response = reception_client.get("/staff/reports/attendance.csv?first_month=2026-01&last_month=2026-03")
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).removeprefix("\ufeff"))))
    assert rows[0][:4] == ["Month", "Team", "Service", "Attended"]
    assert len(rows) == 2
    month, team, service, attended, late, dna = rows[1][:6]
    assert (month, team, service, dna) == ("2026-02", "Haringey", "Pain management physiotherapy (Tier 2)", "1")
    assert rows[1][-1] == "100.0"  # the DNA rate


@pytest.mark.parametrize(("query", "field", "message"), [
    ("first_month=2026-03&last_month=2026-01", "last_month",
     "The last month must be the same as the first month or after it"),
    ("first_month=2026-13&last_month=2026-01", "first_month", "Select the first month from the list"),
    ("first_month=<script>", "first_month", "Select the first month from the list"),
    ("last_month=", "last_month", "Select the last month from the list"),
    ("team=camden", "team", "Select a team from the list"),
    ("service=t9-magic", "service", "Select a service from the list"),
])
def test_bad_filters_give_a_message_next_to_the_field(reception_client, query, field, message):
    page = get_page(reception_client, f"/staff/reports/attendance?{query}")
    assert error_for(page, field) == message
    assert page.select_one(".nhsuk-error-summary") is not None
    assert page.title.string.startswith("Error:")
    assert page.select_one(".portal-chart-box") is None  # no report for filters that are not valid
    response = reception_client.get(f"/staff/reports/attendance.csv?{query}")
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)


def test_a_range_over_36_months_is_refused(reception_client):
    from portal.reports.services import add_months

    first = add_months(london_today(utcnow()).replace(day=1), -36)  # 37 months, this one included
    page = get_page(reception_client, f"/staff/reports/texts?first_month={first:%Y-%m}")
    assert error_for(page, "first_month") == "Choose a range of 36 months or fewer"


def test_filters_are_kept_in_the_csv_link(reception_client):
    page = get_page(reception_client, "/staff/reports/texts?first_month=2026-01&last_month=2026-02&team=haringey")
    link = page.find("a", string=lambda s: s and "Download this report" in s)
    assert link["href"] == "/staff/reports/texts.csv?first_month=2026-01&last_month=2026-02&team=haringey"
    assert page.find("option", selected=True, value="haringey") is not None
    assert len(page.select("table tbody tr")) == 2


def test_an_unknown_report_is_not_found(reception_client):
    assert reception_client.get("/staff/reports/everything").status_code == 404
    assert reception_client.get("/staff/reports/everything.csv").status_code == 404


@pytest.mark.parametrize("role", [Role.FACILITATOR, Role.CLINICIAN])
def test_facilitators_and_clinicians_are_refused(app, session, role):
    client = _signed_in(app, session, role)
    for url in ("/staff/reports", "/staff/reports/triaged", "/staff/reports/triaged.csv"):
        assert client.get(url).status_code == 403, url
    assert "/staff/reports" not in client.get("/staff").get_data(as_text=True)


def test_patients_are_refused_and_visitors_sent_to_sign_in(patient_client, client):
    for url in ("/staff/reports", "/staff/reports/waits", "/staff/reports/waits.csv"):
        assert patient_client.get(url).status_code == 403, url
        response = client.get(url)
        assert response.status_code == 302 and "/sign-in" in response.headers["Location"]


def test_reports_are_linked_from_the_staff_home_and_the_index(admin_client):
    home = get_page(admin_client, "/staff")
    assert home.find("a", href="/staff/reports") is not None
    index = get_page(admin_client, "/staff/reports")
    assert {a["href"] for a in index.select("main a, #maincontent a")} >= {f"/staff/reports/{n}" for n in PAGES}


def test_a_csv_export_is_audited(admin_client, session):
    from sqlalchemy import select

    from portal.audit.models import AuditEvent

    admin_client.get("/staff/reports/texts.csv?team=whittington")
    actions = session.scalars(select(AuditEvent.action)).all()
    assert "report_exported" in actions
    parse(admin_client.get("/staff/reports/texts"))
