"""The reception record page: every section, every booking action one click away, and a bounded query count."""

from __future__ import annotations

import datetime as dt

import pytest

from portal.attendance.models import Attendance, DnaReview, DnaReviewAction
from portal.auth.models import Role
from portal.booking.models import Booking, WaitlistEntry
from portal.booking.services import book_seat
from portal.db import utcnow
from portal.messaging.services import enqueue_sms
from tests import factories
from tests.appointments import factories as appointment_factories
from tests.conftest import sign_in
from tests.pages import get_page
from tests.test_query_counts import recorded_statements


def _client(app, session, role: Role):
    user = factories.create_staff(session, role=role)
    client = app.test_client()
    assert sign_in(client, user.email).status_code == 302
    client.user = user
    return client


def _full_history(session, patient, *, marker: str = "") -> dict:
    """A patient with a seat, an appointment, a waiting-list place, attendance, a review and texts."""
    now = utcnow()
    domain = factories.domain()
    staff = factories.create_staff(session, role=Role.FACILITATOR, enrolled=False)
    cohort = factories.create_cohort(session)
    seat = book_seat(session, domain, patient, cohort.id, now=now)
    session.commit()
    slot = appointment_factories.create_slot(session)
    appointment = appointment_factories.book(session, patient, slot)
    full = factories.create_cohort(session, service_key="t1-group", capacity=1, seats_taken=1)
    # Waiting for another course would be refused by the service (one seat per course): set it directly.
    session.add(WaitlistEntry(patient_id=patient.id, service_key="t1-group", cohort_id=full.id, position=1,
                              status="waiting", created_at=now, updated_at=now))
    first = cohort.sessions[0]
    session.add(Attendance(patient_id=patient.id, cohort_session_id=first.id, service_key="t1-group",
                           starts_at=first.starts_at, mark="dna", recorded_by_id=staff.id, recorded_at=now,
                           updated_at=now))
    review = DnaReview(patient_id=patient.id, service_key="t1-group", cohort_id=cohort.id,
                       trigger=f"2 did not attend in this course{marker}", opened_at=now, status="closed",
                       decision="kept_on", closed_at=now)
    session.add(review)
    session.flush()
    session.add(DnaReviewAction(review_id=review.id, action="kept_on", note="Spoke to them", decided_by_id=staff.id,
                                decided_at=now))
    enqueue_sms(session, key=f"test:{patient.id}:{marker}", patient=patient, kind="booking_confirmed",
                body="Test text", now=now)
    session.commit()
    return {"seat": seat.id, "appointment": appointment.id, "review": review.id}


def test_the_record_shows_every_section_with_actions_one_click_away(reception_client, session):
    patient = factories.create_patient(session, needs_large_print=True, interpreter_language="Polish")
    ids = _full_history(session, patient)
    page = get_page(reception_client, f"/staff/patients/{patient.id}")
    words = page.get_text(" ", strip=True)

    assert "Interpreter: Polish" in page.find(class_="nhsuk-card--warning").get_text()
    assert patient.nhs_number_display in words
    seat = page.find(id=f"seat-{ids['seat']}")
    assert "Eight-week Pain Management Group" in seat.get_text()
    assert seat.find("a", href=f"/staff/patients/{patient.id}/bookings/{ids['seat']}/move")
    assert seat.find("a", href=f"/staff/patients/{patient.id}/bookings/{ids['seat']}/cancel")
    appointment = page.find(id=f"appointment-{ids['appointment']}")
    assert appointment.find("a", href=f"/staff/patients/{patient.id}/appointments/{ids['appointment']}/reschedule")
    assert appointment.find("a", href=f"/staff/patients/{patient.id}/appointments/{ids['appointment']}/cancel")
    assert page.find("a", href=f"/staff/patients/{patient.id}/appointments/new")
    assert page.find("a", href=f"/staff/patients/{patient.id}/courses")
    assert "number 1, for the group starting" in words  # the waiting list
    assert "did not attend 1" in words  # attendance counts, kept apart
    assert "2 did not attend in this course" in page.find(id=f"review-{ids['review']}").get_text()
    assert "Keep them on" in page.find(id=f"review-{ids['review']}").get_text()
    texts = page.find(id="texts").find_next("ul").get_text(" ", strip=True)
    assert "Booking confirmed" in texts and "Waiting to send" in texts
    assert "Test text" not in words  # the body stays in the message log
    trail = page.find(id="audit-trail").find_next("ul").get_text(" ", strip=True)
    assert "Patient record viewed" in trail
    assert page.find("a", href=f"/staff/audit?patient={patient.id}")


def _moved_to_tier_2(session, patient) -> dict:
    """A Tier 1 patient with a Group place and a pharmacy review booked, then re-triaged to Tier 2."""
    ids = _full_history(session, patient)
    patient.tier, patient.team = 2, "whittington"
    session.commit()
    return ids


def test_bookings_from_the_old_tier_are_listed_for_reception_to_cancel_or_keep(reception_client, session):
    patient = factories.create_patient(session, given_name="Maryam", family_name="Okafor")
    ids = _moved_to_tier_2(session, patient)
    page = get_page(reception_client, f"/staff/patients/{patient.id}")
    callout = page.find(id="other-tier-bookings")
    assert callout.find("h3").get_text(" ", strip=True).endswith("Still booked from Tier 1")
    words = callout.get_text(" ", strip=True)
    assert ("Maryam Okafor is now in Tier 2, which does not offer these. Nothing has been cancelled: for each one, "
            "cancel it or keep it.") in words
    items = [li.get_text(" ", strip=True) for li in callout.find_all("li")]
    assert len(items) == 2
    assert any(item.startswith("Pain management physiotherapy, ") and item.endswith("or keep") for item in items)
    assert any(item.startswith("Eight-week Pain Management Group, group starting ") for item in items)
    assert callout.find("a", href=f"/staff/patients/{patient.id}/bookings/{ids['seat']}/cancel")
    assert callout.find("a", href=f"/staff/patients/{patient.id}/appointments/{ids['appointment']}/cancel")


def test_a_patient_of_one_tier_throughout_has_no_old_tier_list(reception_client, session):
    patient = factories.create_patient(session)
    _full_history(session, patient)
    page = get_page(reception_client, f"/staff/patients/{patient.id}")
    assert not page.find(id="other-tier-bookings")


def test_a_facilitator_sees_the_old_tier_list_without_the_cancel_links(app, session):
    patient = factories.create_patient(session)
    ids = _moved_to_tier_2(session, patient)
    page = get_page(_client(app, session, Role.FACILITATOR), f"/staff/patients/{patient.id}")
    callout = page.find(id="other-tier-bookings")
    assert len(callout.find_all("li")) == 2
    assert not callout.find("a", href=f"/staff/patients/{patient.id}/bookings/{ids['seat']}/cancel")
    assert not any("or keep" in li.get_text() for li in callout.find_all("li"))
    assert "reception decide whether to cancel or keep each one" in callout.get_text(" ", strip=True)


def test_the_audit_trail_shows_the_latest_twenty(reception_client, session):
    patient = factories.create_patient(session)
    for _ in range(25):
        reception_client.get(f"/staff/patients/{patient.id}")
    page = get_page(reception_client, f"/staff/patients/{patient.id}")
    assert len(page.find(id="audit-trail").find_next("ul").find_all("li")) == 20


def test_a_facilitator_reads_the_record_without_actions_or_trail(app, session):
    patient = factories.create_patient(session)
    ids = _full_history(session, patient)
    page = get_page(_client(app, session, Role.FACILITATOR), f"/staff/patients/{patient.id}")
    assert page.find(id=f"seat-{ids['seat']}")
    assert not page.find("a", href=f"/staff/patients/{patient.id}/bookings/{ids['seat']}/move")
    assert not page.find(id="audit-trail")


def test_an_unknown_patient_is_404_and_a_patient_is_refused(reception_client, patient_client, session):
    assert reception_client.get("/staff/patients/999999").status_code == 404
    assert reception_client.get("/staff/patients/99999999999999999999").status_code == 404
    other = factories.create_patient(session)
    assert patient_client.get(f"/staff/patients/{other.id}").status_code == 403


def test_the_record_shows_only_its_own_patient(reception_client, session):
    patient = factories.create_patient(session)
    other = factories.create_patient(session, family_name="Otherperson")
    _full_history(session, other, marker=" (other)")
    page = get_page(reception_client, f"/staff/patients/{patient.id}")
    words = page.get_text(" ", strip=True)
    assert "Otherperson" not in words and "(other)" not in words
    assert "No course places." in words and "No upcoming appointments." in words and "No texts yet." in words


MAX_STATEMENTS = 40


def test_the_record_runs_a_bounded_number_of_statements(app, reception_client, session):
    """More history (more bookings, marks, texts, events) must not mean more queries: no N+1."""
    patient = factories.create_patient(session)
    _full_history(session, patient)
    url = f"/staff/patients/{patient.id}"
    reception_client.get(url)  # warm: the layout fragments are cached per role
    with recorded_statements(app.extensions["db"].engine) as before:
        assert reception_client.get(url).status_code == 200
    assert len(before) <= MAX_STATEMENTS, "\n\n".join(before)

    now = utcnow()
    staff = factories.create_staff(session, role=Role.FACILITATOR, enrolled=False)
    for _ in range(5):
        cohort = factories.create_cohort(session, service_key="t1-group")
        session.add(Booking(patient_id=patient.id, service_key="t1-group", cohort_id=cohort.id, status="cancelled",
                            created_at=now, cancelled_at=now, cancel_reason="Changed their mind"))
        for cohort_session in cohort.sessions[:3]:
            session.add(Attendance(patient_id=patient.id, cohort_session_id=cohort_session.id, service_key="t1-group",
                                   starts_at=cohort_session.starts_at, mark="attended", recorded_by_id=staff.id,
                                   recorded_at=now, updated_at=now))
        session.add(DnaReview(patient_id=patient.id, service_key="t1-physio", trigger="2 in a row", opened_at=now,
                              status="closed", decision="contacted", closed_at=now))
    for n in range(30):
        enqueue_sms(session, key=f"more:{n}", patient=patient, kind="reminder", body="x", now=now)
    session.commit()
    for slot in appointment_factories.create_slots(session, 4, first=now + dt.timedelta(days=20)):
        appointment_factories.book(session, patient, slot, by_staff=True, override_reason="Test: more than the limit")
    with recorded_statements(app.extensions["db"].engine) as after:
        assert reception_client.get(url).status_code == 200
    assert len(after) == len(before), "\n\n".join(after)


@pytest.mark.parametrize("path", ["/staff/patients/abc", "/staff/patients/-1", "/staff/patients/0"])
def test_bad_ids_never_500(reception_client, path):
    assert reception_client.get(path).status_code == 404


def test_a_discharged_patient_is_flagged_with_the_reason(reception_client, session):
    patient = factories.create_patient(session)
    page = get_page(reception_client, f"/staff/patients/{patient.id}").get_text(" ", strip=True)
    assert "Discharged" not in page
    patient.discharge(utcnow(), "Did not attend twice; back to the GP")
    session.commit()
    page = get_page(reception_client, f"/staff/patients/{patient.id}").get_text(" ", strip=True)
    assert "Discharged back to the referrer" in page and "Did not attend twice; back to the GP" in page
