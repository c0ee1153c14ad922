"""Concurrency: many requests at once must never double-book a slot or take a patient past the limit.

Each thread runs the real service in its own transaction, as a request would, released together by a
threading.Barrier. The same tests run on SQLite and on PostgreSQL (make test-postgres).
"""

from sqlalchemy import func, select

from portal.appointments import services
from portal.appointments.models import Appointment, AppointmentSlot
from portal.db import utcnow
from portal.messaging.models import SmsMessage
from portal.patients.models import Patient
from tests import factories
from tests.appointments import factories as appt
from tests.races import count_together, in_transaction


def _race(db, domain, jobs, *, action="book"):
    """Each (patient_id, slot_id[, appointment_id]) job runs in its own thread and transaction."""
    def attempt(patient_id, slot_id, appointment_id=None):
        def work(s):
            patient = s.get(Patient, patient_id)
            if action == "book":
                services.book_appointment(s, domain, patient, slot_id, now=utcnow())
            else:
                services.reschedule_appointment(s, domain, patient, appointment_id, slot_id, now=utcnow())
        return in_transaction(db, work)
    return count_together([attempt(*job) for job in jobs])


def _count(session, model, *where):
    return session.scalar(select(func.count()).select_from(model).where(*where))


def test_50_patients_race_for_one_slot(session, race_db, domain):
    slot = appt.create_slot(session)
    patients = [factories.create_patient(session) for _ in range(50)]
    outcomes = _race(race_db, domain, [(p.id, slot.id) for p in patients])
    assert outcomes == {"done": 1, "SlotTaken": 49}, outcomes
    session.expire_all()
    assert session.get(AppointmentSlot, slot.id).status == "booked"
    assert _count(session, Appointment) == 1
    assert _count(session, SmsMessage) == 1


def test_one_patient_double_submitting_one_slot_books_once(session, race_db, domain):
    slot = appt.create_slot(session)
    patient = factories.create_patient(session)
    outcomes = _race(race_db, domain, [(patient.id, slot.id)] * 10)
    assert outcomes["done"] == 1 and outcomes["done"] + outcomes["SlotTaken"] + outcomes["LimitReached"] == 10, outcomes
    session.expire_all()
    assert _count(session, Appointment) == 1
    assert _count(session, SmsMessage) == 1


def test_two_slots_double_submitted_under_a_limit_of_one_book_one(session, race_db, domain):
    assert domain.policy.booking.max_future_appointments_per_service == 1
    first, second = appt.create_slots(session, 2)
    patient = factories.create_patient(session)
    outcomes = _race(race_db, domain, [(patient.id, first.id), (patient.id, second.id)] * 5)
    # The others are refused: by the limit, or (for the slot that was booked) because it is taken.
    limit, taken = outcomes["LimitReached"], outcomes["SlotTaken"]
    assert outcomes["done"] == 1 and limit + taken == 9 and limit >= 4, outcomes
    session.expire_all()
    assert _count(session, Appointment, Appointment.status == "active") == 1
    booked = _count(session, AppointmentSlot, AppointmentSlot.status == "booked")
    assert booked == 1, "a slot was taken without an appointment in it"


def test_a_double_submitted_reschedule_moves_once(session, race_db, domain):
    clinician = appt.create_clinician(session)
    old_slot, *targets = appt.create_slots(session, 5, clinician=clinician)
    patient = factories.create_patient(session)
    old = appt.book(session, patient, old_slot)
    outcomes = _race(race_db, domain, [(patient.id, t.id, old.id) for t in targets] * 2, action="reschedule")
    assert outcomes["done"] == 1 and outcomes["AppointmentEnded"] + outcomes["SlotTaken"] == 7, outcomes
    session.expire_all()
    assert _count(session, Appointment, Appointment.status == "active") == 1
    assert _count(session, AppointmentSlot, AppointmentSlot.status == "booked") == 1
    assert session.get(AppointmentSlot, old_slot.id).status == "open"
