"""Scheduled job bodies for self-management reading; each owns its transaction."""

from __future__ import annotations

import datetime as dt

from portal.db import Database
from portal.selfcare import release_runs
from portal.settings import DomainConfig


def release_weekly_content(db: Database, domain: DomainConfig, *, now: dt.datetime) -> int:
    """Record the weeks of reading newly open since the last run and queue their text nudges. Idempotent and
    safe to run concurrently, so safe to run often and after a crash. Returns the releases recorded."""
    with db.transaction() as session:
        return release_runs.release_due(session, domain, now=now).recorded
