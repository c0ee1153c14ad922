"""The booking POST against a baseline one-row insert, both in this process through Flask's test client.

wrk cannot load a booking: a patient holds one seat per course, so every request after the first would be
refused. Here each timed POST books a real seat (conditional seat UPDATE, booking row, waiting-list check,
confirmation text in the outbox, audit row, commit), and the seat is given back, untimed, before the next one.
The baseline app's POST inserts one row in one transaction. Rounds alternate (ABBA); the ratio is the median
over rounds of the portal's rate over the baseline's, so the machine's noise falls on both alike.

Output:
    BENCH book_post <posts_per_second> <p99_ms>
    BENCH diary_post <posts_per_second> <p99_ms>
    BENCH signed_in_post_floor <posts_per_second> <p99_ms>
    BENCH baseline_write <posts_per_second> <p99_ms>
    RATIO book_vs_baseline_write <ratio>
    RATIO diary_post_vs_baseline_write <ratio>
    RATIO signed_in_post_floor_vs_baseline_write <ratio>

The floor POST (bench/floor.py) is a signed-in, CSRF-checked POST that writes nothing: the highest ratio any
of the portal's POSTs could reach.

The diary POST (today's entry, an upsert of one row plus its audit row) needs no resetting between posts; only
its flash message is dropped from the cookie, untimed, as the booking's is.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from bench.floor import FLOOR_PATH, add_floor_routes
from bench.run import PATIENT_MOBILE, PATIENT_SIGN_IN, BenchError, csrf_token, prepare_baseline_database


class _Portal(NamedTuple):
    """The portal app with a signed-in test client and a form token, the booking POST, and giving its seat back."""

    app: Flask
    client: FlaskClient
    token: str
    book: Callable[[], None]
    give_back: Callable[[], None]


def _portal(url: str, work_dir: Path) -> _Portal:
    from portal import create_app, demo_data
    from portal.booking import services as booking
    from portal.booking.models import Booking, Cohort
    from portal.cli import upgrade_database
    from portal.db import utcnow
    from portal.patients.models import Patient

    upgrade_database(url)
    app = add_floor_routes(create_app({
        "DATABASE_URL": url, "SECRET_KEY": "bench-secret", "PUBLIC_BASE_URL": "http://127.0.0.1",
        "SMS_BACKEND": "console", "PORTAL_INSTANCE_DIR": str(work_dir),
    }))
    db, domain = app.extensions["db"], app.extensions["domain"]
    now = utcnow()
    with db.transaction() as session:
        demo_data.load(session, domain, today=now.date(), now=now, base_url="http://127.0.0.1")
    with db.transaction() as session:
        patient = session.scalars(select(Patient).where(Patient.mobile == PATIENT_MOBILE)).one()
        course = domain.catalogue.course_for_tier(patient.tier)
        cohort = next(c for c in booking.open_cohorts(session, domain, patient, course, now=now) if c.seats_left > 1)
        patient_id, cohort_id = patient.id, cohort.id
    client = app.test_client()
    page = client.get("/sign-in").get_data(as_text=True)
    signed = client.post("/sign-in", data={"identifier": PATIENT_SIGN_IN, "password": demo_data.DEMO_PASSWORD,
                                           "csrf_token": csrf_token(page)})
    if signed.status_code != 302:
        raise BenchError(f"bench sign-in answered {signed.status_code}")
    token = csrf_token(client.get(f"/cohorts/{cohort_id}").get_data(as_text=True))

    def give_back() -> None:
        # The redirect's page would show the flash message; drop it here so the cookie does not grow.
        with client.session_transaction() as cookie:
            cookie.pop("_flashes", None)
        with db.transaction() as session:
            done = session.execute(update(Booking).where(Booking.patient_id == patient_id, Booking.status == "active")
                                   .values(status="cancelled", cancelled_at=utcnow()))
            session.execute(update(Cohort).where(Cohort.id == cohort_id)
                            .values(seats_taken=Cohort.seats_taken - done.rowcount))

    def book() -> None:
        response = client.post(f"/cohorts/{cohort_id}", data={"csrf_token": token})
        if response.status_code != 302 or response.headers["Location"] != "/bookings":
            raise BenchError(f"booking POST answered {response.status_code} {response.headers.get('Location')}")

    return _Portal(app, client, token, book, give_back)


def _baseline(url: str):
    from bench.baseline_app import create_app

    prepare_baseline_database(url)
    app = create_app(url)
    client = app.test_client()

    def insert() -> None:
        if client.post("/items").status_code != 303:
            raise BenchError("baseline POST failed")

    return app, insert


def _time(action: Callable[[], None], between: Callable[[], None] | None, count: int) -> list[float]:
    timings = []
    for _ in range(count):
        if between:
            between()
        started = time.perf_counter()
        action()
        timings.append(time.perf_counter() - started)
    return timings


def _diary_post(client):
    """POST today's diary entry; repeats update the same row (an upsert), so nothing needs resetting."""
    import re

    page = client.get("/diary").get_data(as_text=True)
    data = {"csrf_token": csrf_token(page), "note": "Paced the shopping: two short trips"}
    for name in ("day", "shown_day", "pain", "sleep", "mood", "activity"):
        found = re.search(rf'name="{name}"[^>]*value="([^"]+)"', page) or re.search(
            rf'<select[^>]*name="{name}"[^>]*>\s*<option value="([^"]+)"', page)
        if found is None:
            raise BenchError(f"the diary page has no {name} field")
        data[name] = found.group(1)

    def post() -> None:
        response = client.post("/diary", data=data)
        if response.status_code != 302:
            raise BenchError(f"diary POST answered {response.status_code}")

    def drop_flashes() -> None:
        # Untimed, like the booking's give_back: the redirect's page would have shown the flash message.
        with client.session_transaction() as cookie:
            cookie.pop("_flashes", None)

    return post, drop_flashes


def _floor_post(client, token: str):
    """The signed-in POST that does nothing else: the CSRF check, the user, the write transaction, a redirect."""

    def post() -> None:
        response = client.post(FLOOR_PATH, data={"csrf_token": token})
        if response.status_code != 303:
            raise BenchError(f"floor POST answered {response.status_code}")

    return post


def measure(work_dir: Path, *, rounds: int, count: int) -> dict[str, float]:
    """Each round times the booking POST, the diary POST, the signed-in floor POST and the baseline insert, in
    alternating order."""
    portal = _portal(f"sqlite:///{work_dir / 'writes-portal.db'}", work_dir)
    baseline_app, insert = _baseline(f"sqlite:///{work_dir / 'writes-baseline.db'}")
    diary, drop_flashes = _diary_post(portal.client)
    floor = _floor_post(portal.client, portal.token)
    writes = [("book", portal.book, portal.give_back), ("diary", diary, drop_flashes), ("floor", floor, None),
              ("baseline", insert, None)]
    try:
        for _, action, between in writes:
            _time(action, between, 20)  # warm up
        timings: dict[str, list[float]] = {name: [] for name, _, _ in writes}
        ratios: dict[str, list[float]] = {"book": [], "diary": [], "floor": []}
        for number in range(rounds):
            results = {}
            for name, action, between in writes if number % 2 == 0 else reversed(writes):
                results[name] = _time(action, between, count)
                timings[name] += results[name]
            for name in ratios:
                ratios[name].append(statistics.fmean(results["baseline"]) / statistics.fmean(results[name]))
        portal.give_back()
    finally:
        portal.app.extensions["db"].dispose()
    figures = {}
    for name, values in timings.items():
        figures[f"{name}_rate"] = 1 / statistics.fmean(values)
        figures[f"{name}_p99_ms"] = statistics.quantiles(values, n=100)[98] * 1000
    for name, values in ratios.items():
        figures[f"{name}_ratio"] = statistics.median(values)
    return figures


def report(figures: dict[str, float]) -> None:
    print(f"BENCH book_post {figures['book_rate']:.2f} {figures['book_p99_ms']:.2f}")
    print(f"BENCH diary_post {figures['diary_rate']:.2f} {figures['diary_p99_ms']:.2f}")
    print(f"BENCH signed_in_post_floor {figures['floor_rate']:.2f} {figures['floor_p99_ms']:.2f}")
    print(f"BENCH baseline_write {figures['baseline_rate']:.2f} {figures['baseline_p99_ms']:.2f}")
    print(f"RATIO book_vs_baseline_write {figures['book_ratio']:.2f}")
    print(f"RATIO diary_post_vs_baseline_write {figures['diary_ratio']:.2f}")
    print(f"RATIO signed_in_post_floor_vs_baseline_write {figures['floor_ratio']:.2f}")
