"""The configuration page: the catalogue, teams and catchments, and policy as the portal loaded them, read only."""

from __future__ import annotations

import pytest

from portal.auth.models import Role
from tests import factories
from tests.conftest import sign_in
from tests.pages import get_page

URL = "/staff/admin/configuration"


def _client(app, session, role: Role):
    client = app.test_client()
    assert sign_in(client, factories.create_staff(session, role=role).email).status_code == 302
    return client


def test_it_shows_every_service_team_district_and_policy_value_loaded(app, session, domain):
    page = get_page(_client(app, session, Role.ADMIN), URL)
    text = page.get_text(" ", strip=True)
    assert page.h1.get_text(strip=True) == "Service configuration"
    assert "changes are made there, checked, and deployed with the portal" in text

    services = page.select("#services ~ table")[0]
    for service in domain.catalogue.services:
        row = next(tr for tr in services.select("tbody tr") if service.key in tr.get_text())
        assert service.name in row.get_text()
        assert service.sms_label in row.get_text()
    teams = page.select("#teams ~ table")[0]
    for team in domain.teams.teams:
        row = next(tr for tr in teams.select("tbody tr") if team.key in tr.get_text())
        assert team.name in row.get_text() and team.catchment in row.get_text()
        assert ", ".join(team.postcode_districts) in row.get_text()
    assert ", ".join(domain.teams.service_area.postcode_districts) in text

    shown = {
        (section["id"].removeprefix("policy-"), row.dt.code.get_text(strip=True)): row.dd.get_text(" ", strip=True)
        for section in page.select("h3[id^=policy-]")
        for row in section.find_next_sibling("dl").select(".nhsuk-summary-list__row")
    }
    expected = {(name, key) for name, values in domain.policy.model_dump().items() for key in values}
    assert set(shown) == expected
    assert shown[("booking", "cancel_cutoff_hours")] == str(domain.policy.booking.cancel_cutoff_hours)
    assert shown[("reminders", "appointment_days_before")] == ", ".join(
        str(n) for n in domain.policy.reminders.appointment_days_before)
    assert shown[("questionnaires", "licensed_scales_enabled")] == "No"


def test_it_shows_what_was_loaded_not_a_copy(app, session, domain, monkeypatch):
    booking = domain.policy.booking.model_copy(update={"cancel_cutoff_hours": 48})
    changed = domain.model_copy(update={"policy": domain.policy.model_copy(update={"booking": booking})})
    monkeypatch.setitem(app.extensions, "domain", changed)
    page = get_page(_client(app, session, Role.ADMIN), URL)
    row = page.find("code", string="cancel_cutoff_hours").find_parent(class_="nhsuk-summary-list__row")
    assert row.dd.get_text(strip=True) == "48"


def test_it_is_read_only(app, session):
    page = get_page(_client(app, session, Role.ADMIN), URL)
    forms = [form for form in page.select("main form")]
    assert forms == []
    assert page.find("input", attrs={"type": "text"}) is None


@pytest.mark.parametrize("role", [Role.FACILITATOR, Role.CLINICIAN, Role.RECEPTION])
def test_only_admins_see_it(app, session, role):
    assert _client(app, session, role).get(URL).status_code == 403


def test_patients_and_visitors_do_not(patient_client, client):
    assert patient_client.get(URL).status_code == 403
    assert client.get(URL).headers["Location"].startswith("/sign-in")
