"""The scheduler lock in-process: the PostgreSQL advisory lock, the lease row's dead-holder check, the job
table, and the dispatch job's loop. (tests/messaging/test_faults.py runs the real processes.)"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from zoneinfo import ZoneInfo

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import select, text

from portal.db import utcnow
from portal.messaging import dispatch
from portal.messaging.clients import TwilioSmsClient
from portal.messaging.models import SmsMessage
from portal.messaging.services import enqueue_sms
from portal.patients.models import Patient
from portal.scheduler import DISPATCH_BATCH, JOBS, LEASE_NAME, JobContext, LeasedScheduler, dispatch_outbox
from portal.scheduler_lease import AdvisoryLock, RowLease, holder_is_gone, lease_holder, new_holder
from tests import factories
from tests.fixtures.fake_twilio import FakeTwilio
from tests.messaging.outbox import enqueue


@pytest.fixture
def fake_twilio(app):
    with FakeTwilio(account_sid=app.config["TWILIO_ACCOUNT_SID"], auth_token=app.config["TWILIO_AUTH_TOKEN"],
                    callbacks=False) as fake:
        yield fake


def _postgres_only(db) -> None:
    if db.engine.dialect.name != "postgresql":
        pytest.skip("advisory locks are PostgreSQL's; SQLite uses the lease row (run with PORTAL_TEST_DATABASE_URL)")


@pytest.fixture
def locks(db):
    made: list[AdvisoryLock] = []

    def make(holder: str) -> AdvisoryLock:
        made.append(AdvisoryLock(db, name=LEASE_NAME, holder=holder))
        return made[-1]

    yield make
    for lock in made:
        lock.release()


def test_one_advisory_lock_holder_and_the_lock_is_free_once_its_connection_ends(db, locks):
    _postgres_only(db)
    a, b = locks("host:1:a:-"), locks("host:2:b:-")
    assert (a.hold(utcnow()), b.hold(utcnow())) == (True, False)
    assert a.hold(utcnow()) is True  # checking again does not need the lock taken again
    assert lease_holder(db, LEASE_NAME) == "host:1:a:-"  # recorded for people to see

    a.abandon()

    assert (b.hold(utcnow()), a.hold(utcnow())) == (True, False)
    assert lease_holder(db, LEASE_NAME) == "host:2:b:-"


def test_a_holder_whose_lock_connection_is_cut_stops_running_jobs_until_it_has_the_lock_again(
    app, db, domain, locks, caplog
):
    _postgres_only(db)
    ctx = JobContext(db=db, domain=domain, sms=None, config={})  # type: ignore[arg-type] - no job is run here
    leader = LeasedScheduler(ctx, BackgroundScheduler(timezone="UTC"), holder="host:1:a:-",
                             lock=locks("host:1:a:-"))
    other = locks("host:2:b:-")
    leader._renew()
    assert leader.may_continue() and ctx.may_continue()

    with db.transaction() as s:
        s.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": leader.lock.backend_pid()})
    assert other.hold(utcnow()) is True  # PostgreSQL freed the lock with the connection
    leader._renew()

    assert not leader.may_continue() and not ctx.may_continue()
    assert "lost the lease: idle" in caplog.text
    other.release()
    leader._renew()  # reconnects and takes it again
    assert leader.may_continue()


def test_a_lease_row_held_by_a_process_that_has_ended_is_taken_at_once(db):
    ended = subprocess.run([sys.executable, "-c", "from portal.scheduler_lease import new_holder; print(new_holder())"],
                           capture_output=True, text=True, check=True).stdout.strip()
    mine = new_holder()
    assert not holder_is_gone(mine)
    assert holder_is_gone(ended)
    assert not holder_is_gone("elsewhere:1:00000000:-")  # nothing to check: only expiry frees it
    assert not holder_is_gone("a")
    if ended.endswith(":-"):
        pytest.skip("no /proc here: the lease row falls back to expiry alone")

    assert RowLease(db, name=LEASE_NAME, holder=ended).hold(utcnow())
    assert RowLease(db, name=LEASE_NAME, holder=mine).hold(utcnow())  # well before it expires
    assert lease_holder(db, LEASE_NAME) == mine
    # A live holder keeps it.
    assert not RowLease(db, name=LEASE_NAME, holder=f"x:{os.getpid()}:y:-").hold(utcnow())


def test_the_job_table():
    names = [job.name for job in JOBS]
    assert len(names) == len(set(names))
    assert {"dispatch_outbox", "expire_waitlist_offers", "plan_reminders", "sweep_stuck_sending"} <= set(names)


def test_the_dispatch_job_sends_a_backlog_in_one_run_and_stops_between_batches_when_told(
    app, db, session, domain, fake_twilio
):
    patient = factories.create_patient(session)
    for n in range(2 * DISPATCH_BATCH + 5):
        enqueue(db, patient, key=f"loop-{n}", body=f"NHS: loop {n}")
    sms = TwilioSmsClient(account_sid=app.config["TWILIO_ACCOUNT_SID"], auth_token=app.config["TWILIO_AUTH_TOKEN"],
                          sender=app.config["TWILIO_FROM"], api_base=fake_twilio.base_url)
    unpaced = domain.model_copy(update={"policy": domain.policy.model_copy(
        update={"sms": domain.policy.sms.model_copy(update={"max_per_second": None})})})
    stopping = JobContext(db=db, domain=unpaced, sms=sms, config={}, may_continue=lambda: False)

    dispatch_outbox(stopping)
    assert len(fake_twilio.messages) == DISPATCH_BATCH

    dispatch_outbox(JobContext(db=db, domain=unpaced, sms=sms, config={}))
    assert len(fake_twilio.messages) == 2 * DISPATCH_BATCH + 5
    with db.transaction() as s:
        assert set(s.scalars(select(SmsMessage.status))) == {"sent"}


def test_the_dispatch_job_holds_a_reminder_back_in_quiet_hours(app, db, session, domain, fake_twilio, monkeypatch):
    """A reminder due at 19:00 that the job first reaches at 23:30 (the scheduler was down for the evening)
    waits for 09:00 rather than waking the patient."""
    london = ZoneInfo("Europe/London")
    due = dt.datetime(2026, 11, 24, 19, 0, tzinfo=london).astimezone(dt.UTC)
    night = dt.datetime(2026, 11, 24, 23, 30, tzinfo=london).astimezone(dt.UTC)
    patient = factories.create_patient(session)
    with db.transaction() as s:
        enqueue_sms(s, key="evening-reminder", patient=s.get(Patient, patient.id), kind="reminder",
                    body="NHS: reminder.", now=due, due_at=due)
    sms = TwilioSmsClient(account_sid=app.config["TWILIO_ACCOUNT_SID"], auth_token=app.config["TWILIO_AUTH_TOKEN"],
                          sender=app.config["TWILIO_FROM"], api_base=fake_twilio.base_url)
    monkeypatch.setattr(dispatch, "utcnow", lambda: night)

    dispatch_outbox(JobContext(db=db, domain=domain, sms=sms, config={}))

    assert fake_twilio.messages == []
    with db.transaction() as s:
        row = s.scalars(select(SmsMessage)).one()
        assert (row.status, row.next_attempt_at) == ("pending", dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.UTC))
