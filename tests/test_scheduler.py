"""The scheduler lease, and `portal scheduler` run as real processes against the fake Twilio server."""

from __future__ import annotations

import collections
import datetime as dt
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import select, update

from portal import scheduler as scheduler_module
from portal.db import Database, utcnow
from portal.messaging.clients import TwilioSmsClient
from portal.messaging.models import SmsMessage
from portal.scheduler import JOBS, LEASE_NAME, JobContext, LeasedScheduler
from portal.scheduler_lease import LEASE_SECONDS, SchedulerLease, acquire_or_renew, release
from tests import factories
from tests.fixtures.fake_twilio import FakeTwilio
from tests.messaging.outbox import enqueue

PORTAL = Path(sys.executable).with_name("portal")
T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def fake_twilio(app) -> Iterator[FakeTwilio]:
    with FakeTwilio(account_sid=app.config["TWILIO_ACCOUNT_SID"], auth_token=app.config["TWILIO_AUTH_TOKEN"]) as fake:
        yield fake


def _take(db, holder: str, now: dt.datetime) -> bool:
    with db.transaction() as s:
        return acquire_or_renew(s, name=LEASE_NAME, holder=holder, now=now)


def _lease(db) -> SchedulerLease | None:
    with db.transaction() as s:
        return s.get(SchedulerLease, LEASE_NAME)


# -- the lease ---------------------------------------------------------------------------------------


def test_the_first_holder_gets_the_lease_and_a_second_is_refused(db):
    assert _take(db, "a", T0) is True
    assert _take(db, "b", T0 + dt.timedelta(seconds=1)) is False

    lease = _lease(db)
    assert (lease.holder, lease.expires_at) == ("a", T0 + dt.timedelta(seconds=LEASE_SECONDS))


def test_the_holder_renews_and_pushes_the_expiry_out(db):
    assert _take(db, "a", T0)
    later = T0 + dt.timedelta(seconds=30)

    assert _take(db, "a", later) is True

    assert _lease(db).expires_at == later + dt.timedelta(seconds=LEASE_SECONDS)
    # Renewed, so still refused to the other just after the first expiry would have been.
    assert _take(db, "b", T0 + dt.timedelta(seconds=LEASE_SECONDS + 1)) is False


def test_after_expiry_the_second_takes_over_and_the_first_is_refused(db):
    assert _take(db, "a", T0)
    assert _take(db, "b", T0 + dt.timedelta(seconds=LEASE_SECONDS - 1)) is False

    after = T0 + dt.timedelta(seconds=LEASE_SECONDS + 1)
    assert _take(db, "b", after) is True
    assert _take(db, "a", after + dt.timedelta(seconds=1)) is False

    lease = _lease(db)
    assert (lease.holder, lease.expires_at) == ("b", after + dt.timedelta(seconds=LEASE_SECONDS))


def test_a_released_lease_is_free_at_once(db):
    assert _take(db, "a", T0)
    with db.transaction() as s:
        release(s, name=LEASE_NAME, holder="b")  # not b's to release: nothing happens
    assert _take(db, "b", T0 + dt.timedelta(seconds=1)) is False

    with db.transaction() as s:
        release(s, name=LEASE_NAME, holder="a")

    assert _take(db, "b", T0 + dt.timedelta(seconds=1)) is True


def test_many_racing_for_a_free_lease_get_exactly_one_holder(database_url, db):
    barrier = threading.Barrier(8)
    results: dict[str, bool] = {}
    errors: list[BaseException] = []

    def race(holder: str) -> None:
        own = Database(database_url)
        try:
            barrier.wait(timeout=10)
            results[holder] = _take(own, holder, T0)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            errors.append(exc)
        finally:
            own.dispose()

    threads = [threading.Thread(target=race, args=(f"h{n}",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    winners = [holder for holder, won in results.items() if won]
    assert len(results) == 8 and len(winners) == 1, results
    assert _lease(db).holder == winners[0]


# -- the leased scheduler, in-process ----------------------------------------------------------------


def _leased(app, db, domain, fake: FakeTwilio, holder: str) -> LeasedScheduler:
    sms = TwilioSmsClient(account_sid=app.config["TWILIO_ACCOUNT_SID"], auth_token=app.config["TWILIO_AUTH_TOKEN"],
                          sender=app.config["TWILIO_FROM"], api_base=fake.base_url)
    ctx = JobContext(db=db, domain=domain, sms=sms, config={})
    return LeasedScheduler(ctx, BackgroundScheduler(timezone="UTC"), holder=holder)


def _dispatch_job():
    [job] = [job for job in JOBS if job.name == "dispatch_outbox"]
    return job


def test_only_the_lease_holder_runs_jobs_and_a_standby_takes_over(
    app, db, session, domain, fake_twilio, caplog
):
    caplog.set_level(logging.INFO, logger="portal.scheduler")
    patient = factories.create_patient(session)
    a = _leased(app, db, domain, fake_twilio, "host:1:a")
    b = _leased(app, db, domain, fake_twilio, "host:2:b")
    a._renew()
    b._renew()
    assert (a.holds_lease(), b.holds_lease()) == (True, False)
    assert "host:2:b: another process holds the lease: idle" in caplog.text

    enqueue(db, patient, key="job-1", body="NHS: one")
    b._run(_dispatch_job())
    assert fake_twilio.requests == []
    a._run(_dispatch_job())
    assert [m.body for m in fake_twilio.messages] == ["NHS: one"]

    # a stops renewing (a dead process): once its lease has run out, b takes over at its next renewal.
    a.lock.abandon()  # PostgreSQL: its lock connection ends with it
    with db.transaction() as s:
        s.execute(update(SchedulerLease).values(expires_at=utcnow() - dt.timedelta(seconds=1)))
    b._renew()
    a._renew()
    assert (a.holds_lease(), b.holds_lease()) == (False, True)
    assert "host:1:a lost the lease: idle" in caplog.text
    assert "host:2:b holds the lease: running jobs" in caplog.text

    enqueue(db, patient, key="job-2", body="NHS: two")
    a._run(_dispatch_job())
    assert len(fake_twilio.messages) == 1
    b._run(_dispatch_job())
    assert [m.body for m in fake_twilio.messages] == ["NHS: one", "NHS: two"]


def test_a_holder_that_could_not_renew_in_time_stops_running_jobs(
    app, db, session, domain, fake_twilio, monkeypatch
):
    patient = factories.create_patient(session)
    a = _leased(app, db, domain, fake_twilio, "host:1:a")
    a._renew()
    enqueue(db, patient, key="late", body="NHS: late")
    # Its renewals stalled (a paused process): by its own clock the lease has run out, so it must not
    # act on it even though nobody has told it yet.
    later = utcnow() + dt.timedelta(seconds=LEASE_SECONDS + 1)
    monkeypatch.setattr(scheduler_module, "utcnow", lambda: later)

    assert a.leading.is_set()
    assert a.holds_lease() is False
    a._run(_dispatch_job())
    assert fake_twilio.requests == []


# -- `portal scheduler` as real processes ------------------------------------------------------------


class SchedulerProcess:
    def __init__(self, log_path: Path, env: dict[str, str], cwd: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, "w", encoding="utf-8")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen([str(PORTAL), "scheduler"], env=env, cwd=cwd, stdout=self._log,
                                        stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8")

    def stop(self) -> int | None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self._log.close()
        return self.process.returncode


@pytest.fixture
def start_scheduler(app, database_url, fake_twilio, tmp_path) -> Iterator[Callable[[str], SchedulerProcess]]:
    started: list[SchedulerProcess] = []
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PORTAL_", "TWILIO_"))}
    env.update(
        DATABASE_URL=database_url,
        SMS_BACKEND="twilio",
        TWILIO_ACCOUNT_SID=app.config["TWILIO_ACCOUNT_SID"],
        TWILIO_AUTH_TOKEN=app.config["TWILIO_AUTH_TOKEN"],
        TWILIO_FROM=app.config["TWILIO_FROM"],
        TWILIO_API_BASE=fake_twilio.base_url,
        PORTAL_INSTANCE_DIR=str(tmp_path / "instance"),
        PYTHONUNBUFFERED="1",
    )

    def start(name: str) -> SchedulerProcess:
        process = SchedulerProcess(tmp_path / f"{name}.log", env, tmp_path)
        started.append(process)
        return process

    try:
        yield start
    finally:
        for process in started:
            process.stop()


def _wait_for(condition: Callable[[], object], *, timeout: float, what: str, logs: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout}s waiting for {what}\n--- scheduler logs ---\n{logs()}")


def _statuses(db) -> dict[str, str]:
    with db.transaction() as s:
        return dict(s.execute(select(SmsMessage.body, SmsMessage.status)).all())


def _holder_pid(db) -> int | None:
    lease = _lease(db)
    if lease is None or lease.expires_at <= utcnow():
        return None
    return int(lease.holder.split(":")[1])


def test_the_scheduler_process_sends_the_outbox_and_a_second_copy_stands_by(
    db, session, fake_twilio, start_scheduler
):
    patient = factories.create_patient(session)
    first_batch = [f"NHS: process text {n}" for n in range(3)]
    for n, body in enumerate(first_batch):
        enqueue(db, patient, key=f"proc-{n}", body=body)
    first = start_scheduler("first")
    second = None

    def logs() -> str:
        return f"[first]\n{first.log}\n[second]\n{second.log if second else ''}"

    try:
        _wait_for(lambda: len(fake_twilio.messages) >= 3, timeout=20, what="the first 3 texts", logs=logs)
        _wait_for(lambda: set(_statuses(db).values()) == {"sent"}, timeout=10, what="rows marked sent", logs=logs)
        assert _holder_pid(db) == first.pid

        second = start_scheduler("second")
        _wait_for(lambda: "another process holds the lease: idle" in second.log, timeout=20,
                  what="the second scheduler to stand by", logs=logs)
        second_batch = [f"NHS: process text {n}" for n in range(3, 6)]
        for n, body in enumerate(second_batch, start=3):
            enqueue(db, patient, key=f"proc-{n}", body=body)
        _wait_for(lambda: len(fake_twilio.messages) >= 6, timeout=20, what="the next 3 texts", logs=logs)
        _wait_for(lambda: set(_statuses(db).values()) == {"sent"}, timeout=10, what="rows marked sent", logs=logs)

        assert first.process.poll() is None and second.process.poll() is None, logs()
        assert _holder_pid(db) == first.pid
    finally:
        first.stop()
        if second is not None:
            second.stop()

    bodies = collections.Counter(m.body for m in fake_twilio.messages)
    assert bodies == collections.Counter(first_batch + second_batch)  # each exactly once
    assert "holds the lease: running jobs" in first.log
    assert "dispatch: DispatchReport(claimed=3, sent=3" in first.log
    assert "holds the lease: running jobs" not in second.log
    assert "dispatch:" not in second.log
    # Stopped cleanly, the first gave the lease up rather than leaving it to expire.
    assert first.process.returncode == 0
    assert _lease(db).expires_at < utcnow()


def test_two_schedulers_started_together_elect_one_and_the_other_takes_over_when_it_stops(
    db, session, fake_twilio, start_scheduler
):
    patient = factories.create_patient(session)
    a, b = start_scheduler("a"), start_scheduler("b")
    processes = {a.pid: a, b.pid: b}

    def logs() -> str:
        return f"[a]\n{a.log}\n[b]\n{b.log}"

    def elected() -> bool:
        return all("holds the lease: running jobs" in p.log or "another process holds the lease" in p.log
                   for p in (a, b))

    _wait_for(elected, timeout=20, what="both schedulers to start", logs=logs)
    leader = processes[_holder_pid(db)]
    standby = b if leader is a else a
    assert "holds the lease: running jobs" in leader.log
    assert "another process holds the lease: idle" in standby.log
    assert "holds the lease: running jobs" not in standby.log

    bodies = [f"NHS: together {n}" for n in range(4)]
    for n, body in enumerate(bodies[:2]):
        enqueue(db, patient, key=f"together-{n}", body=body)
    _wait_for(lambda: len(fake_twilio.messages) >= 2, timeout=20, what="texts from the leader", logs=logs)

    # The leader stops; the standby takes the released lease at its next renewal and sends the rest.
    assert leader.stop() == 0
    for n, body in enumerate(bodies[2:], start=2):
        enqueue(db, patient, key=f"together-{n}", body=body)
    _wait_for(lambda: len(fake_twilio.messages) >= 4, timeout=40, what="the standby to take over", logs=logs)
    _wait_for(lambda: set(_statuses(db).values()) == {"sent"}, timeout=10, what="rows marked sent", logs=logs)

    assert _holder_pid(db) == standby.pid
    assert "holds the lease: running jobs" in standby.log
    assert collections.Counter(m.body for m in fake_twilio.messages) == collections.Counter(bodies)
