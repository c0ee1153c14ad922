import datetime as dt

import pytest
from sqlalchemy import select

from portal.auth.codes import CodeRejected, check_code, issue_code
from portal.db import utcnow
from portal.messaging.models import SmsMessage
from tests import factories

TEXT = "NHS: your code is {code}. It works for 10 minutes."


def _issue(session, user, now, send_to=None):
    record = issue_code(session, user, purpose="password_reset", send_to=send_to or user.patient.mobile, text=TEXT,
                        patient=user.patient, now=now)
    session.commit()
    body = session.scalars(select(SmsMessage.body).where(SmsMessage.idempotency_key == f"code:{record.id}")).one()
    return body.split("code is ")[1][:6]


def test_a_code_works_once(session):
    user = factories.create_patient_user(session)
    now = utcnow()
    code = _issue(session, user, now)
    check_code(session, user, purpose="password_reset", code=code, now=now)
    session.commit()
    with pytest.raises(CodeRejected):
        check_code(session, user, purpose="password_reset", code=code, now=now)


def test_a_code_expires_after_ten_minutes(session):
    user = factories.create_patient_user(session)
    now = utcnow()
    code = _issue(session, user, now)
    with pytest.raises(CodeRejected):
        check_code(session, user, purpose="password_reset", code=code, now=now + dt.timedelta(minutes=10, seconds=1))


def test_five_wrong_tries_use_up_the_code(session):
    user = factories.create_patient_user(session)
    now = utcnow()
    code = _issue(session, user, now)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(5):
        with pytest.raises(CodeRejected):
            check_code(session, user, purpose="password_reset", code=wrong, now=now)
        session.commit()
    with pytest.raises(CodeRejected):
        check_code(session, user, purpose="password_reset", code=code, now=now)


def test_a_new_code_cancels_the_old_one_and_can_go_to_another_number(session):
    user = factories.create_patient_user(session)
    now = utcnow()
    old = _issue(session, user, now)
    new = _issue(session, user, now, send_to="+447700900777")
    assert session.scalars(select(SmsMessage.to_number).order_by(SmsMessage.id.desc())).first() == "+447700900777"
    if old != new:
        with pytest.raises(CodeRejected):
            check_code(session, user, purpose="password_reset", code=old, now=now)
        session.commit()
    check_code(session, user, purpose="password_reset", code=new, now=now)


def test_codes_are_stored_only_as_hashes(session):
    from portal.auth.models import OneTimeCode

    user = factories.create_patient_user(session)
    code = _issue(session, user, utcnow())
    stored = session.scalars(select(OneTimeCode)).one()
    assert code not in stored.code_hash
