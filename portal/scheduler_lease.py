"""What keeps exactly one scheduler process active per deployment: an advisory lock, or a lease row.

- PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``) on a connection of its own, held for
  the life of the process. PostgreSQL frees it the moment that connection ends, so a standby takes over
  within one poll of the holder dying, whatever killed it. The holder also writes itself into the lease row,
  for people and tests to see who leads; on PostgreSQL that row decides nothing.
- SQLite: the lease row. The holder renews it well inside its lifetime; a standby takes it once it has
  expired, or at once if the holder is a process on this machine that no longer exists (a crash followed by
  a restart need not wait out the lease). SQLite in WAL mode only works between processes on one machine,
  so on SQLite every holder is one we can look up.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import uuid
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Connection, String, insert, select, text, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.pool import NullPool

from portal.db import Base, Database, UTCDateTime, make_engine, utcnow

log = logging.getLogger(__name__)

# How long a lease row lasts without renewal. Holder and standby both poll every POLL_SECONDS, so a standby
# takes over at most LEASE_SECONDS + POLL_SECONDS (35 s) after the holder's last renewal: within a minute.
LEASE_SECONDS = 30
POLL_SECONDS = 5
# The advisory lock's key ("PORTAL" then 1), per database; find the holder with
# SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = 1347375700 AND objid = 1095499777.
ADVISORY_KEY = 0x504F5254414C0001
# How long the advisory lock holder trusts its last successful check. PostgreSQL notices a silent client
# (a dead host, a cut cable) by TCP keepalive after 10 + 3 x 5 = 25 s and frees the lock; the holder stops
# running jobs sooner than that, so two never lead at once for long (and the outbox claim is safe even then).
ADVISORY_TRUST_SECONDS = 20
_KEEPALIVE_ARGS = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3,
                   "connect_timeout": 10, "application_name": "portal-scheduler-lock",
                   # The server's side of the same keepalives, and a bound on every check.
                   "options": "-c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3"
                              " -c statement_timeout=5000"}


class SchedulerLease(Base):
    __tablename__ = "scheduler_lease"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    holder: Mapped[str] = mapped_column(String(120))
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


# -- which process holds it ---------------------------------------------------------------------------


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state, start time in clock ticks since boot) of a process on this machine, or None if there is none."""
    stat = _read(f"/proc/{pid}/stat")
    if stat is None:
        return None
    fields = stat.rpartition(")")[2].split()  # after "pid (command)": the command may hold spaces
    return fields[0], fields[19]


def _machine_identity() -> str | None:
    """This boot of this machine and this PID namespace, or None where /proc cannot tell us (not Linux)."""
    boot = _read("/proc/sys/kernel/random/boot_id")
    try:
        namespace = os.readlink("/proc/self/ns/pid").strip("pid:[]")
    except OSError:
        return None
    return f"{boot[:8]}.{namespace}" if boot else None


def new_holder() -> str:
    """host:pid:random:identity. The identity (boot, PID namespace, start time) lets another process on this
    machine tell for sure that this one has gone, even once its PID is reused."""
    machine = _machine_identity()
    stat = _proc_stat(os.getpid())
    identity = f"{machine}.{stat[1]}" if machine and stat else "-"
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}:{identity}"


def holder_is_gone(holder: str) -> bool:
    """True only if the holder was a process on this machine and in our PID namespace that has ended (or is a
    zombie, or its PID now belongs to a younger process). Anything we cannot check counts as alive."""
    parts = holder.split(":")
    if len(parts) != 4 or parts[3].count(".") != 2 or not parts[1].isdigit():
        return False
    boot, namespace, started = parts[3].split(".")
    if _machine_identity() != f"{boot}.{namespace}":
        return False
    stat = _proc_stat(int(parts[1]))
    return stat is None or stat[0] in ("Z", "X") or stat[1] != started


# -- the lease row ----------------------------------------------------------------------------------------


def acquire_or_renew(
    session: Session, *, name: str, holder: str, now: dt.datetime,
    is_gone: Callable[[str], bool] | None = None,
) -> bool:
    """Take the lease if it is free or expired, or renew it if we hold it. True if we hold it now.

    With ``is_gone``, a lease whose holder is known to have ended is taken before it expires.
    """
    expires = now + dt.timedelta(seconds=LEASE_SECONDS)
    result = session.execute(
        update(SchedulerLease)
        .where(SchedulerLease.name == name)
        .where((SchedulerLease.holder == holder) | (SchedulerLease.expires_at < now))
        .values(holder=holder, expires_at=expires)
    )
    if result.rowcount == 1:
        return True
    current = session.scalar(select(SchedulerLease.holder).where(SchedulerLease.name == name))
    if current is not None:
        if is_gone is None or not is_gone(current):
            return False  # held by another and not expired: no doomed INSERT (PostgreSQL would log an error)
        # Compare-and-set on the dead holder's name: of two standbys racing for it, one wins.
        taken = session.execute(
            update(SchedulerLease)
            .where(SchedulerLease.name == name, SchedulerLease.holder == current)
            .values(holder=holder, expires_at=expires)
        ).rowcount
        if taken == 1:
            log.warning("lease %s: its holder %s has ended; taken over by %s", name, current, holder)
        return taken == 1
    try:
        with session.begin_nested():
            session.execute(insert(SchedulerLease).values(name=name, holder=holder, expires_at=expires))
    except IntegrityError:
        return False
    return True


def record_holder(session: Session, *, name: str, holder: str, now: dt.datetime) -> None:
    """Write who leads into the row unconditionally (PostgreSQL: the advisory lock already decided it)."""
    values = {"holder": holder, "expires_at": now + dt.timedelta(seconds=LEASE_SECONDS)}
    if session.execute(update(SchedulerLease).where(SchedulerLease.name == name).values(**values)).rowcount:
        return
    try:
        with session.begin_nested():
            session.execute(insert(SchedulerLease).values(name=name, **values))
    except IntegrityError:
        pass  # another wrote it first: the next poll overwrites it


def release(session: Session, *, name: str, holder: str) -> None:
    session.execute(
        update(SchedulerLease)
        .where(SchedulerLease.name == name, SchedulerLease.holder == holder)
        .values(expires_at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
    )


# -- the two mechanisms, behind one interface ---------------------------------------------------------------


class RowLease:
    """SQLite (and any database without advisory locks): the lease row."""

    kind = "lease row"
    trust_seconds = LEASE_SECONDS

    def __init__(self, db: Database, *, name: str, holder: str) -> None:
        self.db, self.name, self.holder = db, name, holder

    def hold(self, now: dt.datetime) -> bool:
        with self.db.transaction() as session:
            return acquire_or_renew(session, name=self.name, holder=self.holder, now=now, is_gone=holder_is_gone)

    def abandon(self) -> None:
        """Stop holding without a word, as a killed process does (tests): the row simply expires."""

    def release(self) -> None:
        with self.db.transaction() as session:
            release(session, name=self.name, holder=self.holder)


class AdvisoryLock:
    """PostgreSQL: a session advisory lock on a dedicated connection, held for the life of the process.

    Not through a pooler in transaction mode (PgBouncer): the lock belongs to one server session.
    """

    kind = "advisory lock"
    trust_seconds = ADVISORY_TRUST_SECONDS

    def __init__(self, db: Database, *, name: str, holder: str, key: int = ADVISORY_KEY) -> None:
        self.db, self.name, self.holder, self.key = db, name, holder, key
        self._connection: Connection | None = None
        self._held = False
        # Its own engine without a pool: the connection is ours alone and never handed to anything else.
        self._engine = make_engine(db.url, poolclass=NullPool, isolation_level="AUTOCOMMIT",
                                   connect_args=_KEEPALIVE_ARGS)

    def _still_held(self, connection: Connection) -> bool:
        # Asking pg_locks rather than taking the lock again: a second pg_try_advisory_lock would stack a count.
        return bool(connection.execute(
            text("SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
                 " AND pid = pg_backend_pid() AND classid = CAST(:high AS oid)"
                 " AND objid = CAST(:low AS oid) AND objsubid = 1)"),
            {"high": (self.key >> 32) & 0xFFFFFFFF, "low": self.key & 0xFFFFFFFF},
        ).scalar())

    def hold(self, now: dt.datetime) -> bool:
        try:
            if self._connection is None:
                self._connection = self._engine.connect()
                self._held = False
            if not (self._held and self._still_held(self._connection)):
                self._held = bool(self._connection.execute(text("SELECT pg_try_advisory_lock(:key)"),
                                                           {"key": self.key}).scalar())
        except SQLAlchemyError:
            # The connection dropped (or the server went away): PostgreSQL has freed the lock, or soon will.
            log.warning("scheduler lock connection lost; reconnecting at the next poll", exc_info=True)
            self.abandon()
            return False
        if self._held:
            try:
                with self.db.transaction() as session:
                    record_holder(session, name=self.name, holder=self.holder, now=now)
            except SQLAlchemyError:
                log.warning("could not record the scheduler holder (the lock still stands)", exc_info=True)
        return self._held

    def backend_pid(self) -> int | None:
        """The server process of the lock connection (tests cut it with pg_terminate_backend)."""
        return None if self._connection is None else self._connection.execute(text("SELECT pg_backend_pid()")).scalar()

    def abandon(self) -> None:
        """Drop the connection, and with it the lock."""
        connection, self._connection, self._held = self._connection, None, False
        if connection is not None:
            try:
                connection.invalidate()
                connection.close()
            except SQLAlchemyError:
                pass

    def __del__(self) -> None:
        # A forgotten lock (an in-process scheduler dropped without shutdown) frees the lock with it.
        self.abandon()

    def release(self) -> None:
        was_held = self._held
        self.abandon()
        self._engine.dispose()
        if was_held:
            with self.db.transaction() as session:
                release(session, name=self.name, holder=self.holder)


def lock_for(db: Database, *, name: str, holder: str) -> RowLease | AdvisoryLock:
    return AdvisoryLock(db, name=name, holder=holder) if db.engine.dialect.name == "postgresql" else \
        RowLease(db, name=name, holder=holder)


def lease_holder(db: Database, name: str) -> str | None:
    """Who holds it now by the row (None if free or expired)."""
    with db.reader() as session:
        lease = session.get(SchedulerLease, name)
    return lease.holder if lease is not None and lease.expires_at > utcnow() else None
