"""Changing who runs a cohort: reception and admins choose its facilitators, who then take its register."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import select

from portal.appointments.models import AvailabilityTemplate
from portal.attendance.services import may_mark_register
from portal.audit.models import AuditEvent
from portal.auth.models import Role
from portal.booking.models import Cohort
from portal.dates import written_date
from tests import factories
from tests.conftest import sign_in
from tests.pages import csrf_token, error_for, get_page, parse


def _client(app, session, role: Role):
    user = factories.create_staff(session, role=role)
    client = app.test_client()
    assert sign_in(client, user.email).status_code == 302
    return client


def _url(cohort: Cohort) -> str:
    return f"/staff/courses/{cohort.id}/facilitators"


def _post(client, cohort: Cohort, chosen: list[int]):
    token = csrf_token(get_page(client, _url(cohort)))
    return client.post(_url(cohort), data={"csrf_token": token, "facilitators": [str(i) for i in chosen]})


def _events(session) -> list[AuditEvent]:
    return list(session.scalars(select(AuditEvent).where(AuditEvent.action == "cohort_facilitators_changed")
                                .order_by(AuditEvent.id)))


def _cohort_run_by(session, *facilitators) -> Cohort:
    cohort = factories.create_cohort(session)
    cohort.facilitators = list(facilitators)
    session.commit()
    return cohort


def test_reception_hands_a_cohort_to_a_colleague_who_can_then_take_its_register(app, session):
    usual = factories.create_staff(session, role=Role.FACILITATOR, display_name="Ada Usual")
    cover = factories.create_staff(session, role=Role.FACILITATOR, display_name="Cy Cover")
    cohort = _cohort_run_by(session, usual)
    client = _client(app, session, Role.RECEPTION)

    page = get_page(client, _url(cohort))
    checked = {box["value"] for box in page.select("input[name=facilitators][checked]")}
    assert checked == {str(usual.id)}
    assert page.select_one(f"input[name=facilitators][value='{cover.id}']") is not None

    response = _post(client, cohort, [cover.id])
    assert response.status_code == 302 and response.headers["Location"] == f"/staff/courses/{cohort.id}"
    session.expire_all()
    cohort = session.get(Cohort, cohort.id)
    assert [f.id for f in cohort.facilitators] == [cover.id]
    assert may_mark_register(cover, cohort) and not may_mark_register(usual, cohort)
    [event] = _events(session)
    assert event.detail == f"cohort {cohort.id}: added Cy Cover (user {cover.id}); removed Ada Usual (user {usual.id})"
    assert "Cy Cover" in get_page(client, f"/staff/courses/{cohort.id}").get_text()


def test_choosing_the_same_people_changes_nothing_and_records_nothing(app, session):
    usual = factories.create_staff(session, role=Role.FACILITATOR)
    cohort = _cohort_run_by(session, usual)
    client = _client(app, session, Role.ADMIN)

    assert _post(client, cohort, [usual.id]).status_code == 302
    assert "nothing changed" in get_page(client, f"/staff/courses/{cohort.id}").get_text()
    assert _events(session) == []


def test_an_account_that_is_not_an_active_facilitator_is_refused_next_to_the_field(app, session):
    usual = factories.create_staff(session, role=Role.FACILITATOR)
    receptionist = factories.create_staff(session, role=Role.RECEPTION)
    gone = factories.create_staff(session, role=Role.FACILITATOR, is_active=False)
    cohort = _cohort_run_by(session, usual)
    client = _client(app, session, Role.ADMIN)

    for tampered in (receptionist.id, gone.id, 2**31 - 1):
        response = _post(client, cohort, [tampered])
        assert response.status_code == 400
        assert error_for(parse(response), "facilitators") == "Select facilitators from the list"
    session.expire_all()
    assert [f.id for f in session.get(Cohort, cohort.id).facilitators] == [usual.id]
    assert _events(session) == []


def test_only_reception_and_admins_change_facilitators(app, session):
    usual = factories.create_staff(session, role=Role.FACILITATOR)
    cohort = _cohort_run_by(session, usual)
    for role in (Role.FACILITATOR, Role.CLINICIAN):
        client = _client(app, session, role)
        assert client.get(_url(cohort)).status_code == 403
        assert client.post(_url(cohort), data={"facilitators": [str(usual.id)]}).status_code in (400, 403)
        assert "Change<span" not in client.get(f"/staff/courses/{cohort.id}").get_data(as_text=True)
    patient = factories.create_patient_user(session)
    patient_client = app.test_client()
    assert sign_in(patient_client, patient.patient.mobile).status_code == 302
    assert patient_client.get(_url(cohort)).status_code == 403


def test_an_unknown_or_cancelled_cohort_is_not_found(app, session):
    client = _client(app, session, Role.RECEPTION)
    assert client.get("/staff/courses/999999/facilitators").status_code == 404
    cohort = _cohort_run_by(session)
    cohort.status = "cancelled"
    session.commit()
    assert client.get(_url(cohort)).status_code == 404
    assert "Change<span" not in client.get(f"/staff/courses/{cohort.id}").get_data(as_text=True)


def test_a_facilitator_no_longer_active_is_shown_ticked_and_kept_unless_unticked(app, session):
    usual = factories.create_staff(session, role=Role.FACILITATOR, display_name="Ada Usual")
    cover = factories.create_staff(session, role=Role.FACILITATOR, display_name="Cy Cover")
    cohort = _cohort_run_by(session, usual)
    usual.is_active = False
    session.commit()
    client = _client(app, session, Role.ADMIN)

    page = get_page(client, _url(cohort))
    box = page.select_one(f"input[name=facilitators][value='{usual.id}']")
    assert box is not None and box.has_attr("checked")
    assert "Ada Usual (no longer an active facilitator)" in page.get_text()

    assert _post(client, cohort, [usual.id, cover.id]).status_code == 302
    session.expire_all()
    assert sorted(f.id for f in session.get(Cohort, cohort.id).facilitators) == sorted([usual.id, cover.id])
    assert _post(client, cohort, [cover.id]).status_code == 302
    session.expire_all()
    assert [f.id for f in session.get(Cohort, cohort.id).facilitators] == [cover.id]


def test_a_facilitator_running_another_group_at_the_same_time_cannot_be_added(app, session):
    busy = factories.create_staff(session, role=Role.FACILITATOR, display_name="Bo Busy")
    _cohort_run_by(session, busy)  # the factory's groups meet at the same time each week
    cohort = _cohort_run_by(session)
    client = _client(app, session, Role.RECEPTION)
    page = parse(_post(client, cohort, [busy.id]))
    first = cohort.sessions[0].starts_at
    assert error_for(page, "facilitators") == (
        f"Bo Busy runs another group at that time on {written_date(first)}. Choose other facilitators")
    session.expire_all()
    assert session.get(Cohort, cohort.id).facilitators == [] and _events(session) == []


def test_a_facilitator_holding_a_weekly_clinic_at_the_same_time_cannot_be_added(app, session):
    clinician = factories.create_staff(session, role=Role.FACILITATOR, display_name="Cleo Clinic")
    cohort = _cohort_run_by(session)
    first = cohort.sessions[0].starts_at.astimezone(ZoneInfo("Europe/London"))
    # A clinic elsewhere, 5pm to 7pm on the group's weekday, from its first week: it meets the 6pm sessions.
    session.add(AvailabilityTemplate(clinician_id=clinician.id, service_key="t1-physio",
                                     venue_id=factories.create_venue(session).id, weekday=first.weekday(),
                                     start_time=dt.time(17), end_time=dt.time(19), slot_minutes=30,
                                     valid_from=first.date()))
    session.commit()
    client = _client(app, session, Role.RECEPTION)
    page = parse(_post(client, cohort, [clinician.id]))
    assert error_for(page, "facilitators") == (
        f"Cleo Clinic holds a weekly clinic at that time on {written_date(first)}. Choose other facilitators")
    session.expire_all()
    assert session.get(Cohort, cohort.id).facilitators == [] and _events(session) == []
