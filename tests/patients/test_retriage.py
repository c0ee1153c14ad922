"""Re-triage to the other tier: dead waiting-list places close (with a text), other-tier bookings are listed, not
cancelled."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from sqlalchemy import select

from portal.appointments.models import Appointment
from portal.booking import waitlist
from portal.booking.models import Booking, Cohort, WaitlistEntry
from portal.booking.services import book_seat, withdraw_seat
from portal.db import utcnow
from portal.messaging.models import SmsMessage
from portal.patients import onboarding, retriage
from portal.patients.services import Registration
from tests import factories
from tests.appointments import factories as appointment_factories

BASE_URL = "https://portal.test"


def details_of(patient, **changes) -> Registration:
    """The patient's registered details as newer triage would send them, with ``changes``."""
    details = Registration(
        nhs_number=patient.nhs_number, given_name=patient.given_name, family_name=patient.family_name,
        date_of_birth=patient.date_of_birth, mobile=patient.mobile, email=patient.email, postcode=patient.postcode,
        tier=patient.tier, team=patient.team, triage_date=patient.triage_date, pain_duration=patient.pain_duration,
        diagnosis_recorded=patient.diagnosis_recorded, investigations_recorded=patient.investigations_recorded,
        treatment_recorded=patient.treatment_recorded, letters_received=patient.letters_received,
    )
    return dataclasses.replace(details, **changes)


def retriage_to(session, patient, *, tier: int, team: str | None = None, now=None):
    update = onboarding.update_from_triage(session, factories.domain(), patient,
                                           details_of(patient, tier=tier, team=team),
                                           base_url=BASE_URL, now=now or utcnow())
    session.commit()
    return update


def wait_for(session, patient, service_key: str = "t1-group", *, cohort: Cohort | None = None, position: int = 1,
             status: str = "waiting") -> WaitlistEntry:
    now = utcnow()
    entry = WaitlistEntry(patient_id=patient.id, service_key=service_key, cohort_id=cohort.id if cohort else None,
                          team=cohort.team if cohort else None, position=position, status=status, created_at=now,
                          updated_at=now)
    session.add(entry)
    session.commit()
    return entry


def texts_to(session, patient) -> list[SmsMessage]:
    session.expire_all()
    return list(session.scalars(select(SmsMessage).where(SmsMessage.patient_id == patient.id)
                                .order_by(SmsMessage.id)))


def test_a_tier_1_waiting_list_place_is_closed_and_the_patient_texted_when_they_move_to_tier_2(session):
    patient = factories.create_patient(session, tier=1)
    entry = wait_for(session, patient)
    update = retriage_to(session, patient, tier=2, team="whittington")
    assert [e.id for e in update.closed] == [entry.id]
    session.refresh(entry)
    assert entry.status == "left"
    [text] = texts_to(session, patient)
    assert text.idempotency_key == f"waitlist-closed:{entry.id}"
    assert text.kind == "waiting_list_closed"
    assert text.body == ("NHS: after a review of your referral you are no longer on a waiting list for a weekly "
                         "group. To see what you can book, sign in or call 020 3316 8888")


def test_the_reverse_move_closes_a_programme_waiting_list_place_too(session):
    patient = factories.create_patient(session, tier=2, team="whittington")
    entry = wait_for(session, patient, "t2-programme")
    update = retriage_to(session, patient, tier=1)
    assert [e.id for e in update.closed] == [entry.id]
    assert update.old_tier == 2 and patient.tier == 1 and patient.team is None


def test_a_patient_we_may_not_text_is_taken_off_the_list_without_a_text(session):
    patient = factories.create_patient(session, tier=1, no_texts=True)
    entry = wait_for(session, patient)
    retriage_to(session, patient, tier=2, team="whittington")
    session.refresh(entry)
    assert entry.status == "left" and texts_to(session, patient) == []


def test_details_that_keep_the_tier_leave_the_waiting_list_alone(session):
    patient = factories.create_patient(session, tier=1)
    entry = wait_for(session, patient)
    update = onboarding.update_from_triage(session, factories.domain(), patient,
                                           details_of(patient, given_name="Renamed"), base_url=BASE_URL,
                                           now=utcnow())
    session.commit()
    assert update.changed == ["given_name"] and update.closed == [] and update.still_booked == []
    session.refresh(entry)
    assert entry.status == "waiting" and texts_to(session, patient) == []


def test_an_open_offer_on_the_old_tiers_course_ends_and_its_seat_goes_to_the_next_patient(session):
    domain, now = factories.domain(), utcnow()
    cohort = factories.create_cohort(session, capacity=1)
    holder = factories.create_patient(session, tier=1)
    seat = book_seat(session, domain, holder, cohort.id, now=now)
    moving = factories.create_patient(session, tier=1)
    staying = factories.create_patient(session, tier=1)
    first = waitlist.join(session, domain, moving, domain.catalogue.get("t1-group"), cohort=None, now=now)
    second = waitlist.join(session, domain, staying, domain.catalogue.get("t1-group"), cohort=None, now=now)
    withdraw_seat(session, domain, holder, seat.id, reason="Cannot come", now=now)
    session.commit()
    session.refresh(first)
    assert first.status == "offered"

    retriage_to(session, moving, tier=2, team="whittington")
    session.refresh(first)
    session.refresh(second)
    assert first.status == "left"
    assert second.status == "offered" and second.offer_cohort_id == cohort.id
    session.refresh(cohort)
    assert cohort.seats_taken == 1  # held for the next patient, never counted twice
    offer_text = session.scalars(select(SmsMessage).where(
        SmsMessage.idempotency_key == waitlist.offer_text_key(first.id, cohort.id))).one()
    assert offer_text.status == "cancelled"


def test_a_team_change_closes_a_place_for_the_old_teams_group_but_not_one_for_any_group(session):
    patient = factories.create_patient(session, tier=2, team="whittington")
    old_team_group = factories.create_cohort(session, service_key="t2-programme", team="whittington", capacity=1,
                                             seats_taken=1)
    entry = wait_for(session, patient, "t2-programme", cohort=old_team_group)
    update = retriage_to(session, patient, tier=2, team="haringey")
    assert update.changed == ["team"] and [e.id for e in update.closed] == [entry.id]

    other = factories.create_patient(session, tier=2, team="whittington")
    any_group = wait_for(session, other, "t2-programme", position=2)
    assert retriage_to(session, other, tier=2, team="haringey").closed == []
    session.refresh(any_group)
    assert any_group.status == "waiting"


def test_other_tier_bookings_are_listed_for_staff_and_not_cancelled(session):
    domain, now = factories.domain(), utcnow()
    patient = factories.create_patient(session, tier=1)
    cohort = factories.create_cohort(session)  # the Group, starting in two weeks
    seat = book_seat(session, domain, patient, cohort.id, now=now)
    session.commit()
    review = appointment_factories.book(
        session, patient, appointment_factories.create_slot(session, service_key="t1-pharmacy",
                                                            starts_at=appointment_factories.days_ahead(5)))
    physio = appointment_factories.book(
        session, patient, appointment_factories.create_slot(session, service_key="t1-physio",
                                                            starts_at=appointment_factories.days_ahead(3)))

    update = retriage_to(session, patient, tier=2, team="whittington")
    assert [(b.kind, b.id, b.tier) for b in update.still_booked] == [
        ("appointment", physio.id, 1), ("appointment", review.id, 1), ("seat", seat.id, 1),
    ]
    assert update.still_booked[0].service_name == "Pain management physiotherapy"
    assert update.still_booked[2].cancel_path == f"bookings/{seat.id}/cancel"
    session.expire_all()
    assert session.get(Booking, seat.id).status == "active"
    assert {a.status for a in session.scalars(select(Appointment).where(Appointment.patient_id == patient.id))} == {
        "active"}
    assert "waiting_list_closed" not in {text.kind for text in texts_to(session, patient)}


def test_finished_groups_past_appointments_and_own_tier_bookings_are_not_listed(session):
    domain, now = factories.domain(), utcnow()
    patient = factories.create_patient(session, tier=1)
    finished = factories.create_cohort(session, first_date=now.date() - dt.timedelta(weeks=10))
    session.add(Booking(patient_id=patient.id, service_key="t1-group", cohort_id=finished.id))
    finished.seats_taken = 1
    session.commit()
    past = appointment_factories.book(
        session, patient, appointment_factories.create_slot(session, starts_at=appointment_factories.days_ahead(3)),
        now=now)
    past.slot.starts_at = now - dt.timedelta(days=2)
    past.slot.ends_at = now - dt.timedelta(days=2) + dt.timedelta(minutes=30)
    session.commit()
    retriage_to(session, patient, tier=2, team="whittington")
    own = appointment_factories.book(
        session, patient, appointment_factories.create_slot(session, service_key="t2-physio",
                                                            starts_at=appointment_factories.days_ahead(4)))
    assert own.status == "active"
    assert retriage.still_booked(session, domain, patient, now=utcnow()) == []


@pytest.mark.parametrize("started_weeks_ago", [0, 3])  # 0: it starts tomorrow
def test_a_group_not_started_or_still_running_is_listed(session, started_weeks_ago):
    now = utcnow()
    patient = factories.create_patient(session, tier=1)
    cohort = factories.create_cohort(session, first_date=now.date() - dt.timedelta(weeks=started_weeks_ago)
                                     + dt.timedelta(days=1))
    session.add(Booking(patient_id=patient.id, service_key="t1-group", cohort_id=cohort.id))
    cohort.seats_taken = 1
    session.commit()
    update = retriage_to(session, patient, tier=2, team="whittington")
    assert [b.kind for b in update.still_booked] == ["seat"]
