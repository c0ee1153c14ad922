"""Two dispatchers racing over one outbox: every text reaches Twilio exactly once."""

from __future__ import annotations

import collections
import threading

from sqlalchemy import select

from portal.db import Database, utcnow
from portal.messaging.dispatch import DispatchReport, dispatch_due
from portal.messaging.models import SmsMessage
from portal.messaging.services import enqueue_sms
from portal.patients.models import Patient

ROWS = 200


def test_two_dispatchers_racing_send_each_text_exactly_once(
    database_url, db, domain, patient, fake_twilio, make_twilio_client
):
    now = utcnow()
    with db.transaction() as s:
        p = s.get(Patient, patient.id)
        for n in range(ROWS):
            enqueue_sms(s, key=f"race-{n}", patient=p, kind="test", body=f"NHS: race text {n:03d}", now=now)
    barrier = threading.Barrier(2)
    reports: dict[str, list[DispatchReport]] = {"a": [], "b": []}
    errors: list[BaseException] = []

    def run(name: str) -> None:
        # Like two scheduler processes: each with its own engine, pool and HTTP session.
        own_db = Database(database_url)
        client = make_twilio_client()
        try:
            barrier.wait(timeout=10)
            while True:
                report = dispatch_due(own_db, client, validity_period=domain.policy.sms.validity_period_seconds,
                                      max_attempts=domain.policy.sms.max_attempts, batch=10)
                if report.claimed == 0:
                    return
                reports[name].append(report)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            errors.append(exc)
        finally:
            own_db.dispose()

    threads = [threading.Thread(target=run, args=(name,)) for name in reports]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert not any(thread.is_alive() for thread in threads), "a dispatcher did not finish"
    assert errors == []
    bodies = collections.Counter(m.body for m in fake_twilio.messages)
    assert len(bodies) == ROWS
    assert set(bodies.values()) == {1}, f"sent twice: {[b for b, n in bodies.items() if n > 1]}"
    assert len(fake_twilio.requests) == ROWS
    assert max(r.claimed for rs in reports.values() for r in rs) <= 10, "a claim took more than its batch"
    claimed = {name: sum(r.claimed for r in rs) for name, rs in reports.items()}
    assert sum(claimed.values()) == ROWS
    assert all(claimed.values()), f"no race happened: {claimed}"
    assert sum(r.sent for rs in reports.values() for r in rs) == ROWS
    with db.transaction() as s:
        rows = s.execute(select(SmsMessage.status, SmsMessage.attempts, SmsMessage.provider_sid)).all()
    assert {(status, attempts) for status, attempts, _ in rows} == {("sent", 1)}
    assert {sid for _, _, sid in rows} == {m.sid for m in fake_twilio.messages}
