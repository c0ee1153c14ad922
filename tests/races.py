"""Racing threads for the concurrency tests: every job starts at the same moment, behind one
threading.Barrier, each as its own request would (its own session and transaction).

The tests run on SQLite and on PostgreSQL (make test-postgres); the ``race_db`` fixture (tests/conftest.py)
gives them a database with enough pooled connections for the racers to overlap for real.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from portal.db import Database

# Pooled connections on PostgreSQL: racers beyond it wait for one, as requests beyond a pool would.
RACERS_AT_MOST = 60


def race_database(url: str) -> Database:
    if url.startswith("sqlite"):
        return Database(url)
    return Database(url, pool_size=RACERS_AT_MOST, max_overflow=0, pool_timeout=60)


def run_together(jobs: Sequence[Callable[[], Any]]) -> list[Any]:
    """What each job returned, in the order they finished. A job that raised gives the name of its
    exception's class instead (and its repr is printed, so a failing test shows it)."""
    barrier = threading.Barrier(len(jobs))
    outcomes: list[Any] = []
    lock = threading.Lock()

    def run(job: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            result = job()
        except Exception as exc:  # noqa: BLE001 - the outcome names the failure; the test judges it
            print(f"racer raised {exc!r}")
            result = type(exc).__name__
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a racer hung"
    return outcomes


def count_together(jobs: Sequence[Callable[[], Any]]) -> Counter:
    return Counter(run_together(jobs))


def in_transaction(db: Database, work: Callable[[Any], Any], *, done: str = "done") -> Callable[[], Any]:
    """A job running ``work(session)`` in one transaction; it returns ``done`` once that has committed."""
    def job() -> str:
        with db.transaction() as session:
            work(session)
        return done
    return job
