"""Slot generation: local wall-clock times across the clock changes, bank holidays, leave, idempotency."""

import datetime as dt

import pytest
from sqlalchemy import func, select

from portal.appointments import availability
from portal.appointments.models import AppointmentSlot
from portal.appointments.slots import generate_slots, local_slot_times
from portal.db import utcnow
from tests import factories
from tests.appointments import factories as appt
from tests.appointments.factories import LONDON, london


def _starts(session, **where):
    query = select(AppointmentSlot.starts_at).order_by(AppointmentSlot.starts_at)
    for name, value in where.items():
        query = query.where(getattr(AppointmentSlot, name) == value)
    return list(session.scalars(query))


def _local(starts):
    return [(s.astimezone(LONDON).date(), s.astimezone(LONDON).strftime("%H:%M")) for s in starts]


def test_a_tuesday_clinic_stays_at_9am_london_across_the_march_clock_change(session, domain):
    appt.create_template(session, weekday=1, start_time=dt.time(9), end_time=dt.time(10),
                         valid_from=dt.date(2027, 3, 1), valid_until=dt.date(2027, 4, 6))
    created = generate_slots(session, domain, now=dt.datetime(2027, 3, 15, 12, tzinfo=dt.UTC))
    session.commit()
    starts = _starts(session)
    assert created == len(starts) == 8  # two slots on each of 16, 23 and 30 March and 6 April
    # Before 28 March London is on GMT (UTC+0); after it, on BST (UTC+1): same wall clock, another UTC hour.
    assert [s.strftime("%d %H:%M") for s in starts] == [
        "16 09:00", "16 09:30", "23 09:00", "23 09:30", "30 08:00", "30 08:30", "06 08:00", "06 08:30"]
    assert {time for _, time in _local(starts)} == {"09:00", "09:30"}


def test_a_clinic_stays_at_9am_london_across_the_october_clock_change(session, domain):
    appt.create_template(session, weekday=1, start_time=dt.time(9), end_time=dt.time(9, 30),
                         valid_from=dt.date(2027, 10, 1), valid_until=dt.date(2027, 11, 9))
    generate_slots(session, domain, now=dt.datetime(2027, 10, 11, 12, tzinfo=dt.UTC))
    session.commit()
    starts = _starts(session)
    assert [s.strftime("%Y-%m-%d %H:%M") for s in starts] == [
        "2027-10-12 08:00", "2027-10-19 08:00", "2027-10-26 08:00",  # BST
        "2027-11-02 09:00", "2027-11-09 09:00",  # GMT from 31 October
    ]
    assert {time for _, time in _local(starts)} == {"09:00"}
    slot = session.scalars(select(AppointmentSlot)).first()
    assert slot.ends_at - slot.starts_at == dt.timedelta(minutes=30)


def test_the_hour_skipped_in_march_gets_no_slot_and_the_repeated_october_hour_one():
    # Nor does a slot the clocks change during: 00:30 to 1:00 GMT in March ends at 2:00 BST, and 1:30 to
    # 2:00 BST in October ends at 1:00 GMT, so each would read as a slot of another length.
    march = list(local_slot_times(dt.date(2027, 3, 28), start=dt.time(0, 30), end=dt.time(3, 0), minutes=30,
                                  timezone="Europe/London"))
    # 01:00 and 01:30 do not exist on 28 March 2027: the clocks go from 01:00 GMT to 02:00 BST.
    assert [s.astimezone(LONDON).strftime("%H:%M") for s, _ in march] == ["02:00", "02:30"]
    assert len({s for s, _ in march}) == len(march)
    october = list(local_slot_times(dt.date(2027, 10, 31), start=dt.time(0, 30), end=dt.time(2, 30), minutes=30,
                                    timezone="Europe/London"))
    assert [s.strftime("%H:%M") for s, _ in october] == ["23:30", "00:00", "02:00"]
    wall = [(e.astimezone(LONDON).replace(tzinfo=None) - s.astimezone(LONDON).replace(tzinfo=None))
            for s, e in march + october]
    assert set(wall) == {dt.timedelta(minutes=30)}


def test_bank_holidays_get_no_slots(session, domain):
    # Mondays from 15 March 2027: Easter Monday (29 March) and the early May bank holiday (3 May) are skipped.
    appt.create_template(session, weekday=0, start_time=dt.time(10), end_time=dt.time(10, 30),
                         valid_from=dt.date(2027, 3, 1))
    generate_slots(session, domain, now=dt.datetime(2027, 3, 15, 6, tzinfo=dt.UTC))
    session.commit()
    days = [d for d, _ in _local(_starts(session))]
    assert dt.date(2027, 3, 22) in days and dt.date(2027, 4, 5) in days
    assert dt.date(2027, 3, 29) not in days and dt.date(2027, 5, 3) not in days
    assert days[0] == dt.date(2027, 3, 15)
    # Eight weeks ahead from Monday 15 March, inclusive: 9 Mondays, less the two bank holidays.
    assert len(days) == 7


def test_leave_days_get_no_slots_for_that_clinician_only(session, domain):
    away, present = appt.create_clinician(session), appt.create_clinician(session)
    for clinician in (away, present):
        appt.create_template(session, clinician=clinician, weekday=0, start_time=dt.time(10), end_time=dt.time(11),
                             valid_from=dt.date(2027, 4, 1))
    availability.add_leave(session, domain, clinician_id=away.id, first_day=dt.date(2027, 4, 5),
                           last_day=dt.date(2027, 4, 12), reason="Annual leave",
                           now=dt.datetime(2027, 3, 20, tzinfo=dt.UTC))
    session.commit()
    generate_slots(session, domain, now=dt.datetime(2027, 3, 20, tzinfo=dt.UTC))
    session.commit()
    away_days = {d for d, _ in _local(_starts(session, clinician_id=away.id))}
    present_days = {d for d, _ in _local(_starts(session, clinician_id=present.id))}
    assert dt.date(2027, 4, 5) not in away_days and dt.date(2027, 4, 12) not in away_days
    assert dt.date(2027, 4, 19) in away_days
    assert {dt.date(2027, 4, 5), dt.date(2027, 4, 12)} <= present_days


def test_generation_is_idempotent_and_adds_only_what_is_new(session, domain):
    clinician = appt.create_clinician(session)
    appt.create_template(session, clinician=clinician, weekday=2, valid_from=dt.date(2027, 1, 1))
    now = dt.datetime(2027, 1, 4, 8, tzinfo=dt.UTC)
    first = generate_slots(session, domain, now=now)
    session.commit()
    assert first == 6 * 8  # six 30-minute slots on each Wednesday of the next eight weeks
    assert generate_slots(session, domain, now=now) == 0
    session.commit()
    # A week later the window has moved on by one Wednesday.
    assert generate_slots(session, domain, now=now + dt.timedelta(weeks=1)) == 6
    session.commit()
    assert session.scalar(select(func.count()).select_from(AppointmentSlot)) == 6 * 9


def test_generation_keeps_to_the_templates_dates_and_skips_times_already_past(session, domain):
    appt.create_template(session, weekday=1, start_time=dt.time(9), end_time=dt.time(10),
                         valid_from=dt.date(2027, 6, 8), valid_until=dt.date(2027, 6, 15))
    # 09:15 London on Tuesday 8 June: the 09:00 slot has begun, the 09:30 one has not.
    generate_slots(session, domain, now=london(dt.date(2027, 6, 8), 9, 15))
    session.commit()
    assert _local(_starts(session)) == [(dt.date(2027, 6, 8), "09:30"), (dt.date(2027, 6, 15), "09:00"),
                                        (dt.date(2027, 6, 15), "09:30")]


def test_slots_carry_the_templates_service_team_and_venue(session, domain):
    venue = factories.create_venue(session, name="Archway Centre")
    template = appt.create_template(session, service_key="t2-physio", team="haringey", venue=venue, weekday=3,
                                    valid_from=dt.date(2027, 2, 1))
    generate_slots(session, domain, now=dt.datetime(2027, 2, 1, tzinfo=dt.UTC))
    session.commit()
    slot = session.scalars(select(AppointmentSlot)).first()
    assert (slot.service_key, slot.team, slot.venue_id, slot.template_id, slot.status) == (
        "t2-physio", "haringey", venue.id, template.id, "open")


def test_team_scoped_services_need_a_team_and_clinics_may_not_overlap(session, domain):
    clinician = appt.create_clinician(session)
    venue = factories.create_venue(session)
    with pytest.raises(availability.AvailabilityError) as problem:
        availability.create_template(
            session, domain, clinician_id=clinician.id, service_key="t2-acupuncture", team=None, venue_id=venue.id,
            weekday=0, start_time=dt.time(9), end_time=dt.time(12), slot_minutes=30,
            valid_from=dt.date(2027, 1, 1), valid_until=None)
    assert problem.value.field == "team"
    appt.create_template(session, clinician=clinician, weekday=0, start_time=dt.time(9), end_time=dt.time(12),
                         valid_from=dt.date(2027, 1, 1))
    with pytest.raises(availability.AvailabilityError) as problem:
        appt.create_template(session, clinician=clinician, weekday=0, start_time=dt.time(11),
                             end_time=dt.time(13), valid_from=dt.date(2027, 6, 1))
    assert problem.value.field == "start_time"
    session.rollback()
    # Another day, or after the first clinic ends, is fine.
    appt.create_template(session, clinician=clinician, weekday=1, start_time=dt.time(11), end_time=dt.time(13),
                         valid_from=dt.date(2027, 1, 1))


def test_leave_blocks_free_slots_already_made_and_reports_booked_ones(session, domain):
    clinician = appt.create_clinician(session)
    first, second, third = appt.create_slots(session, 3, clinician=clinician, first=appt.days_ahead(10))
    patient = factories.create_patient(session)
    booked = appt.book(session, patient, second)
    day = first.starts_at.astimezone(LONDON).date()
    leave, blocked, affected = availability.add_leave(
        session, domain, clinician_id=clinician.id, first_day=day, last_day=day, reason="", now=utcnow())
    session.commit()
    assert blocked == 2 and [a.id for a in affected] == [booked.id]
    session.expire_all()
    statuses = [session.get(AppointmentSlot, s.id).status for s in (first, second, third)]
    assert statuses == ["blocked", "booked", "blocked"]
    assert session.get(AppointmentSlot, first.id).blocked_reason == availability.LEAVE_BLOCK_REASON


def test_a_booked_slot_on_a_leave_day_is_blocked_when_its_appointment_ends(session, domain):
    from portal.appointments import services as appointments

    clinician = appt.create_clinician(session)
    cancelled_slot, moved_slot, elsewhere = appt.create_slots(session, 3, clinician=clinician,
                                                              first=appt.days_ahead(10))
    later = appt.create_slot(session, starts_at=appt.days_ahead(12))
    patient, other = factories.create_patient(session), factories.create_patient(session)
    cancelled = appt.book(session, patient, cancelled_slot)
    moved = appt.book(session, other, moved_slot)
    day = cancelled_slot.starts_at.astimezone(LONDON).date()
    availability.add_leave(session, domain, clinician_id=clinician.id, first_day=day, last_day=day, reason="",
                           now=utcnow())
    session.commit()
    # Reception cancels one appointment and moves the other off the leave day, as add_leave asked them to.
    appointments.cancel_appointment(session, domain, patient, cancelled.id, reason="Clinician away", now=utcnow(),
                                    by_staff=True)
    appointments.reschedule_appointment(session, domain, other, moved.id, later.id, now=utcnow(), by_staff=True)
    session.commit()
    session.expire_all()
    for slot in (cancelled_slot, moved_slot):
        freed = session.get(AppointmentSlot, slot.id)
        assert (freed.status, freed.blocked_reason) == ("blocked", availability.LEAVE_BLOCK_REASON)
    offered = appointments.free_slots_on(session, domain, factories.create_patient(session),
                                         domain.catalogue.get(cancelled_slot.service_key), day, now=utcnow())
    assert cancelled_slot.id not in {s.id for s in offered}


def test_a_cancelled_appointment_frees_its_slot_when_the_clinician_is_not_on_leave(session, domain):
    from portal.appointments import services as appointments

    slot = appt.create_slot(session, starts_at=appt.days_ahead(10))
    patient = factories.create_patient(session)
    booked = appt.book(session, patient, slot)
    # Leave on another day, and another clinician's leave on this day, leave it free.
    day = slot.starts_at.astimezone(LONDON).date()
    availability.add_leave(session, domain, clinician_id=slot.clinician_id, first_day=day + dt.timedelta(days=1),
                           last_day=day + dt.timedelta(days=3), reason="", now=utcnow())
    availability.add_leave(session, domain, clinician_id=appt.create_clinician(session).id, first_day=day,
                           last_day=day, reason="", now=utcnow())
    appointments.cancel_appointment(session, domain, patient, booked.id, reason="Feeling better", now=utcnow())
    session.commit()
    session.expire_all()
    assert session.get(AppointmentSlot, slot.id).status == "open"
