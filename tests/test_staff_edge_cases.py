"""Hostile but fair input to the staff pages: odd ids, dates, text and tampered forms never answer 500, never show
one patient's data to the wrong person, and a refused request changes nothing."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from portal.attendance.models import Attendance, DnaReview
from portal.audit.models import AuditEvent
from portal.auth.models import Role, User
from portal.booking.models import Booking, Venue
from portal.booking.sessions import cancel_session
from portal.db import utcnow
from portal.messaging.models import SmsMessage
from tests import factories
from tests.attendance import helpers
from tests.conftest import sign_in
from tests.pages import csrf_token, get_page

HUGE = [0, 2**31, 2**63, 10**30]
TEXTS = ["", "   ", "x" * 10_000, "\U0001f600\u202e\u200b", "a\x00b"]
LONDON = ZoneInfo("Europe/London")
BAD_DAYS = ["2026-02-30", "0000-01-01", "0001-01-01", "9999-12-31", "x" * 10_000, "%00", "\U0001f600"]


def _client(app, session, who: str):
    client = app.test_client()
    if who == "patient":
        assert sign_in(client, factories.create_patient_user(session).patient.mobile).status_code == 302
    elif who != "anonymous":
        client.user = factories.create_staff(session, role=Role(who))
        assert sign_in(client, client.user.email).status_code == 302
    return client


def _token(client, page: str = "/contact") -> str:
    """A real CSRF token: signed in, the header of any page holds one (the sign-out form)."""
    return csrf_token(get_page(client, getattr(client, "token_page", page)))


def _counts(session) -> tuple[int, ...]:
    session.expire_all()
    return tuple(session.scalar(select(func.count()).select_from(model))
                 for model in (Attendance, DnaReview, Booking, Venue, User, SmsMessage))


def _audit_count(session, action: str) -> int:
    return session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action))


@pytest.fixture
def world(session):
    """A facilitator's register running now (patient A booked), a clinician's appointment now (patient A), an open
    did-not-attend review of A's, a cancelled session whose cohort has another group to move to, and patient B."""
    facilitator = factories.create_staff(session, role=Role.FACILITATOR)
    clinician = factories.create_staff(session, role=Role.CLINICIAN)
    register = helpers.group_session(session, patients=1, facilitators=(facilitator,))
    a = helpers.patients_of(session, register)[0]
    appointment = helpers.appointment(session, a, clinician=clinician)
    review = DnaReview(patient_id=a.id, service_key="t1-group", cohort_id=register.cohort_id, trigger="2 DNAs")
    session.add(review)
    b = factories.create_patient(session, family_name="Bystander")
    moving = factories.create_cohort(session)
    session.add(Booking(patient_id=b.id, service_key="t1-group", cohort_id=moving.id))
    moving.seats_taken = 1
    target = factories.create_cohort(session, first_date=utcnow().date() + dt.timedelta(days=28))
    cancel_session(session, factories.domain(), moving.sessions[2], reason="Room flooded", now=utcnow())
    session.commit()
    return {"facilitator": facilitator, "clinician": clinician, "register": register.id, "a": a.id, "b": b.id,
            "appointment": appointment.id, "review": review.id, "cancelled": moving.sessions[2].id,
            "target": target.id, "day": appointment.starts_at.astimezone(LONDON).date().isoformat(),
            "venue": moving.venue_id}


def _get_urls(w) -> list[str]:
    urls = []
    for n in HUGE:
        urls += [f"/staff/registers/{n}", f"/staff/clinics/{n}/{w['day']}", f"/staff/dna-reviews/{n}",
                 f"/staff/schedule/sessions/{n}/move-patients", f"/staff/patients/{n}", f"/staff/admin/venues/{n}",
                 f"/staff/admin/staff-accounts/{n}", f"/staff/schedule?venue={n}",
                 f"/staff/queues/invitations?days={n}"]
    for day in BAD_DAYS:
        urls += [f"/staff/clinics/{w['clinician'].id}/{day}", f"/staff/schedule?week={day}",
                 f"/staff/schedule?week={day}&view=day"]
    urls += ["/staff/schedule?week=2100-12-31", "/staff/schedule?week=2000-01-01&view=day",
             "/staff/schedule?week=2100-12-31&view=day", "/staff/schedule?service=%00&venue=%00&view=%00",
             "/staff/schedule?venue=1&venue=2&week=2026-01-01&week=x"]
    for q in TEXTS + ["31/02/1970", "00000000", "+44" + "9" * 40, "\U0010ffff\U0010ffff", "smith, ", ", jo",
                      "0000-01-01", "9999-12-31", "07700 900001 extra", "943 476 5919", "\u0660\u0661\u0662"]:
        urls.append("/staff/patients?" + urlencode({"q": q}))
    urls.append("/staff/patients?q=a&q=b")
    for query in ["first_month=9999-12", "first_month=2026-02-30", "last_month=0000-01", "team=%00", "service=x" * 10,
                  "first_month=2020-01&last_month=2026-01", "first_month=" + "9" * 5000]:
        urls += [f"/staff/reports/triaged?{query}", f"/staff/reports/waits.csv?{query}"]
    urls += ["/staff/reports/%00", "/staff/reports/" + "x" * 5000 + ".csv", "/staff/reports/.csv",
             "/activate/staff/" + "x" * 10_000, "/activate/staff/%00", "/activate/staff/%F0%9F%98%80"]
    return urls


@pytest.mark.parametrize("who", ["anonymous", "patient", "facilitator", "clinician", "reception", "admin"])
def test_hostile_paths_and_queries_never_fail_nor_leak(app, session, world, who):
    client = _client(app, session, who)
    before = _counts(session)
    problems = []
    for url in _get_urls(world):
        response = client.get(url)
        body = response.get_data(as_text=True)
        if response.status_code >= 500 or "Traceback" in body:
            problems.append(f"GET {url[:120]}: {response.status_code}")
        elif who == "patient" and url.startswith("/staff") and response.status_code not in (403, 404):
            problems.append(f"GET {url[:120]}: patient got {response.status_code}")
        if who in ("anonymous", "patient") and "Bystander" in body:
            problems.append(f"GET {url[:120]}: shows patient B")
    assert problems == [], "\n".join(problems)
    assert _counts(session) == before


def _post(client, url, data, *, token=True):
    return client.post(url, data={**data, "csrf_token": _token(client)} if token else data)


def _refused(client, session, url: str, cases: list[dict], *, status=(400,)) -> list[str]:
    """POST each case; each must be refused with ``status`` and change nothing."""
    problems = []
    for data in cases:
        before = _counts(session)
        response = _post(client, url, data)
        if response.status_code not in status or _counts(session) != before:
            problems.append(f"{url} {str(data)[:80]}: {response.status_code}, counts {before} -> {_counts(session)}")
    return problems


def _signed_in_as(app, user):
    client = app.test_client()
    assert sign_in(client, user.email).status_code == 302
    return client


def test_tampered_registers_and_day_lists_save_nothing_and_a_double_tap_saves_once(app, session, world):
    a, b, appt = world["a"], world["b"], world["appointment"]
    client = _signed_in_as(app, world["facilitator"])
    url = f"/staff/registers/{world['register']}"
    problems = _refused(client, session, url, [
        {}, {f"mark_{a}": ""}, {f"mark_{a}": "   "}, {f"mark_{a}": "discharged"}, {f"mark_{a}": "x" * 10_000},
        {f"mark_{a}": "attended\x00"}, {f"mark_{a}": "\u202eattended"}, {f"mark_{b}": "attended"},
        {"mark_9223372036854775808": "attended"}, {"mark_-1": "dna"}, {"action": "\x00"},
    ])
    # The day list is the clinician's: the facilitator is refused; its own clinician gets tampering refused.
    day_list = f"/staff/clinics/{world['clinician'].id}/{world['day']}"
    problems += _refused(client, session, day_list, [{f"mark_{appt}": "dna"}], status=(403,))
    clinician = _signed_in_as(app, world["clinician"])
    problems += _refused(clinician, session, day_list, [
        {}, {f"mark_{appt}": "no"}, {f"mark_{appt}": "\x00"}, {f"mark_{appt}": "y" * 10_000},
        {f"mark_{appt + 1000}": "dna"}, {"action": "x" * 10_000}])
    problems += _refused(clinician, session, url, [{f"mark_{a}": "dna"}], status=(403,))
    assert problems == [], "\n".join(problems)

    for _ in range(2):  # a double tap, the value duplicated in the first: the first value counts
        assert _post(client, url, {f"mark_{a}": ["late", "dna"]}).status_code == 302
    assert session.execute(select(Attendance.patient_id, Attendance.mark)).all() == [(a, "late")]
    assert _audit_count(session, "attendance_marked") == 1
    # "Everyone else attended" with patient B's id slipped in: B is on no register here.
    assert _post(client, url, {"action": "all_attended", f"mark_{b}": "dna"}).status_code == 302
    assert session.scalar(select(func.count()).select_from(Attendance).where(Attendance.patient_id == b)) == 0


def test_a_bad_review_decision_changes_nothing_and_a_double_tap_decides_once(app, session, world):
    client = _client(app, session, "clinician")
    url = f"/staff/dna-reviews/{world['review']}"
    problems = _refused(client, session, url, [
        {}, {"action": "kept_on"}, {"action": "kept_on", "note": "   \n\t "}, {"action": "discharged", "note": ""},
        {"action": "closed", "note": "ok"}, {"action": "kept_on", "note": "n" * 10_000},
        {"action": "kept_on", "note": "fine\x00"}, {"action": "", "note": "note"},
        {"action": "\U0001f600", "note": "x"},
    ])
    problems += _refused(client, session, "/staff/dna-reviews/9223372036854775808",
                         [{"action": "kept_on", "note": "x"}], status=(404,))
    assert problems == [], "\n".join(problems)
    assert _audit_count(session, "dna_review_kept_on") == 0
    for action in ("kept_on", "discharged"):  # a double tap, then a second clinician's late decision
        note = "Spoke to them: café, \u0645\u0631\u062d\u0628\u0627 \U0001f600"
        assert _post(client, url, {"action": action, "note": note}).status_code == 302
    session.expire_all()
    review = session.get(DnaReview, world["review"])
    assert [a.action for a in review.actions] == ["kept_on"] and not review.patient.discharged
    assert _audit_count(session, "dna_review_kept_on") == 1


def test_a_bad_bulk_move_moves_nobody_and_a_double_submit_moves_each_patient_once(app, session, world):
    client = _client(app, session, "reception")
    url = f"/staff/schedule/sessions/{world['cancelled']}/move-patients"
    target, reason = str(world["target"]), "Room flooded"
    problems = _refused(client, session, url, [
        {}, {"cohort": target}, {"cohort": target, "reason": "  \n "}, {"cohort": target, "reason": "r" * 10_000},
        {"cohort": target, "reason": "Flood\x00"}, {"cohort": "", "reason": reason},
        {"cohort": str(world["register"]), "reason": reason}, {"cohort": str(2**63), "reason": reason},
        {"cohort": "-1", "reason": reason}, {"cohort": f" {target}", "reason": reason},
    ])
    problems += _refused(client, session, f"/staff/schedule/sessions/{world['register']}/move-patients",
                         [{"cohort": target, "reason": reason}], status=(404,))
    assert problems == [], "\n".join(problems)
    texts = _counts(session)[-1]
    for _ in range(2):
        assert _post(client, url, {"cohort": target, "reason": reason}).status_code == 200
    seats = session.execute(select(Booking.cohort_id).where(Booking.patient_id == world["b"],
                                                            Booking.status == "active")).scalars().all()
    assert seats == [world["target"]]
    assert _counts(session)[-1] == texts + 1  # one "your place has moved" text
    assert _audit_count(session, "seat_moved_by_staff") == 1


@pytest.mark.parametrize("who", ["admin", "patient"])
def test_ids_past_the_integer_range_and_days_at_the_calendars_ends_are_not_found(app, session, world, who):
    client = _client(app, session, who)
    before, problems = _counts(session), []
    ids = (world["a"], world["clinician"].id, world["appointment"], world["review"], world["register"])
    for rule in app.url_map.iter_rules():
        if not rule.arguments or rule.rule.startswith(("/static", "/calendar/feed")):
            continue
        # Ids past the integer range with a plain day; then the world's ids with days at the ends of the calendar.
        kinds = {type(c).__name__.endswith("IntConverter") for c in rule._converters.values()}
        cases = ([(2**63, world["day"])] if True in kinds else []) + (
            [(n, d) for n in ids for d in ("0001-01-01", "9999-12-31")] if False in kinds else [])
        for number, text in cases:
            url = rule.rule
            for name, converter in rule._converters.items():
                value = number if type(converter).__name__.endswith("IntConverter") else text
                url = url.replace(f"<int:{name}>", str(value)).replace(f"<{name}>", str(value))
            for method in sorted((rule.methods or set()) & {"GET", "POST"}):
                response = client.get(url) if method == "GET" else _post(client, url, {"reason": "x"})
                if response.status_code >= 500 or (number == 2**63 and response.status_code not in (400, 403, 404)):
                    problems.append(f"{method} {url}: {response.status_code}")
    assert problems == [], "\n".join(problems)
    assert _counts(session) == before


VENUE = {"name": "Hornsey Rise", "short_name": "Hornsey", "address": "1 Hornsey Rise, N19", "is_online": "no"}


def test_bad_venue_and_staff_account_forms_change_nothing(app, session, world):
    client = _client(app, session, "admin")
    venue_url, me = f"/staff/admin/venues/{world['venue']}", client.user.id
    facilitator = world["facilitator"].id
    bad_venues = [{}, {**VENUE, "is_online": "maybe"}, {**VENUE, "is_online": "yes"}, {**VENUE, "name": " \t "},
                  {**VENUE, "name": "n" * 10_000}, {**VENUE, "name": "Hall\x00"}, {**VENUE, "short_name": "x" * 31},
                  {**VENUE, "short_name": "Pain clinic"}, {**VENUE, "address": "a\x00"}, {**VENUE, "name": "a\nb"},
                  {**VENUE, "access_notes": "\u202e" * 1001}]
    ok = (400,)  # the admin forms are shown again with their messages
    problems = _refused(client, session, "/staff/admin/venues/new", bad_venues[:1] + bad_venues[3:], status=ok)
    # The venue is in use: it may not go online, nor be deleted; a 10,000-character name is refused as on "new".
    problems += _refused(client, session, venue_url, bad_venues[1:], status=ok)
    problems += _refused(client, session, venue_url + "/delete", [{}], status=(302,))
    people = [{}, {"display_name": "New Person", "email": "new@nhs.net", "role": "patient"},
              {"display_name": "New Person", "email": "new@nhs.net", "role": "Admin"},
              {"display_name": "New\x00Person", "email": "new@nhs.net", "role": "admin"},
              {"display_name": "N" * 10_000, "email": "new@nhs.net", "role": "admin"},
              {"display_name": "New Person", "email": "not an email", "role": "admin"},
              {"display_name": "New Person", "email": "n@nhs.net\x00", "role": "admin"},
              {"display_name": "Again", "email": f" {world['clinician'].email.upper()} ", "role": "admin"}]
    problems += _refused(client, session, "/staff/admin/staff-accounts/invite", people, status=ok)
    roles = [{}, {"role": "patient"}, {"role": ""}, {"role": ["admin", "patient"][::-1]}, {"role": "x" * 10_000}]
    problems += _refused(client, session, f"/staff/admin/staff-accounts/{facilitator}/role", roles, status=ok)
    problems += _refused(client, session, f"/staff/admin/staff-accounts/{me}/role", [{"role": "reception"}], status=ok)
    for action in ("deactivate", "role", "reset-second-factor"):  # never one's own account
        problems += _refused(client, session, f"/staff/admin/staff-accounts/{me}/{action}", [{"role": "clinician"}],
                             status=(400,) if action == "role" else (409,))
    patient_account = factories.create_patient_user(session).id
    problems += _refused(client, session, f"/staff/admin/staff-accounts/{patient_account}/deactivate", [{}],
                         status=(404,))
    assert problems == [], "\n".join(problems)
    session.expire_all()
    assert session.get(User, me).role == "admin" and session.get(User, me).is_active
    assert session.get(User, facilitator).role == "facilitator" and session.get(User, facilitator).is_active
    assert _audit_count(session, "staff_role_changed") == _audit_count(session, "venue_updated") == 0


def test_posts_without_a_csrf_token_and_gets_on_post_only_routes_change_nothing(app, session, world):
    client = _client(app, session, "admin")
    a, appt, facilitator = world["a"], world["appointment"], world["facilitator"].id
    posts = {
        f"/staff/registers/{world['register']}": {f"mark_{a}": "dna"},
        f"/staff/clinics/{world['clinician'].id}/{world['day']}": {f"mark_{appt}": "dna"},
        f"/staff/dna-reviews/{world['review']}": {"action": "discharged", "note": "Gone"},
        f"/staff/schedule/sessions/{world['cancelled']}/move-patients": {"cohort": world["target"], "reason": "R"},
        f"/staff/admin/venues/{world['venue']}": {**VENUE, "name": "Renamed"},
        "/staff/admin/venues/new": VENUE,
        f"/staff/admin/staff-accounts/{facilitator}/role": {"role": "admin"},
        f"/staff/admin/staff-accounts/{facilitator}/deactivate": {},
        f"/staff/admin/staff-accounts/{facilitator}/reset-second-factor": {},
        "/staff/admin/staff-accounts/invite": {"display_name": "Eve", "email": "eve@nhs.net", "role": "admin"},
        f"/staff/queues/invitations/{a}/resend": {},
    }
    before, problems = _counts(session), []
    for url, data in posts.items():
        for forged in ({**data, "csrf_token": "forged"}, data):
            response = client.post(url, data=forged)
            if response.status_code != 400:
                problems.append(f"POST {url} without a real token: {response.status_code}")
    for url in [u for u in posts if u.endswith(("/role", "/deactivate", "/reset-second-factor", "/resend"))]:
        # A GET never acts: the address answers 405, or sends the browser to the page the form is on.
        if client.get(url).status_code not in (303, 405):
            problems.append(f"GET {url}: neither 405 nor a redirect to a page")
    assert problems == [], "\n".join(problems)
    session.expire_all()
    assert _counts(session) == before and session.get(User, facilitator).role == "facilitator"
    # Refused requests write nothing, the audit trail included (only the pages read above are audited).
    assert session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action.in_(["venue_updated", "staff_role_changed", "mfa_reset", "attendance_marked"]))) == 0


def test_a_staff_set_up_link_refuses_bad_passwords_and_works_once(app, session):
    from portal.auth import staff_accounts

    issued = staff_accounts.invite_staff(session, email="nia@nhs.net", display_name="Nia", role=Role.CLINICIAN,
                                         invited_by=None, valid_days=7, now=utcnow())
    session.commit()
    client, url = app.test_client(), f"/activate/staff/{issued.token}"
    client.token_page = url
    strong = "correct horse battery staple 42"
    problems = _refused(client, session, url, [
        {}, {"password": strong}, {"password": strong, "confirm_password": strong + " "},
        {"password": "\x00" * 20, "confirm_password": "\x00" * 20}, {"password": "p" * 10_000, "confirm_password": ""},
        {"password": "\U0001f600" * 3, "confirm_password": "\U0001f600" * 3},
    ], status=(200, 400))
    assert problems == [], "\n".join(problems)
    session.expire_all()
    assert not session.get(User, issued.user.id).is_active
    for expected in (302, 410):  # the second use of the link, a double submit, finds it used
        assert _post(client, url, {"password": strong, "confirm_password": strong}).status_code == expected
        client = app.test_client()
        client.token_page = "/sign-in"
    assert client.get(url[:-1] + "\x00").status_code in (404, 410)
