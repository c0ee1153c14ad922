"""Scheduled job bodies for reminders; each owns its transaction."""

from __future__ import annotations

import datetime as dt

from portal.db import Database
from portal.reminders import services
from portal.settings import DomainConfig


def plan_reminders(db: Database, domain: DomainConfig, *, now: dt.datetime) -> services.PlanResult:
    """Plan the reminders due in the next few days; idempotent, so safe to run often and after a crash."""
    with db.transaction() as session:
        return services.plan_reminders(session, domain, now=now)
