"""The one table of scheduled jobs, and the scheduler process that runs them.

``portal scheduler`` runs this in its own process. All durable state is in our tables (the outbox), never
in APScheduler's in-memory job store, so a restart loses nothing. Only the process that holds the scheduler
lock runs jobs (a PostgreSQL advisory lock, or a lease row on SQLite: see scheduler_lease); a second copy
stands by and takes over within a minute of the first dying.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from portal import scheduler_lease
from portal.appointments import slots as appointment_slots
from portal.booking import jobs as booking_jobs
from portal.db import Database, utcnow
from portal.messaging.clients import SmsClient, client_from_config
from portal.messaging.dispatch import dispatch_due
from portal.messaging.receipts import status_callback_base
from portal.messaging.sweep import sweep_stuck_sending
from portal.questionnaires import jobs as questionnaire_jobs
from portal.reminders import jobs as reminder_jobs
from portal.selfcare import jobs as selfcare_jobs
from portal.settings import DomainConfig

log = logging.getLogger(__name__)
LEASE_NAME = "scheduler"
# Rows claimed per dispatch batch. A scheduler killed mid-batch leaves the rest of its batch in 'sending',
# and the sweep can only call those 'unknown': a small batch keeps that to a few texts per crash.
DISPATCH_BATCH = 20


@dataclass
class JobContext:
    db: Database
    domain: DomainConfig
    sms: SmsClient
    config: dict[str, Any]
    # Whether a long job may go on: false once this process has lost the lock or is stopping.
    may_continue: Callable[[], bool] = field(default=lambda: True)


def dispatch_outbox(ctx: JobContext) -> None:
    """Send batches until nothing is due (a backlog goes at the configured rate, not one batch per run),
    stopping between batches if this process is no longer the one that should send."""
    policy = ctx.domain.policy.sms
    while True:
        report = dispatch_due(
            ctx.db,
            ctx.sms,
            validity_period=policy.validity_period_seconds,
            max_attempts=policy.max_attempts,
            # SMS_STATUS_CALLBACK_URL if set, else PUBLIC_BASE_URL + /webhooks/twilio/status.
            status_callback=status_callback_base(ctx.config),
            batch=DISPATCH_BATCH,
            max_per_second=policy.max_per_second,
            # Reminders and nudges never go in quiet hours, even when they fall due there (after an outage).
            send_window=ctx.domain.policy.reminders.window,
            zone=ZoneInfo(ctx.domain.policy.service.timezone),
        )
        if report.claimed < DISPATCH_BATCH or not ctx.may_continue():
            return


def sweep_stuck(ctx: JobContext) -> None:
    policy = ctx.domain.policy.sms
    sweep_stuck_sending(ctx.db, now=utcnow(), stuck_after=dt.timedelta(seconds=policy.stuck_after_seconds),
                        max_attempts=policy.max_attempts)


def generate_slots(ctx: JobContext) -> None:
    with ctx.db.transaction() as session:
        appointment_slots.generate_slots(session, ctx.domain, now=utcnow())


def expire_waitlist_offers(ctx: JobContext) -> None:
    booking_jobs.expire_waitlist_offers(ctx.db, ctx.domain, now=utcnow())


def plan_reminders(ctx: JobContext) -> None:
    reminder_jobs.plan_reminders(ctx.db, ctx.domain, now=utcnow())


def release_weekly_content(ctx: JobContext) -> None:
    selfcare_jobs.release_weekly_content(ctx.db, ctx.domain, now=utcnow())


def nudge_due_questionnaires(ctx: JobContext) -> None:
    questionnaire_jobs.nudge_due_questionnaires(ctx.db, ctx.domain, now=utcnow())


@dataclass(frozen=True)
class Job:
    name: str
    func: Callable[[JobContext], None]
    seconds: int


# The whole schedule. Stable names; every body is idempotent, so a rerun after a crash is harmless.
JOBS: tuple[Job, ...] = (
    Job("dispatch_outbox", dispatch_outbox, seconds=5),
    Job("expire_waitlist_offers", expire_waitlist_offers, seconds=60),
    Job("generate_slots", generate_slots, seconds=3600),
    Job("plan_reminders", plan_reminders, seconds=300),
    # Rows left in 'sending' by a crash, once well past any batch's duration: back to the dispatcher, which asks
    # Twilio whether it took them; 'unknown' for staff when no attempts are left.
    Job("sweep_stuck_sending", sweep_stuck, seconds=600),
    Job("nudge_due_questionnaires", nudge_due_questionnaires, seconds=1800),
    Job("release_weekly_content", release_weekly_content, seconds=300),
)


class LeasedScheduler:
    """Runs JOBS only while this process holds the scheduler lock; checks or renews it every POLL_SECONDS.

    ``lock`` defaults to the mechanism for the database (scheduler_lease.lock_for).
    """

    def __init__(self, ctx: JobContext, scheduler: BaseScheduler, *, holder: str | None = None,
                 lock: scheduler_lease.RowLease | scheduler_lease.AdvisoryLock | None = None) -> None:
        self.ctx = ctx
        self.scheduler = scheduler
        self.holder = holder or scheduler_lease.new_holder()
        self.lock = lock or scheduler_lease.lock_for(ctx.db, name=LEASE_NAME, holder=self.holder)
        self.leading = threading.Event()
        self._stopping = threading.Event()
        self._standing_by = False
        self._started = False
        # Our own view of when the lock is no longer ours for sure: a process that could not check or renew
        # in time (paused, starved, cut off from the database) stops running jobs before a standby may
        # take over.
        self._held_until: dt.datetime | None = None
        # Through a weak reference: the context must not keep this object (and its lock connection) alive.
        me = weakref.ref(self)
        ctx.may_continue = lambda: (leased := me()) is not None and leased.may_continue()

    def _renew(self) -> None:
        now = utcnow()
        try:
            held = self.lock.hold(now)
        except Exception:
            log.exception("could not renew the scheduler lease")
            held = False
        if held:
            self._held_until = now + dt.timedelta(seconds=self.lock.trust_seconds)
            self._standing_by = False
            if not self.leading.is_set():
                log.info("scheduler %s holds the lease: running jobs (%s)", self.holder, self.lock.kind)
                self.leading.set()
                self._run_jobs_soon()
            return
        self._held_until = None
        if self.leading.is_set():
            log.warning("scheduler %s lost the lease: idle", self.holder)
            self.leading.clear()
        elif not self._standing_by:
            log.info("scheduler %s: another process holds the lease: idle, standing by", self.holder)
        self._standing_by = True

    def _run_jobs_soon(self) -> None:
        """On taking over, run every job now rather than after its interval: what the last holder left
        (a half-sent backlog) goes at once, and every job is idempotent."""
        if not self._started:
            return
        now = dt.datetime.now(dt.UTC)
        for job in JOBS:
            try:
                self.scheduler.modify_job(job.name, next_run_time=now)
            except Exception:  # noqa: BLE001 - a job removed meanwhile still runs on its interval
                log.debug("could not bring job %s forward", job.name, exc_info=True)

    def holds_lease(self) -> bool:
        return self.leading.is_set() and self._held_until is not None and utcnow() < self._held_until

    def may_continue(self) -> bool:
        return not self._stopping.is_set() and self.holds_lease()

    def _run(self, job: Job) -> None:
        if not self.may_continue():
            return
        try:
            job.func(self.ctx)
        except Exception:
            log.exception("job %s failed", job.name)

    def start(self) -> None:
        self._renew()
        first_run = dt.datetime.now(dt.UTC) if self.leading.is_set() else None
        self.scheduler.add_job(self._renew, "interval", seconds=scheduler_lease.POLL_SECONDS, id="lease",
                               coalesce=True, max_instances=1)
        for job in JOBS:
            extra = {"next_run_time": first_run} if first_run else {}
            self.scheduler.add_job(self._run, "interval", args=[job], seconds=job.seconds, id=job.name,
                                   coalesce=True, max_instances=1, **extra)
        self._started = True
        self.scheduler.start()

    def shutdown(self) -> None:
        # Long jobs (a dispatch backlog) stop between batches, so shutting down waits for one batch at most.
        self._stopping.set()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        self.leading.clear()
        self.lock.release()


def make_context(config: dict[str, Any], domain: DomainConfig) -> JobContext:
    return JobContext(db=Database(config["DATABASE_URL"]), domain=domain, sms=client_from_config(config),
                      config=config)


def run_blocking(config: dict[str, Any], domain: DomainConfig) -> None:
    """``portal scheduler``: run until interrupted."""
    leased = LeasedScheduler(make_context(config, domain), BlockingScheduler(timezone="UTC"))
    try:
        leased.start()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        leased.shutdown()


def start_in_process(config: dict[str, Any], domain: DomainConfig) -> LeasedScheduler:
    """The development server's scheduler: a background thread, under the same lease."""
    leased = LeasedScheduler(make_context(config, domain), BackgroundScheduler(timezone="UTC"))
    leased.start()
    return leased
