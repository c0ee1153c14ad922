"""The admin pages that change a whole cohort: its number of places, and cancelling it (with a confirmation page
that says who will be texted)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update

from portal.audit.models import AuditEvent
from portal.auth.models import Role
from portal.booking import services, waitlist
from portal.booking.models import Booking, Cohort, CohortSession, WaitlistEntry
from portal.db import utcnow
from portal.messaging.models import SmsMessage
from tests import factories
from tests.conftest import staff_client
from tests.pages import csrf_token, error_for, get_page, parse


@pytest.fixture
def admin_client(app, session):
    return staff_client(app, session, Role.ADMIN)


def _places_url(cohort) -> str:
    return f"/staff/courses/{cohort.id}/capacity"


def _cancel_url(cohort) -> str:
    return f"/staff/courses/{cohort.id}/cancel"


def _post(client, url: str, values: dict):
    token = csrf_token(get_page(client, url))
    return client.post(url, data={**values, "csrf_token": token})


def _book(session, domain, cohort, count, **patient_kw):
    patients = [factories.create_patient(session, **patient_kw) for _ in range(count)]
    for patient in patients:
        services.book_seat(session, domain, patient, cohort.id, now=utcnow())
    session.commit()
    return patients


def _audit(session, action):
    return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


# Changing the number of places.

def test_the_admin_raises_the_places_from_the_cohort_page_and_the_waiting_list_is_offered_them(admin_client, session,
                                                                                                domain):
    cohort = factories.create_cohort(session, capacity=2)
    _book(session, domain, cohort, 2)
    waiting = factories.create_patient(session)
    waitlist.join(session, domain, waiting, domain.catalogue.get("t1-group"), cohort=cohort, now=utcnow())
    session.commit()
    page = get_page(admin_client, f"/staff/courses/{cohort.id}")
    assert page.find("a", string="Change the number of places")["href"] == _places_url(cohort)
    form = get_page(admin_client, _places_url(cohort))
    assert form.find("input", attrs={"name": "capacity"})["value"] == "2"

    response = _post(admin_client, _places_url(cohort), {"capacity": "3"})
    assert response.status_code == 302 and response.headers["Location"] == f"/staff/courses/{cohort.id}"
    banner = get_page(admin_client, f"/staff/courses/{cohort.id}").get_text(" ", strip=True)
    assert "The cohort now has 3 places. 1 place was offered to patients on the waiting list, by text." in banner
    session.expire_all()
    assert session.get(Cohort, cohort.id).capacity == 3
    assert session.scalars(select(WaitlistEntry.status)).one() == "offered"
    [event] = _audit(session, "cohort_capacity_changed")
    assert event.detail == f"cohort {cohort.id}: 2 -> 3 places, 1 offered from the waiting list"


def test_places_below_those_taken_are_refused_next_to_the_field_with_the_numbers(admin_client, session, domain):
    cohort = factories.create_cohort(session, capacity=10)
    _book(session, domain, cohort, 6)
    response = _post(admin_client, _places_url(cohort), {"capacity": "5"})
    assert response.status_code == 400
    page = parse(response)
    assert error_for(page, "capacity") == "Number of places must be 6 or more: 6 places are booked"
    assert page.select_one(".nhsuk-error-summary a[href='#capacity']") is not None
    session.expire_all()
    assert session.get(Cohort, cohort.id).capacity == 10
    assert _audit(session, "cohort_capacity_changed") == []


def test_the_page_says_how_low_the_places_can_go_and_never_below_one(admin_client, session, domain):
    """With nobody booked it once said the places could be lowered "to 0 at the least", which the form refuses."""
    empty = factories.create_cohort(session, capacity=10)
    page = get_page(admin_client, _places_url(empty))
    text = page.get_text(" ", strip=True)
    assert "Nobody is booked and no place is held for a waiting-list offer, so you can lower the number of places " \
           "to 1." in text
    assert "to 0" not in text
    assert page.select_one("#capacity-hint").get_text(strip=True) == "Between 1 and 40"

    busy = factories.create_cohort(session, capacity=10)
    _book(session, domain, busy, 6)
    page = get_page(admin_client, _places_url(busy))
    assert "You can lower the number of places to 6 at the least" in page.get_text(" ", strip=True)
    assert page.select_one("#capacity-hint").get_text(strip=True) == "Between 6 and 40"
    assert page.select_one("a.nhsuk-back-link")["href"] == f"/staff/courses/{busy.id}"


@pytest.mark.parametrize(("typed", "message"), [
    ("", "Enter number of places, like 12"),
    ("ten", "Number of places must be a whole number, like 12"),
    ("0", "Number of places must be between 1 and 40"),
    ("41", "Number of places must be between 1 and 40"),
    ("-3", "Number of places must be between 1 and 40"),
])
def test_bad_numbers_get_the_same_messages_as_the_create_form(admin_client, session, typed, message):
    cohort = factories.create_cohort(session)
    response = _post(admin_client, _places_url(cohort), {"capacity": typed})
    assert response.status_code == 400
    assert error_for(parse(response), "capacity") == message


def test_a_cancelled_or_finished_cohort_offers_no_change_of_places(admin_client, session, domain):
    cohort = factories.create_cohort(session)
    token = csrf_token(get_page(admin_client, _places_url(cohort)))
    session.execute(update(Cohort).where(Cohort.id == cohort.id).values(status="cancelled"))
    session.commit()
    assert get_page(admin_client, f"/staff/courses/{cohort.id}").find(
        "a", string="Change the number of places") is None
    response = admin_client.get(_places_url(cohort))
    assert response.status_code == 302
    # A form sent from a page opened before the cohort was cancelled: a conflict, said next to the field.
    response = admin_client.post(_places_url(cohort), data={"capacity": "20", "csrf_token": token})
    assert response.status_code == 409
    assert error_for(parse(response), "capacity") == "This cohort is cancelled, so its number of places cannot change"

    finished = factories.create_cohort(session)
    past = utcnow() - dt.timedelta(days=1)
    for week, cohort_session in enumerate(reversed(finished.sessions), start=1):
        cohort_session.starts_at = past - dt.timedelta(weeks=week)
        cohort_session.ends_at = cohort_session.starts_at + dt.timedelta(hours=2)
    session.commit()
    assert admin_client.get(_places_url(finished)).status_code == 302
    assert "has finished" in get_page(admin_client, f"/staff/courses/{finished.id}").get_text()


# Cancelling the cohort.

def test_the_confirmation_page_says_who_will_be_texted_and_cancelling_texts_them(admin_client, session, domain):
    cohort = factories.create_cohort(session, capacity=5)
    _book(session, domain, cohort, 3)
    _book(session, domain, cohort, 1, sms_consent=False)
    page = get_page(admin_client, f"/staff/courses/{cohort.id}")
    assert page.find("a", string="Cancel this cohort")["href"] == _cancel_url(cohort)
    confirm = get_page(admin_client, _cancel_url(cohort)).get_text(" ", strip=True)
    assert "We will text 3 patients booked on this cohort that their place is cancelled." in confirm
    assert "1 booked patient does not accept texts: phone them." in confirm

    response = _post(admin_client, _cancel_url(cohort), {"reason": "The room is no longer available"})
    assert response.status_code == 302 and response.headers["Location"] == f"/staff/courses/{cohort.id}"
    after = get_page(admin_client, f"/staff/courses/{cohort.id}")
    said = after.get_text(" ", strip=True)
    assert ("The cohort is cancelled: its 8 sessions to come and 4 places booked. We have texted 3 patients. "
            "1 booked patient does not accept texts: phone them.") in said
    assert "This cohort is cancelled." in said
    assert after.find("a", string="Cancel this cohort") is None
    session.expire_all()
    assert session.get(Cohort, cohort.id).status == "cancelled"
    assert session.scalar(select(func.count()).select_from(SmsMessage).where(
        SmsMessage.kind == "booking_cancelled")) == 3
    [event] = _audit(session, "cohort_cancelled")
    assert event.detail == (f"cohort {cohort.id}: 8 sessions, 4 places, 0 waits ended, 0 offers withdrawn, "
                            "0 offered elsewhere, 3 texts")
    per_patient = _audit(session, "seat_cancelled_by_staff")
    booked = session.scalars(select(Booking).where(Booking.cohort_id == cohort.id)).all()
    assert sorted((e.patient_id, e.detail) for e in per_patient) == sorted(
        (b.patient_id, f"booking {b.id}: cohort {cohort.id} cancelled") for b in booked)

    # Sent again (Back, then the button): nothing more happens.
    again = admin_client.post(_cancel_url(cohort), data={"reason": "again", "csrf_token": csrf_token(after)})
    assert again.status_code == 302
    assert "already cancelled" in get_page(admin_client, f"/staff/courses/{cohort.id}").get_text()
    assert len(_audit(session, "cohort_cancelled")) == 1


def test_the_confirmation_page_leads_back_to_the_cohort_from_the_top(admin_client, session):
    cohort = factories.create_cohort(session)
    page = get_page(admin_client, _cancel_url(cohort))
    assert page.select_one("a.nhsuk-back-link")["href"] == f"/staff/courses/{cohort.id}"


def test_cancelling_needs_a_reason(admin_client, session):
    cohort = factories.create_cohort(session)
    response = _post(admin_client, _cancel_url(cohort), {"reason": "   "})
    assert response.status_code == 400
    assert error_for(parse(response), "reason") == "Enter why the cohort is cancelled"
    response = _post(admin_client, _cancel_url(cohort), {"reason": "x" * 501})
    assert response.status_code == 400
    assert error_for(parse(response), "reason") == "Why the cohort is cancelled must be 500 characters or fewer"
    session.expire_all()
    assert session.get(Cohort, cohort.id).status == "open"


def test_a_cohort_that_has_met_is_sent_to_the_session_cancel_instead(admin_client, session, domain):
    cohort = factories.create_cohort(session)
    token = csrf_token(get_page(admin_client, _cancel_url(cohort)))
    first = session.get(CohortSession, cohort.sessions[0].id)
    first.starts_at = utcnow() - dt.timedelta(hours=1)
    first.ends_at = utcnow() + dt.timedelta(hours=1)
    session.commit()
    assert get_page(admin_client, f"/staff/courses/{cohort.id}").find("a", string="Cancel this cohort") is None
    assert admin_client.get(_cancel_url(cohort)).status_code == 302
    assert "Cancel the sessions still to come one at a time" in get_page(
        admin_client, f"/staff/courses/{cohort.id}").get_text()
    response = admin_client.post(_cancel_url(cohort), data={"reason": "Too few", "csrf_token": token})
    assert response.status_code == 409
    assert "already met" in error_for(parse(response), "reason")
    session.expire_all()
    assert session.get(Cohort, cohort.id).status == "open"


def test_only_admins_change_or_cancel_a_cohort(app, session, patient_client, reception_client):
    cohort = factories.create_cohort(session)
    facilitator = staff_client(app, session, Role.FACILITATOR)
    for client in (patient_client, facilitator, reception_client):
        for url in (_places_url(cohort), _cancel_url(cohort)):
            assert client.get(url).status_code == 403, url
            assert client.post(url, data={"capacity": "30", "reason": "x"}).status_code in (400, 403), url
    # Reception runs sessions from the cohort page, but sees neither link.
    page = get_page(reception_client, f"/staff/courses/{cohort.id}")
    assert page.find("a", string="Change the number of places") is None
    assert page.find("a", string="Cancel this cohort") is None
    anonymous = app.test_client().get(_cancel_url(cohort))
    assert anonymous.status_code == 302 and "/sign-in" in anonymous.headers["Location"]
    session.expire_all()
    assert (session.get(Cohort, cohort.id).capacity, session.get(Cohort, cohort.id).status) == (12, "open")


def test_a_cohort_that_does_not_exist_is_not_found(admin_client):
    for url in ("/staff/courses/999999/capacity", "/staff/courses/999999/cancel", "/staff/courses/0/cancel"):
        assert admin_client.get(url).status_code == 404, url


# Arbitrary input never answers 500 and never writes half a change.

TEXT = st.one_of(st.just(""), st.text(max_size=40), st.text(alphabet=st.characters(codec="utf-8"), max_size=600))
FUZZ = settings(max_examples=30, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.data_too_large])


@FUZZ
@given(typed=st.one_of(TEXT, st.integers(-100, 100).map(str)))
def test_fuzz_change_places(admin_client, session, domain, typed):
    cohort = factories.create_cohort(session, capacity=10)
    _book(session, domain, cohort, 3)
    response = _post(admin_client, _places_url(cohort), {"capacity": typed})
    assert response.status_code in (400, 302)
    session.expire_all()
    capacity = session.get(Cohort, cohort.id).capacity
    # Refused: unchanged. Saved: within the bounds, and never below the 3 places booked.
    assert capacity == 10 if response.status_code == 400 else 3 <= capacity <= 40


@FUZZ
@given(reason=TEXT)
def test_fuzz_cancel_cohort(admin_client, session, reason):
    cohort = factories.create_cohort(session)
    response = _post(admin_client, _cancel_url(cohort), {"reason": reason})
    assert response.status_code in (400, 302)
    session.expire_all()
    assert (session.get(Cohort, cohort.id).status == "cancelled") == (response.status_code == 302)
