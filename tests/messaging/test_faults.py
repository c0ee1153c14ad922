"""Fault tests: the real `portal scheduler`, as separate processes, against the fake Twilio on 127.0.0.1.

- SIGKILL it at random moments during a dispatch of 2,000 texts, 10 times, then sweep what the kills left in
  'sending' and run it once more: every text reaches the fake exactly once, and every row is 'sent'.
- Twilio answers 500s, then hangs (FAULT_OUTAGE_SECONDS, default 40: 20 + 20; the issue's minute is 60): every
  text is delivered once it recovers, none after its validity, and those that expired meanwhile are cancelled.
- Two schedulers at once on PostgreSQL, with the lock holder's connection cut again and again so both send
  at the same time: no text is sent twice.
- The lock holder SIGKILLed: the standby takes over within a minute.

Each prints its figures (run with -s to see them). The fake is told callbacks=False: no portal serves the
status webhook here, and a receipt would not change what these tests count.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import text, update

from portal.db import Database, utcnow
from portal.messaging.fake_twilio import FakeTwilio
from portal.messaging.sweep import SweepReport, sweep_stuck_sending
from portal.scheduler import LEASE_NAME
from portal.scheduler_lease import ADVISORY_KEY, SchedulerLease
from tests import factories
from tests.fixtures.outage_twilio import OutageTwilio
from tests.fixtures.scheduler_processes import (
    Schedulers,
    accepted_bodies,
    enqueue_many,
    message_posts,
    rows_by_body,
    settled_since,
    status_counts,
    wait_for,
)

MESSAGES = 2000
KILLS = 10
KILL_ANSWER_SECONDS = 0.005
MAX_ATTEMPTS = 5  # config/policy.toml's, which the scheduler processes use
OUTAGE_SECONDS = float(os.environ.get("FAULT_OUTAGE_SECONDS", "40"))
CLIENT_TIMEOUT = 10  # TwilioSmsClient's read timeout: a hang longer than this is an 'unknown' text


def _is_postgres(db: Database) -> bool:
    return db.engine.dialect.name == "postgresql"


@pytest.fixture
def fake(app) -> Iterator[FakeTwilio]:
    with FakeTwilio(account_sid=app.config["TWILIO_ACCOUNT_SID"], auth_token=app.config["TWILIO_AUTH_TOKEN"],
                    callbacks=False) as fake:
        yield fake


@pytest.fixture
def patient_id(session) -> int:
    return factories.create_patient(session).id


@pytest.fixture
def schedulers(app, database_url, tmp_path, request) -> Iterator[Schedulers]:
    """Scheduler processes aimed at the test's fake (``outage_fake`` if the test has one)."""
    fake = request.getfixturevalue("outage_fake" if "outage_fake" in request.fixturenames else "fake")
    started = Schedulers(app, database_url, fake, tmp_path)
    try:
        yield started
    finally:
        started.stop_all()


def _settle(db: Database) -> SweepReport:
    """After every scheduler has stopped, nothing can still be mid-send: sweep what they left in 'sending'."""
    return sweep_stuck_sending(db, now=utcnow(), stuck_after=dt.timedelta(0), max_attempts=MAX_ATTEMPTS)


def _nothing_due(db: Database) -> bool:
    return settled_since(db, dt.datetime(2000, 1, 1, tzinfo=dt.UTC))


# -- SIGKILL during dispatch ----------------------------------------------------------------------------------


def test_sigkilled_ten_times_during_dispatch_every_text_goes_exactly_once(db, fake, patient_id, schedulers):
    seed = int(os.environ.get("FAULT_SEED", random.randrange(1_000_000)))
    rng = random.Random(seed)
    bodies = enqueue_many(db, patient_id, MESSAGES, prefix="kill")
    # Each answer takes 5 ms, so the dispatch lasts long enough for every kill on any machine (at full speed a
    # quiet machine sent everything within five kills); a kill while the fake holds its answer leaves a text
    # Twilio took with no record of it, for the lookup after the sweep to find.
    fake.slow(KILL_ANSWER_SECONDS)
    started = time.monotonic()
    kills = 0
    for round_ in range(KILLS):
        before = len(message_posts(fake))
        if before >= MESSAGES - 100:
            break  # too little left to kill "during" a dispatch
        process = schedulers.start(f"run{round_}")
        wait_for(lambda before=before: len(message_posts(fake)) > before, timeout=60,
                 what=f"run {round_} to start sending", logs=schedulers.logs, interval=0.01)
        # A random moment in the dispatch: mid-claim, mid-request, mid-record, between batches.
        time.sleep(rng.uniform(0.0, 1.0))
        process.kill()
        kills += 1
    final_start = utcnow()
    last = schedulers.start("final")
    # Up and running first: the outbox may already be settled (the last killed run sent everything), and a
    # process stopped while still starting up has no SIGTERM handler yet.
    wait_for(lambda: last.leads or last.stands_by, timeout=120, what="the final run to start",
             logs=schedulers.logs)
    wait_for(lambda: settled_since(db, final_start), timeout=120, what="the outbox to empty", logs=schedulers.logs)
    assert last.stop() == 0
    # What the kills left in 'sending': the sweep hands it back, and a scheduler asks Twilio before sending it.
    report = _settle(db)
    stuck = report.retried
    taken_before = accepted_bodies(fake)
    found = sum(1 for body, row in rows_by_body(db).items() if row.status == "pending" and taken_before[body])
    after = schedulers.start("after-sweep")
    wait_for(lambda: after.leads or after.stands_by, timeout=120, what="the run after the sweep to start",
             logs=schedulers.logs)
    wait_for(lambda: settled_since(db, dt.datetime(2000, 1, 1, tzinfo=dt.UTC)), timeout=120,
             what="the swept texts to settle", logs=schedulers.logs)
    assert after.stop() == 0
    elapsed = time.monotonic() - started

    taken = accepted_bodies(fake)
    rows = rows_by_body(db)
    duplicates = {body: n for body, n in taken.items() if n > 1}
    print(f"\nFAULT sigkill seed={seed} kills={kills} messages={MESSAGES} delivered={sum(taken.values())} "
          f"stuck={stuck} (of which Twilio had taken {found}) unknown={report.unknown} "
          f"duplicates={len(duplicates)} time={elapsed:.1f}s")
    assert kills == KILLS, f"only {kills} kills happened during the dispatch: make it slower"
    assert (report.unknown, report.sent) == (0, 0)
    assert 0 < stuck <= kills * 20  # a batch (20) per kill at most
    assert duplicates == {}
    # Every text went exactly once, and each row names the text Twilio took.
    assert set(taken) == set(bodies) and len(rows) == MESSAGES
    assert status_counts(db) == {"sent": MESSAGES}
    sids = {m.body: m.sid for m in fake.messages}
    assert all(row.provider_sid == sids[body] for body, row in rows.items())


# -- Twilio down for a while: 500s, then hanging ---------------------------------------------------------------


@pytest.fixture
def outage_fake(app) -> Iterator[OutageTwilio]:
    with OutageTwilio(account_sid=app.config["TWILIO_ACCOUNT_SID"], auth_token=app.config["TWILIO_AUTH_TOKEN"],
                      callbacks=False) as fake:
        yield fake


def test_after_an_outage_of_500s_then_hanging_every_text_goes_once_and_none_after_its_validity(
    db, outage_fake, patient_id, schedulers
):
    # A quarter of 500s, then hanging. The retries of the first failures come 30 s later (the dispatcher's
    # backoff); texts falling due just after the 500s meet the hang first, time out, and are 'unknown'.
    errors_for, hang_for = OUTAGE_SECONDS / 4, OUTAGE_SECONDS * 3 / 4
    scheduler = schedulers.start("scheduler")
    wait_for(lambda: scheduler.leads, timeout=60, what="the scheduler to lead", logs=schedulers.logs)
    start = utcnow()
    monotonic_to_utc = time.time() - time.monotonic()
    ends = outage_fake.outage(errors=errors_for, hang=hang_for)
    now_bodies = enqueue_many(db, patient_id, 300, prefix="now")
    later_bodies = enqueue_many(db, patient_id, 20, prefix="later", due_at=start + dt.timedelta(seconds=errors_for + 1))
    stale_at = start + dt.timedelta(seconds=errors_for + 5)
    stale_bodies = enqueue_many(db, patient_id, 40, prefix="stale", expires_at=stale_at)
    deliverable = set(now_bodies + later_bodies)

    wait_for(lambda: deliverable <= set(accepted_bodies(outage_fake)) and _nothing_due(db),
             timeout=OUTAGE_SECONDS + 90, what="every text to go after the outage", logs=schedulers.logs)
    recovered_after = time.monotonic() - ends
    schedulers.stop_all()

    taken = accepted_bodies(outage_fake)
    rows = rows_by_body(db)
    posts = message_posts(outage_fake)
    refused = sum(1 for r in posts if r.response_status == 500)
    hung = {r.form["Body"] for r in posts if ends - hang_for <= r.received_at < ends}
    unknown = {b for b, row in rows.items() if row.status == "unknown"}
    print(f"\nFAULT outage errors={errors_for:.0f}s hang={hang_for:.0f}s requests={len(posts)} refused_500={refused} "
          f"hung={len(hung)} unknown={len(unknown)} delivered={sum(taken.values())} "
          f"cancelled_expired={sum(1 for r in rows.values() if r.error_code == 'expired')} "
          f"duplicates={sum(1 for n in taken.values() if n > 1)} last_sent={recovered_after:.1f}s_after_recovery")

    assert refused and hung, "the outage did not happen as planned"
    # Every text that was still worth sending went exactly once, by the fake's own record.
    assert {b: taken[b] for b in deliverable} == dict.fromkeys(deliverable, 1)
    assert all(rows[b].status in ("sent", "unknown") for b in deliverable)
    # 'unknown' only for requests that hung past the client's timeout; Twilio took them when it recovered.
    assert unknown and unknown <= hung
    assert len(unknown) <= hang_for / CLIENT_TIMEOUT + 1
    assert all(rows[b].error_code == "timeout" for b in unknown)
    # None after its validity: nothing stale reached the fake at all, and what did arrive arrived in time.
    assert not set(stale_bodies) & set(taken)
    assert all(rows[b].status == "cancelled" and rows[b].error_code == "expired" for b in stale_bodies)
    for request in posts:
        row = rows[request.form["Body"]]
        if row.expires_at is not None:
            arrived = dt.datetime.fromtimestamp(request.received_at + monotonic_to_utc, dt.UTC)
            assert arrived < row.expires_at, f"{row.body!r} sent after its validity"


# -- two schedulers at once (PostgreSQL) ------------------------------------------------------------------------


def _lock_backend(db: Database) -> int | None:
    with db.reader() as session:
        return session.scalar(text(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND classid = CAST(:high AS oid) AND objid = CAST(:low AS oid)"
        ), {"high": ADVISORY_KEY >> 32, "low": ADVISORY_KEY & 0xFFFFFFFF})


def _cut(db: Database, backend: int) -> None:
    with db.transaction() as session:
        session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})


def _overlap_seconds(fake: FakeTwilio, bucket: float = 0.25) -> float:
    """Seconds in which both schedulers (told apart by their sender names) sent texts."""
    senders: dict[int, set[str]] = {}
    for request in message_posts(fake):
        senders.setdefault(int(request.received_at / bucket), set()).add(request.form["From"])
    return bucket * sum(1 for who in senders.values() if len(who) > 1)


def test_two_schedulers_at_once_on_postgresql_never_send_a_text_twice(db, fake, patient_id, schedulers):
    if not _is_postgres(db):
        pytest.skip("PostgreSQL only: on SQLite one writer at a time serialises the claim, and a second "
                    "scheduler on one SQLite file is covered by the lease tests; run with PORTAL_TEST_DATABASE_URL")
    # Paced, so the dispatch lasts long enough for several lock cuts (about 25 s for one sender).
    schedulers.max_per_second = 80
    bodies = enqueue_many(db, patient_id, MESSAGES, prefix="two")
    a, b = schedulers.start("a", TWILIO_FROM="NHS ApptsA"), schedulers.start("b", TWILIO_FROM="NHS ApptsB")
    wait_for(lambda: (a.leads or a.stands_by) and (b.leads or b.stands_by), timeout=60, what="both to start",
             logs=schedulers.logs)
    wait_for(lambda: message_posts(fake), timeout=30, what="the first texts", logs=schedulers.logs)
    # Cut the lock holder's connection: the standby takes the lock at its next poll while the old holder
    # goes on sending until its own next check fails. Both then send at once, which is what SKIP LOCKED is for.
    cuts, takeovers = 0, []
    while cuts < 8 and len(message_posts(fake)) < MESSAGES - 300 and (cuts < 3 or _overlap_seconds(fake) == 0):
        wait_for(lambda: _lock_backend(db), timeout=30, what="a lock holder", logs=schedulers.logs)
        backend = _lock_backend(db)
        _cut(db, backend)
        cuts += 1
        took = wait_for(lambda cut=backend: _lock_backend(db) not in (None, cut), timeout=60,
                        what="another connection to take the lock", logs=schedulers.logs)
        takeovers.append(took)
        time.sleep(1.0)
    wait_for(lambda: _nothing_due(db), timeout=120, what="the outbox to empty", logs=schedulers.logs)
    schedulers.stop_all()

    taken = accepted_bodies(fake)
    overlap = _overlap_seconds(fake)
    by_sender = {s: sum(1 for r in message_posts(fake) if r.form["From"] == s) for s in ("NHS ApptsA", "NHS ApptsB")}
    print(f"\nFAULT two-schedulers messages={MESSAGES} cuts={cuts} takeovers_s={[round(t, 1) for t in takeovers]} "
          f"sent_by={by_sender} both_sending_s={overlap:.2f} delivered={sum(taken.values())} "
          f"duplicates={sum(1 for n in taken.values() if n > 1)}")
    assert cuts >= 3
    assert all(by_sender.values()), "one scheduler never sent: the test proved nothing about two at once"
    assert taken == dict.fromkeys(bodies, 1)
    assert status_counts(db) == {"sent": MESSAGES}
    assert max(takeovers) < 60
    assert "lost the lease: idle" in a.log + b.log


# -- the standby takes over ------------------------------------------------------------------------------------


def _takeover(db: Database, patient_id: int, fake: FakeTwilio, schedulers: Schedulers, *, label: str,
              foreign_holder: bool = False) -> float:
    first = schedulers.start(f"{label}-first")
    wait_for(lambda: first.leads, timeout=60, what="the first to lead", logs=schedulers.logs)
    standby = schedulers.start(f"{label}-standby")
    wait_for(lambda: standby.stands_by, timeout=60, what="the standby to stand by", logs=schedulers.logs)
    if foreign_holder:
        # As if the holder ran where this machine cannot look (another host): only expiry frees the lease.
        with db.transaction() as session:
            session.execute(update(SchedulerLease).where(SchedulerLease.name == LEASE_NAME)
                            .values(holder="elsewhere:1:00000000:-"))
    first.kill()
    took = wait_for(lambda: standby.leads, timeout=90, what="the standby to take over", logs=schedulers.logs,
                    interval=0.02)
    body = enqueue_many(db, patient_id, 1, prefix=label)[0]
    wait_for(lambda: accepted_bodies(fake)[body] == 1, timeout=30, what="the standby to send", logs=schedulers.logs)
    schedulers.stop_all()
    return took


def test_a_sigkilled_lock_holder_is_replaced_by_the_standby_within_a_minute(db, fake, patient_id, schedulers):
    took = _takeover(db, patient_id, fake, schedulers, label="killed")
    figures = f"takeover_after_sigkill={took:.1f}s"
    if not _is_postgres(db):
        # The lease row's slow path: a holder this machine cannot check is waited out until its lease expires.
        slow = _takeover(db, patient_id, fake, schedulers, label="expiry", foreign_holder=True)
        figures += f" takeover_by_lease_expiry={slow:.1f}s"
        assert slow < 60
    print(f"\nFAULT takeover {'postgresql advisory lock' if _is_postgres(db) else 'sqlite lease row'} {figures}")
    assert took < 60
