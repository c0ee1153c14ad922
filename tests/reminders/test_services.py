"""Planning reminders into the outbox and the call list, and cancelling them when bookings change.

Every run is at a fixed time in March 2027, around the clocks going forward on Sunday 28 March.
"""

import datetime as dt

import pytest
from sqlalchemy import select, update

from portal.appointments import services as appointments
from portal.booking import services as booking
from portal.booking.models import Booking, CohortSession
from portal.booking.sessions import cancel_session, move_session
from portal.messaging import texts
from portal.patients.models import Patient
from portal.reminders import services
from tests import factories
from tests.reminders.helpers import appointment_at, calls, london, plan, reminder_texts, seat_on, utc

NOW = utc(2027, 3, 21, 12)  # Sunday 21 March 2027, noon
MONDAY_29_10AM = london(2027, 3, 29, 10)  # the day after the clocks go forward: 09:00 UTC
PHONE = "020 3316 8888"


def _domain():
    return factories.domain()


# 1:1 appointments.

def test_an_appointment_gets_its_7_and_1_day_reminders_in_the_outbox(db, session):
    venue = factories.create_venue(session, short_name="Hornsey HC")
    appointment = appointment_at(session, MONDAY_29_10AM, booked_at=NOW - dt.timedelta(days=1), venue=venue)

    assert plan(db, NOW) == services.PlanResult(texts=2, calls=0, cancelled=0)

    d7, d1 = reminder_texts(session)
    prefix = f"reminder:appointment:{appointment.id}"
    assert (d7.idempotency_key, d7.due_at) == (f"{prefix}:d7:2027-03-29T09:00:00+00:00", utc(2027, 3, 22, 10))
    assert (d1.idempotency_key, d1.due_at) == (f"{prefix}:d1:2027-03-29T09:00:00+00:00", utc(2027, 3, 28, 9))
    body = texts.appointment_reminder(starts_at=MONDAY_29_10AM, venue_short_name="Hornsey HC", phone=PHONE)
    assert "Mon 29 Mar at 10am, Hornsey HC" in body
    for row in (d7, d1):
        assert row.status == "pending"
        assert row.next_attempt_at == row.due_at
        assert row.expires_at == MONDAY_29_10AM
        assert row.body == body
        assert row.appointment_id == appointment.id and row.booking_id is None
        assert row.patient_id == appointment.patient_id
        assert row.to_number == appointment.patient.mobile


def test_planning_again_adds_nothing(db, session):
    appointment_at(session, MONDAY_29_10AM, booked_at=NOW)
    plan(db, NOW)
    assert plan(db, NOW) == services.PlanResult()
    assert plan(db, NOW + dt.timedelta(hours=2)) == services.PlanResult()
    assert len(reminder_texts(session)) == 2
    assert reminder_texts(session, status="cancelled") == []


def test_an_online_appointment_says_online(db, session):
    venue = factories.create_venue(session, short_name="Video", is_online=True)
    appointment_at(session, MONDAY_29_10AM, booked_at=NOW, venue=venue)
    plan(db, NOW)
    assert all(", online. Reply YES" in row.body for row in reminder_texts(session))


def test_a_reminder_whose_time_has_passed_is_never_planned(db, session):
    # Booked on Sunday for Wednesday: there is no 7-day reminder to send.
    wednesday = london(2027, 3, 24, 14)
    appointment_at(session, wednesday, booked_at=NOW)
    plan(db, NOW)
    assert [row.idempotency_key.split(":")[3] for row in reminder_texts(session)] == ["d1"]
    # Nor one for an appointment later today: its day-before time is gone.
    appointment_at(session, london(2027, 3, 21, 16), booked_at=NOW - dt.timedelta(days=3))
    plan(db, NOW)
    assert len(reminder_texts(session)) == 1


def test_only_appointments_in_the_next_8_days_are_planned_the_rest_later(db, session):
    later = london(2027, 4, 5, 10)  # Monday 5 April
    appointment_at(session, later, booked_at=NOW)
    assert plan(db, NOW).texts == 0
    assert plan(db, utc(2027, 3, 28, 12)).texts == 2
    assert [row.due_at for row in reminder_texts(session)] == [london(2027, 3, 29, 10), london(2027, 4, 4, 10)]


def test_cancelled_and_moved_appointments_are_not_planned(db, session):
    first = appointment_at(session, MONDAY_29_10AM, booked_at=NOW - dt.timedelta(days=1))
    second = appointment_at(session, london(2027, 3, 26, 11), booked_at=NOW - dt.timedelta(days=1))
    with db.transaction() as s:
        appointments.cancel_appointment(s, _domain(), s.get(Patient, first.patient_id), first.id, reason="x",
                                        now=NOW - dt.timedelta(hours=1))
    plan(db, NOW)
    assert {row.appointment_id for row in reminder_texts(session)} == {second.id}


# Courses.

def _cohort(session, **kw):
    # Tuesdays at 18:00 from 23 March 2027: the first session is GMT, the second BST.
    return factories.create_cohort(session, first_date=dt.date(2027, 3, 23), start_time=dt.time(18), **kw)


def test_a_course_seat_gets_two_days_before_the_first_session_then_the_day_before_each(db, session):
    cohort = _cohort(session, venue=factories.create_venue(session, short_name="Archway Centre"))
    seat = seat_on(session, cohort, booked_at=NOW - dt.timedelta(days=2))
    first, second = cohort.sessions[0].starts_at, cohort.sessions[1].starts_at
    assert (first, second) == (utc(2027, 3, 23, 18), utc(2027, 3, 30, 17))

    assert plan(db, NOW).texts == 2  # the second session is beyond the 8 days
    assert plan(db, utc(2027, 3, 25, 12)).texts == 1
    rows = reminder_texts(session)
    assert [(row.idempotency_key, row.due_at) for row in rows] == [
        (f"reminder:booking:{seat.id}:first2:2027-03-23T18:00:00+00:00", utc(2027, 3, 21, 18)),
        (f"reminder:booking:{seat.id}:d1:2027-03-23T18:00:00+00:00", utc(2027, 3, 22, 18)),
        # 18:00 BST on Monday 29 March, the day after the clocks went forward.
        (f"reminder:booking:{seat.id}:d1:2027-03-30T17:00:00+00:00", utc(2027, 3, 29, 17)),
    ]
    assert rows[0].body == texts.session_reminder(starts_at=first, venue_short_name="Archway Centre", phone=PHONE)
    assert rows[2].body == texts.session_reminder(starts_at=second, venue_short_name="Archway Centre", phone=PHONE)
    assert all(row.booking_id == seat.id and row.appointment_id is None for row in rows)
    assert [row.expires_at for row in rows] == [first, first, second]


def test_a_cancelled_first_session_makes_the_next_one_the_first(db, session):
    cohort = _cohort(session)
    seat_on(session, cohort, booked_at=NOW - dt.timedelta(days=2))
    with db.transaction() as s:
        cancel_session(s, _domain(), s.get(CohortSession, cohort.sessions[0].id), reason="Room", now=NOW)
    plan(db, utc(2027, 3, 26, 12))
    assert [row.idempotency_key.split(":")[3] for row in reminder_texts(session)] == ["first2", "d1"]
    assert {row.expires_at for row in reminder_texts(session)} == {cohort.sessions[1].starts_at}


# Patients we may not text: the call list.

@pytest.mark.parametrize("why", [{"no_texts": True}, {"sms_consent": False}, {"sms_opted_out_at": utc(2027, 1, 1, 9)}])
def test_patients_who_may_not_be_texted_go_on_the_call_list(db, session, why):
    appointment = appointment_at(session, MONDAY_29_10AM, booked_at=NOW, **why)
    assert plan(db, NOW) == services.PlanResult(texts=0, calls=2)
    assert plan(db, NOW) == services.PlanResult()
    assert reminder_texts(session) == []
    d7, d1 = calls(session)
    assert (d7.call_at, d1.call_at) == (utc(2027, 3, 22, 10), utc(2027, 3, 28, 9))
    assert d1.idempotency_key == f"reminder:appointment:{appointment.id}:d1:2027-03-29T09:00:00+00:00"
    assert (d1.patient_id, d1.appointment_id, d1.booking_id) == (appointment.patient_id, appointment.id, None)
    assert (d1.status, d1.starts_at, d1.venue, d1.service_key) == ("open", MONDAY_29_10AM, "Test HC", "t1-physio")


def test_a_course_seat_of_a_patient_who_takes_no_texts_is_on_the_call_list(db, session):
    seat = seat_on(session, _cohort(session), booked_at=NOW - dt.timedelta(days=2), no_texts=True)
    plan(db, NOW)
    assert [(c.booking_id, c.kind) for c in calls(session)] == [(seat.id, "first2"), (seat.id, "d1")]


def test_a_patient_who_opts_out_after_planning_moves_to_the_call_list(db, session):
    appointment = appointment_at(session, MONDAY_29_10AM, booked_at=NOW)
    plan(db, NOW)
    session.execute(update(Patient).where(Patient.id == appointment.patient_id).values(sms_opted_out_at=NOW))
    session.commit()
    result = plan(db, NOW + dt.timedelta(minutes=5))
    assert (result.cancelled, result.calls) == (2, 2)
    assert {row.error_code for row in reminder_texts(session, status="cancelled")} == {"no-consent"}
    assert len(calls(session, status="open")) == 2


def test_a_patient_whose_number_twilio_refused_is_phoned_until_staff_correct_it(db, session):
    # The dispatcher drops every text to a number Twilio refused: without a call, no reminder would reach them.
    appointment = appointment_at(session, MONDAY_29_10AM, booked_at=NOW)
    plan(db, NOW)
    session.get(Patient, appointment.patient_id).mark_mobile_invalid(NOW)
    session.commit()
    result = plan(db, NOW + dt.timedelta(minutes=5))
    assert (result.cancelled, result.calls) == (2, 2)
    assert {row.error_code for row in reminder_texts(session, status="cancelled")} == {"mobile-invalid"}
    assert len(calls(session, status="open")) == 2
    # A course seat booked meanwhile goes straight on the call list too.
    seat = seat_on(session, _cohort(session), booked_at=NOW, patient=session.get(Patient, appointment.patient_id))
    plan(db, NOW + dt.timedelta(minutes=10))
    assert {c.kind for c in calls(session, status="open") if c.booking_id == seat.id} == {"first2", "d1"}
    assert _pending_of(session, booking_id=seat.id) == []


def test_a_patient_who_opts_back_in_is_texted_the_reminders_still_to_come_not_phoned_as_well(db, session):
    appointment = appointment_at(session, MONDAY_29_10AM, booked_at=NOW, sms_opted_out_at=utc(2027, 1, 1, 9))
    plan(db, NOW)
    assert len(calls(session, status="open")) == 2  # 7 days before (Monday 22nd) and the day before
    session.get(Patient, appointment.patient_id).opt_back_in_to_texts()  # they texted START
    session.commit()
    # By Wednesday the 7-day call was due and not yet made: it stays; the day-before reminder becomes a text.
    plan(db, utc(2027, 3, 24, 12))
    [still_to_call] = calls(session, status="open")
    assert still_to_call.kind == "d7"
    assert [(row.kind, row.due_at) for row in reminder_texts(session, status="pending")] == [
        ("reminder", utc(2027, 3, 28, 9))]


# Cancelling and moving: pending reminders end in the same transaction, and new ones are planned.

def _pending_of(session, **kw):
    return [row for row in reminder_texts(session, status="pending")
            if all(getattr(row, name) == value for name, value in kw.items())]


def test_cancelling_an_appointment_cancels_its_reminders_and_closes_its_calls(db, session):
    texted = appointment_at(session, MONDAY_29_10AM, booked_at=NOW - dt.timedelta(days=1))
    phoned = appointment_at(session, MONDAY_29_10AM + dt.timedelta(hours=1), booked_at=NOW - dt.timedelta(days=1),
                            no_texts=True)
    plan(db, NOW)
    for appointment in (texted, phoned):
        with db.transaction() as s:
            appointments.cancel_appointment(s, _domain(), s.get(Patient, appointment.patient_id), appointment.id,
                                            reason="Cannot come", now=NOW + dt.timedelta(hours=1))
    cancelled = reminder_texts(session, status="cancelled")
    assert len(cancelled) == 2 and {row.error_code for row in cancelled} == {"appointment-ended"}
    assert [c.status for c in calls(session)] == ["closed", "closed"]
    assert plan(db, NOW + dt.timedelta(hours=2)) == services.PlanResult()


def test_a_cancellation_that_rolls_back_leaves_the_reminders(db, session):
    appointment = appointment_at(session, MONDAY_29_10AM, booked_at=NOW)
    plan(db, NOW)
    with pytest.raises(RuntimeError), db.transaction() as s:
        appointments.cancel_appointment(s, _domain(), s.get(Patient, appointment.patient_id), appointment.id,
                                        reason="x", now=NOW)
        assert len(_pending_of(session, appointment_id=appointment.id)) == 2  # not committed yet
        raise RuntimeError("the request failed after the cancel")
    assert len(_pending_of(session, appointment_id=appointment.id)) == 2


def test_moving_an_appointment_cancels_the_old_reminders_and_the_next_run_plans_the_new(db, session):
    old = appointment_at(session, MONDAY_29_10AM, booked_at=NOW - dt.timedelta(days=1))
    plan(db, NOW)
    from tests.appointments import factories as appointment_factories

    new_slot = appointment_factories.create_slot(session, starts_at=london(2027, 3, 25, 15))
    with db.transaction() as s:
        new = appointments.reschedule_appointment(s, _domain(), s.get(Patient, old.patient_id), old.id, new_slot.id,
                                                  now=NOW + dt.timedelta(hours=1))
        new_id = new.id
    assert _pending_of(session, appointment_id=old.id) == []
    assert plan(db, NOW + dt.timedelta(hours=1)).texts == 1  # Thursday's: only the day before is still to come
    [row] = _pending_of(session, appointment_id=new_id)
    assert row.due_at == london(2027, 3, 24, 15)


def test_withdrawing_a_seat_cancels_its_reminders(db, session):
    cohort = _cohort(session)
    seat = seat_on(session, cohort, booked_at=NOW - dt.timedelta(days=2))
    other = seat_on(session, cohort, booked_at=NOW - dt.timedelta(days=2))
    plan(db, NOW)
    with db.transaction() as s:
        patient = s.get(Patient, s.get(Booking, seat.id).patient_id)
        booking.withdraw_seat(s, _domain(), patient, seat.id, reason="Moving away", now=NOW)
    assert _pending_of(session, booking_id=seat.id) == []
    assert {row.error_code for row in reminder_texts(session, status="cancelled")} == {"booking-ended"}
    assert len(_pending_of(session, booking_id=other.id)) == 2
    assert plan(db, NOW) == services.PlanResult()


def test_moving_a_seat_cancels_the_old_reminders_and_the_next_run_plans_the_new_groups(db, session):
    first = _cohort(session)
    later = factories.create_cohort(session, first_date=dt.date(2027, 3, 25), start_time=dt.time(10))
    seat = seat_on(session, first, booked_at=NOW - dt.timedelta(days=2))
    plan(db, NOW)
    with db.transaction() as s:
        patient = s.get(Patient, s.get(Booking, seat.id).patient_id)
        moved = booking.move_seat(s, _domain(), patient, seat.id, later.id, now=NOW)
        moved_id = moved.id
    assert _pending_of(session, booking_id=seat.id) == []
    assert plan(db, NOW).texts == 2
    assert [row.due_at for row in _pending_of(session, booking_id=moved_id)] == [
        london(2027, 3, 23, 10), london(2027, 3, 24, 10)]


def test_moving_a_session_cancels_its_reminders_for_every_seat_and_replans_at_the_new_time(db, session):
    cohort = _cohort(session)
    seats = [seat_on(session, cohort, booked_at=NOW - dt.timedelta(days=2)) for _ in range(2)]
    phoned = seat_on(session, cohort, booked_at=NOW - dt.timedelta(days=2), no_texts=True)
    # Session 1's day-before reminders, and session 2's (starting 8 days on, less half an hour).
    plan(db, utc(2027, 3, 22, 17, 30))
    first_start, second_start = cohort.sessions[0].starts_at, cohort.sessions[1].starts_at
    second = cohort.sessions[1]
    assert len(reminder_texts(session)) == 4 and len(calls(session)) == 2

    with db.transaction() as s:
        move_session(s, _domain(), s.get(CohortSession, second.id), new_date=dt.date(2027, 3, 29),
                     new_time=dt.time(18), reason="Room booked", now=utc(2027, 3, 22, 17, 35))
    assert [row.expires_at for row in reminder_texts(session, status="pending")] == [first_start] * 2
    assert {row.error_code for row in reminder_texts(session, status="cancelled")} == {"session-changed"}
    assert [c.status for c in calls(session) if c.starts_at == second_start] == ["closed"]

    plan(db, utc(2027, 3, 22, 17, 40))
    new_start = london(2027, 3, 29, 18)
    pending = _pending_of(session, expires_at=new_start)
    assert sorted(row.booking_id for row in pending) == sorted(seat.id for seat in seats)
    assert {row.due_at for row in pending} == {london(2027, 3, 28, 18)}
    assert [c.booking_id for c in calls(session, status="open") if c.starts_at == new_start] == [phoned.id]

    # Moved back to where it was: its reminders are planned again (a cancelled reminder gives up its key).
    with db.transaction() as s:
        move_session(s, _domain(), s.get(CohortSession, second.id), new_date=dt.date(2027, 3, 30),
                     new_time=dt.time(18), reason="Room free after all", now=utc(2027, 3, 22, 17, 45))
    plan(db, utc(2027, 3, 22, 17, 50))
    assert len(_pending_of(session, expires_at=second_start)) == 2
    assert _pending_of(session, expires_at=new_start) == []
    assert len([c for c in calls(session, status="open") if c.starts_at == second_start]) == 1


def test_cancelling_a_session_cancels_its_reminders_and_none_are_planned(db, session):
    cohort = _cohort(session)
    seat_on(session, cohort, booked_at=NOW - dt.timedelta(days=2))
    plan(db, utc(2027, 3, 22, 17, 30))
    second = cohort.sessions[1]
    assert len(_pending_of(session, expires_at=second.starts_at)) == 1
    with db.transaction() as s:
        cancel_session(s, _domain(), s.get(CohortSession, second.id), reason="Strike", now=utc(2027, 3, 22, 17, 35))
    assert _pending_of(session, expires_at=second.starts_at) == []
    assert plan(db, utc(2027, 3, 22, 17, 40)).texts == 0


def test_a_change_made_without_the_services_is_put_right_by_the_next_run(db, session):
    appointment = appointment_at(session, MONDAY_29_10AM, booked_at=NOW)
    cohort = _cohort(session)
    seat = seat_on(session, cohort, booked_at=NOW - dt.timedelta(days=2))
    plan(db, NOW)
    session.execute(update(Booking).where(Booking.id == seat.id).values(status="cancelled"))
    session.execute(update(CohortSession).where(CohortSession.id == cohort.sessions[0].id)
                    .values(starts_at=utc(2027, 3, 23, 19), ends_at=utc(2027, 3, 23, 21)))
    from portal.appointments.models import Appointment

    session.execute(update(Appointment).where(Appointment.id == appointment.id).values(status="cancelled"))
    session.commit()
    assert plan(db, NOW + dt.timedelta(minutes=5)).cancelled == 4
    assert reminder_texts(session, status="pending") == []


def test_services_refuse_a_cancel_that_names_nothing(session):
    with pytest.raises(ValueError):
        services.cancel_pending_reminders(session, now=NOW, cohort_id=1)


def test_the_scheduler_plans_reminders_every_five_minutes():
    from portal.scheduler import JOBS

    [job] = [job for job in JOBS if job.name == "plan_reminders"]
    assert job.seconds == 300


def test_every_statement_of_a_planning_run_reads_through_an_index(db, session):
    """Planning finds the slots and sessions of the next days by their start times, outbox and call rows by
    their keys or status, and never reads a whole table: the cost follows the reminders due."""
    if not db.is_sqlite:
        pytest.skip("reads SQLite's query plans")
    from sqlalchemy import event

    appointment_at(session, MONDAY_29_10AM, booked_at=NOW)
    appointment_at(session, MONDAY_29_10AM, booked_at=NOW, no_texts=True)
    seat_on(session, _cohort(session), booked_at=NOW - dt.timedelta(days=2))
    statements = []

    def record(_connection, _cursor, statement, parameters, _context, _executemany):
        statements.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        plan(db, NOW)
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    queries = [(sql, params) for sql, params in statements if sql.lstrip().upper().startswith(("SELECT", "UPDATE"))]
    assert len(queries) >= 8
    with db.engine.connect() as connection:
        for sql, params in queries:
            steps = [row[-1] for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params)]
            assert not [step for step in steps if step.startswith("SCAN")], (sql, steps)
    joined = " ".join(sql for sql, _ in queries)
    assert "appointment_slot.starts_at >" in joined and "cohort_session.starts_at >" in joined


def test_every_planned_reminder_fits_one_text(db, session):
    venue = factories.create_venue(session, short_name="A" * 30)
    appointment_at(session, MONDAY_29_10AM, booked_at=NOW, venue=venue)
    seat_on(session, _cohort(session, venue=venue), booked_at=NOW - dt.timedelta(days=2))
    plan(db, NOW)
    assert all(texts.gsm7_length(row.body) <= 160 for row in reminder_texts(session))
    assert len(session.scalars(select(Booking)).all()) == 1
