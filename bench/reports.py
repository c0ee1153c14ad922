"""Service reports and reception search at scale: 100,000 synthetic patients (`portal synth`).

The synthetic database is generated once and kept in ``instance/`` under a name keyed by the migration head and
a hash of ``portal/synth.py``, so later runs of `make bench` reuse it (a new migration or generator makes a new
one, and old ones are deleted). Then each report's service function runs on the default filters (the last 12
months) and on one team, BENCH_REPORT_RUNS times each (default 5); the median is printed. Reception search runs
for an NHS number, a surname, a surname and initial, a date of birth and a mobile.

Output, one line each (milliseconds of server time, the query and the Python around it; no HTTP):

    BENCH report_<name>_ms <median>            (all teams and services, the last 12 months)
    BENCH search_<kind>_ms <median>
    BENCH search_ms <the slowest kind's median>
    BENCH synth_generate_s <seconds>           (only when the database was generated in this run)

Environment: BENCH_PATIENTS (default 100000), BENCH_REPORT_RUNS (default 5), BENCH_PG_URL (a PostgreSQL URL
whose server may create a database: the same is then measured on PostgreSQL too, the lines ending in
``_pg_ms``; the database is dropped afterwards).

Run on its own with ``python -m bench.reports``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = ROOT / "instance"
SEED = 1


def _whole_number(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value.isdigit() else default


def migration_head() -> str:
    from alembic.script import ScriptDirectory

    from portal.cli import _alembic_config

    return ScriptDirectory.from_config(_alembic_config("sqlite://")).get_current_head() or "none"


def cache_path(patients: int) -> Path:
    generator = hashlib.sha256((ROOT / "portal" / "synth.py").read_bytes()).hexdigest()[:10]
    return INSTANCE / f"bench-synth-{patients}-head{migration_head()}-{generator}.db"


def generate(url: str, patients: int) -> float:
    """Migrate ``url`` and fill it; returns the seconds the generation took (migration excluded)."""
    from portal import synth
    from portal.cli import upgrade_database
    from portal.db import Database

    upgrade_database(url)
    database = Database(url)
    try:
        started = time.monotonic()
        with database.transaction() as session:
            synth.generate(session, patients, SEED)
        seconds = time.monotonic() - started
        if database.engine.dialect.name == "postgresql":
            from sqlalchemy import text

            # Fresh statistics, as autovacuum would gather soon after a load this size.
            with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.execute(text("ANALYZE"))
        return seconds
    finally:
        database.dispose()


def sqlite_database(patients: int) -> tuple[str, float | None]:
    """The cached SQLite file (generated now if missing) and the generation time if it was generated."""
    path = cache_path(patients)
    if path.exists():
        return f"sqlite:///{path}", None
    INSTANCE.mkdir(exist_ok=True)
    for old in INSTANCE.glob(f"bench-synth-{patients}-*.db*"):
        old.unlink()
    partial = path.with_suffix(".partial")
    for leftover in INSTANCE.glob(partial.name + "*"):
        leftover.unlink()
    print(f"# generating {patients:,} synthetic patients into {path.name} (once; later runs reuse it)",
          file=sys.stderr)
    seconds = generate(f"sqlite:///{partial}", patients)
    _checkpoint(partial)
    partial.rename(path)
    return f"sqlite:///{path}", seconds


def _checkpoint(path: Path) -> None:
    """Fold the write-ahead log into the file, so the cached database is one file that can be renamed."""
    import sqlite3

    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        connection.execute("PRAGMA journal_mode=DELETE")
        connection.execute("ANALYZE")
    finally:
        connection.close()


@contextlib.contextmanager
def postgres_database(base_url: str) -> Iterator[str]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    url = make_url(base_url)
    name = f"portal_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _median_ms(action: Callable[[], object], runs: int) -> float:
    action()  # warm: the first run fills caches that every later request would find filled
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def search_queries(database) -> dict[str, str]:
    """One query of each kind reception types, taken from the data (a patient in the middle of the table)."""
    from sqlalchemy import func, select

    from portal.patients.identifiers import format_nhs_number, format_uk_mobile
    from portal.patients.models import Patient

    with database.reader() as session:
        count = session.scalar(select(func.count()).select_from(Patient))
        patient = session.scalars(select(Patient).order_by(Patient.id).offset(count // 2).limit(1)).one()
        return {
            "nhs_number": format_nhs_number(patient.nhs_number),
            "surname": patient.family_name,
            "surname_initial": f"{patient.family_name} {patient.given_name[0]}",
            "date_of_birth": f"{patient.date_of_birth:%d/%m/%Y}",
            "mobile": format_uk_mobile(patient.mobile),
        }


def measure(url: str, *, runs: int) -> dict[str, float]:
    """Milliseconds per report (all, and one team) and per kind of search, on the database at ``url``."""
    from portal.dates import london_today
    from portal.db import Database, utcnow
    from portal.reports import services
    from portal.settings import load_domain_config

    domain = load_domain_config()
    database = Database(url)
    figures: dict[str, float] = {}
    try:
        filters = services.default_filters(london_today(utcnow()))
        one_team = services.Filters(filters.first_month, filters.last_month, team=domain.teams.teams[0].key)
        for name in services.REPORTS:
            for label, chosen in ((f"report_{name.replace('-', '_')}", filters),
                                  (f"report_{name.replace('-', '_')}_team", one_team)):
                def run(name: str = name, chosen: services.Filters = chosen) -> None:
                    with database.reader() as session:
                        if not services.run(session, domain, name, chosen).rows:
                            raise RuntimeError(f"report {name} found nothing: is the database filled?")

                figures[label] = _median_ms(run, runs)
        try:
            from portal.patients.search import search_patients
        except ImportError:
            print("# portal.patients.search is not there yet: search not measured", file=sys.stderr)
            return figures
        for kind, query in search_queries(database).items():
            def find(query: str = query, kind: str = kind) -> None:
                with database.reader() as session:
                    if not len(search_patients(session, query)):
                        raise RuntimeError(f"search for {kind} {query!r} found nobody")

            figures[f"search_{kind}"] = _median_ms(find, runs * 4)
        figures["search"] = max(v for k, v in figures.items() if k.startswith("search_"))
    finally:
        database.dispose()
    return figures


def report(figures: dict[str, float], *, suffix: str = "") -> None:
    for name, value in figures.items():
        print(f"BENCH {name}{suffix}_ms {value:.1f}")


def main() -> int:
    patients = _whole_number("BENCH_PATIENTS", 100_000)
    runs = max(1, _whole_number("BENCH_REPORT_RUNS", 5))
    started = time.monotonic()
    url, seconds = sqlite_database(patients)
    if seconds is not None:
        print(f"BENCH synth_generate_s {seconds:.1f}")
    report(measure(url, runs=runs))
    pg_url = os.environ.get("BENCH_PG_URL")
    if pg_url:
        with postgres_database(pg_url) as pg:
            seconds = generate(pg, patients)
            print(f"BENCH synth_generate_pg_s {seconds:.1f}")
            report(measure(pg, runs=runs), suffix="_pg")
    print(f"# reports bench took {dt.timedelta(seconds=round(time.monotonic() - started))}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
