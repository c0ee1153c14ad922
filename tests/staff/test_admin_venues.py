"""Admins' venues: list, add, change (which shows everywhere the venue does) and delete one nothing uses."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from portal.appointments.models import AvailabilityTemplate
from portal.audit.models import AuditEvent
from portal.auth.models import Role
from portal.booking import venues
from portal.booking.models import Venue
from portal.db import utcnow
from portal.messaging import texts
from tests import factories
from tests.conftest import sign_in
from tests.pages import csrf_token, error_for, get_page, parse
from tests.races import count_together

VENUES = "/staff/admin/venues"
NEW = "/staff/admin/venues/new"


@pytest.fixture
def admin_client(app, session):
    user = factories.create_staff(session, role=Role.ADMIN)
    client = app.test_client()
    assert sign_in(client, user.email).status_code == 302
    client.user = user
    return client


def _form(**changes) -> dict[str, str]:
    values = {"name": "Archway Centre", "short_name": "Archway Ctr", "address": "1 Junction Road\nLondon N19 5QT",
              "access_notes": "Step-free entrance on Junction Road.", "is_online": "no"}
    values.update(changes)
    return values


def _post(client, url: str, data: dict[str, str]):
    token = csrf_token(get_page(client, url))
    return client.post(url, data={**data, "csrf_token": token})


def _events(session, action: str) -> list[AuditEvent]:
    return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def test_the_hub_links_every_admin_task_and_the_staff_home_links_the_hub(admin_client):
    home = get_page(admin_client, "/staff")
    assert home.find("a", href="/staff/admin").get_text(strip=True) == "Admin tasks"
    # The one hub link replaces the separate admin links.
    assert home.find("a", href="/staff/admin/appointments") is None
    hub = get_page(admin_client, "/staff/admin")
    links = {a["href"] for a in hub.select("main a")}
    assert {"/staff/courses", "/staff/admin/appointments", "/staff/admin/venues", "/staff/admin/staff-accounts",
            "/staff/admin/self-care-content", "/staff/admin/configuration"} <= links
    for href in links - {"/staff"}:
        get_page(admin_client, href)


def test_an_admin_adds_a_venue(admin_client, session):
    assert "There are no venues yet" in get_page(admin_client, VENUES).get_text()
    page = get_page(admin_client, NEW)
    assert page.find("input", attrs={"name": "is_online", "value": "no"}).has_attr("checked")
    response = _post(admin_client, NEW, _form())
    assert response.status_code == 302 and response.headers["Location"] == VENUES
    venue = session.scalars(select(Venue)).one()
    assert (venue.name, venue.short_name, venue.address, venue.access_notes, venue.is_online) == (
        "Archway Centre", "Archway Ctr", "1 Junction Road\nLondon N19 5QT", "Step-free entrance on Junction Road.",
        False)
    listing = get_page(admin_client, VENUES)
    assert "Archway Centre is added" in listing.select_one(".nhsuk-notification-banner").get_text()
    assert listing.find("a", href=f"{VENUES}/{venue.id}").get_text(strip=True) == "Archway Centre"
    assert [e.detail for e in _events(session, "venue_created")] == [f"venue {venue.id}"]


def test_an_online_venue(admin_client, session):
    _post(admin_client, NEW, _form(name="Video group", short_name="online", address="Online", is_online="yes",
                                   access_notes=""))
    venue = session.scalars(select(Venue)).one()
    assert venue.is_online and venue.access_notes == ""
    assert "Online" in get_page(admin_client, VENUES).find("a", href=f"{VENUES}/{venue.id}").parent.get_text()


@pytest.mark.parametrize(("field", "value", "message"), [
    ("name", "  ", "Enter the name of the venue"),
    ("name", "x" * 121, "Name must be 120 characters or fewer"),
    ("short_name", "", "Enter a short name for texts"),
    ("short_name", "A" * 31, "Short name must be between 2 and 30 characters"),
    ("short_name", "X", "Short name must be between 2 and 30 characters"),
    ("short_name", "Archway Pain Clinic", "Short name must not say anything clinical, like \u2018pain\u2019"),
    ("short_name", "PHYSIOtherapy hub", "Short name must not say anything clinical, like \u2018physio\u2019"),
    ("short_name", "Therapies Hub", "Short name must not say anything clinical, like \u2018therapy\u2019"),
    ("short_name", "Finsbury HC \N{GRINNING FACE}",
     "Short name must only use letters, numbers and simple punctuation that texts can carry, not emoji"),
    ("address", "", "Enter the address"),
    ("address", "y" * 501, "Address must be 500 characters or fewer"),
    ("access_notes", "z" * 1001, "Access notes must be 1000 characters or fewer"),
    ("name", "Bad\x07name", "Name must only use letters, numbers and punctuation"),
    ("is_online", "maybe", "Select whether the venue is in person or online"),
])
def test_bad_input_is_shown_next_to_its_field(admin_client, session, field, value, message):
    response = _post(admin_client, NEW, _form(**{field: value}))
    assert response.status_code == 400
    page = parse(response)
    shown = error_for(page, field) or ""
    assert shown.startswith(message), shown
    assert page.title.string.startswith("Error: ")
    assert session.scalars(select(Venue)).first() is None


# Short names as staff might type them: those that must pass, and those the texts' rules must refuse.
SHORT_NAMES_THAT_PASS = ["Hornsey Central", "Finsbury HC", "The Laurels", "Archway Ctr", "St Ann's", "Café Ten",
                         "Environmental Ctr", "Spa Road", "Elm House (2nd)", "A" * 30]
SHORT_NAMES_THAT_FAIL = {
    "Therapies Hub": "clinical", "Therapist Hse": "clinical", "Mental Health Unit": "clinical",
    "Archway Clinics": "clinical", "Clinical Ctr": "clinical", "Medicines Hub": "clinical",
    "Painless Place": "clinical", "Backpain Ctr": "clinical", "Psychiatry Hse": "clinical",
    "Acupuncturist": "clinical", "Physiotherapy": "clinical", "Medications Ctr": "clinical",
    "Finsbury HC \N{GRINNING FACE}": "carry", "St Ann\u2019s": "carry", "H\u00f4tel Dieu": "carry",
    "Finsbury\nHC": "carry", "Finsbury \u20ac": "carry",
}


@pytest.mark.parametrize("short_name", SHORT_NAMES_THAT_PASS)
def test_short_names_that_pass(short_name):
    assert venues.short_name_problem(short_name) is None


@pytest.mark.parametrize(("short_name", "why"), SHORT_NAMES_THAT_FAIL.items())
def test_short_names_that_fail(short_name, why):
    problem = venues.short_name_problem(short_name)
    assert problem is not None and (("clinical" in problem) if why == "clinical" else ("texts can carry" in problem))


def test_the_short_name_rule_is_the_texts_rule():
    for word in texts.CLINICAL_WORDS:
        assert venues.short_name_problem(f"The {word.title()} Place") is not None
    assert venues.short_name_problem("Hornsey Central") is None
    assert venues.short_name_problem("A" * 30) is None


@pytest.mark.parametrize("typed", ["Finsbury Health Centre", "finsbury health centre", "  Finsbury   HEALTH Centre "])
def test_a_venue_name_already_taken_is_refused_on_create(admin_client, session, typed):
    factories.create_venue(session, name="Finsbury Health Centre")
    response = _post(admin_client, NEW, _form(name=typed))
    assert response.status_code == 400
    assert error_for(parse(response), "name") == ("There is already a venue called Finsbury Health Centre. Enter a "
                                                  "different name, or change that venue")
    assert session.scalar(select(func.count()).select_from(Venue)) == 1


def test_a_venue_name_already_taken_is_refused_on_rename(admin_client, session):
    factories.create_venue(session, name="Finsbury Health Centre")
    other = factories.create_venue(session, name="Archway Centre", short_name="Archway")
    url = f"{VENUES}/{other.id}"
    response = _post(admin_client, url, _form(name="FINSBURY health  centre", short_name="Archway"))
    assert error_for(parse(response), "name").startswith("There is already a venue called Finsbury Health Centre")
    session.expire_all()
    assert session.get(Venue, other.id).name == "Archway Centre"
    # Its own name, written another way, is no clash.
    assert _post(admin_client, url, _form(name="ARCHWAY Centre", short_name="Archway")).status_code == 302
    session.expire_all()
    assert session.get(Venue, other.id).name == "ARCHWAY Centre"


def test_changing_a_venue_of_upcoming_cohorts_shows_everywhere_and_is_audited(admin_client, session):
    venue = factories.create_venue(session, name="Old Name Centre", short_name="Old Name")
    cohort = factories.create_cohort(session, venue=venue)
    page = get_page(admin_client, f"{VENUES}/{venue.id}")
    assert "1 upcoming cohort uses this venue" in page.get_text()
    assert page.find("input", attrs={"name": "name"})["value"] == "Old Name Centre"
    assert "You cannot delete Old Name Centre: 1 cohort uses it" in page.get_text()
    assert page.find("form", action=f"{VENUES}/{venue.id}/delete") is None

    response = _post(admin_client, f"{VENUES}/{venue.id}",
                     _form(name="New Name Centre", short_name="New Name", address=venue.address,
                           access_notes=venue.access_notes))
    assert response.headers["Location"] == VENUES
    session.expire_all()
    assert session.get(Venue, venue.id).short_name == "New Name"
    cohort_page = get_page(admin_client, f"/staff/courses/{cohort.id}")
    assert "New Name Centre" in cohort_page.get_text()
    [event] = _events(session, "venue_updated")
    assert event.detail == f"venue {venue.id}: changed name, short_name"
    assert event.actor_user_id == admin_client.user.id


def test_saving_with_no_change_says_so_and_audits_nothing(admin_client, session):
    venue = factories.create_venue(session)
    # The title is the page's heading, naming the venue.
    assert get_page(admin_client, f"{VENUES}/{venue.id}").title.string.startswith(f"Change {venue.name} – ")
    response = _post(admin_client, f"{VENUES}/{venue.id}", _form(
        name=venue.name, short_name=venue.short_name, address=venue.address, access_notes=venue.access_notes))
    assert response.status_code == 302
    assert "Nothing was changed" in get_page(admin_client, VENUES).get_text()
    assert _events(session, "venue_updated") == []


def test_a_venue_in_use_cannot_switch_between_online_and_in_person(admin_client, session):
    venue = factories.create_venue(session)
    factories.create_cohort(session, venue=venue)
    response = _post(admin_client, f"{VENUES}/{venue.id}", _form(is_online="yes"))
    assert response.status_code == 400
    assert error_for(parse(response), "is_online").startswith(
        "You cannot change whether this venue is online while 1 cohort uses it")
    session.expire_all()
    assert session.get(Venue, venue.id).is_online is False
    assert session.get(Venue, venue.id).name == "Test Health Centre"


def test_a_venue_nothing_uses_is_deleted(admin_client, session):
    venue_id = factories.create_venue(session, name="Closed Centre").id
    page = get_page(admin_client, f"{VENUES}/{venue_id}")
    form = page.find("form", action=f"{VENUES}/{venue_id}/delete")
    response = admin_client.post(form["action"], data={"csrf_token": csrf_token(page)})
    assert response.headers["Location"] == VENUES
    assert "Closed Centre is deleted" in get_page(admin_client, VENUES).get_text()
    session.expire_all()
    assert session.scalars(select(Venue)).all() == []
    assert [e.detail for e in _events(session, "venue_deleted")] == [f"venue {venue_id}"]


def test_a_venue_in_use_is_not_deleted_and_the_message_says_what_uses_it(admin_client, session):
    venue = factories.create_venue(session, name="Busy Centre")
    factories.create_cohort(session, venue=venue)
    factories.create_cohort(session, venue=venue, start_time=dt.time(10))  # a twin of the first would be refused
    clinician = factories.create_staff(session, role=Role.CLINICIAN)
    session.add(AvailabilityTemplate(clinician_id=clinician.id, service_key="t1-physio", venue_id=venue.id,
                                     weekday=0, start_time=dt.time(9), end_time=dt.time(12), slot_minutes=30,
                                     valid_from=utcnow().date()))
    session.commit()
    token = csrf_token(get_page(admin_client, VENUES))
    response = admin_client.post(f"{VENUES}/{venue.id}/delete", data={"csrf_token": token})
    assert response.headers["Location"] == f"{VENUES}/{venue.id}"
    text = get_page(admin_client, f"{VENUES}/{venue.id}").get_text(" ", strip=True)
    assert "You cannot delete Busy Centre: 2 cohorts and 1 weekly clinic use it" in text
    assert session.get(Venue, venue.id) is not None
    assert _events(session, "venue_deleted") == []


def test_the_list_counts_upcoming_cohorts(admin_client, session):
    busy = factories.create_venue(session, name="Busy Centre")
    factories.create_venue(session, name="Quiet Centre")
    factories.create_cohort(session, venue=busy)
    factories.create_cohort(session, venue=busy, start_time=dt.time(10))  # a twin of the first would be refused
    rows = {tr.select("td")[0].a.get_text(strip=True): tr.select("td")[2].get_text(" ", strip=True)
            for tr in get_page(admin_client, VENUES).select("tbody tr")}
    assert rows == {"Busy Centre": "Upcoming cohorts 2", "Quiet Centre": "Upcoming cohorts 0"}


def test_bad_ids_are_404_and_a_delete_needs_its_csrf_token(admin_client, session):
    get_page(admin_client, f"{VENUES}/999999", status=404)
    token = csrf_token(get_page(admin_client, VENUES))
    assert admin_client.post(f"{VENUES}/999999", data={**_form(), "csrf_token": token}).status_code == 404
    assert admin_client.post(f"{VENUES}/999999/delete", data={"csrf_token": token}).status_code == 404
    venue = factories.create_venue(session)
    assert admin_client.post(f"{VENUES}/{venue.id}/delete").status_code == 400
    assert session.get(Venue, venue.id) is not None


@pytest.mark.parametrize("role", [Role.FACILITATOR, Role.CLINICIAN, Role.RECEPTION])
def test_other_staff_may_not_manage_venues(app, session, role):
    venue = factories.create_venue(session)
    user = factories.create_staff(session, role=role)
    client = app.test_client()
    sign_in(client, user.email)
    assert get_page(client, "/staff").find("a", href="/staff/admin") is None
    for url in ("/staff/admin", VENUES, NEW, f"{VENUES}/{venue.id}"):
        assert client.get(url).status_code == 403, url
    token = csrf_token(get_page(client, "/staff"))
    assert client.post(NEW, data={**_form(), "csrf_token": token}).status_code == 403
    assert client.post(f"{VENUES}/{venue.id}/delete", data={"csrf_token": token}).status_code == 403
    assert session.scalars(select(Venue)).all() == [venue]


TEXT = st.one_of(st.just(""), st.text(max_size=40), st.text(alphabet=st.characters(codec="utf-8"), max_size=200),
                 st.integers(min_value=200, max_value=3000).map(lambda n: "\u00e9\U0001f600" * n))


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.data_too_large])
@given(name=TEXT, short_name=TEXT, address=TEXT, access_notes=TEXT, is_online=TEXT)
def test_any_text_in_the_venue_form_never_answers_500(admin_client, session, name, short_name, address,
                                                      access_notes, is_online):
    before = session.scalar(select(func.count()).select_from(Venue))
    response = _post(admin_client, NEW, {"name": name, "short_name": short_name, "address": address,
                                         "access_notes": access_notes, "is_online": is_online})
    assert response.status_code in (400, 302)
    after = session.scalar(select(func.count()).select_from(Venue))
    assert after == before + (1 if response.status_code == 302 else 0)


def test_one_venue_name_sent_ten_times_at_once_makes_one_venue(session, race_db):
    typed = ["Finsbury Health Centre", "finsbury health centre", " Finsbury  Health Centre ", "FINSBURY HEALTH CENTRE"]

    def add(name):
        def job():
            with race_db.transaction() as s:
                venues.create_venue(s, name=name, short_name="Finsbury HC", address="Ave", access_notes="",
                                    is_online=False)
            return "created"
        return job

    for connection in [race_db.engine.connect() for _ in range(10)]:  # no racer starts late by connecting
        connection.close()
    outcomes = count_together([add(typed[n % len(typed)]) for n in range(10)])
    assert outcomes == {"created": 1, "VenueNameTaken": 9}, outcomes
    assert session.scalar(select(func.count()).select_from(Venue)) == 1


def test_renaming_a_venue_keeps_its_name_key(session):
    venue = factories.create_venue(session, name="Hornsey  Central")
    assert venue.name_key == "hornsey central"
    venues.update_venue(session, venue, now=utcnow(), name="The Laurels")
    session.commit()
    assert session.scalar(select(Venue.name_key).where(Venue.id == venue.id)) == "the laurels"
