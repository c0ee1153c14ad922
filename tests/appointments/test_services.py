"""Booking, cancelling and moving appointments: the rules, the texts, and all-or-nothing changes."""

import datetime as dt

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from portal.appointments import services
from portal.appointments.models import Appointment, AppointmentSlot
from portal.messaging.models import SmsMessage
from tests import factories
from tests.appointments import factories as appt

NOW = dt.datetime(2027, 5, 10, 9, tzinfo=dt.UTC)


def _slot(session, hours_ahead: float, **kw):
    return appt.create_slot(session, starts_at=NOW + dt.timedelta(hours=hours_ahead), **kw)


def _texts(session):
    return list(session.scalars(select(SmsMessage).order_by(SmsMessage.id)))


def test_booking_takes_the_slot_and_queues_the_confirmation(session, domain):
    patient = factories.create_patient(session)
    slot = _slot(session, 72, venue=factories.create_venue(session, short_name="Archway HC"))
    appointment = appt.book(session, patient, slot, now=NOW)
    session.expire_all()
    assert session.get(AppointmentSlot, slot.id).status == "booked"
    assert (appointment.status, appointment.service_key, appointment.booked_by_staff) == ("active", "t1-physio", False)
    [message] = _texts(session)
    assert message.idempotency_key == f"appointment-booked:{appointment.id}"
    assert message.booking_id is None and message.kind == "appointment_booked"
    assert message.expires_at == slot.starts_at
    assert "Archway HC" in message.body and "Thu 13 May at 10am" in message.body
    assert "physio" not in message.body.lower() and "pain" not in message.body.lower()


def test_a_patient_who_does_not_take_texts_is_still_booked(session, domain):
    patient = factories.create_patient(session, no_texts=True)
    appt.book(session, patient, _slot(session, 72), now=NOW)
    assert _texts(session) == []
    assert session.scalar(select(func.count()).select_from(Appointment)) == 1


def test_the_per_service_limit_counts_future_appointments_only(session, domain):
    patient = factories.create_patient(session)
    clinician = appt.create_clinician(session)
    first = _slot(session, 48, clinician=clinician)
    appt.book(session, patient, first, now=NOW)
    with pytest.raises(services.LimitReached) as refused:
        appt.book(session, patient, _slot(session, 96, clinician=clinician), now=NOW)
    session.rollback()
    assert refused.value.existing.slot_id == first.id and refused.value.limit == 1
    # Another service is another count.
    appt.book(session, patient, _slot(session, 96, service_key="t1-pharmacy"), now=NOW)
    # Once the first appointment is past, the patient may book the service again.
    later = NOW + dt.timedelta(hours=49)
    appt.book(session, patient, _slot(session, 120, clinician=clinician), now=later)
    assert session.scalar(select(func.count()).select_from(Appointment)) == 3


def test_staff_may_book_past_the_limit_only_with_a_reason(session, domain):
    patient = factories.create_patient(session)
    appt.book(session, patient, _slot(session, 48), now=NOW)
    extra = _slot(session, 96)
    with pytest.raises(services.LimitReached):
        appt.book(session, patient, extra, now=NOW, by_staff=True)
    session.rollback()
    booked = appt.book(session, patient, extra, now=NOW, by_staff=True, override_reason="Clinician asked for two")
    assert booked.booked_by_staff and booked.override_reason == "Clinician asked for two"


@pytest.mark.parametrize("kind", ["past", "blocked", "booked", "other-tier", "other-team", "beyond", "staff-only"])
def test_slots_a_patient_may_not_book(session, domain, kind):
    patient = factories.create_patient(session, tier=2, team="whittington")
    other = factories.create_patient(session, tier=2, team="whittington")
    slot = {
        "past": lambda: _slot(session, -1, service_key="t2-physio"),
        "blocked": lambda: _slot(session, 48, service_key="t2-physio", status="blocked"),
        "booked": lambda: appt.book(session, other, _slot(session, 48, service_key="t2-physio"), now=NOW).slot,
        "other-tier": lambda: _slot(session, 48, service_key="t1-physio"),
        "other-team": lambda: _slot(session, 48, service_key="t2-physio", team="haringey"),
        "beyond": lambda: _slot(session, 24 * 7 * 6 + 1, service_key="t2-physio"),
        "staff-only": lambda: _slot(session, 48, service_key="t2-psychology"),
    }[kind]()
    expected = services.SlotTaken if kind in ("blocked", "booked") else services.SlotNotFound
    with pytest.raises(expected):
        services.book_appointment(session, domain, patient, slot.id, now=NOW)
    session.rollback()
    with pytest.raises(services.SlotNotFound):
        services.open_slot_for_patient(session, domain, patient, slot.id, now=NOW)
    mine = select(func.count()).select_from(Appointment).where(Appointment.patient_id == patient.id)
    assert session.scalar(mine) == 0
    assert [m for m in _texts(session) if m.patient_id == patient.id] == []


def test_staff_may_book_staff_only_services_and_further_ahead(session, domain):
    patient = factories.create_patient(session, tier=2, team="whittington")
    psychology = _slot(session, 48, service_key="t2-psychology")
    far = _slot(session, 24 * 7 * 7, service_key="t2-physio")
    assert appt.book(session, patient, psychology, now=NOW, by_staff=True).service_key == "t2-psychology"
    # Later than patients may book: an override, so only with a reason, which the appointment keeps.
    with pytest.raises(services.OutsideBookingWindow):
        appt.book(session, patient, far, now=NOW, by_staff=True)
    session.rollback()
    booked = appt.book(session, patient, far, now=NOW, by_staff=True, override_reason="After surgery")
    assert (booked.slot_id, booked.override_reason) == (far.id, "After surgery")


def test_a_tier_2_patient_without_a_team_sees_no_team_slots(session, domain):
    patient = factories.create_patient(session, tier=2, team=None, postcode="N4 3LS")
    _slot(session, 48, service_key="t2-physio")
    _slot(session, 48, service_key="t2-physio", team="haringey")
    service = domain.catalogue.get("t2-physio")
    assert services.free_days(session, domain, patient, service, now=NOW) == []


def test_free_days_are_london_days(session, domain):
    patient = factories.create_patient(session)
    clinician = appt.create_clinician(session)
    # 23:30 on 12 May in London is 22:30 UTC: still 12 May.
    appt.create_slot(session, starts_at=appt.london(dt.date(2027, 5, 12), 23, 30), clinician=clinician)
    appt.create_slot(session, starts_at=appt.london(dt.date(2027, 5, 13), 0, 30), clinician=clinician)
    appt.create_slot(session, starts_at=appt.london(dt.date(2027, 5, 13), 9), clinician=clinician)
    days = services.free_days(session, domain, patient, domain.catalogue.get("t1-physio"), now=NOW)
    assert days == [(dt.date(2027, 5, 12), 1), (dt.date(2027, 5, 13), 2)]


def test_cancelling_frees_the_slot_and_texts_once(session, domain):
    patient = factories.create_patient(session)
    slot = _slot(session, 48)
    appointment = appt.book(session, patient, slot, now=NOW)
    services.cancel_appointment(session, domain, patient, appointment.id, reason="I am feeling better", now=NOW)
    session.commit()
    with pytest.raises(services.AppointmentNotFound):
        services.cancel_appointment(session, domain, patient, appointment.id, reason="again", now=NOW)
    session.rollback()
    session.expire_all()
    assert session.get(AppointmentSlot, slot.id).status == "open"
    cancelled = session.get(Appointment, appointment.id)
    assert (cancelled.status, cancelled.cancel_reason, cancelled.ended_at) == ("cancelled", "I am feeling better", NOW)
    assert [m.idempotency_key for m in _texts(session)] == [
        f"appointment-booked:{appointment.id}", f"appointment-cancelled:{appointment.id}"]
    # The freed slot can be booked again.
    assert appt.book(session, factories.create_patient(session), slot, now=NOW).slot_id == slot.id


def test_the_cut_off_stops_patients_but_not_staff_with_a_reason(session, domain):
    patient = factories.create_patient(session)
    slot = _slot(session, 30)
    appointment = appt.book(session, patient, slot, now=NOW)
    assert services.may_change_online(domain, appointment, now=NOW)
    inside = slot.starts_at - dt.timedelta(hours=23)
    assert not services.may_change_online(domain, appointment, now=inside)
    with pytest.raises(services.TooLateToChange, match="020 3316 8888"):
        services.cancel_appointment(session, domain, patient, appointment.id, reason="x", now=inside)
    with pytest.raises(services.TooLateToChange):
        services.cancel_appointment(session, domain, patient, appointment.id, reason="x", now=inside, by_staff=True)
    session.rollback()
    services.cancel_appointment(session, domain, patient, appointment.id, reason="Phoned in sick", now=inside,
                                by_staff=True, override_reason="Patient is in hospital")
    session.commit()
    session.expire_all()
    ended = session.get(Appointment, appointment.id)
    assert (ended.status, ended.ended_by_staff, ended.override_reason) == ("cancelled", True, "Patient is in hospital")


def test_nobody_changes_an_appointment_that_has_started(session, domain):
    patient = factories.create_patient(session)
    appointment = appt.book(session, patient, _slot(session, 30), now=NOW)
    started = NOW + dt.timedelta(hours=31)
    with pytest.raises(services.AppointmentPassed):
        services.cancel_appointment(session, domain, patient, appointment.id, reason="x", now=started, by_staff=True,
                                    override_reason="Because")
    session.rollback()


def test_rescheduling_moves_in_one_step(session, domain):
    patient = factories.create_patient(session)
    clinician = appt.create_clinician(session)
    old_slot, new_slot = _slot(session, 48, clinician=clinician), _slot(session, 96, clinician=clinician)
    old = appt.book(session, patient, old_slot, now=NOW)
    new = services.reschedule_appointment(session, domain, patient, old.id, new_slot.id, now=NOW)
    session.commit()
    session.expire_all()
    old, new = session.get(Appointment, old.id), session.get(Appointment, new.id)
    assert (old.status, old.moved_to_id, new.status, new.slot_id) == ("moved", new.id, "active", new_slot.id)
    assert session.get(AppointmentSlot, old_slot.id).status == "open"
    assert session.get(AppointmentSlot, new_slot.id).status == "booked"
    assert [m.idempotency_key for m in _texts(session)][-1] == f"appointment-moved:{new.id}"
    assert "Fri 14 May at 10am" in _texts(session)[-1].body


def test_a_reschedule_to_a_time_just_taken_leaves_the_old_appointment_standing(session, domain):
    patient, rival = factories.create_patient(session), factories.create_patient(session)
    clinician = appt.create_clinician(session)
    old_slot, wanted = _slot(session, 48, clinician=clinician), _slot(session, 96, clinician=clinician)
    old = appt.book(session, patient, old_slot, now=NOW)
    appt.book(session, rival, wanted, now=NOW)
    with pytest.raises(services.SlotTaken):
        services.reschedule_appointment(session, domain, patient, old.id, wanted.id, now=NOW)
    session.commit()
    session.expire_all()
    assert session.get(Appointment, old.id).status == "active"
    assert session.get(AppointmentSlot, old_slot.id).status == "booked"
    assert not [m for m in _texts(session) if m.kind == "appointment_moved"]


def test_a_reschedule_that_fails_half_way_rolls_the_new_slot_back(session, domain, monkeypatch):
    patient = factories.create_patient(session)
    clinician = appt.create_clinician(session)
    old_slot, wanted = _slot(session, 48, clinician=clinician), _slot(session, 96, clinician=clinician)
    old = appt.book(session, patient, old_slot, now=NOW)
    # The old appointment ends between the checks and the move (as after a double submit).
    monkeypatch.setattr(services, "_end", lambda *a, **k: False)
    with pytest.raises(services.AppointmentNotFound):
        services.reschedule_appointment(session, domain, patient, old.id, wanted.id, now=NOW)
    session.commit()
    session.expire_all()
    assert session.get(AppointmentSlot, wanted.id).status == "open"
    assert session.get(AppointmentSlot, old_slot.id).status == "booked"
    assert session.scalar(select(func.count()).select_from(Appointment)) == 1


def test_a_reschedule_must_stay_with_the_same_service(session, domain):
    patient = factories.create_patient(session)
    old = appt.book(session, patient, _slot(session, 48), now=NOW)
    pharmacy = _slot(session, 96, service_key="t1-pharmacy")
    with pytest.raises(services.SlotNotFound):
        services.reschedule_appointment(session, domain, patient, old.id, pharmacy.id, now=NOW)
    with pytest.raises(services.SlotNotFound):
        services.reschedule_appointment(session, domain, patient, old.id, old.slot_id, now=NOW)
    session.rollback()


def test_another_patients_appointment_is_not_found(session, domain):
    owner, other = factories.create_patient(session), factories.create_patient(session)
    appointment = appt.book(session, owner, _slot(session, 48), now=NOW)
    for appointment_id in (appointment.id, 0, -1, 2**40):
        with pytest.raises(services.AppointmentNotFound):
            services.appointment_for_patient(session, other, appointment_id)


def test_the_database_allows_one_active_appointment_per_slot(session, domain):
    patient = factories.create_patient(session)
    slot = _slot(session, 48)
    appt.book(session, patient, slot, now=NOW)
    with pytest.raises(IntegrityError):
        session.execute(text(
            "INSERT INTO appointment (patient_id, slot_id, service_key, status, booked_by_staff, created_at,"
            " ended_by_staff) VALUES (:p, :s, 't1-physio', 'active', false, CURRENT_TIMESTAMP, false)"
        ), {"p": factories.create_patient(session).id, "s": slot.id})
    session.rollback()


def test_appointments_for_patient_lists_every_appointment_latest_first(session, domain):
    patient = factories.create_patient(session)
    clinician = appt.create_clinician(session)
    first = appt.book(session, patient, _slot(session, 48, clinician=clinician), now=NOW)
    second = appt.book(session, patient, _slot(session, 96, clinician=clinician, service_key="t1-pharmacy"), now=NOW)
    services.cancel_appointment(session, domain, patient, first.id, reason="x", now=NOW)
    session.commit()
    assert [a.id for a in services.appointments_for_patient(session, patient.id)] == [second.id, first.id]
