"""Sending the outbox: claim due rows in one committed statement, send outside any transaction.

At-least-once: a row is 'sending' from its claim until the provider's answer is recorded. A row left in
'sending' by a crash is handed back by the sweep (messaging.sweep); a read timeout is recorded as 'unknown'
rather than sent twice. A row claimed again after an earlier attempt (a 5xx, a crash) first asks the provider
whether it took that attempt after all, and is recorded as sent if so, so the patient is not texted twice.

Planned texts (reminders and nudges: messaging.services.PLANNED_KINDS) go only inside the local send window.
Planning puts them there, but one can fall due outside it all the same (a scheduler down for the evening, a
backlog, a retry): the dispatcher then hands it back, unsent and without counting an attempt, for when the
window next opens. Texts that answer something the patient or staff just did go at once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from portal.appointments.models import Appointment
from portal.booking.models import Booking
from portal.db import Database, utcnow
from portal.messaging import error_codes
from portal.messaging.clients import SendFailed, SmsClient
from portal.messaging.models import SmsMessage
from portal.messaging.receipts import apply_provider_error, callback_url
from portal.messaging.services import LONDON, NUDGE_KINDS, PLANNED_KINDS, SENT_TO_A_NEW_NUMBER, into_send_window
from portal.patients.models import Patient

log = logging.getLogger(__name__)
BACKOFF_BASE_SECONDS = 30


class Pacer:
    """Spaces sends so that no more than ``rate`` go per second, measured over any stretch of time.

    A token bucket one token deep: send n may go no sooner than 1/rate after send n-1. Idle time earns no
    credit, so a quiet spell is never followed by a burst. ``clock`` and ``sleep`` are injectable, so tests
    need not wait in real time.
    """

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be above 0")
        self.interval = 1.0 / rate
        self._clock = clock
        self._sleep = sleep
        self._next: float | None = None
        self._lock = threading.Lock()

    def wait(self) -> None:
        """Block until the next send may go, and book its slot."""
        with self._lock:
            now = self._clock()
            due = now if self._next is None or self._next < now else self._next
            self._next = due + self.interval
        if due > now:
            self._sleep(due - now)


@functools.cache
def shared_pacer(rate: float) -> Pacer:
    """One pacer per rate for this process, so the limit also holds from one dispatch batch to the next."""
    return Pacer(rate)


@dataclass(frozen=True)
class Claimed:
    id: int
    to_number: str
    body: str
    attempts: int
    patient_id: int | None
    expires_at: dt.datetime | None
    booking_id: int | None = None
    appointment_id: int | None = None
    kind: str = ""
    created_at: dt.datetime | None = None


@dataclass
class DispatchReport:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    unknown: int = 0
    cancelled: int = 0
    # Planned texts claimed outside the send window, handed back for when it opens.
    deferred: int = 0
    # Rows whose outcome could not be recorded (a database error): left in 'sending' for the sweep.
    errors: int = 0
    # Rows no longer held when their turn came: this batch stalled past the sweep's limit, the sweep handed them
    # back, and another claim has them now. Not sent here, as that claim may already have sent them.
    lost: int = 0


def claim_due(db: Database, *, now: dt.datetime, limit: int) -> list[Claimed]:
    """Move up to ``limit`` due pending rows to 'sending' and return them, in one committed statement.

    The due rows are picked in a MATERIALIZED CTE so the locking subquery runs exactly once. As a plain
    ``IN (subquery)`` PostgreSQL may plan a nested-loop semi join that re-runs the subquery for every outer
    row; each re-run skips the rows this statement has just claimed and locks the next ones, so one claim
    took the whole outbox whatever the limit, and a second dispatcher got nothing.
    """
    due = (
        select(SmsMessage.id)
        .where(SmsMessage.status == "pending", SmsMessage.next_attempt_at <= now)
        .order_by(SmsMessage.next_attempt_at, SmsMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .cte("due")
        .prefix_with("MATERIALIZED")
    )
    with db.transaction() as session:
        rows = session.execute(
            update(SmsMessage)
            # The status test again on the outer statement: a row is claimed only from 'pending'.
            .where(SmsMessage.id.in_(select(due.c.id)), SmsMessage.status == "pending")
            .values(status="sending", attempts=SmsMessage.attempts + 1, updated_at=now)
            .returning(
                SmsMessage.id, SmsMessage.to_number, SmsMessage.body, SmsMessage.attempts,
                SmsMessage.patient_id, SmsMessage.expires_at, SmsMessage.booking_id, SmsMessage.appointment_id,
                SmsMessage.kind, SmsMessage.created_at,
            )
            .execution_options(synchronize_session=False)
        ).all()
    return sorted((Claimed(*row) for row in rows), key=lambda c: c.id)


def _recheck(db: Database, claimed: Claimed, now: dt.datetime) -> tuple[str | None, str]:
    """Re-check, just before sending: the text is not stale, the patient still takes texts at their number
    (and, for a nudge, is still under the service's care), and the booking it is about still stands. Returns
    why not to send (an error code, or None to send), and the number to send to.

    That is the patient's mobile as it is now: a text written before the number changed (a reminder planned
    days ahead, then reception corrects a wrong number) must not go to the old one, which may be someone
    else's. Only a code proving a new number (SENT_TO_A_NEW_NUMBER) goes where it was written to go."""
    number = claimed.to_number
    if claimed.expires_at is not None and claimed.expires_at <= now:
        return "expired", number
    if claimed.patient_id is None and claimed.booking_id is None and claimed.appointment_id is None:
        return None, number
    with db.reader() as session:
        if claimed.patient_id is not None:
            patient = session.get(Patient, claimed.patient_id)
            if patient is None or not patient.may_text:
                return "no-consent", number
            if patient.discharged and claimed.kind in NUDGE_KINDS:
                return "discharged", number
            if claimed.kind not in SENT_TO_A_NEW_NUMBER:
                number = patient.mobile
            if patient.mobile_invalid_at is not None and number == patient.mobile:
                return "mobile-invalid", number
        if claimed.booking_id is not None:
            status = session.scalar(select(Booking.status).where(Booking.id == claimed.booking_id))
            if status != "active":
                return "booking-ended", number
        if claimed.appointment_id is not None:
            status = session.scalar(select(Appointment.status).where(Appointment.id == claimed.appointment_id))
            if status != "active":
                return "appointment-ended", number
    return None, number


def _held_by(message: Claimed) -> tuple:
    """The row as this claim left it: still 'sending', and not claimed again since (a batch that stalled past the
    sweep must not record its outcome over a later claim's)."""
    return (SmsMessage.id == message.id, SmsMessage.status == "sending", SmsMessage.attempts == message.attempts)


def _record(db: Database, message: Claimed, now: dt.datetime, **values) -> None:
    with db.transaction() as session:
        session.execute(
            update(SmsMessage)
            .where(*_held_by(message))
            .values(updated_at=now, **values)
            .execution_options(synchronize_session=False)
        )


def _record_failed(db: Database, message: Claimed, now: dt.datetime, code: str | None) -> None:
    """Failed for good; a Twilio error about the number itself (21610, 21211, 21614) also marks the patient,
    in the same transaction."""
    with db.transaction() as session:
        changed = session.execute(
            update(SmsMessage)
            .where(*_held_by(message))
            .values(status="failed", error_code=code, updated_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        if changed == 1 and (code in error_codes.OPTED_OUT or code in error_codes.INVALID_NUMBER):
            apply_provider_error(session, patient_id=message.patient_id, to_number=message.to_number, code=code,
                                 now=now)


def _record_sent(db: Database, message: Claimed, now: dt.datetime, *, provider: str, sid: str, status: str) -> None:
    with db.transaction() as session:
        changed = session.execute(
            update(SmsMessage)
            .where(*_held_by(message))
            .values(status=status, provider=provider, provider_sid=sid, sent_at=now, error_code=None,
                    updated_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        if changed == 0:
            # A delivery receipt overtook us (it found the row by the outbox id in its URL) and moved it on:
            # keep its status, and fill in what only we know.
            session.execute(
                update(SmsMessage)
                .where(SmsMessage.id == message.id, SmsMessage.provider_sid == sid)
                .values(provider=provider, sent_at=now)
                .execution_options(synchronize_session=False)
            )


def _still_held(db: Database, message: Claimed, now: dt.datetime) -> bool:
    """Renew this batch's claim on the row just before talking to the provider, if it still holds it: still
    'sending' after the claim that counted this attempt. The sweep hands back a row claimed more than
    ``stuck_after`` ago; a batch that stalled that long (a paused process, a slow provider) must not then send a
    text that another claim may have sent already. Renewing restarts the sweep's clock from this send, not from the
    start of the batch."""
    with db.transaction() as session:
        return session.execute(
            update(SmsMessage)
            .where(*_held_by(message))
            .values(updated_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount == 1


def _dispatch_one(
    db: Database,
    client: SmsClient,
    message: Claimed,
    *,
    clock: Callable[[], dt.datetime],
    validity_period: int,
    max_attempts: int,
    status_callback: str | None,
    pacer: Pacer | None,
    send_window: tuple[dt.time, dt.time] | None = None,
    zone: ZoneInfo = LONDON,
) -> str:
    """Send one claimed row and record the outcome; returns the DispatchReport field to count."""
    reason, number = _recheck(db, message, clock())
    if reason is not None:
        _record(db, message, clock(), status="cancelled", error_code=reason)
        return "cancelled"
    if number != message.to_number:
        # Recorded before sending, so the row (and a failure's mark on the number) names where it went.
        _record(db, message, clock(), to_number=number)
        message = dataclasses.replace(message, to_number=number)
    if send_window is not None and message.kind in PLANNED_KINDS:
        now = clock()
        opens = into_send_window(now, send_window, zone)
        if opens != now:
            # Not an attempt: the claim counted one, so give it back. If the window opens too late for the
            # text (after it expires), the next claim cancels it as expired.
            _record(db, message, now, status="pending", next_attempt_at=opens, attempts=message.attempts - 1)
            return "deferred"
    if pacer is not None:
        pacer.wait()
    if not _still_held(db, message, clock()):
        log.warning("sms %s: handed back while its batch waited; left to the claim that holds it now", message.id)
        return "lost"
    asking = message.attempts > 1 and message.created_at is not None
    try:
        result = None
        if asking:
            result = client.find_accepted(to=message.to_number, body=message.body, since=message.created_at)
            if result is not None:
                log.info("sms %s: the provider took an earlier attempt as %s; not sent again", message.id,
                         result.sid)
        asking = False
        if result is None:
            result = client.send(
                to=message.to_number, body=message.body, validity_period=validity_period,
                status_callback=callback_url(status_callback, message.id) if status_callback else None,
            )
    except SendFailed as exc:
        # The provider could not say whether it took an earlier attempt, and no attempt is left to ask again.
        gave_up_asking = asking and message.attempts >= max_attempts
        if exc.outcome_unknown or gave_up_asking:
            _record(db, message, clock(), status="unknown", error_code=exc.code)
            return "unknown"
        if exc.retryable and message.attempts < max_attempts:
            now = clock()
            delay = dt.timedelta(seconds=BACKOFF_BASE_SECONDS * 2 ** (message.attempts - 1))
            _record(db, message, now, status="pending", error_code=exc.code, next_attempt_at=now + delay)
            return "retried"
        _record_failed(db, message, clock(), exc.code)
        return "failed"
    except Exception:
        # Not a known provider answer (a garbled response, a bug): the text may have gone out, so it is
        # not sent again blindly, and the rest of the batch still goes.
        log.exception("sms %s: unexpected error while sending; recorded as unknown", message.id)
        _record(db, message, clock(), status="unknown", error_code="error")
        return "unknown"
    status = "delivered" if result.status == "delivered" else "sent"
    _record_sent(db, message, clock(), provider=client.name, sid=result.sid, status=status)
    return "sent"


def dispatch_due(
    db: Database,
    client: SmsClient,
    *,
    validity_period: int,
    max_attempts: int,
    status_callback: str | None = None,
    batch: int = 50,
    now: dt.datetime | None = None,
    max_per_second: float | None = None,
    pacer: Pacer | None = None,
    send_window: tuple[dt.time, dt.time] | None = None,
    zone: ZoneInfo = LONDON,
) -> DispatchReport:
    """Send one batch of due texts. Returns what happened, for logs and tests.

    ``now`` fixes the clock for the whole batch (claiming, expiry, backoff); by default each step reads
    the real time. ``status_callback`` is the base URL for delivery receipts: each text's own URL adds its
    outbox id. ``max_per_second`` paces the sends, through one pacer per process shared between batches;
    tests pass their own ``pacer`` (with a fake clock) instead. ``send_window`` (local times in ``zone``) holds
    planned texts (reminders, nudges) claimed outside it back until it opens; without it they go at once.
    """
    if pacer is None and max_per_second:
        pacer = shared_pacer(float(max_per_second))
    clock: Callable[[], dt.datetime] = (lambda: now) if now is not None else utcnow
    report = DispatchReport()
    claimed = claim_due(db, now=clock(), limit=batch)
    report.claimed = len(claimed)
    for message in claimed:
        try:
            outcome = _dispatch_one(
                db, client, message, clock=clock, validity_period=validity_period, max_attempts=max_attempts,
                status_callback=status_callback, pacer=pacer, send_window=send_window, zone=zone,
            )
        except Exception:
            log.exception("sms %s: could not record the outcome; left in 'sending'", message.id)
            report.errors += 1
            continue
        setattr(report, outcome, getattr(report, outcome) + 1)
    if report.claimed:
        log.info("dispatch: %s", report)
    return report
