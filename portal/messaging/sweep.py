"""The sweep of texts stuck in 'sending': what a scheduler that died mid-batch left behind.

The dispatcher moves a batch to 'sending' when it claims it and records each answer as it comes. A process
killed in between leaves rows in 'sending' for ever: nothing claims them again, because nobody can know
whether Twilio got them. So once a row has been 'sending' far longer than any batch can take, the sweep:

- marks it 'sent' if it has a provider SID: Twilio took it (its status callback can still move it on);
- hands it back to the dispatcher ('pending', due now) if it has none and attempts are left. The dispatcher
  asks Twilio, before any second attempt, whether it took the first (``SmsClient.find_accepted``): it records
  the text as sent if so, and sends it if not, so a crash neither loses a text nor sends it twice;
- marks it 'unknown' if it has no attempts left: it may or may not have gone, so staff see it on the failed
  and unknown queue (/staff/messages) and decide.

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
    retried: int
    unknown: int
    sent: int


def sweep_stuck_sending(db: Database, *, now: dt.datetime, stuck_after: dt.timedelta,
                        max_attempts: int) -> SweepReport:
    """Settle rows claimed (moved to 'sending') more than ``stuck_after`` ago; one transaction."""
    # The claim sets updated_at, and every answer moves the row out of 'sending', so updated_at is the claim.
    cutoff = now - stuck_after
    stuck = (SmsMessage.status == "sending", SmsMessage.updated_at < cutoff)
    unanswered = (*stuck, SmsMessage.provider_sid.is_(None))
    with db.transaction() as session:
        # The claim counted an attempt, so a text that crashes its sender every time still stops.
        retried = session.execute(
            update(SmsMessage)
            .where(*unanswered, SmsMessage.attempts < max_attempts)
            .values(status="pending", error_code=STUCK_CODE, next_attempt_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        unknown = session.execute(
            update(SmsMessage)
            .where(*unanswered)
            .values(status="unknown", error_code=STUCK_CODE, updated_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        sent = session.execute(
            update(SmsMessage)
            .where(*stuck, SmsMessage.provider_sid.is_not(None))
            .values(status="sent", sent_at=func.coalesce(SmsMessage.sent_at, SmsMessage.updated_at), updated_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
    report = SweepReport(retried=retried, unknown=unknown, sent=sent)
    if retried or unknown or sent:
        log.warning("sweep: %s text(s) stuck in 'sending' handed back to the dispatcher, %s now unknown, %s now sent",
                    retried, unknown, sent)
    return report
