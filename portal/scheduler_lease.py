"""The lease that keeps exactly one scheduler process active per deployment.

A lease row works the same on SQLite and PostgreSQL, so there is one mechanism to test. The holder
renews it well inside its lifetime; a standby takes over once it has expired (within a minute).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import String, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from portal.db import Base, UTCDateTime

LEASE_SECONDS = 45


class SchedulerLease(Base):
    __tablename__ = "scheduler_lease"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    holder: Mapped[str] = mapped_column(String(120))
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


def acquire_or_renew(session: Session, *, name: str, holder: str, now: dt.datetime) -> bool:
    """Take the lease if it is free or expired, or renew it if we hold it. True if we hold it now."""
    expires = now + dt.timedelta(seconds=LEASE_SECONDS)
    result = session.execute(
        update(SchedulerLease)
        .where(SchedulerLease.name == name)
        .where((SchedulerLease.holder == holder) | (SchedulerLease.expires_at < now))
        .values(holder=holder, expires_at=expires)
    )
    if result.rowcount == 1:
        return True
    if session.scalar(select(SchedulerLease.name).where(SchedulerLease.name == name)) is not None:
        return False  # held by another and not expired: no doomed INSERT (PostgreSQL would log an error)
    try:
        with session.begin_nested():
            session.execute(insert(SchedulerLease).values(name=name, holder=holder, expires_at=expires))
    except IntegrityError:
        return False
    return True


def release(session: Session, *, name: str, holder: str) -> None:
    session.execute(
        update(SchedulerLease)
        .where(SchedulerLease.name == name, SchedulerLease.holder == holder)
        .values(expires_at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
    )
