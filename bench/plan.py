"""Reminder planning at two sizes: 10,000 due reminders among 10,000 bookings, and among 1,000,000.

Two SQLite databases are built in a temporary directory (migrated, then filled with bulk executemany inserts
straight through sqlite3, which takes about a minute for the large one). Each holds exactly the same bookings
in the planning window (1:1 appointments in the next 8 days, with open slots between them, and seats on groups
that start or run in those days), which have exactly 10,000 reminders still to come; 1 patient in 50 has not
agreed to texts, so theirs go on the call list. The rest are bookings outside the window: appointments in the
past two years (each with its old reminder text, delivered, in the outbox) and in the months ahead, and seats on
groups that have ended.

Each timed run is the scheduler's job (reminders.jobs.plan_reminders: its own transaction, committed) at the
same fixed moment, after the rows the previous run planned are deleted, untimed. Best of 3 for each database,
in one process, runs alternating between them. The ratio shows whether planning follows the reminders due
(about 1) or the size of the tables (up to 100).

Output:
    BENCH plan_10k_ms <ms>
    BENCH plan_1m_ms <ms>
    RATIO plan_1m_vs_10k <ratio>

Run alone: ``python -m bench.plan`` (BENCH_PLAN_BOOKINGS=10000,1000000 to change the two sizes).
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import os
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

LONDON = ZoneInfo("Europe/London")
# A Tuesday in June, 11:00 UTC: the same moment for every run, so every run plans the same reminders.
NOW = dt.datetime(2027, 6, 1, 11, 0, tzinfo=dt.UTC)
REMINDERS = 10_000
ROUNDS = 3
SEATS_PER_COHORT = 40
COURSE = "t1-group"
APPOINTMENT = "t1-physio"
WINDOW_CLINICIANS = 60
FILLER_CLINICIANS = 200
SLOT_TIMES = [dt.time(8 + half // 2, 30 * (half % 2)) for half in range(24)]  # 08:00 to 19:30: some shifted


class BenchError(Exception):
    pass


@functools.cache
def _local(day: dt.date, time: dt.time) -> dt.datetime:
    return dt.datetime.combine(day, time, tzinfo=LONDON).astimezone(dt.UTC)


@functools.cache
def _ts(value: dt.datetime) -> str:
    # How SQLAlchemy's DateTime stores a UTC instant in SQLite (UTCDateTime drops the offset first). Cached:
    # the 1:1 slots of many clinicians share their start times.
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


class _Builder:
    """Rows for one database; ids are given explicitly so that rows can point at each other."""

    def __init__(self, bookings: int, domain) -> None:
        from portal.reminders import planning

        self.bookings = bookings
        self.policy = domain.policy.reminders
        self.planning = planning
        self.horizon = NOW + dt.timedelta(days=planning.horizon_days(self.policy))
        self.patients = max(2_000, bookings // 5)
        self.rows: dict[str, list[tuple]] = {name: [] for name in (
            "venue", "user_account", "patient", "cohort", "cohort_session", "booking", "appointment_slot",
            "appointment", "sms_outbox")}
        self.ids = {name: itertools.count(1) for name in self.rows}
        self.reminders = 0
        self.window_bookings = 0

    # Reference data.

    def base(self) -> None:
        from portal.booking.models import venue_name_key

        created = _ts(NOW - dt.timedelta(days=800))
        for venue_id, (name, online) in enumerate((("Hornsey Central", 0), ("Archway Centre", 0), ("Video", 1)), 1):
            self.rows["venue"].append((venue_id, name, venue_name_key(name), name[:20], "1 Test Road, London N8", "",
                                       online))
        for user_id in range(1, WINDOW_CLINICIANS + FILLER_CLINICIANS + 1):
            self.rows["user_account"].append((user_id, "facilitator", f"Clinician {user_id}", "!unusable", 1, 1,
                                              created, 0))
        for patient_id in range(1, self.patients + 1):
            self.rows["patient"].append((
                patient_id, f"{9_000_000_000 + patient_id}", f"Pat{patient_id}", f"Ient{patient_id}", "1970-01-01",
                f"+44770{patient_id:07d}", "N19 5NF", 1, 0 if patient_id % 50 == 0 else 1, created,
            ))

    def _cohort(self, first_day: dt.date, start: dt.time, venue_id: int) -> list[tuple[int, int, dt.datetime]]:
        cohort_id = next(self.ids["cohort"])
        self.rows["cohort"].append((cohort_id, COURSE, None, venue_id, first_day.isoformat(), first_day.weekday(),
                                    start.strftime("%H:%M:%S.%f"), "Europe/London", 120, SEATS_PER_COHORT,
                                    SEATS_PER_COHORT, "open", _ts(NOW - dt.timedelta(days=400)), None))
        sessions = []
        for number in range(1, 9):
            starts = _local(first_day + dt.timedelta(weeks=number - 1), start)
            self.rows["cohort_session"].append((next(self.ids["cohort_session"]), cohort_id, number, _ts(starts),
                                                _ts(starts + dt.timedelta(hours=2)), "scheduled"))
            sessions.append((cohort_id, number, starts))
        return sessions

    def _seat(self, cohort_id: int, patient_id: int) -> None:
        self.rows["booking"].append((next(self.ids["booking"]), patient_id, COURSE, cohort_id, "active", 0,
                                     _ts(NOW - dt.timedelta(days=30)), 0))

    # The bookings in the planning window: the same in every database, with exactly REMINDERS reminders.

    def window(self) -> None:
        today = NOW.astimezone(LONDON).date()
        patient = itertools.count(1)
        # Groups starting in 2 to 6 days (a 2-day and a 1-day reminder for the first session), and groups
        # that started weeks ago with a session in the next days (a 1-day reminder each).
        starts = [today + dt.timedelta(days=2 + n % 5) for n in range(10)]
        starts += [today - dt.timedelta(weeks=3 + n % 4, days=-(n % 7)) for n in range(10)]
        for number, first_day in enumerate(starts):
            sessions = self._cohort(first_day, (dt.time(18), dt.time(10), dt.time(13, 30))[number % 3], 1 + number % 3)
            per_seat = sum(
                len(self.planning.session_reminders(s, self.policy, first=n == 1, now=NOW))
                for _, n, s in sessions if NOW < s <= self.horizon
            )
            for _ in range(SEATS_PER_COHORT):
                self._seat(sessions[0][0], next(patient))
                self.reminders += per_seat
                self.window_bookings += 1
        self.first_free_patient = next(patient)
        # 1:1 appointments at every half hour from 08:00 to 19:30 over the next 8 days, booked in a fixed
        # random order until the reminders add up; the slots left over stay open.
        candidates = [
            (clinician, _local(today + dt.timedelta(days=day), time))
            for clinician in range(1, WINDOW_CLINICIANS + 1) for day in range(0, 10) for time in SLOT_TIMES
        ]
        candidates = [(c, s) for c, s in candidates if NOW < s <= self.horizon]
        random.Random(5).shuffle(candidates)
        patients = itertools.cycle(range(self.first_free_patient, self.patients + 1))
        reminders_at: dict[dt.datetime, int] = {}
        for clinician, starts in candidates:
            if starts not in reminders_at:
                reminders_at[starts] = len(self.planning.appointment_reminders(starts, self.policy, now=NOW))
            due = reminders_at[starts]
            book = 0 < due <= REMINDERS - self.reminders
            slot_id = self._slot(clinician, starts, booked=book)
            if book:
                self._appointment(slot_id, next(patients), starts)
                self.reminders += due
                self.window_bookings += 1
        if self.reminders != REMINDERS:
            raise BenchError(f"the window holds {self.reminders} reminders, not {REMINDERS}")

    def _slot(self, clinician: int, starts: dt.datetime, *, booked: bool) -> int:
        slot_id = next(self.ids["appointment_slot"])
        self.rows["appointment_slot"].append((
            slot_id, clinician, None, APPOINTMENT, None, 1 + clinician % 3, _ts(starts),
            _ts(starts + dt.timedelta(minutes=30)), "booked" if booked else "open", None,
            _ts(NOW - dt.timedelta(days=60)),
        ))
        return slot_id

    def _appointment(self, slot_id: int, patient_id: int, starts: dt.datetime, status: str = "active") -> int:
        appointment_id = next(self.ids["appointment"])
        self.rows["appointment"].append((appointment_id, patient_id, slot_id, APPOINTMENT, status, 0,
                                         _ts(starts - dt.timedelta(days=20)), 0))
        return appointment_id

    # Everything else: bookings outside the window.

    def filler(self) -> None:
        remaining = self.bookings - self.window_bookings
        if remaining < 0:
            raise BenchError(f"{self.bookings} bookings cannot hold the {self.window_bookings} in the window")
        seats = remaining // 10
        today = NOW.astimezone(LONDON).date()
        # Seats on groups that have ended, each patient on one.
        patient = itertools.count(self.first_free_patient)
        for cohort_number in range(-(-seats // SEATS_PER_COHORT)):
            first_day = today - dt.timedelta(weeks=10 + cohort_number % 90, days=cohort_number % 5)
            cohort_id = self._cohort(first_day, dt.time(18), 1 + cohort_number % 3)[0][0]
            for _ in range(min(SEATS_PER_COHORT, seats - cohort_number * SEATS_PER_COHORT)):
                self._seat(cohort_id, next(patient))
        # 1:1 appointments: every other one in the past two years (with its delivered reminder), the rest
        # from 10 days on. Plain loops over precomputed strings: a million of these must take seconds.
        tables = ("appointment_slot", "appointment", "sms_outbox")
        slots, appointments, outbox = (self.rows[name] for name in tables)
        slot_ids, appointment_ids, outbox_ids = (self.ids[name] for name in tables)
        times: dict[tuple[bool, int], tuple[str, str, str, str, str, str]] = {}
        patients = itertools.cycle(range(1, self.patients + 1))
        body = ("NHS: reminder of your appointment on Mon 1 Jan at 10am, Hornsey Central. Reply YES to confirm or "
                "CANCEL to cancel. Or call 020 3316 8888")
        created = _ts(NOW - dt.timedelta(days=60))
        for number in range(remaining - seats):
            clinician = WINDOW_CLINICIANS + 1 + number % FILLER_CLINICIANS
            step = number // FILLER_CLINICIANS
            past = step % 2 == 0
            when = (past, step // 2)
            if when not in times:
                day, time = divmod(step // 2, len(SLOT_TIMES))
                starts = _local(today + dt.timedelta(days=-2 - day if past else 10 + day), SLOT_TIMES[time])
                due = starts - dt.timedelta(days=1)
                times[when] = (_ts(starts), _ts(starts + dt.timedelta(minutes=30)), starts.isoformat(), _ts(due),
                               _ts(due - dt.timedelta(days=1)), _ts(starts - dt.timedelta(days=20)))
            starts_ts, ends_ts, starts_iso, due_ts, planned_ts, booked_ts = times[when]
            slot_id, appointment_id, patient_id = next(slot_ids), next(appointment_ids), next(patients)
            slots.append((slot_id, clinician, None, APPOINTMENT, None, 1 + clinician % 3, starts_ts, ends_ts, "booked",
                          None, created))
            appointments.append((appointment_id, patient_id, slot_id, APPOINTMENT,
                                 "cancelled" if number % 17 == 0 else "active", 0, booked_ts, 0))
            if past:
                outbox.append((
                    next(outbox_ids), f"reminder:appointment:{appointment_id}:d1:{starts_iso}", patient_id, None,
                    appointment_id, "reminder", f"+44770{patient_id:07d}", body, "delivered", 1, due_ts, due_ts,
                    starts_ts, planned_ts, due_ts, due_ts,
                ))


_COLUMNS = {
    "venue": "id, name, name_key, short_name, address, access_notes, is_online",
    "user_account": "id, role, display_name, password_hash, session_version, is_active, created_at, failed_sign_ins",
    "patient": "id, nhs_number, given_name, family_name, date_of_birth, mobile, postcode, tier, sms_consent, "
               "created_at",
    "cohort": "id, service_key, team, venue_id, first_date, weekday, start_time, timezone, session_minutes, capacity, "
              "seats_taken, status, created_at, online_link",
    "cohort_session": "id, cohort_id, number, starts_at, ends_at, status",
    "booking": "id, patient_id, service_key, cohort_id, status, booked_by_staff, created_at, cancelled_by_staff",
    "appointment_slot": "id, clinician_id, template_id, service_key, team, venue_id, starts_at, ends_at, status, "
                        "blocked_reason, created_at",
    "appointment": "id, patient_id, slot_id, service_key, status, booked_by_staff, created_at, ended_by_staff",
    "sms_outbox": "id, idempotency_key, patient_id, booking_id, appointment_id, kind, to_number, body, status, "
                  "attempts, due_at, next_attempt_at, expires_at, created_at, sent_at, updated_at",
}


def build(path: Path, bookings: int, domain) -> int:
    """A migrated SQLite database at ``path`` with ``bookings`` bookings; returns those in the window."""
    from portal.cli import upgrade_database

    upgrade_database(f"sqlite:///{path}")
    builder = _Builder(bookings, domain)
    builder.base()
    builder.window()
    builder.filler()
    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA synchronous=OFF")
        connection.execute("PRAGMA cache_size=-1000000")
        # A bulk load: the named indexes are dropped, and made again afterwards in one sorted pass each.
        indexes = connection.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL").fetchall()
        with connection:
            for name, _ in indexes:
                connection.execute(f'DROP INDEX "{name}"')
            for table, rows in builder.rows.items():
                columns = _COLUMNS[table]
                marks = ", ".join("?" * len(columns.split(",")))
                connection.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)  # noqa: S608
            for _, sql in indexes:
                connection.execute(sql)
    finally:
        connection.close()
    return builder.window_bookings


def _reset(db) -> None:
    from sqlalchemy import delete

    from portal.messaging.models import SmsMessage
    from portal.reminders.models import ReminderCall

    with db.transaction() as session:
        session.execute(delete(SmsMessage).where(SmsMessage.created_at == NOW))
        session.execute(delete(ReminderCall))


def _time_plan(db, domain) -> float:
    from portal.reminders import jobs

    _reset(db)
    started = time.perf_counter()
    result = jobs.plan_reminders(db, domain, now=NOW)
    elapsed = time.perf_counter() - started
    if result.texts + result.calls != REMINDERS:
        raise BenchError(f"planning wrote {result.texts} texts and {result.calls} calls, not {REMINDERS}")
    return elapsed


def _sizes() -> tuple[int, int]:
    small, large = (int(n) for n in os.environ.get("BENCH_PLAN_BOOKINGS", "10000,1000000").split(","))
    return small, large


def measure(work_dir: Path, *, rounds: int = ROUNDS) -> dict[str, float]:
    from portal.db import Database
    from portal.settings import load_domain_config

    domain = load_domain_config()
    databases = {}
    try:
        for name, bookings in zip(("10k", "1m"), _sizes(), strict=True):
            started = time.perf_counter()
            path = work_dir / f"plan-{name}.db"
            in_window = build(path, bookings, domain)
            print(f"# plan bench: built {bookings:,} bookings ({in_window:,} in the window) in "
                  f"{time.perf_counter() - started:.0f} s", file=sys.stderr)
            databases[name] = Database(f"sqlite:///{path}")
        timings: dict[str, list[float]] = {name: [] for name in databases}
        for _ in range(rounds):
            for name, db in databases.items():
                timings[name].append(_time_plan(db, domain))
    finally:
        for db in databases.values():
            db.dispose()
    best = {name: min(values) for name, values in timings.items()}
    return {"plan_10k_ms": best["10k"] * 1000, "plan_1m_ms": best["1m"] * 1000, "ratio": best["1m"] / best["10k"]}


def report(figures: dict[str, float]) -> None:
    print(f"BENCH plan_10k_ms {figures['plan_10k_ms']:.1f}")
    print(f"BENCH plan_1m_ms {figures['plan_1m_ms']:.1f}")
    print(f"RATIO plan_1m_vs_10k {figures['ratio']:.2f}")


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="portal-bench-plan-") as tmp:
        try:
            report(measure(Path(tmp)))
        except BenchError as error:
            print(f"bench failed: {error}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
