"""Concurrency: an admin changing a whole cohort while patients book it. Each racer runs the real service in its own
transaction, released together by a threading.Barrier, on SQLite and on PostgreSQL (make test-postgres)."""

import datetime as dt

import pytest
from sqlalchemy import func, select, text

from portal.booking import cohort_changes, services, waitlist
from portal.booking.models import Booking, Cohort, WaitlistEntry
from portal.db import utcnow
from portal.messaging.models import SmsMessage
from portal.patients.models import Patient
from tests import factories
from tests.booking.helpers import seats_consistent
from tests.races import count_together, in_transaction


def _booker(db, domain, patient_id, cohort_id):
    return in_transaction(db, lambda s: services.book_seat(s, domain, s.get(Patient, patient_id), cohort_id,
                                                           now=utcnow()), done="booked")


def _cohort_and_bookers(session, domain, *, capacity, booked, bookers):
    """A cohort with ``booked`` places taken by real bookings, and the ids of ``bookers`` patients to race for it."""
    cohort = factories.create_cohort(session, capacity=capacity)
    for _ in range(booked):
        services.book_seat(session, domain, factories.create_patient(session), cohort.id, now=utcnow())
    session.commit()
    return cohort.id, [factories.create_patient(session).id for _ in range(bookers)]


def _race(session, race_db, domain, cohort_id, bookers, change, *, done):
    """``change(s, cohort)`` in its own transaction, racing each booker's booking: the outcomes, and the cohort
    as committed."""
    def job(s):
        change(s, s.get(Cohort, cohort_id))

    outcomes = count_together([in_transaction(race_db, job, done=done)]
                              + [_booker(race_db, domain, p, cohort_id) for p in bookers])
    session.expire_all()
    return outcomes, session.get(Cohort, cohort_id)


def _active(session, cohort_id):
    return session.scalar(select(func.count()).select_from(Booking).where(
        Booking.cohort_id == cohort_id, Booking.status == "active"))


def test_a_cut_in_places_racing_bookings_never_oversells_and_never_loses_a_booking(session, race_db, domain):
    cohort_id, bookers = _cohort_and_bookers(session, domain, capacity=20, booked=10, bookers=20)
    outcomes, cohort = _race(session, race_db, domain, cohort_id, bookers, done="cut", change=lambda s, cohort: (
        cohort_changes.change_capacity(s, domain, cohort, 12, now=utcnow())))
    assert cohort.seats_taken <= cohort.capacity
    assert seats_consistent(session, cohort_id)
    # Every booking that said so stands: 10 before, and each racer told "booked".
    assert _active(session, cohort_id) == 10 + outcomes["booked"] == cohort.seats_taken
    if outcomes["cut"]:
        # The cut came before more than two had booked: the places above 12 were never there to take.
        assert cohort.capacity == 12 and outcomes["booked"] == 2, outcomes
    else:
        # More than two booked first, so the cut was refused (below the seats taken) and the rest filled up.
        assert outcomes["CapacityTooLow"] == 1 and cohort.capacity == 20 and outcomes["booked"] == 10, outcomes
    assert outcomes["CohortFull"] + outcomes["booked"] == 20, outcomes


def test_places_added_while_patients_book_are_each_taken_once(session, race_db, domain):
    cohort_id, bookers = _cohort_and_bookers(session, domain, capacity=5, booked=5, bookers=10)
    outcomes, cohort = _race(session, race_db, domain, cohort_id, bookers, done="raised", change=lambda s, cohort: (
        cohort_changes.change_capacity(s, domain, cohort, 8, now=utcnow())))
    assert outcomes["raised"] == 1
    assert cohort.capacity == 8 and seats_consistent(session, cohort_id)
    # Those who tried before the new places existed found the cohort full; at most three got one.
    assert outcomes["booked"] <= 3 and _active(session, cohort_id) == 5 + outcomes["booked"], outcomes


def test_cancelling_a_cohort_racing_bookings_leaves_no_place_standing_and_tells_everyone_booked(session, race_db,
                                                                                                 domain):
    cohort_id, bookers = _cohort_and_bookers(session, domain, capacity=20, booked=5, bookers=15)
    outcomes, cohort = _race(session, race_db, domain, cohort_id, bookers, done="cancelled", change=lambda s, cohort: (
        cohort_changes.cancel_cohort(s, domain, cohort, reason="Venue closed", now=utcnow())))
    assert outcomes["cancelled"] == 1, outcomes
    # A booking that came after the cancellation found the cohort no longer open.
    assert outcomes["booked"] + outcomes["CohortFull"] + outcomes["CohortNotFound"] == 15, outcomes
    assert cohort.status == "cancelled" and cohort.seats_taken == 0
    assert _active(session, cohort_id) == 0
    # Every place booked (the 5 before, and each racer that booked first) was cancelled and its patient texted.
    ended = session.scalars(select(Booking.id).where(Booking.cohort_id == cohort_id)).all()
    assert len(ended) == 5 + outcomes["booked"]
    told = session.scalar(select(func.count()).select_from(SmsMessage).where(SmsMessage.kind == "booking_cancelled"))
    assert told == len(ended)


def test_cancelling_a_cohort_while_its_patients_give_up_places_and_decline_offers_ends_each_once(session, race_db,
                                                                                                   domain):
    """Those requests lock a place or a waiting-list entry and then the cohort, to free the seat; the cancellation
    takes them in the same order, so neither waits for the other in a deadlock."""
    from portal.booking import waitlist
    from portal.booking.models import WaitlistEntry

    cohort = factories.create_cohort(session, capacity=6)
    holders = [factories.create_patient(session) for _ in range(6)]
    seats = [services.book_seat(session, domain, p, cohort.id, now=utcnow()) for p in holders]
    service = domain.catalogue.get("t1-group")
    waiting = [factories.create_patient(session) for _ in range(3)]
    for patient in waiting:
        waitlist.join(session, domain, patient, service, cohort=cohort, now=utcnow())
    session.commit()
    # Three places free and are offered to the three waiting.
    for patient, seat in zip(holders[:3], seats[:3], strict=True):
        services.withdraw_seat(session, domain, patient, seat.id, reason="x", now=utcnow())
    session.commit()
    offers = {e.patient_id: e.id for e in session.scalars(select(WaitlistEntry).where(
        WaitlistEntry.status == "offered"))}
    assert len(offers) == 3
    cohort_id = cohort.id

    def give_up(patient_id, seat_id):
        return in_transaction(race_db, lambda s: services.withdraw_seat(
            s, domain, s.get(Patient, patient_id), seat_id, reason="race", now=utcnow()), done="gave up")

    def decline(patient_id, entry_id):
        return in_transaction(race_db, lambda s: waitlist.decline_offer(
            s, domain, s.get(Patient, patient_id), entry_id, now=utcnow()), done="declined")

    def cancel(s):
        cohort_changes.cancel_cohort(s, domain, s.get(Cohort, cohort_id), reason="Venue closed", now=utcnow())

    outcomes = count_together(
        [in_transaction(race_db, cancel, done="cancelled")]
        + [give_up(p.id, seat.id) for p, seat in zip(holders[3:], seats[3:], strict=True)]
        + [decline(patient_id, entry_id) for patient_id, entry_id in offers.items()])
    assert outcomes["cancelled"] == 1, outcomes
    # Each other racer either went first, or found its place or offer already ended by the cancellation.
    assert outcomes["gave up"] + outcomes["BookingEnded"] == 3, outcomes
    assert outcomes["declined"] + outcomes["OfferNotFound"] == 3, outcomes
    session.expire_all()
    cohort = session.get(Cohort, cohort_id)
    assert cohort.status == "cancelled" and cohort.seats_taken == 0
    assert _active(session, cohort_id) == 0
    assert seats_consistent(session, cohort_id)


def test_two_admins_raising_the_places_and_cancelling_at_once_while_patients_answer_offers(session, race_db, domain):
    from portal.booking import waitlist
    from portal.booking.models import WaitlistEntry

    cohort = factories.create_cohort(session, capacity=4)
    holders = [factories.create_patient(session) for _ in range(4)]
    seats = [services.book_seat(session, domain, p, cohort.id, now=utcnow()) for p in holders]
    service = domain.catalogue.get("t1-group")
    for _ in range(4):
        waitlist.join(session, domain, factories.create_patient(session), service, cohort=cohort, now=utcnow())
    for patient, seat in zip(holders[:2], seats[:2], strict=True):
        services.withdraw_seat(session, domain, patient, seat.id, reason="x", now=utcnow())
    session.commit()
    offers = [(e.patient_id, e.id) for e in session.scalars(select(WaitlistEntry).where(
        WaitlistEntry.status == "offered"))]
    cohort_id = cohort.id

    def change(work):
        return lambda s: work(s, s.get(Cohort, cohort_id))

    def decline(patient_id, entry_id):
        return in_transaction(race_db, lambda s: waitlist.decline_offer(
            s, domain, s.get(Patient, patient_id), entry_id, now=utcnow()), done="declined")

    outcomes = count_together([
        in_transaction(race_db, change(lambda s, c: cohort_changes.change_capacity(s, domain, c, 8, now=utcnow())),
                       done="raised"),
        in_transaction(race_db, change(lambda s, c: cohort_changes.cancel_cohort(s, domain, c, reason="Closed",
                                                                                  now=utcnow())), done="cancelled"),
        *[decline(*offer) for offer in offers],
    ])
    assert outcomes["cancelled"] == 1 and outcomes["raised"] + outcomes["CohortLocked"] == 1, outcomes
    assert outcomes["declined"] + outcomes["OfferNotFound"] == 2, outcomes
    session.expire_all()
    cohort = session.get(Cohort, cohort_id)
    assert cohort.status == "cancelled" and cohort.seats_taken == 0 and _active(session, cohort_id) == 0
    assert seats_consistent(session, cohort_id)
    assert session.scalar(select(func.count()).select_from(WaitlistEntry).where(
        WaitlistEntry.status.in_(("waiting", "offered")))) == 0


def test_cancelling_skips_another_cohort_of_the_course_that_is_being_booked_rather_than_wait_for_it(
    db, session, race_db, domain
):
    """The patient whose offer a cancellation withdraws may be booking another group of the course at that moment:
    their booking holds that group's row and next wants their waiting-list entry, which the cancellation holds. The
    cancellation must not wait for the row (PostgreSQL would end one of the two as a deadlock): it skips that group
    and offers the free seats of the others."""
    if db.is_sqlite:
        pytest.skip("the interleaving needs two concurrent writers: PostgreSQL (make test-postgres)")
    cohort = factories.create_cohort(session, capacity=1)
    leaver = factories.create_patient(session)
    seat = services.book_seat(session, domain, leaver, cohort.id, now=utcnow())
    entry = waitlist.join(session, domain, factories.create_patient(session), domain.catalogue.get("t1-group"),
                          cohort=None, now=utcnow())
    services.withdraw_seat(session, domain, leaver, seat.id, reason="x", now=utcnow())
    session.commit()
    assert session.get(WaitlistEntry, entry.id).offer_cohort_id == cohort.id
    being_booked = factories.create_cohort(session, capacity=2, seats_taken=1)
    free = factories.create_cohort(session, capacity=2, seats_taken=1,
                                   first_date=cohort.first_date + dt.timedelta(days=7))

    with race_db.transaction() as booker:
        # A booking of that group holds its row until it commits.
        booker.execute(select(Cohort.id).where(Cohort.id == being_booked.id).with_for_update())
        with db.transaction() as admin:
            admin.execute(text("SET LOCAL lock_timeout = '3s'"))
            done = cohort_changes.cancel_cohort(admin, domain, admin.get(Cohort, cohort.id), reason="Venue closed",
                                                now=utcnow())
        booker.rollback()

    assert done.offered_in_other_cohorts == 1
    session.expire_all()
    assert session.get(WaitlistEntry, entry.id).offer_cohort_id == free.id
    assert (session.get(Cohort, being_booked.id).seats_taken, session.get(Cohort, free.id).seats_taken) == (1, 2)
