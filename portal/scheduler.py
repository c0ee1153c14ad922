"""The one table of scheduled jobs, and the scheduler process that runs them.

``portal scheduler`` runs this in its own process. All durable state is in our tables (the outbox), never
in APScheduler's in-memory job store, so a restart loses nothing. Only the holder of the lease runs jobs;
a second copy waits and takes over within a minute of the first dying.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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
from portal.reminders import jobs as reminder_jobs
from portal.settings import DomainConfig

log = logging.getLogger(__name__)
LEASE_NAME = "scheduler"


@dataclass
class JobContext:
    db: Database
    domain: DomainConfig
    sms: SmsClient
    config: dict[str, Any]


def dispatch_outbox(ctx: JobContext) -> None:
    policy = ctx.domain.policy.sms
    dispatch_due(
        ctx.db,
        ctx.sms,
        validity_period=policy.validity_period_seconds,
        max_attempts=policy.max_attempts,
        # SMS_STATUS_CALLBACK_URL if set, else PUBLIC_BASE_URL + /webhooks/twilio/status.
        status_callback=status_callback_base(ctx.config),
        max_per_second=policy.max_per_second,
    )


def generate_slots(ctx: JobContext) -> None:
    with ctx.db.transaction() as session:
        appointment_slots.generate_slots(session, ctx.domain, now=utcnow())


def expire_waitlist_offers(ctx: JobContext) -> None:
    booking_jobs.expire_waitlist_offers(ctx.db, ctx.domain, now=utcnow())


def plan_reminders(ctx: JobContext) -> None:
    reminder_jobs.plan_reminders(ctx.db, ctx.domain, now=utcnow())


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
)


class LeasedScheduler:
    """Runs JOBS only while this process holds the lease; renews it every 15 seconds."""

    def __init__(self, ctx: JobContext, scheduler: BaseScheduler, *, holder: str | None = None) -> None:
        self.ctx = ctx
        self.scheduler = scheduler
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.leading = threading.Event()
        self._standing_by = False
        # Our own view of when the lease runs out: a process that could not renew in time (paused,
        # starved, cut off from the database) stops running jobs before a standby may take over.
        self._held_until: dt.datetime | None = None

    def _renew(self) -> None:
        now = utcnow()
        try:
            with self.ctx.db.transaction() as session:
                held = scheduler_lease.acquire_or_renew(session, name=LEASE_NAME, holder=self.holder, now=now)
        except Exception:
            log.exception("could not renew the scheduler lease")
            held = False
        if held:
            self._held_until = now + dt.timedelta(seconds=scheduler_lease.LEASE_SECONDS)
            self._standing_by = False
            if not self.leading.is_set():
                log.info("scheduler %s holds the lease: running jobs", self.holder)
                self.leading.set()
            return
        self._held_until = None
        if self.leading.is_set():
            log.warning("scheduler %s lost the lease: idle", self.holder)
            self.leading.clear()
        elif not self._standing_by:
            log.info("scheduler %s: another process holds the lease: idle, standing by", self.holder)
        self._standing_by = True

    def holds_lease(self) -> bool:
        return self.leading.is_set() and self._held_until is not None and utcnow() < self._held_until

    def _run(self, job: Job) -> None:
        if not self.holds_lease():
            return
        try:
            job.func(self.ctx)
        except Exception:
            log.exception("job %s failed", job.name)

    def start(self) -> None:
        self._renew()
        self.scheduler.add_job(self._renew, "interval", seconds=15, id="lease", coalesce=True, max_instances=1)
        for job in JOBS:
            self.scheduler.add_job(self._run, "interval", args=[job], seconds=job.seconds, id=job.name,
                                   coalesce=True, max_instances=1)
        self.scheduler.start()

    def shutdown(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        with self.ctx.db.transaction() as session:
            scheduler_lease.release(session, name=LEASE_NAME, holder=self.holder)


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
