"""The register, day list and review pages: who may see and mark them, and what a bad or late POST gets."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from portal.attendance import services
from portal.attendance.models import Attendance, DnaReview, DnaReviewAction
from portal.audit.models import AuditEvent
from portal.audit.services import Actor
from portal.auth.models import Role
from portal.booking.models import Booking
from portal.dates import LONDON
from portal.db import utcnow
from portal.patients.models import Patient
from portal.templating import local_date, local_time
from tests import factories
from tests.appointments.conftest import signed_in_staff
from tests.attendance import helpers
from tests.pages import csrf_token, error_for, get_page, parse


@pytest.fixture
def facilitator_client(app, session):
    return signed_in_staff(app, session, Role.FACILITATOR)


@pytest.fixture
def clinician_client(app, session):
    return signed_in_staff(app, session, Role.CLINICIAN)


@pytest.fixture
def admin_client(app, session):
    return signed_in_staff(app, session, Role.ADMIN)


def _post(client, url, data):
    token = csrf_token(get_page(client, url))
    return client.post(url, data={**data, "csrf_token": token})


def _flash(client, url) -> str:
    """The messages flashed to the page (success banners, and other messages as inset text)."""
    page = get_page(client, url)
    flashed = page.select(".nhsuk-notification-banner") + [
        inset for inset in page.select(".nhsuk-inset-text") if "Information:" in inset.get_text()]
    return " ".join(b.get_text(" ", strip=True) for b in flashed)


def _marks(session) -> dict[int, str]:
    return dict(session.execute(select(Attendance.patient_id, Attendance.mark)).all())


def test_the_staff_home_links_to_today_and_the_reviews(facilitator_client, reception_client):
    page = get_page(facilitator_client, "/staff")
    assert page.find("a", href="/staff/today") and page.find("a", href="/staff/dna-reviews")
    assert not get_page(reception_client, "/staff").find("a", href="/staff/today")


def test_my_sessions_today_links_to_my_register_and_day_list(facilitator_client, session):
    me = facilitator_client.user
    mine = helpers.group_session(session, facilitators=(me,))
    theirs = helpers.group_session(session)
    helpers.appointment(session, factories.create_patient(session), clinician=me)
    page = get_page(facilitator_client, "/staff/today")
    assert page.h1.get_text(strip=True) == "My sessions today"
    assert page.find("a", href=f"/staff/registers/{mine.id}")
    assert not page.find("a", href=f"/staff/registers/{theirs.id}")
    today = utcnow().astimezone(LONDON).date().isoformat()
    assert page.find("a", href=f"/staff/clinics/{me.id}/{today}")


def test_the_facilitator_marks_the_register(facilitator_client, session):
    cs = helpers.group_session(session, facilitators=(facilitator_client.user,))
    a, b, c = helpers.patients_of(session, cs)
    b.needs_bsl_interpreter = True
    b.interpreter_language = "Turkish"
    session.commit()
    url = f"/staff/registers/{cs.id}"
    page = get_page(facilitator_client, url)
    fieldset = page.find("input", attrs={"name": f"mark_{b.id}"}).find_parent("fieldset")
    assert b.full_name in fieldset.legend.get_text()
    assert "BSL interpreter" in fieldset.get_text() and "Interpreter (Turkish)" in fieldset.get_text()
    response = _post(facilitator_client, url, {f"mark_{a.id}": "dna", "action": "all_attended"})
    assert response.status_code == 302 and response.headers["Location"] == url
    assert _marks(session) == {a.id: "dna", b.id: "attended", c.id: "attended"}
    assert "3 marks saved." in _flash(facilitator_client, url)
    # The same form again (a resubmission) changes nothing.
    _post(facilitator_client, url, {f"mark_{a.id}": "dna", "action": "all_attended"})
    assert "No marks changed." in _flash(facilitator_client, url)
    assert session.scalar(select(func.count()).select_from(Attendance)) == 3
    page = get_page(facilitator_client, url)
    assert page.find("input", attrs={"name": f"mark_{a.id}", "value": "dna"}).has_attr("checked")


def test_a_tampered_mark_is_refused_next_to_the_patient(facilitator_client, session):
    cs = helpers.group_session(session, facilitators=(facilitator_client.user,))
    a, *_ = helpers.patients_of(session, cs)
    url = f"/staff/registers/{cs.id}"
    response = _post(facilitator_client, url, {f"mark_{a.id}": "present"})
    assert response.status_code == 400
    assert error_for(parse(response), f"mark_{a.id}") == f"Choose a mark for {a.full_name} from the list"
    response = _post(facilitator_client, url, {"action": "save"})
    assert response.status_code == 400
    assert "Choose a mark for at least one patient" in parse(response).select_one(".nhsuk-error-summary").get_text()
    assert _marks(session) == {}


@pytest.mark.parametrize(("mark", "words"), [("dna", "did not attend"), ("late", "attended late")])
def test_late_and_did_not_attend_wait_for_the_start_and_say_so_next_to_the_patient(facilitator_client, session,
                                                                                    mark, words):
    cs = helpers.group_session(session, facilitators=(facilitator_client.user,),
                               starts_at=utcnow() + dt.timedelta(minutes=15))
    a, b, _ = helpers.patients_of(session, cs)
    url = f"/staff/registers/{cs.id}"
    response = _post(facilitator_client, url, {f"mark_{a.id}": "attended", f"mark_{b.id}": mark})
    assert response.status_code == 400
    page = parse(response)
    message = f"{b.full_name} can be marked as {words} once the session starts, at {local_time(cs.starts_at)}"
    assert error_for(page, f"mark_{b.id}") == message
    assert message in page.select_one(".nhsuk-error-summary").get_text()
    assert _marks(session) == {}


def test_a_late_mark_on_a_day_list_waits_for_the_appointment_to_start(clinician_client, session):
    me = clinician_client.user
    patient = factories.create_patient(session)
    soon = helpers.appointment(session, patient, clinician=me, starts_at=utcnow() + dt.timedelta(minutes=10))
    url = f"/staff/clinics/{me.id}/{soon.slot.starts_at.astimezone(LONDON).date().isoformat()}"
    response = _post(clinician_client, url, {f"mark_{soon.id}": "late"})
    assert response.status_code == 400
    assert error_for(parse(response), f"mark_{soon.id}") == (
        f"{patient.full_name} can be marked as attended late once the appointment starts, at "
        f"{local_time(soon.starts_at)}")
    assert _marks(session) == {}


def test_a_future_session_is_read_only_and_a_post_is_refused(facilitator_client, session):
    cs = helpers.group_session(session, facilitators=(facilitator_client.user,),
                               starts_at=utcnow() + dt.timedelta(days=2))
    a, *_ = helpers.patients_of(session, cs)
    url = f"/staff/registers/{cs.id}"
    page = get_page(facilitator_client, url)
    assert not page.find("input", attrs={"type": "radio"})
    assert "has not started yet" in page.select_one(".nhsuk-inset-text").get_text()
    token = csrf_token(get_page(facilitator_client, "/staff/today"))
    response = facilitator_client.post(url, data={f"mark_{a.id}": "attended", "csrf_token": token})
    assert response.status_code == 302
    assert "has not started yet" in _flash(facilitator_client, url)
    assert _marks(session) == {}


def test_after_the_correction_window_the_register_is_read_only(facilitator_client, session):
    cs = helpers.group_session(session, facilitators=(facilitator_client.user,),
                               starts_at=utcnow() - dt.timedelta(days=9))
    a, *_ = helpers.patients_of(session, cs)
    url = f"/staff/registers/{cs.id}"
    page = get_page(facilitator_client, url)
    assert not page.find("input", attrs={"type": "radio"})
    assert "can no longer be changed" in page.select_one(".nhsuk-inset-text").get_text()
    token = csrf_token(page)
    facilitator_client.post(url, data={f"mark_{a.id}": "attended", "csrf_token": token})
    assert "corrections were allowed until the end of" in _flash(facilitator_client, url)
    assert _marks(session) == {}


def test_a_cancelled_session_cannot_be_marked(facilitator_client, session):
    cs = helpers.group_session(session, facilitators=(facilitator_client.user,))
    cs.status = "cancelled"
    session.commit()
    a, *_ = helpers.patients_of(session, cs)
    url = f"/staff/registers/{cs.id}"
    token = csrf_token(get_page(facilitator_client, url))
    facilitator_client.post(url, data={f"mark_{a.id}": "attended", "csrf_token": token})
    assert "was cancelled" in _flash(facilitator_client, url)
    assert _marks(session) == {}


def test_a_patient_who_withdrew_this_morning_is_marked_on_last_night_s_register(facilitator_client, session):
    cs = helpers.group_session(session, facilitators=(facilitator_client.user,), patients=2,
                               starts_at=utcnow() - dt.timedelta(hours=14))
    stays, withdrew = helpers.patients_of(session, cs)
    left = utcnow() - dt.timedelta(hours=2)
    session.scalars(select(Booking).where(Booking.patient_id == withdrew.id)).one().cancel(
        left, reason="Withdrew", by_staff=True)
    session.commit()
    url = f"/staff/registers/{cs.id}"
    fieldset = get_page(facilitator_client, url).find("input", attrs={"name": f"mark_{withdrew.id}"}).find_parent(
        "fieldset")
    assert f"Left this group on {local_date(left)}" in fieldset.get_text()
    assert _post(facilitator_client, url, {"action": "all_attended"}).status_code == 302
    assert _marks(session) == {stays.id: "attended", withdrew.id: "attended"}


def test_another_facilitator_reads_but_cannot_mark_and_an_admin_can(facilitator_client, admin_client, session):
    cs = helpers.group_session(session)  # facilitated by somebody else
    a, *_ = helpers.patients_of(session, cs)
    url = f"/staff/registers/{cs.id}"
    page = get_page(facilitator_client, url)
    assert not page.find("input", attrs={"type": "radio"})
    assert "Only this group's facilitators or an admin" in page.get_text()
    token = csrf_token(page)
    assert facilitator_client.post(url, data={f"mark_{a.id}": "dna", "csrf_token": token}).status_code == 403
    assert _marks(session) == {}
    assert _post(admin_client, url, {f"mark_{a.id}": "dna"}).status_code == 302
    assert _marks(session) == {a.id: "dna"}


@pytest.mark.parametrize("url", ["/staff/today", "/staff/registers/{cs}", "/staff/dna-reviews",
                                 "/staff/dna-reviews/{review}", "/staff/clinics/{clinician}/{day}"])
def test_patients_and_reception_are_refused(patient_client, reception_client, session, url):
    cs = helpers.group_session(session)
    patient = helpers.patients_of(session, cs)[0]
    found = DnaReview(patient_id=patient.id, service_key="t1-group", trigger="2 did not attend", opened_at=utcnow())
    session.add(found)
    clinician = factories.create_staff(session, role=Role.CLINICIAN, enrolled=False)
    session.commit()
    url = url.format(cs=cs.id, review=found.id, clinician=clinician.id, day=utcnow().date().isoformat())
    for client in (patient_client, reception_client):
        assert client.get(url).status_code == 403
        token = csrf_token(parse(client.get("/contact")))
        assert client.post(url, data={"csrf_token": token}).status_code in (403, 405)


@pytest.mark.parametrize("url", ["/staff/registers/999999", "/staff/registers/0", "/staff/dna-reviews/99999999",
                                 "/staff/clinics/99999/2025-01-01", "/staff/clinics/1/2025-02-30",
                                 "/staff/clinics/1/today", "/staff/registers/99999999999999999999"])
def test_bad_ids_are_not_found(admin_client, url):
    assert admin_client.get(url).status_code == 404


def test_the_clinician_marks_their_day_list_and_not_another_one(clinician_client, admin_client, session):
    me = clinician_client.user
    patient = factories.create_patient(session, needs_large_print=True)
    mine = helpers.appointment(session, patient, clinician=me)
    day = mine.slot.starts_at.astimezone(LONDON).date().isoformat()
    url = f"/staff/clinics/{me.id}/{day}"
    page = get_page(clinician_client, url)
    assert "Large print" in page.find("input", attrs={"name": f"mark_{mine.id}"}).find_parent("fieldset").get_text()
    assert _post(clinician_client, url, {"action": "all_attended"}).status_code == 302
    assert _marks(session) == {patient.id: "attended"}
    other = factories.create_staff(session, role=Role.CLINICIAN, enrolled=False)
    theirs = helpers.appointment(session, factories.create_patient(session), clinician=other)
    other_url = f"/staff/clinics/{other.id}/{theirs.slot.starts_at.astimezone(LONDON).date().isoformat()}"
    page = get_page(clinician_client, other_url)
    assert not page.find("input", attrs={"type": "radio"})
    assert clinician_client.post(other_url, data={f"mark_{theirs.id}": "dna",
                                                  "csrf_token": csrf_token(page)}).status_code == 403
    assert _post(admin_client, other_url, {f"mark_{theirs.id}": "dna"}).status_code == 302


def _review(db, session, domain, facilitator):
    patient = factories.create_patient(session)
    cs = helpers.group_session(session, booked=[patient], starts_at=utcnow() - dt.timedelta(days=2))
    second = helpers.group_session(session, cohort=cs.cohort, number=2, starts_at=utcnow() - dt.timedelta(days=1))
    actor = Actor(user_id=facilitator.id, role="facilitator")
    for target in (cs, second):
        with db.transaction() as s:
            services.save_register(s, domain, target.id, {patient.id: "dna"}, actor=actor, now=utcnow())
    return patient, session.scalars(select(DnaReview)).one()


def test_the_review_queue_and_a_decision_with_a_note(facilitator_client, db, session, domain):
    patient, found = _review(db, session, domain, facilitator_client.user)
    queue = get_page(facilitator_client, "/staff/dna-reviews")
    assert queue.find("a", href=f"/staff/dna-reviews/{found.id}")
    url = f"/staff/dna-reviews/{found.id}"
    page = get_page(facilitator_client, url)
    assert "2 did not attend" in page.get_text() and page.get_text().count("Did not attend") >= 2
    assert "Reception can move it to a later group" in page.get_text()
    response = _post(facilitator_client, url, {"action": "discharged", "note": "  "})
    assert response.status_code == 400
    assert error_for(parse(response), "note") == "Enter the reason for discharging the patient back to the referrer"
    response = _post(facilitator_client, url, {"note": "Phoned"})
    assert error_for(parse(response), "action") == "Choose what you have decided"
    response = _post(facilitator_client, url, {"action": "struck_off", "note": "Phoned"})
    assert error_for(parse(response), "action") == "Choose what you have decided"
    assert session.scalar(select(func.count()).select_from(DnaReviewAction)) == 0

    assert _post(facilitator_client, url, {"action": "contacted", "note": "Left a voicemail"}).headers[
        "Location"] == url
    assert "Left a voicemail" in get_page(facilitator_client, url).get_text()
    response = _post(facilitator_client, url, {"action": "discharged", "note": "Declined further treatment"})
    assert response.headers["Location"] == "/staff/dna-reviews"
    session.expire_all()
    assert session.get(Patient, patient.id).discharge_reason == "Declined further treatment"
    assert session.get(DnaReview, found.id).decision == "discharged"
    page = get_page(facilitator_client, url)
    assert not page.find("textarea") and "Discharged back to the referrer on" in page.get_text()
    events = session.scalars(select(AuditEvent.action).where(AuditEvent.patient_id == patient.id)).all()
    assert {"dna_review_opened", "dna_review_contacted", "dna_review_discharged", "dna_review_viewed"} <= set(events)
    # A second decision, from a stale form, is refused.
    token = csrf_token(page)
    facilitator_client.post(url, data={"action": "kept_on", "note": "Too late", "csrf_token": token})
    assert session.scalar(select(func.count()).select_from(DnaReviewAction)) == 2
    assert "No patients are waiting" in get_page(facilitator_client, "/staff/dna-reviews").get_text()


def test_a_review_withdrawn_by_a_correction_says_so_and_takes_no_decision(facilitator_client, reception_client, db,
                                                                           session, domain):
    patient, found = _review(db, session, domain, facilitator_client.user)
    url = f"/staff/dna-reviews/{found.id}"
    stale = csrf_token(get_page(facilitator_client, url))
    first = session.scalars(select(Attendance).where(Attendance.patient_id == patient.id)
                            .order_by(Attendance.starts_at)).first()
    with db.transaction() as s:
        services.save_register(s, domain, first.cohort_session_id, {patient.id: "attended"},
                               actor=Actor(user_id=facilitator_client.user.id, role="facilitator"), now=utcnow())
    page = get_page(facilitator_client, url)
    assert "Withdrawn: a did-not-attend mark behind it was corrected" in page.get_text()
    assert not page.find("textarea")
    facilitator_client.post(url, data={"action": "kept_on", "note": "Phoned", "csrf_token": stale})
    assert "This review is already closed" in _flash(facilitator_client, url)
    assert session.scalar(select(func.count()).select_from(DnaReviewAction)) == 0
    assert "No patients are waiting" in get_page(facilitator_client, "/staff/dna-reviews").get_text()
    record = get_page(reception_client, f"/staff/patients/{patient.id}")
    assert "Withdrawn: a mark behind it was corrected" in record.find(id=f"review-{found.id}").get_text()


def test_an_admin_gets_the_link_to_move_the_seat(admin_client, db, session, domain):
    facilitator = factories.create_staff(session, role=Role.FACILITATOR, enrolled=False)
    patient, found = _review(db, session, domain, facilitator)
    page = get_page(admin_client, f"/staff/dna-reviews/{found.id}")
    link = page.find("a", string="Move their place to a later group")
    assert link["href"].startswith(f"/staff/patients/{patient.id}/bookings/")
    assert get_page(admin_client, link["href"]).h1


def test_last_week_s_register_is_reached_from_the_group_s_page(facilitator_client, app, session):
    """Marks can be corrected for days after a session, but the staff home links only today's registers."""
    cohort = factories.create_cohort(session, first_date=utcnow().date() - dt.timedelta(days=6))
    session.commit()
    last_week = cohort.sessions[0]
    page = get_page(facilitator_client, f"/staff/courses/{last_week.cohort_id}")
    links = {a["href"] for a in page.select("main a[href^='/staff/registers/']")}
    assert f"/staff/registers/{last_week.id}" in links
    assert len(links) == 1  # the later sessions have not happened yet
    get_page(facilitator_client, f"/staff/registers/{last_week.id}")
    # Reception does not take registers: no link for them.
    reception = signed_in_staff(app, session, Role.RECEPTION)
    page = get_page(reception, f"/staff/courses/{last_week.cohort_id}")
    assert page.select("main a[href^='/staff/registers/']") == []
