"""Concurrency: two receptionists sending a patient their activation link at once leave one link that
works, and with the resend guard (the invitations queue) send one text.

Each thread runs the service in its own transaction, as a request would (see tests/races.py).
"""

import datetime as dt

from sqlalchemy import func, select

from portal.auth import services
from portal.auth.models import Invitation
from portal.db import utcnow
from portal.messaging.models import SmsMessage
from portal.patients.models import Patient
from tests import factories
from tests.races import count_together


def _invite(db, domain, patient_id, *, guard: bool):
    def job():
        now = utcnow()
        with db.transaction() as s:
            guarded = {"unless_sent_since": now - dt.timedelta(minutes=10)} if guard else {}
            invitation = services.invite_patient(
                s, domain, s.get(Patient, patient_id), base_url="https://portal.example", now=now, **guarded)
        return "sent" if invitation is not None else "stood"
    return job


def _live(session, patient_id):
    return session.scalar(select(func.count()).select_from(Invitation).where(
        Invitation.patient_id == patient_id, Invitation.used_at.is_(None), Invitation.revoked_at.is_(None)))


def test_links_sent_at_once_leave_one_that_works(session, race_db, domain):
    patient = factories.create_patient(session)
    session.commit()
    outcomes = count_together([_invite(race_db, domain, patient.id, guard=False)] * 4)
    assert outcomes == {"sent": 4}, outcomes
    assert _live(session, patient.id) == 1


def test_resends_at_once_under_the_guard_send_one_text(session, race_db, domain):
    patient = factories.create_patient(session)
    session.commit()
    outcomes = count_together([_invite(race_db, domain, patient.id, guard=True)] * 4)
    assert outcomes == {"sent": 1, "stood": 3}, outcomes
    assert _live(session, patient.id) == 1
    assert session.scalar(select(func.count()).select_from(SmsMessage).where(SmsMessage.patient_id == patient.id)) == 1
