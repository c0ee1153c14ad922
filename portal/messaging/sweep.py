"""The sweep of texts stuck in 'sending': what a scheduler that died mid-batch left behind.

The dispatcher moves a batch to 'sending' when it claims it and records each answer as it comes. A process
killed in between leaves rows in 'sending' for ever: nothing claims them again, because nobody can know
whether Twilio got them. So once a row has been 'sending' far longer than any batch can take, the sweep:

- marks it 'unknown' if it has no provider SID: it may or may not have gone, so it is not sent again
  blindly; staff see it on the failed and unknown queue (/staff/messages) and decide;
- marks it 'sent' if it has one: Twilio took it (its status callback can still move it on to delivered).

Idempotent: it only ever touches rows still in 'sending', so running it twice changes nothing more.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import func, update

from portal.db import Database
from portal.messaging.models import SmsMessage

log = logging.getLogger(__name__)
STUCK_CODE = "stuck"


@dataclass(frozen=True)
class SweepReport:
    unknown: int
    sent: int


def sweep_stuck_sending(db: Database, *, now: dt.datetime, stuck_after: dt.timedelta) -> SweepReport:
    """Settle rows claimed (moved to 'sending') more than ``stuck_after`` ago; one transaction."""
    # The claim sets updated_at, and every answer moves the row out of 'sending', so updated_at is the claim.
    cutoff = now - stuck_after
    stuck = (SmsMessage.status == "sending", SmsMessage.updated_at < cutoff)
    with db.transaction() as session:
        unknown = session.execute(
            update(SmsMessage)
            .where(*stuck, SmsMessage.provider_sid.is_(None))
            .values(status="unknown", error_code=STUCK_CODE, updated_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        sent = session.execute(
            update(SmsMessage)
            .where(*stuck, SmsMessage.provider_sid.is_not(None))
            .values(status="sent", sent_at=func.coalesce(SmsMessage.sent_at, SmsMessage.updated_at), updated_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
    report = SweepReport(unknown=unknown, sent=sent)
    if unknown or sent:
        log.warning("sweep: %s text(s) stuck in 'sending' now unknown, %s now sent", unknown, sent)
    return report
