"""Writing texts to the outbox in the caller's transaction."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from portal.db import utcnow
from portal.messaging.models import SmsMessage
from portal.messaging.services import enqueue_sms, messages_for_patient
from portal.patients.models import Patient
from tests import factories


def _count(db) -> int:
    with db.transaction() as s:
        return s.scalar(select(func.count()).select_from(SmsMessage))


def test_a_text_is_written_as_a_due_pending_row(db, patient):
    now = utcnow()
    expires = now + dt.timedelta(days=7)
    with db.transaction() as s:
        inserted = enqueue_sms(s, key="invitation:1", patient=s.get(Patient, patient.id), kind="invitation",
                               body="NHS: hello", now=now, expires_at=expires)

    assert inserted is True
    with db.transaction() as s:
        [row] = s.scalars(select(SmsMessage)).all()
    assert (row.idempotency_key, row.patient_id, row.kind, row.body) == ("invitation:1", patient.id, "invitation",
                                                                        "NHS: hello")
    assert row.to_number == patient.mobile
    assert (row.status, row.attempts) == ("pending", 0)
    assert row.due_at == row.next_attempt_at == now
    assert row.expires_at == expires


def test_a_later_due_time_is_the_first_attempt_time(db, patient):
    now = utcnow()
    due = now + dt.timedelta(hours=3)
    with db.transaction() as s:
        enqueue_sms(s, key="reminder:1", patient=s.get(Patient, patient.id), kind="reminder", body="NHS: hi",
                    now=now, due_at=due)

    with db.transaction() as s:
        row = s.scalars(select(SmsMessage)).one()
    assert (row.due_at, row.next_attempt_at, row.created_at) == (due, due, now)


def test_the_same_idempotency_key_twice_writes_one_row(db, patient):
    now = utcnow()
    with db.transaction() as s:
        p = s.get(Patient, patient.id)
        first = enqueue_sms(s, key="booked:7", patient=p, kind="booking_confirmation", body="NHS: first", now=now)
    with db.transaction() as s:
        p = s.get(Patient, patient.id)
        second = enqueue_sms(s, key="booked:7", patient=p, kind="booking_confirmation", body="NHS: second",
                             now=now + dt.timedelta(minutes=1))
        # And again inside one transaction.
        third = enqueue_sms(s, key="booked:7", patient=p, kind="booking_confirmation", body="NHS: third", now=now)

    assert (first, second, third) == (True, False, False)
    with db.transaction() as s:
        rows = s.scalars(select(SmsMessage)).all()
    assert [(r.idempotency_key, r.body) for r in rows] == [("booked:7", "NHS: first")]


def test_a_patient_without_consent_gets_no_row(db, session):
    patient = factories.create_patient(session, sms_consent=False)

    with db.transaction() as s:
        inserted = enqueue_sms(s, key="invitation:2", patient=s.get(Patient, patient.id), kind="invitation",
                               body="NHS: hello", now=utcnow())

    assert inserted is False
    assert _count(db) == 0


def test_a_rolled_back_transaction_leaves_no_row(db, patient):
    with pytest.raises(RuntimeError, match="booking failed"):
        with db.transaction() as s:
            assert enqueue_sms(s, key="booked:8", patient=s.get(Patient, patient.id), kind="booking_confirmation",
                               body="NHS: booked", now=utcnow())
            s.flush()
            assert s.scalar(select(func.count()).select_from(SmsMessage)) == 1  # there, inside the transaction
            raise RuntimeError("booking failed")

    assert _count(db) == 0
    # The key is free again: a retry of the same change writes its text.
    with db.transaction() as s:
        assert enqueue_sms(s, key="booked:8", patient=s.get(Patient, patient.id), kind="booking_confirmation",
                           body="NHS: booked", now=utcnow())
    assert _count(db) == 1


def test_messages_for_patient_lists_only_theirs_newest_first(db, session, patient):
    other = factories.create_patient(session)
    now = utcnow()
    with db.transaction() as s:
        for n, who in enumerate([patient, other, patient]):
            enqueue_sms(s, key=f"k{n}", patient=s.get(Patient, who.id), kind="test", body=f"NHS: {n}",
                        now=now + dt.timedelta(minutes=n))

    with db.transaction() as s:
        bodies = [m.body for m in messages_for_patient(s, patient.id)]
    assert bodies == ["NHS: 2", "NHS: 0"]
