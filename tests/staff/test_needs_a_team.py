"""The "needs a team" queue: Tier 2 patients whose postcode is in no catchment, until staff choose a team."""

import pytest
from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.auth.models import Role
from portal.patients.models import Patient
from tests import factories
from tests.conftest import sign_in
from tests.pages import csrf_token, error_for, get_page, parse
from tests.staff.registration import post_registration

QUEUE = "/staff/queues/needs-a-team"


def _staff_client(app, session, role):
    user = factories.create_staff(session, role=role)
    client = app.test_client()
    assert sign_in(client, user.email).status_code == 302
    return client


def _assign(client, patient_id, team):
    page = get_page(client, f"/staff/patients/{patient_id}/team")
    return client.post(f"/staff/patients/{patient_id}/team", data={"team": team, "csrf_token": csrf_token(page)})


def test_registered_with_an_unmatched_postcode_the_patient_waits_in_the_queue(reception_client, session):
    assert post_registration(reception_client, postcode="N4 3LS").status_code == 302
    patient = session.scalars(select(Patient)).one()
    home = get_page(reception_client, "/staff")
    link = home.find("a", href=QUEUE)
    assert link is not None and "1 waiting" in link.parent.get_text(" ", strip=True)
    queue = get_page(reception_client, QUEUE)
    assert queue.find("a", href=f"/staff/patients/{patient.id}", string="Ada Lovelace")
    assert "N4 3LS" in queue.get_text()
    assert queue.find("a", href=f"/staff/patients/{patient.id}/team")


def test_only_tier_2_patients_without_a_team_are_listed_oldest_first(reception_client, session):
    first = factories.create_patient(session, tier=2, team=None, postcode="N4 3LS")
    second = factories.create_patient(session, tier=2, team=None, postcode="EC1V 4PW")
    factories.create_patient(session, tier=2, team="haringey")
    factories.create_patient(session, tier=1)
    queue = get_page(reception_client, QUEUE)
    names = [a.get_text(strip=True) for a in queue.select("tbody a[href^='/staff/patients/']")
             if not a["href"].endswith("/team")]
    assert names == [first.full_name, second.full_name]


def test_the_queue_says_when_it_is_empty(reception_client, session):
    factories.create_patient(session, tier=2)
    assert "No patients need a team." in get_page(reception_client, QUEUE).get_text()
    assert "waiting" not in get_page(reception_client, "/staff").get_text()


def test_assigning_a_team_takes_the_patient_off_the_queue_and_is_audited(reception_client, session):
    patient = factories.create_patient(session, tier=2, team=None, postcode="N4 3LS")
    page = get_page(reception_client, f"/staff/patients/{patient.id}/team")
    # The title names the patient, as on the other pages about one patient: two tabs open are told apart.
    assert page.title.string.startswith(f"Assign a team: {patient.full_name} – ")
    assert "N4 is in no Tier 2 team's catchment" in page.get_text(" ", strip=True)
    options = [o["value"] for o in page.select("select[name=team] option")]
    assert options == ["", "whittington", "haringey"]

    response = _assign(reception_client, patient.id, "haringey")
    assert response.status_code == 302 and response.headers["Location"] == QUEUE
    session.expire_all()
    assert session.get(Patient, patient.id).team == "haringey"
    queue = get_page(reception_client, QUEUE)
    assert "is now with the Haringey Community Pain Service" in queue.get_text(" ", strip=True)
    assert "No patients need a team." in queue.get_text()
    [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "team_assigned"))
    assert (event.patient_id, event.detail) == (patient.id, "no team -> haringey")


def test_changing_a_team_from_the_record_goes_back_to_the_record(reception_client, session):
    patient = factories.create_patient(session, tier=2, team="whittington")
    record = get_page(reception_client, f"/staff/patients/{patient.id}")
    assert record.find("a", href=f"/staff/patients/{patient.id}/team")
    response = _assign(reception_client, patient.id, "haringey")
    assert response.headers["Location"] == f"/staff/patients/{patient.id}"
    session.expire_all()
    assert session.get(Patient, patient.id).team == "haringey"


def test_a_move_to_another_team_ends_a_wait_for_one_group_of_the_old_team(reception_client, session, domain):
    # That group can never offer them a place now; a wait for any group of the Programme follows the team.
    from portal.booking import waitlist
    from portal.booking.models import WaitlistEntry
    from portal.db import utcnow
    from portal.messaging.models import SmsMessage

    patient = factories.create_patient(session, tier=2, team="whittington")
    old_group = factories.create_cohort(session, service_key="t2-programme", team="whittington", capacity=1,
                                        seats_taken=1)
    programme = domain.catalogue.get("t2-programme")
    one = waitlist.join(session, domain, patient, programme, cohort=old_group, now=utcnow())
    session.commit()
    response = _assign(reception_client, patient.id, "haringey")
    assert response.headers["Location"] == f"/staff/patients/{patient.id}"
    banner = get_page(reception_client, f"/staff/patients/{patient.id}").select_one(".nhsuk-notification-banner")
    assert "off the waiting list for a group of their old team. We have texted them" in banner.get_text()
    session.expire_all()
    assert session.get(WaitlistEntry, one.id).status == "left"
    assert session.scalars(select(SmsMessage.kind).where(SmsMessage.patient_id == patient.id)).all() == [
        "waiting_list_closed"]
    [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "waitlist_closed_on_retriage")).all()
    assert (event.patient_id, event.detail) == (patient.id, f"entry {one.id}, t2-programme; now with haringey")


@pytest.mark.parametrize(("team", "message"),
                         [("", "Select a team"), ("islington-south", "Select a team from the list")])
def test_a_bad_choice_is_shown_next_to_the_select_and_nothing_changes(reception_client, session, team, message):
    patient = factories.create_patient(session, tier=2, team=None, postcode="N4 3LS")
    response = _assign(reception_client, patient.id, team)
    assert response.status_code == 400
    page = parse(response)
    assert message in error_for(page, "team")
    assert page.select_one(".nhsuk-error-summary")
    session.expire_all()
    assert session.get(Patient, patient.id).team is None
    assert session.scalars(select(AuditEvent).where(AuditEvent.action == "team_assigned")).all() == []


def test_tier_1_patients_have_no_team_to_assign(reception_client, session):
    patient = factories.create_patient(session, tier=1)
    response = reception_client.get(f"/staff/patients/{patient.id}/team")
    assert response.headers["Location"] == f"/staff/patients/{patient.id}"
    assert "Only Tier 2 patients have a team" in get_page(reception_client, response.headers["Location"]).get_text()


def test_unknown_patient_is_404(reception_client):
    get_page(reception_client, "/staff/patients/999999/team", status=404)


def test_facilitators_cannot_see_the_queue_or_assign(app, session):
    patient = factories.create_patient(session, tier=2, team=None, postcode="N4 3LS")
    client = _staff_client(app, session, Role.FACILITATOR)
    assert client.get(QUEUE).status_code == 403
    assert client.get(f"/staff/patients/{patient.id}/team").status_code == 403
    home = get_page(client, "/staff")
    assert home.find("a", href=QUEUE) is None
    record = get_page(client, f"/staff/patients/{patient.id}")  # they may read the record
    assert record.find("a", href=f"/staff/patients/{patient.id}/team") is None
    response = client.post(f"/staff/patients/{patient.id}/team", data={"team": "haringey",
                                                                        "csrf_token": csrf_token(home)})
    assert response.status_code == 403
    session.expire_all()
    assert session.get(Patient, patient.id).team is None


def test_patients_cannot_see_the_queue(patient_client):
    get_page(patient_client, QUEUE, status=403)


def test_admins_can_assign(app, session):
    patient = factories.create_patient(session, tier=2, team=None, postcode="N4 3LS")
    client = _staff_client(app, session, Role.ADMIN)
    assert _assign(client, patient.id, "whittington").status_code == 302
    session.expire_all()
    assert session.get(Patient, patient.id).team == "whittington"
