"""Reception puts newer triage details on a registered patient from the registration form: the tier changes, dead
waiting-list places close, and what is still booked from the old tier is named for a person to cancel or keep."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.booking.models import Booking, WaitlistEntry
from portal.booking.services import book_seat
from portal.db import utcnow
from portal.messaging.models import SmsMessage
from portal.templating import local_datetime
from tests import factories
from tests.appointments import factories as appointment_factories
from tests.pages import error_for, get_page, parse
from tests.staff.registration import VALID, post_registration


def _tier_1_patient(session):
    """The patient VALID describes, registered in Tier 1 (as SPOA first triaged them) with a Group place, a
    physiotherapy appointment and a place on the Group's waiting list."""
    patient = factories.create_patient(session, tier=1, nhs_number="9434765919", given_name="Ada",
                                       family_name="Lovelace", mobile="+447700900456", postcode="N19 5NF",
                                       date_of_birth=dt.date(1975, 12, 10))
    now = utcnow()
    cohort = factories.create_cohort(session)
    seat = book_seat(session, factories.domain(), patient, cohort.id, now=now)
    session.commit()
    slot = appointment_factories.create_slot(session, starts_at=appointment_factories.days_ahead(4, hour=10))
    appointment = appointment_factories.book(session, patient, slot)
    entry = WaitlistEntry(patient_id=patient.id, service_key="t1-group", position=1, status="waiting",
                          created_at=now, updated_at=now)
    session.add(entry)
    session.commit()
    return patient, seat, appointment, entry, cohort


def test_a_known_nhs_number_offers_to_update_the_existing_record(reception_client, session):
    patient, *_ = _tier_1_patient(session)
    response = post_registration(reception_client)
    assert response.status_code == 400
    page = parse(response)
    assert "already registered" in error_for(page, "nhs_number")
    button = page.find("button", attrs={"name": "update_existing"})
    assert button["value"] == str(patient.id) and "Update the existing record" in button.get_text()
    assert not page.find("button", string=lambda text: text and "Register and send invitation" in text)


def test_updating_to_tier_2_closes_the_waiting_list_place_and_names_what_is_still_booked(reception_client, session):
    patient, seat, appointment, entry, cohort = _tier_1_patient(session)
    response = post_registration(reception_client, update_existing=str(patient.id))
    assert response.status_code == 302
    assert response.headers["Location"] == f"/staff/patients/{patient.id}"
    session.expire_all()
    assert (patient.tier, patient.team) == (2, "whittington")
    assert session.get(WaitlistEntry, entry.id).status == "left"
    assert session.get(Booking, seat.id).status == "active"  # listed for reception, not cancelled
    closed = session.scalars(select(SmsMessage).where(SmsMessage.kind == "waiting_list_closed")).one()
    assert closed.patient_id == patient.id

    record = get_page(reception_client, response.headers["Location"])
    banner = record.select_one(".nhsuk-notification-banner--success").get_text(" ", strip=True)
    assert ("Ada Lovelace is now in Tier 2 (was Tier 1). They are off a waiting list that could never offer them "
            "a place now. We have texted them.") in banner
    words = record.get_text(" ", strip=True)
    assert (f"Still booked from Tier 1: Pain management physiotherapy, {local_datetime(appointment.starts_at)}; "
            f"Eight-week Pain Management Group, group starting {local_datetime(cohort.sessions[0].starts_at)}. "
            "Nothing was cancelled: cancel or keep each one on this record.") in words
    assert record.find(id="other-tier-bookings")
    actions = [e.action for e in session.scalars(select(AuditEvent).where(AuditEvent.patient_id == patient.id)
                                                 .order_by(AuditEvent.id))]
    assert "patient_updated" in actions and "waitlist_closed_on_retriage" in actions
    updated = session.scalars(select(AuditEvent).where(AuditEvent.action == "patient_updated")).one()
    assert updated.detail == ("registration form: tier, triage_date, pain_duration, diagnosis_recorded, "
                              "investigations_recorded, treatment_recorded, letters_received, team")


def test_the_same_details_again_change_nothing(reception_client, session):
    patient = factories.create_patient(session, tier=1, given_name="Grace", family_name="Hopper")
    details = {**VALID, "nhs_number": patient.nhs_number, "given_name": patient.given_name,
               "family_name": patient.family_name, "mobile": patient.mobile, "postcode": patient.postcode,
               "tier": "1", "team": "postcode"}
    first = post_registration(reception_client, **details, update_existing=str(patient.id))
    assert first.status_code == 302
    again = post_registration(reception_client, **details, update_existing=str(patient.id))
    assert again.status_code == 302
    page = get_page(reception_client, again.headers["Location"])
    assert f"Nothing has changed: {patient.full_name}'s record already holds these details." in page.get_text(
        " ", strip=True)


def test_an_update_offered_for_one_record_does_not_change_another(reception_client, session):
    patient, *_ = _tier_1_patient(session)
    other = factories.create_patient(session, tier=1)
    response = post_registration(reception_client, update_existing=str(other.id))
    assert response.status_code == 400
    session.expire_all()
    assert patient.tier == 1 and other.tier == 1
    assert "already registered" in error_for(parse(response), "nhs_number")


def test_a_bad_field_on_an_update_is_shown_and_nothing_changes(reception_client, session):
    patient, *_ = _tier_1_patient(session)
    response = post_registration(reception_client, update_existing=str(patient.id), postcode="nowhere")
    assert response.status_code == 400
    page = parse(response)
    assert "full UK postcode" in error_for(page, "postcode")
    assert error_for(page, "nhs_number") is None
    assert page.find("button", attrs={"name": "update_existing"})
    session.expire_all()
    assert patient.tier == 1


def test_the_offer_to_update_names_whose_record_it_is(reception_client, session):
    patient, *_ = _tier_1_patient(session)
    page = parse(post_registration(reception_client))
    assert ("This NHS number is already registered to Ada Lovelace, born 10 December 1975."
            in page.find(id="duplicate").get_text(" ", strip=True))
    assert page.find(id="not-the-same-person") is None  # the same name and date of birth: nothing to check


def test_another_name_and_date_of_birth_warn_that_the_nhs_number_may_be_mistyped(reception_client, session):
    """A mistyped NHS number can be another patient's: updating would rename them, so reception is told first."""
    patient, *_ = _tier_1_patient(session)
    response = post_registration(reception_client, given_name="Grace", family_name="Hopper",
                                 **{"date_of_birth[day]": "9"})
    assert response.status_code == 400
    warning = parse(response).find(id="not-the-same-person").get_text(" ", strip=True)
    assert "Check the NHS number" in warning
    assert ("The name and date of birth you typed are not Ada Lovelace's. If the NHS number is mistyped, correct it. "
            "Updating the record would replace Ada Lovelace's name and date of birth with what you typed.") in warning
    session.expire_all()
    assert (patient.given_name, patient.date_of_birth) == ("Ada", dt.date(1975, 12, 10))


def test_a_name_typed_in_another_case_is_the_same_name(reception_client, session):
    _tier_1_patient(session)
    page = parse(post_registration(reception_client, given_name="ADA", family_name="lovelace"))
    assert page.find(id="not-the-same-person") is None
