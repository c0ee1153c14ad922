"""Texts patients send us: YES, CANCEL, STOP, START and anything else; every reply goes through the outbox."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update

from portal.appointments.models import Appointment, AppointmentSlot
from portal.audit.models import AuditEvent
from portal.booking import services as booking
from portal.booking.models import Booking
from portal.db import utcnow
from portal.messaging import texts
from portal.messaging.dispatch import dispatch_due
from portal.messaging.inbound import OPT_OUT_WORDS, keyword
from portal.messaging.models import SmsInbound, SmsMessage
from portal.patients.models import Patient
from tests import factories
from tests.appointments import factories as appointment_factories
from tests.messaging.outbox import enqueue, load
from tests.messaging.webhook_requests import INBOUND_PATH, inbound_text, post_signed

PHONE = "020 3316 8888"


def _texts(session, patient_id: int | None = None, *, to: str | None = None) -> list[SmsMessage]:
    session.expire_all()
    query = select(SmsMessage).order_by(SmsMessage.id)
    if patient_id is not None:
        query = query.where(SmsMessage.patient_id == patient_id)
    if to is not None:
        query = query.where(SmsMessage.to_number == to)
    return list(session.scalars(query))


def _replies(session, **kw) -> list[SmsMessage]:
    return [m for m in _texts(session, **kw) if m.kind.startswith("reply_")]


def _inbound(session) -> list[SmsInbound]:
    session.expire_all()
    return list(session.scalars(select(SmsInbound).order_by(SmsInbound.id)))


def _events(session, patient_id: int) -> list[str]:
    return [e.action for e in session.scalars(
        select(AuditEvent).where(AuditEvent.patient_id == patient_id).order_by(AuditEvent.id))]


def _appointment(session, patient, *, starts_at: dt.datetime | None = None) -> Appointment:
    slot = appointment_factories.create_slot(session, starts_at=starts_at or appointment_factories.days_ahead(5))
    appointment = appointment_factories.book(session, patient, slot)
    # Only what the inbound text does should be in the outbox.
    session.execute(update(SmsMessage).where(SmsMessage.patient_id == patient.id).values(status="delivered"))
    session.commit()
    return appointment


def _seat(session, domain, patient, *, days: int = 14) -> Booking:
    cohort = factories.create_cohort(session, first_date=utcnow().date() + dt.timedelta(days=days))
    seat = booking.book_seat(session, domain, patient, cohort.id, now=utcnow())
    session.execute(update(SmsMessage).where(SmsMessage.patient_id == patient.id).values(status="delivered"))
    session.commit()
    return seat


def _reload(session, model, id_):
    session.expire_all()
    return session.get(model, id_)


# -- YES --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", ["YES", "yes", "Y", "y", "  Yes. ", "YES!", "\nyes\n"])
def test_yes_confirms_the_next_appointment_and_replies_through_the_outbox(client, session, patient, body):
    appointment = _appointment(session, patient)

    response = inbound_text(client, patient.mobile, body)

    assert response.status_code == 200
    assert response.get_data(as_text=True) == '<?xml version="1.0" encoding="UTF-8"?><Response/>'
    assert _reload(session, Appointment, appointment.id).confirmed_at is not None
    [reply] = _replies(session)
    assert (reply.kind, reply.status, reply.to_number, reply.patient_id) == ("reply_confirmed", "pending",
                                                                              patient.mobile, patient.id)
    assert reply.idempotency_key == f"sms-reply:{response.sid}"
    assert reply.body == texts.reply_confirmed(starts_at=appointment.slot.starts_at)
    assert reply.appointment_id == appointment.id
    [logged] = _inbound(session)
    assert (logged.action, logged.patient_id, logged.appointment_id, logged.reply_kind, logged.body) == (
        "confirmed", patient.id, appointment.id, "reply_confirmed", body)
    assert "appointment_confirmed_by_text" in _events(session, patient.id)


def test_yes_confirms_the_next_group_session_in_the_inbound_log(client, session, domain, patient):
    seat = _seat(session, domain, patient)
    first = _reload(session, Booking, seat.id).cohort.first_session

    inbound_text(client, patient.mobile, "YES")

    [logged] = _inbound(session)
    assert (logged.action, logged.booking_id, logged.cohort_session_id) == ("confirmed", seat.id, first.id)
    [reply] = _replies(session)
    assert reply.body == texts.reply_confirmed(starts_at=first.starts_at)
    assert reply.booking_id == seat.id
    assert "group_session_confirmed_by_text" in _events(session, patient.id)


def test_yes_goes_to_the_sooner_of_an_appointment_and_a_group_session(client, session, domain, patient):
    seat = _seat(session, domain, patient, days=3)
    appointment = _appointment(session, patient, starts_at=appointment_factories.days_ahead(10))

    inbound_text(client, patient.mobile, "YES")

    [logged] = _inbound(session)
    assert logged.booking_id == seat.id
    assert _reload(session, Appointment, appointment.id).confirmed_at is None


def test_yes_answers_the_text_we_last_sent_about_an_appointment(client, db, session, domain, patient):
    _seat(session, domain, patient, days=3)
    appointment = _appointment(session, patient, starts_at=appointment_factories.days_ahead(10))
    reminder = enqueue(db, patient, key="reminder-about-appointment")
    with db.transaction() as s:
        s.execute(update(SmsMessage).where(SmsMessage.id == reminder).values(
            status="delivered", appointment_id=appointment.id, sent_at=utcnow() - dt.timedelta(hours=1)))

    inbound_text(client, patient.mobile, "Y")

    assert _reload(session, Appointment, appointment.id).confirmed_at is not None
    assert _inbound(session)[0].appointment_id == appointment.id


def test_yes_with_nothing_booked_says_so(client, session, patient):
    inbound_text(client, patient.mobile, "yes")

    [reply] = _replies(session)
    assert (reply.kind, reply.body) == ("reply_nothing_booked", texts.reply_nothing_booked(phone=PHONE))
    assert _inbound(session)[0].action == "nothing_booked"


# -- CANCEL ---------------------------------------------------------------------------------------------


def test_cancel_before_the_cut_off_cancels_the_appointment_with_one_reply(client, session, patient):
    appointment = _appointment(session, patient, starts_at=appointment_factories.days_ahead(5))

    inbound_text(client, patient.mobile, "Cancel")

    cancelled = _reload(session, Appointment, appointment.id)
    assert cancelled.status == "cancelled"
    assert cancelled.cancel_reason == "Cancelled by the patient by text"
    assert _reload(session, AppointmentSlot, appointment.slot_id).status == "open"
    # One text only: the reply, not the reply and the usual cancellation text as well.
    pending = [m for m in _texts(session, patient.id) if m.status == "pending"]
    assert [(m.kind, m.body) for m in pending] == [
        ("reply_cancelled", texts.reply_cancelled(starts_at=appointment.slot.starts_at, phone=PHONE))]
    assert pending[0].appointment_id is None  # or the dispatcher would drop it: the appointment has ended
    assert _inbound(session)[0].action == "cancelled"
    assert "appointment_cancelled_by_text" in _events(session, patient.id)


def test_cancel_after_the_cut_off_leaves_the_appointment_and_gives_the_number(client, session, patient):
    appointment = _appointment(session, patient, starts_at=utcnow() + dt.timedelta(hours=3))

    inbound_text(client, patient.mobile, "CANCEL")

    assert _reload(session, Appointment, appointment.id).status == "active"
    [reply] = _replies(session)
    assert (reply.kind, reply.body) == ("reply_call_to_cancel", texts.reply_call_to_cancel(phone=PHONE))
    logged = _inbound(session)[0]
    assert (logged.action, logged.appointment_id) == ("call_to_cancel", appointment.id)


def test_cancel_for_a_group_session_gives_the_number(client, session, domain, patient):
    seat = _seat(session, domain, patient)

    inbound_text(client, patient.mobile, "cancel")

    assert _reload(session, Booking, seat.id).status == "active"
    assert [r.kind for r in _replies(session)] == ["reply_call_to_cancel"]
    assert _inbound(session)[0].action == "call_to_cancel"


def test_cancel_with_nothing_booked_says_so(client, session, patient):
    inbound_text(client, patient.mobile, "CANCEL")

    assert [r.kind for r in _replies(session)] == ["reply_nothing_booked"]


# -- STOP and START ---------------------------------------------------------------------------------


@pytest.mark.parametrize("body", sorted(OPT_OUT_WORDS) + ["stop", " Stop "])
def test_stop_words_opt_the_patient_out_without_a_reply(client, session, patient, body):
    inbound_text(client, patient.mobile, body)

    record = _reload(session, Patient, patient.id)
    assert record.sms_opted_out_at is not None
    assert record.may_text is False
    assert _replies(session) == []
    assert _inbound(session)[0].action == "opted_out"
    assert "sms_opted_out" in _events(session, patient.id)


def test_cancel_is_not_an_opt_out_word_here():
    assert "CANCEL" not in OPT_OUT_WORDS
    assert keyword(" cancel. ") == "CANCEL"


def test_after_stop_pending_texts_are_not_sent(client, db, session, domain, patient, fake_twilio, twilio_client):
    message_id = enqueue(db, patient, key="before-stop")

    inbound_text(client, patient.mobile, "STOP")
    dispatch_due(db, twilio_client, validity_period=600, max_attempts=3)

    assert load(db, message_id).status == "cancelled"
    assert fake_twilio.requests == []


@pytest.mark.parametrize("body", ["START", "unstop"])
def test_start_opts_back_in_and_replies(client, session, patient, body):
    inbound_text(client, patient.mobile, "STOP")

    inbound_text(client, patient.mobile, body)

    assert _reload(session, Patient, patient.id).sms_opted_out_at is None
    [reply] = _replies(session)
    assert (reply.kind, reply.body) == ("reply_started", texts.reply_started())
    assert [r.action for r in _inbound(session)] == ["opted_out", "opted_in"]
    assert "sms_opted_in" in _events(session, patient.id)


def test_start_does_not_override_no_texts_asked_for_in_the_portal(client, session):
    patient = factories.create_patient(session, no_texts=True, sms_opted_out_at=utcnow())

    inbound_text(client, patient.mobile, "START")

    assert _reload(session, Patient, patient.id).sms_opted_out_at is None
    assert _replies(session) == []


def test_stop_from_a_shared_number_opts_out_everyone_with_it(client, session, patient):
    sharer = factories.create_patient(session, mobile=patient.mobile)

    inbound_text(client, patient.mobile, "STOP")

    assert _reload(session, Patient, patient.id).sms_opted_out_at is not None
    assert _reload(session, Patient, sharer.id).sms_opted_out_at is not None


# -- anything else, and strangers ---------------------------------------------------------------------


def test_anything_else_gets_help(client, session, patient):
    inbound_text(client, patient.mobile, "what time is it again?")

    [reply] = _replies(session)
    assert (reply.kind, reply.body, reply.patient_id) == ("reply_help", texts.reply_help(phone=PHONE), patient.id)
    assert _inbound(session)[0].action == "help"


def test_an_unknown_sender_gets_help_and_nothing_else(client, session, patient):
    appointment = _appointment(session, patient)

    inbound_text(client, "+447700900888", "YES")

    assert _reload(session, Appointment, appointment.id).confirmed_at is None
    [reply] = _replies(session)
    assert (reply.kind, reply.patient_id, reply.to_number) == ("reply_help", None, "+447700900888")
    logged = _inbound(session)[0]
    assert (logged.action, logged.patient_id) == ("unknown_sender", None)


def test_a_number_two_patients_share_is_treated_as_unknown(client, session, patient):
    appointment = _appointment(session, patient)
    factories.create_patient(session, mobile=patient.mobile)

    inbound_text(client, patient.mobile, "CANCEL")

    assert _reload(session, Appointment, appointment.id).status == "active"
    assert [(r.kind, r.patient_id) for r in _replies(session)] == [("reply_help", None)]
    assert _inbound(session)[0].action == "unknown_sender"


def test_help_replies_to_one_number_are_limited_per_day(client, session, patient):
    for n in range(5):
        inbound_text(client, patient.mobile, f"hello {n}")

    assert len(_replies(session)) == 3
    assert [r.reply_kind for r in _inbound(session)] == ["reply_help"] * 3 + [None] * 2
    assert [r.action for r in _inbound(session)] == ["help"] * 5


def test_a_text_twilio_posts_twice_is_acted_on_once(client, session, patient):
    _appointment(session, patient)

    first = inbound_text(client, patient.mobile, "YES")
    second = inbound_text(client, patient.mobile, "YES", sid=first.sid)

    assert (first.status_code, second.status_code) == (200, 200)
    assert len(_inbound(session)) == 1
    assert len(_replies(session)) == 1
    assert _events(session, patient.id).count("appointment_confirmed_by_text") == 1


def test_a_reply_is_only_sent_by_the_dispatcher(client, db, session, patient, fake_twilio, twilio_client):
    inbound_text(client, patient.mobile, "hello")
    assert fake_twilio.requests == []

    dispatch_due(db, twilio_client, validity_period=600, max_attempts=3)

    [sent] = fake_twilio.messages
    assert (sent.to, sent.body) == (patient.mobile, texts.reply_help(phone=PHONE))


def test_an_unsigned_inbound_text_is_refused(client, session, patient):
    appointment = _appointment(session, patient)
    params = {"MessageSid": "SM" + "0" * 32, "From": patient.mobile, "Body": "CANCEL"}

    assert client.post(INBOUND_PATH, data=params).status_code == 403
    assert post_signed(client, INBOUND_PATH, params, signature="bm9wZQ==").status_code == 403
    assert post_signed(client, INBOUND_PATH, params, token="someone-elses-token").status_code == 403

    assert _reload(session, Appointment, appointment.id).status == "active"
    assert _inbound(session) == []


def test_an_inbound_text_without_a_sender_is_a_bad_request(client):
    assert post_signed(client, INBOUND_PATH, {"MessageSid": "SM" + "1" * 32, "Body": "YES"}).status_code == 400


def test_the_audit_trail_never_holds_the_words_of_a_text(client, session, patient):
    inbound_text(client, patient.mobile, "my knee is bad today")

    details = " ".join(e.detail for e in session.scalars(select(AuditEvent)))
    assert "knee" not in details


def test_the_fake_can_text_the_portal_as_a_patient(db, client, session, patient, fake_twilio, twilio_client):
    def through_client(url, params, headers):
        return client.post(url.removeprefix("https://portal.test"), data=params, headers=headers).status_code

    fake_twilio.callback_sender = through_client
    fake_twilio.inbound_url = "https://portal.test/webhooks/twilio/inbound"

    result = fake_twilio.send_inbound(patient.mobile, "STOP")

    assert result.status_code == 200
    assert _reload(session, Patient, patient.id).sms_opted_out_at is not None
    assert fake_twilio.inbound == [result]
    # Like Twilio, the fake now refuses texts to the number (a patient registered since, with the same phone).
    newcomer = factories.create_patient(session, mobile=patient.mobile)
    message_id = enqueue(db, newcomer, key="to-stopped-number")
    dispatch_due(db, twilio_client, validity_period=600, max_attempts=3)
    assert (load(db, message_id).status, load(db, message_id).error_code) == ("failed", "21610")
    assert _reload(session, Patient, newcomer.id).sms_opted_out_at is not None
