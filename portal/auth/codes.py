"""Single-use SMS codes: issue one, text it through the outbox, check what the person types.

One mechanism for every "prove you hold this phone" step (forgotten password, changing mobile).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from portal.auth.models import OneTimeCode, User
from portal.messaging.services import enqueue_sms
from portal.patients.models import Patient

CODE_LIFETIME = dt.timedelta(minutes=10)
# Codes texted to one account for one purpose in an hour. Each is a paid text, and a new mobile number's code goes
# to whatever number was typed: past this, nobody can run up the service's bill or keep texting someone's phone.
MAX_CODES_PER_HOUR = 3


class CodeRejected(Exception):
    """Wrong, expired, used up or unknown. Callers show one message for all of these."""


def _hash(user_id: int, purpose: str, code: str) -> str:
    return hashlib.sha256(f"{user_id}:{purpose}:{code}".encode()).hexdigest()


def issue_code(
    session: Session,
    user: User,
    *,
    purpose: str,
    send_to: str,
    text: str,
    patient: Patient,
    now: dt.datetime,
) -> OneTimeCode:
    """Cancel earlier codes for this purpose, make a new one and queue its text (patients who have
    asked for no texts get none: the caller tells them to phone instead).

    ``text`` is the message with ``{code}`` where the code goes (see messaging.texts). The text goes to
    ``send_to``, which may differ from the patient's stored mobile (proving a new number).
    """
    session.execute(
        update(OneTimeCode)
        .where(OneTimeCode.user_id == user.id, OneTimeCode.purpose == purpose, OneTimeCode.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    code = f"{secrets.randbelow(1_000_000):06d}"
    record = OneTimeCode(
        user_id=user.id, purpose=purpose, sent_to=send_to, code_hash=_hash(user.id, purpose, code),
        created_at=now, expires_at=now + CODE_LIFETIME,
    )
    session.add(record)
    session.flush()
    enqueue_sms(
        session,
        key=f"code:{record.id}",
        patient=patient,
        kind=purpose,
        body=text.format(code=code),
        now=now,
        expires_at=record.expires_at,
        to_number=send_to,
    )
    return record


def issued_in_last_hour(session: Session, user: User, *, purpose: str, now: dt.datetime) -> int:
    """How many codes for ``purpose`` were issued to this account in the hour before ``now``."""
    return session.scalar(
        select(func.count()).select_from(OneTimeCode).where(
            OneTimeCode.user_id == user.id, OneTimeCode.purpose == purpose,
            OneTimeCode.created_at > now - dt.timedelta(hours=1),
        )
    )


def check_code(session: Session, user: User, *, purpose: str, code: str, now: dt.datetime) -> OneTimeCode:
    """Use the newest live code if ``code`` matches; count a try either way. Raises CodeRejected."""
    record = session.scalars(
        select(OneTimeCode)
        .where(OneTimeCode.user_id == user.id, OneTimeCode.purpose == purpose, OneTimeCode.used_at.is_(None))
        .order_by(OneTimeCode.id.desc())
        .limit(1)
        .with_for_update()
    ).one_or_none()
    if record is None or not record.usable(now):
        raise CodeRejected()
    record.tries += 1
    typed = "".join(ch for ch in (code or "") if ch.isdigit())
    if not hmac.compare_digest(record.code_hash, _hash(user.id, purpose, typed)):
        raise CodeRejected()
    record.used_at = now
    return record
