"""Scheduled job bodies for questionnaires; each owns its transaction."""

from __future__ import annotations

import datetime as dt

from portal.db import Database
from portal.questionnaires import services
from portal.settings import DomainConfig


def nudge_due_questionnaires(db: Database, domain: DomainConfig, *, now: dt.datetime) -> int:
    """Text patients whose questionnaires have fallen due, once per due set; idempotent, so safe to run often."""
    with db.transaction() as session:
        return services.nudge_due(session, domain, now=now)
