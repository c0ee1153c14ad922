"""The dispatcher's last look before sending, what Twilio's number errors change, and the send rate limit."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from portal.appointments import services as appointments
from portal.audit.models import AuditEvent
from portal.booking import services as booking
from portal.db import utcnow
from portal.messaging.dispatch import DispatchReport, Pacer, dispatch_due, shared_pacer
from portal.messaging.models import SmsMessage
from portal.messaging.services import enqueue_sms
from portal.patients.models import Patient
from portal.patients.routes import MOBILE_CHANGE
from tests import factories
from tests.appointments import factories as appointment_factories
from tests.messaging.outbox import STATUS_CALLBACK, enqueue, load


def dispatch(db, domain, client, **kwargs) -> DispatchReport:
    kwargs.setdefault("max_attempts", domain.policy.sms.max_attempts)
    kwargs.setdefault("status_callback", STATUS_CALLBACK)
    return dispatch_due(db, client, validity_period=domain.policy.sms.validity_period_seconds, **kwargs)


def _enqueue_about(db, patient, *, key, booking_id=None, appointment_id=None, to_number=None, kind="test") -> int:
    with db.transaction() as s:
        assert enqueue_sms(s, key=key, patient=s.get(Patient, patient.id), kind=kind, body="NHS: a reminder.",
                           now=utcnow(), booking_id=booking_id, appointment_id=appointment_id, to_number=to_number)
        return s.scalar(select(SmsMessage.id).where(SmsMessage.idempotency_key == key))


def _reload(session, patient) -> Patient:
    session.expire_all()
    return session.get(Patient, patient.id)


# -- the booking still stands ---------------------------------------------------------------------


def test_a_text_about_a_cancelled_appointment_is_not_sent(db, session, domain, patient, fake_twilio, twilio_client):
    appointment = appointment_factories.book(session, patient, appointment_factories.create_slot(session))
    message_id = _enqueue_about(db, patient, key="about-appointment", appointment_id=appointment.id)
    appointments.cancel_appointment(session, domain, patient, appointment.id, reason="Test", now=utcnow())
    session.commit()

    report = dispatch(db, domain, twilio_client)

    assert report.cancelled >= 1 and report.sent == report.claimed - report.cancelled
    row = load(db, message_id)
    assert (row.status, row.error_code) == ("cancelled", "appointment-ended")
    assert "NHS: a reminder." not in [m.body for m in fake_twilio.messages]


def test_a_text_about_a_moved_appointment_is_not_sent(db, session, domain, patient, fake_twilio, twilio_client):
    first, second = appointment_factories.create_slots(session, 2)
    appointment = appointment_factories.book(session, patient, first)
    message_id = _enqueue_about(db, patient, key="about-moved", appointment_id=appointment.id)
    appointments.reschedule_appointment(session, domain, patient, appointment.id, second.id, now=utcnow())
    session.commit()

    dispatch(db, domain, twilio_client)

    assert (load(db, message_id).status, load(db, message_id).error_code) == ("cancelled", "appointment-ended")


def test_a_text_about_an_appointment_that_stands_is_sent(db, session, domain, patient, fake_twilio, twilio_client):
    appointment = appointment_factories.book(session, patient, appointment_factories.create_slot(session))
    message_id = _enqueue_about(db, patient, key="about-standing", appointment_id=appointment.id)

    dispatch(db, domain, twilio_client)

    assert load(db, message_id).status == "sent"
    assert "NHS: a reminder." in [m.body for m in fake_twilio.messages]


def test_a_text_about_a_withdrawn_course_seat_is_not_sent(db, session, domain, patient, fake_twilio, twilio_client):
    seat = booking.book_seat(session, domain, patient, factories.create_cohort(session).id, now=utcnow())
    session.commit()
    message_id = _enqueue_about(db, patient, key="about-seat", booking_id=seat.id)
    booking.withdraw_seat(session, domain, patient, seat.id, reason="Test", now=utcnow())
    session.commit()

    dispatch(db, domain, twilio_client)

    row = load(db, message_id)
    assert (row.status, row.error_code) == ("cancelled", "booking-ended")
    assert "NHS: a reminder." not in [m.body for m in fake_twilio.messages]


def test_a_text_about_a_seat_that_stands_is_sent(db, session, domain, patient, fake_twilio, twilio_client):
    seat = booking.book_seat(session, domain, patient, factories.create_cohort(session).id, now=utcnow())
    session.commit()
    message_id = _enqueue_about(db, patient, key="about-live-seat", booking_id=seat.id)

    dispatch(db, domain, twilio_client)

    assert load(db, message_id).status == "sent"


def test_a_patient_who_replied_stop_is_not_texted(db, session, domain, patient, fake_twilio, twilio_client):
    message_id = enqueue(db, patient, key="stopped")
    _reload(session, patient).opt_out_of_texts(utcnow())
    session.commit()

    assert dispatch(db, domain, twilio_client) == DispatchReport(claimed=1, cancelled=1)
    assert (load(db, message_id).status, load(db, message_id).error_code) == ("cancelled", "no-consent")
    assert fake_twilio.requests == []


def test_a_number_marked_invalid_is_not_texted_but_a_code_to_a_new_number_is(
    db, session, domain, patient, fake_twilio, twilio_client
):
    _reload(session, patient).mark_mobile_invalid(utcnow())
    session.commit()
    to_old = enqueue(db, patient, key="to-refused-number")
    to_new = _enqueue_about(db, patient, key="code-to-new-number", to_number="+447700900777",
                            kind=MOBILE_CHANGE)

    assert dispatch(db, domain, twilio_client) == DispatchReport(claimed=2, sent=1, cancelled=1)

    assert (load(db, to_old).status, load(db, to_old).error_code) == ("cancelled", "mobile-invalid")
    assert load(db, to_new).status == "sent"
    assert [m.to for m in fake_twilio.messages] == ["+447700900777"]


# -- Twilio's errors about the number ----------------------------------------------------------------


def test_error_21610_marks_the_patient_opted_out_and_fails_the_text(db, session, domain, patient, fake_twilio,
                                                                    twilio_client):
    message_id = enqueue(db, patient, key="unsubscribed")
    later = enqueue(db, patient, key="unsubscribed-later")
    fake_twilio.opt_out(patient.mobile)

    report = dispatch(db, domain, twilio_client, batch=1)

    assert report == DispatchReport(claimed=1, failed=1)
    row = load(db, message_id)
    assert (row.status, row.attempts, row.error_code) == ("failed", 1, "21610")
    refreshed = _reload(session, patient)
    assert refreshed.sms_opted_out_at is not None
    assert refreshed.may_text is False
    # The next text to them is not even tried.
    assert dispatch(db, domain, twilio_client) == DispatchReport(claimed=1, cancelled=1)
    assert load(db, later).status == "cancelled"
    assert len(fake_twilio.requests) == 1
    events = session.scalars(select(AuditEvent).where(AuditEvent.patient_id == patient.id)).all()
    assert [(e.action, e.actor_role, e.detail) for e in events] == [("sms_opted_out", "system", "Twilio error 21610")]


@pytest.mark.parametrize("code", [21211, 21614])
def test_errors_21211_and_21614_mark_the_mobile_invalid_and_fail_the_text(db, session, domain, patient, fake_twilio,
                                                                         twilio_client, code):
    message_id = enqueue(db, patient, key=f"refused-{code}")
    fake_twilio.refuse_number(patient.mobile, code=code)

    assert dispatch(db, domain, twilio_client) == DispatchReport(claimed=1, failed=1)

    row = load(db, message_id)
    assert (row.status, row.error_code) == ("failed", str(code))
    refreshed = _reload(session, patient)
    assert refreshed.mobile_invalid_at is not None
    assert refreshed.sms_opted_out_at is None
    # Still "may text" (a code proving a new number must go), but not to this number.
    assert refreshed.may_text is True


def test_a_refused_new_number_does_not_mark_the_patients_own_mobile(db, session, domain, patient, fake_twilio,
                                                                    twilio_client):
    _enqueue_about(db, patient, key="code-to-bad-number", to_number="+447700900778",
                   kind=MOBILE_CHANGE)
    fake_twilio.refuse_number("+447700900778", code=21614)

    assert dispatch(db, domain, twilio_client).failed == 1

    assert _reload(session, patient).mobile_invalid_at is None


def test_every_patient_sharing_a_refused_number_is_marked(db, session, domain, patient, fake_twilio, twilio_client):
    sharer = factories.create_patient(session, mobile=patient.mobile)
    enqueue(db, patient, key="shared-number")
    fake_twilio.opt_out(patient.mobile)

    dispatch(db, domain, twilio_client)

    assert _reload(session, sharer).sms_opted_out_at is not None
    assert _reload(session, patient).sms_opted_out_at is not None


def test_changing_the_mobile_clears_the_invalid_mark(session, patient):
    record = _reload(session, patient)
    record.mark_mobile_invalid(utcnow())
    record.set_mobile(record.mobile)
    assert record.mobile_invalid_at is not None  # the same number: still refused

    record.set_mobile("+447700900555")

    assert (record.mobile, record.mobile_invalid_at) == ("+447700900555", None)


# -- the rate limit ---------------------------------------------------------------------------------------


class FakeClock:
    """A monotonic clock that only moves when something sleeps (or a send takes time)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_the_pacer_spaces_sends_at_the_limit_and_gives_no_burst_after_idling():
    clock = FakeClock()
    pacer = Pacer(10, clock=clock, sleep=clock.sleep)
    times = []
    for _ in range(50):
        pacer.wait()
        times.append(clock.now)
        clock.now += 0.01  # each send takes 10 ms
    assert times[0] == 1000.0
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert min(gaps) == pytest.approx(0.1)
    rate = (len(times) - 1) / (times[-1] - times[0])
    assert rate == pytest.approx(10, rel=0.01)

    clock.now += 60  # a quiet minute earns no credit
    pacer.wait()
    start = clock.now
    pacer.wait()
    assert clock.now - start == pytest.approx(0.1)


def test_a_slow_provider_is_not_paced_any_further():
    clock = FakeClock()
    pacer = Pacer(10, clock=clock, sleep=clock.sleep)
    for _ in range(5):
        pacer.wait()
        clock.now += 0.5  # each send takes longer than the interval
    assert clock.sleeps == []


def test_the_dispatcher_sends_no_faster_than_max_per_second(db, domain, patient, fake_twilio, twilio_client):
    now = utcnow()
    for n in range(20):
        enqueue(db, patient, key=f"paced-{n}", body=f"NHS: paced {n:02d}", now=now)
    clock = FakeClock()
    sent_at: list[float] = []

    class Timed:
        name = "timed"

        def send(self, **kwargs):
            sent_at.append(clock.now)
            return twilio_client.send(**kwargs)

    report = dispatch(db, domain, Timed(), now=now, pacer=Pacer(5, clock=clock, sleep=clock.sleep))

    assert report.sent == 20
    assert len(fake_twilio.messages) == 20
    rate = (len(sent_at) - 1) / (sent_at[-1] - sent_at[0])
    assert abs(rate - 5) / 5 < 0.05
    assert all(later - earlier >= 0.2 - 1e-9 for earlier, later in zip(sent_at, sent_at[1:], strict=False))


def test_cancelled_texts_do_not_use_up_the_rate(db, session, domain, patient, fake_twilio, twilio_client):
    enqueue(db, patient, key="cancelled-1")
    enqueue(db, patient, key="cancelled-2")
    _reload(session, patient).sms_consent = False
    session.commit()
    clock = FakeClock()

    assert dispatch(db, domain, twilio_client, pacer=Pacer(1, clock=clock, sleep=clock.sleep)).cancelled == 2
    assert clock.sleeps == []


def test_max_per_second_uses_one_pacer_per_process_across_batches():
    assert shared_pacer(7.0) is shared_pacer(7.0)
    assert shared_pacer(7.0).interval == pytest.approx(1 / 7)
    with pytest.raises(ValueError):
        Pacer(0)


def test_the_policy_sets_the_limit(domain):
    assert domain.policy.sms.max_per_second == 10


def test_dispatch_due_paces_with_max_per_second(db, domain, patient, fake_twilio, twilio_client, monkeypatch):
    clock = FakeClock()
    made = []

    def fake_shared(rate):
        made.append(rate)
        return Pacer(rate, clock=clock, sleep=clock.sleep)

    monkeypatch.setattr("portal.messaging.dispatch.shared_pacer", fake_shared)
    for n in range(3):
        enqueue(db, patient, key=f"limited-{n}")

    assert dispatch(db, domain, twilio_client, max_per_second=2).sent == 3

    assert made == [2.0]
    assert clock.sleeps == [pytest.approx(0.5), pytest.approx(0.5)]
    assert dt.timedelta(seconds=clock.now - 1000.0) == dt.timedelta(seconds=1)


# -- the texts the booking services write: each reaches the dispatcher's re-check with the right link ------------


def _written(db, kind: str):
    with db.reader() as s:
        return s.scalars(select(SmsMessage).where(SmsMessage.kind == kind)).one()


def test_the_text_saying_a_seat_is_given_up_is_sent(db, session, domain, patient, fake_twilio, twilio_client):
    # It is about a booking that has ended, which is its news: nothing may drop it for that.
    seat = booking.book_seat(session, domain, patient, factories.create_cohort(session).id, now=utcnow())
    booking.withdraw_seat(session, domain, patient, seat.id, reason="Test", now=utcnow())
    session.commit()

    dispatch(db, domain, twilio_client)

    assert _written(db, "booking_cancelled").status == "sent"


def test_the_booked_text_is_dropped_if_the_appointment_is_cancelled_before_it_goes(
        db, session, domain, patient, fake_twilio, twilio_client):
    slot = appointment_factories.create_slot(session)
    appointment = appointments.book_appointment(session, domain, patient, slot.id, now=utcnow())
    session.commit()
    appointments.cancel_appointment(session, domain, patient, appointment.id, reason="Test", now=utcnow())
    session.commit()

    dispatch(db, domain, twilio_client)

    booked = _written(db, "appointment_booked")
    assert (booked.appointment_id, booked.status, booked.error_code) == (appointment.id, "cancelled",
                                                                        "appointment-ended")
    assert _written(db, "appointment_cancelled").status == "sent"


def test_the_moved_text_is_dropped_if_the_appointment_moves_again_before_it_goes(
        db, session, domain, patient, fake_twilio, twilio_client):
    first, second, third = appointment_factories.create_slots(session, 3)
    appointment = appointments.book_appointment(session, domain, patient, first.id, now=utcnow())
    moved = appointments.reschedule_appointment(session, domain, patient, appointment.id, second.id, now=utcnow())
    again = appointments.reschedule_appointment(session, domain, patient, moved.id, third.id, now=utcnow())
    session.commit()

    dispatch(db, domain, twilio_client)

    with db.reader() as s:
        texts = {row.appointment_id: (row.status, row.error_code) for row in s.scalars(
            select(SmsMessage).where(SmsMessage.kind == "appointment_moved"))}
    assert texts == {moved.id: ("cancelled", "appointment-ended"), again.id: ("sent", None)}


def test_a_nudge_to_a_patient_discharged_since_it_was_written_is_not_sent(
    db, session, domain, patient, fake_twilio, twilio_client
):
    with db.transaction() as s:
        for kind in ("selfcare", "questionnaire_due", "reminder"):
            assert enqueue_sms(s, key=f"before-discharge-{kind}", patient=s.get(Patient, patient.id), kind=kind,
                               body=f"NHS: {kind}.", now=utcnow())
    session.merge(patient).discharge(utcnow(), "Back to GP")
    session.commit()

    dispatch(db, domain, twilio_client)

    with db.transaction() as s:
        outcomes = dict(s.execute(select(SmsMessage.kind, SmsMessage.error_code)).all())
    assert outcomes == {"selfcare": "discharged", "questionnaire_due": "discharged", "reminder": None}
    # A reminder of a booking the patient still holds goes until staff cancel the booking.
    assert [m.body for m in fake_twilio.messages] == ["NHS: reminder."]


# -- the number ----------------------------------------------------------------------------------------


def test_a_text_written_before_the_mobile_changed_goes_to_the_new_number(
    db, session, domain, patient, fake_twilio, twilio_client
):
    """Reception corrects a wrong number after a reminder was planned: the old number may be someone else's."""
    old = patient.mobile
    message_id = _enqueue_about(db, patient, key="before-the-change")
    session.merge(patient).set_mobile("+447700900999")
    session.commit()

    report = dispatch(db, domain, twilio_client)

    assert report.sent == 1
    assert [m.to for m in fake_twilio.messages] == ["+447700900999"]
    assert old not in [m.to for m in fake_twilio.messages]
    assert load(db, message_id).to_number == "+447700900999"


def test_a_code_proving_a_new_number_still_goes_to_that_number(
    db, session, domain, patient, fake_twilio, twilio_client
):
    with db.transaction() as s:
        assert enqueue_sms(s, key="prove-new", patient=s.get(Patient, patient.id), kind=MOBILE_CHANGE,
                           body="NHS: code 123456.", now=utcnow(), to_number="+447700900888")

    assert dispatch(db, domain, twilio_client).sent == 1
    assert [m.to for m in fake_twilio.messages] == ["+447700900888"]
