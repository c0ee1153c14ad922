"""Scheduled job bodies for bookings; each owns its transaction."""

from __future__ import annotations

import datetime as dt

from portal.booking import waitlist
from portal.db import Database
from portal.settings import DomainConfig


def expire_waitlist_offers(db: Database, domain: DomainConfig, *, now: dt.datetime) -> int:
    """Lapse offers past their hold time and offer their seats on; idempotent, so safe to run often."""
    with db.transaction() as session:
        return waitlist.expire_offers(session, domain, now=now)
