"""Concurrency: many requests at once must never oversell a cohort or double-book a patient.

Each thread runs the real service in its own transaction, as a request would, released together by a
threading.Barrier. The same tests run on SQLite and on PostgreSQL (make test-postgres).
"""

from sqlalchemy import func, select

from portal.booking import services
from portal.booking.models import Booking, Cohort
from portal.db import utcnow
from portal.messaging.models import SmsMessage
from portal.patients.models import Patient
from tests import factories
from tests.races import count_together, in_transaction


def _race(db, domain, jobs):
    """Each (patient_id, cohort_id) job books in its own thread and transaction: the Counter of outcomes."""
    def book(patient_id, cohort_id):
        return in_transaction(db, lambda s: services.book_seat(
            s, domain, s.get(Patient, patient_id), cohort_id, now=utcnow()), done="booked")
    return count_together([book(*job) for job in jobs])


def test_200_patients_race_for_the_last_12_seats(session, race_db, domain):
    cohort = factories.create_cohort(session, capacity=20, seats_taken=8)
    patients = [factories.create_patient(session) for _ in range(200)]
    outcomes = _race(race_db, domain, [(p.id, cohort.id) for p in patients])
    assert outcomes == {"booked": 12, "CohortFull": 188}, outcomes
    session.expire_all()
    assert session.get(Cohort, cohort.id).seats_taken == 20
    active = session.scalar(select(func.count()).select_from(Booking).where(Booking.status == "active"))
    assert active == 12
    assert session.scalar(select(func.count()).select_from(SmsMessage)) == 12


def test_one_patient_double_submitting_gets_one_seat(session, race_db, domain):
    cohort = factories.create_cohort(session, capacity=20)
    patient = factories.create_patient(session)
    outcomes = _race(race_db, domain, [(patient.id, cohort.id)] * 10)
    assert outcomes["booked"] == 1 and outcomes["AlreadyBooked"] == 9, outcomes
    session.expire_all()
    assert session.get(Cohort, cohort.id).seats_taken == 1
    assert session.scalar(select(func.count()).select_from(Booking)) == 1


def test_one_patient_racing_for_two_cohorts_of_the_same_course_gets_one(session, race_db, domain):
    import datetime as dt

    first = factories.create_cohort(session)
    second = factories.create_cohort(session, first_date=utcnow().date() + dt.timedelta(days=35))
    patient = factories.create_patient(session)
    outcomes = _race(race_db, domain, [(patient.id, first.id), (patient.id, second.id)] * 5)
    assert outcomes["booked"] == 1 and outcomes["AlreadyBooked"] == 9, outcomes
    session.expire_all()
    seats = session.get(Cohort, first.id).seats_taken + session.get(Cohort, second.id).seats_taken
    assert seats == 1


def test_losers_of_the_race_can_all_join_the_waiting_list(session, race_db, domain):
    from portal.booking import waitlist
    from portal.booking.models import WaitlistEntry
    from portal.patients.models import Patient

    cohort = factories.create_cohort(session, capacity=20, seats_taken=8)
    patients = [factories.create_patient(session) for _ in range(60)]
    outcomes = _race(race_db, domain, [(p.id, cohort.id) for p in patients])
    assert outcomes == {"booked": 12, "CohortFull": 48}, outcomes
    booked = set(session.scalars(select(Booking.patient_id)).all())
    losers = [p.id for p in patients if p.id not in booked]
    service = domain.catalogue.get("t1-group")
    cohort_id = cohort.id

    def join(patient_id):
        return in_transaction(race_db, lambda s: waitlist.join(
            s, domain, s.get(Patient, patient_id), service, cohort=s.get(Cohort, cohort_id), now=utcnow()))

    assert count_together([join(p) for p in losers]) == {"done": 48}
    session.expire_all()
    queue = waitlist.queue_for_course(session, "t1-group")
    assert len(queue) == 48 and {e.patient_id for e in queue} == set(losers)
    assert session.scalar(select(func.count()).select_from(WaitlistEntry)) == 48


def test_a_cancel_racing_bookings_of_the_same_seat_keeps_seats_consistent(session, race_db, domain):
    from portal.patients.models import Patient
    from tests.booking.helpers import seats_consistent

    cohort = factories.create_cohort(session, capacity=12)
    holders = [factories.create_patient(session) for _ in range(12)]
    seats = [services.book_seat(session, domain, p, cohort.id, now=utcnow()) for p in holders]
    session.commit()
    bookers = [factories.create_patient(session).id for _ in range(20)]
    holder_id, seat_id, cohort_id = holders[0].id, seats[0].id, cohort.id

    def cancel(s):
        services.withdraw_seat(s, domain, s.get(Patient, holder_id), seat_id, reason="race", now=utcnow())

    def book(patient_id):
        return in_transaction(
            race_db, lambda s: services.book_seat(s, domain, s.get(Patient, patient_id), cohort_id, now=utcnow()))

    outcomes = count_together([in_transaction(race_db, cancel)] + [book(p) for p in bookers])
    # The cancel always lands; at most one booker gets the freed seat (none if every book ran first).
    assert outcomes["done"] in (1, 2) and outcomes["CohortFull"] == 21 - outcomes["done"], outcomes
    assert seats_consistent(session, cohort.id)
    assert session.get(Cohort, cohort.id).seats_taken <= 12


def test_a_double_submitted_cancel_frees_one_seat(session, race_db, domain):
    from portal.patients.models import Patient

    cohort = factories.create_cohort(session, capacity=12, seats_taken=5)
    patient = factories.create_patient(session)
    seat = services.book_seat(session, domain, patient, cohort.id, now=utcnow())
    session.commit()
    patient_id, seat_id = patient.id, seat.id  # read now: the test's session is not for the racing threads

    def cancel(s):
        services.withdraw_seat(s, domain, s.get(Patient, patient_id), seat_id, reason="tap", now=utcnow())

    outcomes = count_together([in_transaction(race_db, cancel) for _ in range(8)])
    assert outcomes == {"done": 1, "BookingEnded": 7}, outcomes
    session.expire_all()
    assert session.get(Cohort, cohort.id).seats_taken == 5
    cancelled = session.scalars(select(SmsMessage).where(SmsMessage.kind == "booking_cancelled")).all()
    assert len(cancelled) == 1


def test_a_double_submitted_move_moves_once(session, race_db, domain):
    import datetime as dt

    from portal.patients.models import Patient

    first = factories.create_cohort(session)
    later = factories.create_cohort(session, first_date=utcnow().date() + dt.timedelta(days=40))
    patient = factories.create_patient(session)
    seat = services.book_seat(session, domain, patient, first.id, now=utcnow())
    session.commit()
    patient_id, seat_id, later_id = patient.id, seat.id, later.id

    def move(s):
        services.move_seat(s, domain, s.get(Patient, patient_id), seat_id, later_id, now=utcnow())

    outcomes = count_together([in_transaction(race_db, move) for _ in range(8)])
    assert outcomes["done"] == 1 and sum(outcomes.values()) == 8, outcomes
    session.expire_all()
    assert session.get(Cohort, first.id).seats_taken == 0 and session.get(Cohort, later.id).seats_taken == 1
    assert session.scalar(select(func.count()).select_from(Booking).where(Booking.status == "active")) == 1


def test_accepting_an_offer_races_its_expiry(session, race_db, domain):
    import datetime as dt

    from portal.booking import waitlist
    from portal.booking.models import WaitlistEntry
    from portal.patients.models import Patient
    from tests.booking.helpers import seats_consistent

    cohort = factories.create_cohort(session, capacity=1)
    holder = factories.create_patient(session)
    seat = services.book_seat(session, domain, holder, cohort.id, now=utcnow())
    patients = [factories.create_patient(session) for _ in range(2)]
    entries = [waitlist.join(session, domain, p, domain.catalogue.get("t1-group"), cohort=cohort, now=utcnow())
               for p in patients]
    services.withdraw_seat(session, domain, holder, seat.id, reason="x", now=utcnow())
    session.commit()
    # The expiry job runs as if the hold time had just passed, while the patient taps accept (twice). (The hold
    # is counted from when the offer's text goes, which is later for a seat freed at night.)
    expiry = session.get(WaitlistEntry, entries[0].id).offer_expires_at
    accept_at = expiry - dt.timedelta(seconds=1)
    patient_id, entry_id = patients[0].id, entries[0].id

    def accept(s):
        waitlist.accept_offer(s, domain, s.get(Patient, patient_id), entry_id, now=accept_at)

    def expire(s):
        waitlist.expire_offers(s, domain, now=expiry)

    count_together([in_transaction(race_db, job) for job in (accept, accept, expire)])
    session.expire_all()
    first = session.get(WaitlistEntry, entries[0].id).status
    second = session.get(WaitlistEntry, entries[1].id).status
    assert (first, second) in {("booked", "waiting"), ("expired", "offered")}, (first, second)
    assert session.get(Cohort, cohort.id).seats_taken == 1
    assert seats_consistent(session, cohort.id)
