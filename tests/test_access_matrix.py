"""Every route, for every kind of visitor: who gets in, who is sent to sign in, who is refused.

The routes come from the app itself, so a route added later is covered without touching this file. Ids in
URLs are filled with those of *another* patient's records, so a patient route that forgets to load
through the current patient shows up here as a leak.
"""

import re

import pytest

from portal.auth.models import Role
from tests import factories
from tests.conftest import sign_in
from tests.pages import parse

# Pages anyone may open without signing in.
PUBLIC = re.compile(r"^/(sign-in|accessibility|privacy|contact|healthz|activate/|forgot-password|reset-password"
                    r"|static/|dev/texts|calendar/feed/|robots\.txt$|favicon\.ico$)")
# Provider webhooks: no session at all; a request without Twilio's signature is refused (tests/messaging).
WEBHOOK = re.compile(r"^/webhooks/")
STAFF = re.compile(r"^/staff")
ADMIN_ONLY = re.compile(r"^/staff/(accounts|admin)")
REGISTRATION = re.compile(r"^/staff/patients/new")
# The reception desk's queues and moving a cancelled session's patients: reception and admins only.
RECEPTION_DESK = re.compile(r"^/staff/(queues|schedule/sessions/)")
# Service reports (counts only): reception and admins, who run the service; not facilitators or clinicians.
REPORTS = re.compile(r"^/staff/reports")
# Registers, day lists and did-not-attend reviews: facilitators, clinicians and admins only.
CLINICAL = re.compile(r"^/staff/(today|registers/|clinics/|dna-reviews)")


# Routes that end the visitor's session: requested last, so the rest are checked signed in.
ENDS_SESSION = re.compile(r"sign-out")
ANY_SIGNED_IN = re.compile(r"^/account")


def _routes(app):
    routes = [
        (rule, method)
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static" and "<path:" not in rule.rule
        for method in sorted((rule.methods or set()) & {"GET", "POST"})
    ]
    return sorted(routes, key=lambda item: bool(ENDS_SESSION.search(item[0].rule) and item[1] == "POST"))


def _url(rule, values):
    url = rule.rule
    for name in rule.arguments:
        url = re.sub(rf"<(?:[a-z]+:)?{name}>", str(values.get(name, values["default"])), url)
    return url


@pytest.fixture
def other_patients_ids(session):
    """Ids belonging to patient B: a patient record, their account, a cohort they are booked on."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    from portal.booking.models import WaitlistEntry
    from portal.booking.services import book_seat
    from portal.db import utcnow
    from tests.appointments import factories as appointment_factories

    other = factories.create_patient_user(session)
    cohort = factories.create_cohort(session)
    booking = book_seat(session, factories.domain(), other.patient, cohort.id, now=utcnow())
    full = factories.create_cohort(session, capacity=1, seats_taken=1)
    # An open offer of patient B's (set directly: B also has a seat, which the service would refuse).
    entry = WaitlistEntry(patient_id=other.patient_id, service_key="t1-group", cohort_id=full.id, position=1,
                          status="offered", offer_cohort_id=full.id, offer_expires_at=utcnow() + dt.timedelta(days=1))
    session.add(entry)
    session.commit()
    slot = appointment_factories.create_slot(session)
    appointment = appointment_factories.book(session, other.patient, slot)
    from portal.attendance.models import DnaReview

    review = DnaReview(patient_id=other.patient_id, service_key="t1-group", cohort_id=cohort.id,
                       trigger="2 did not attend in this course")
    session.add(review)
    session.commit()
    return {
        "patient_id": other.patient_id, "user_id": other.id, "booking_id": booking.id, "cohort_id": cohort.id,
        "entry_id": entry.id, "appointment_id": appointment.id, "slot_id": slot.id,
        "day": slot.starts_at.astimezone(ZoneInfo("Europe/London")).date().isoformat(),
        "default": other.patient_id, "name": other.patient.family_name, "token": "not-a-token", "slug": "week-01",
        "service_key": "t1-group", "report": "triaged",
        "cohort_session_id": cohort.sessions[0].id, "clinician_id": slot.clinician_id, "review_id": review.id,
        # A real venue (in use, so an admin's delete is refused); "user_id" above is a patient's: 404 on staff accounts.
        "venue_id": cohort.venue_id,
    }


def _client_for(app, session, who):
    client = app.test_client()
    if who == "anonymous":
        return client
    if who == "patient":
        user = factories.create_patient_user(session)
        assert sign_in(client, user.patient.mobile).status_code == 302
    else:
        user = factories.create_staff(session, role=Role(who))
        assert sign_in(client, user.email).status_code == 302
    return client


def _token(client):
    """A real CSRF token for this client's session, so a POST's answer is about access, not CSRF."""
    if not hasattr(client, "csrf"):
        page = parse(client.get("/contact"))  # public; signed in, its header holds the sign-out form
        field = page.find("input", attrs={"name": "csrf_token"}) or parse(client.get("/sign-in")).find(
            "input", attrs={"name": "csrf_token"})
        assert field is not None, "no CSRF token found for this client"
        client.csrf = field["value"]
    return client.csrf


def _request(client, method, url):
    if method == "GET":
        return client.get(url)
    return client.post(url, data={"csrf_token": _token(client)})


WHO = ["anonymous", "patient", "facilitator", "clinician", "reception", "admin"]


@pytest.mark.parametrize("who", WHO)
def test_access_matrix(app, session, other_patients_ids, who):
    client = _client_for(app, session, who)
    problems = []
    checked = 0
    for rule, method in _routes(app):
        url = _url(rule, other_patients_ids)
        if url.startswith("/dev/") and method == "POST":
            continue
        response = _request(client, method, url)
        status = response.status_code
        checked += 1
        location = response.headers.get("Location", "")
        body = response.get_data(as_text=True)
        if status >= 500:
            problems.append(f"{method} {url}: {status}")
        elif PUBLIC.match(url):
            continue
        elif WEBHOOK.match(url):
            if status != 403:
                problems.append(f"{method} {url}: unsigned webhook got {status}, expected 403")
        elif who == "anonymous":
            if not (status in (302, 303) and "/sign-in" in location):
                problems.append(f"{method} {url}: anonymous got {status} {location}")
        elif ANY_SIGNED_IN.match(url):
            continue  # every signed-in user has an account page; only "no 500" applies
        elif STAFF.match(url):
            allowed = who != "patient" and not (ADMIN_ONLY.match(url) and who != "admin") and not (
                CLINICAL.match(url) and who == "reception") and not (
                REPORTS.match(url) and who not in ("reception", "admin")) and not (
                RECEPTION_DESK.match(url) and who not in ("reception", "admin"))
            if not allowed and status not in (403, 404):
                problems.append(f"{method} {url}: {who} got {status}, expected 403/404")
            elif allowed and REPORTS.match(url) and status != 200:
                problems.append(f"{method} {url}: {who} got {status}, expected the report")
        elif who == "patient":
            # A patient page reached with another patient's ids must show nothing of theirs.
            if f"booking-{other_patients_ids['booking_id']}" in body or other_patients_ids["name"] in body:
                problems.append(f"{method} {url}: shows patient B's data")
        elif status not in (302, 303, 403, 404):
            problems.append(f"{method} {url}: staff {who} got {status} on a patient page")
    assert checked > 10
    print(f"access matrix: {checked} route-method pairs checked as {who}")
    assert problems == [], "\n".join(problems)
