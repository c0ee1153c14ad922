"""Load benchmarks (`make bench`): the portal's pages against the baseline app, served the same way.

Both run under gunicorn (2 sync workers each, 127.0.0.1, free ports) on throwaway SQLite databases in a
temporary directory, and are loaded with `wrk -t2 -c8 -d10s --latency` after a short warm-up. The
portal's pages are fetched as the demo Tier 1 patient, signed in and booked onto a group.

The machine is shared and noisy, so absolute figures mean little: compare the RATIO lines (the portal's
requests per second over the baseline's) between runs. Every target runs once in each of several rounds,
in alternating order (ABBA), and each ratio is the median over the rounds of the two rates measured side
by side, so a burst of load from elsewhere moves it little.

Output, one line each:

    BENCH <target> <requests_per_second> <p99_ms>       (median round)
    BENCH baseline <requests_per_second> <p99_ms>
    RATIO <target>_vs_baseline <ratio>

One target, signed_in_floor, is not a page of the portal: it is the signed-in layout alone (bench/floor.py,
added to the app this bench serves), the highest ratio a patient page could reach.

Then the booking and diary POSTs against a baseline one-row insert, in this process (see bench/writes.py):

    BENCH book_post / diary_post / signed_in_post_floor / baseline_write <posts_per_second> <p99_ms>
    RATIO book_vs_baseline_write <ratio>
    RATIO diary_post_vs_baseline_write <ratio>
    RATIO signed_in_post_floor_vs_baseline_write <ratio>

then reminder planning (bench/plan.py), SMS dispatch (bench/dispatch.py), and the service reports and reception
search among 100,000 synthetic patients (bench/reports.py: BENCH report_<name>_ms, BENCH search_ms; the synthetic
database is generated once, a few minutes, and cached in instance/).

Environment: BENCH_SECONDS (length of each run, default 10), BENCH_ROUNDS (default 8: here one round's ratio
differs from the next by as much as 0.1, so fewer rounds make the median jump), BENCH_WARMUP_SECONDS (default 3),
BENCH_WRK (the wrk binary), BENCH_WRITES (timed POSTs per round, default 200). The page and POST runs take about
six minutes with the defaults. Exits non-zero if a server does not start or a check fails.

To load another page, add a Target to PORTAL_TARGETS (each adds BENCH_ROUNDS runs).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import NamedTuple

import requests

from bench.floor import FLOOR_HEADING, FLOOR_PATH

ROOT = Path(__file__).resolve().parent.parent
PATIENT_MOBILE = "+447700900001"
PATIENT_SIGN_IN = "07700 900001"
USER_AGENT = "portal-bench/1"  # wrk sends it too: Flask-Login's strong session protection checks it
START_TIMEOUT = 30.0
WRK_THREADS = 2
WRK_CONNECTIONS = 8


class Target(NamedTuple):
    """One page to load. ``expect`` is text the response must contain (so a redirect is never measured)."""

    name: str
    url: str
    method: str = "GET"
    expect: str | None = None


# The portal's pages, loaded as the signed-in demo Tier 1 patient. Add more entries here.
PORTAL_TARGETS: list[Target] = [
    Target("home", "/", "GET", expect="Hello"),
    Target("courses", "/services/t1-group", "GET", expect="Group starting"),
    Target("selfcare_week", "/self-care/tier-1-general/week-01", "GET", expect="Your task this week"),
    # Not a page of the portal: the signed-in request doing nothing else (see bench/floor.py).
    Target("signed_in_floor", FLOOR_PATH, "GET", expect=FLOOR_HEADING),
]
BASELINE_TARGET = Target("baseline", "/", "GET", expect="Item number 20 ")


class BenchError(Exception):
    """The benchmark cannot run or its result cannot be trusted; the message says why."""


@dataclass(frozen=True)
class Result:
    requests_per_second: float
    p99_ms: float


# Setting up the databases


def prepare_portal_database(url: str) -> None:
    """Migrate, load the demo data and book the demo Tier 1 patient onto a cohort."""
    from sqlalchemy import select

    from portal import demo_data
    from portal.booking import services as booking
    from portal.cli import upgrade_database
    from portal.db import Database, utcnow
    from portal.patients.models import Patient
    from portal.settings import load_domain_config

    upgrade_database(url)
    domain = load_domain_config()
    database = Database(url)
    try:
        now = utcnow()
        with database.transaction() as session:
            demo_data.load(session, domain, today=now.date(), now=now, base_url="http://127.0.0.1")
        with database.transaction() as session:
            patient = session.scalars(select(Patient).where(Patient.mobile == PATIENT_MOBILE)).one()
            course = domain.catalogue.course_for_tier(patient.tier)
            if course is None:
                raise BenchError(f"no course in the catalogue for Tier {patient.tier}")
            cohorts = [c for c in booking.open_cohorts(session, domain, patient, course, now=now) if c.seats_left > 0]
            if not cohorts:
                raise BenchError("the demo data has no open cohort with a free seat for the Tier 1 patient")
            booking.book_seat(session, domain, patient, cohorts[0].id, now=now)
    finally:
        database.dispose()


def prepare_baseline_database(url: str) -> None:
    from bench.baseline_app import prepare_database

    prepare_database(url)


# Serving


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_environment(database_url: str, instance_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("REDIS_URL", "PUBLIC_BASE_URL", "TWILIO_API_BASE"):
        env.pop(name, None)
    env.update(
        PORTAL_ENV="development",
        DATABASE_URL=database_url,
        SECRET_KEY=secrets.token_hex(32),
        SMS_BACKEND="console",
        PORTAL_INSTANCE_DIR=str(instance_dir),
        PYTHONUNBUFFERED="1",
    )
    return env


def _log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@contextlib.contextmanager
def serve(name: str, app_spec: str, env: dict[str, str], work_dir: Path, ready_path: str) -> Iterator[str]:
    """Run gunicorn (2 sync workers) on a free port until the block ends; yields the base URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = work_dir / f"{name}-gunicorn.log"
    command = [
        sys.executable, "-m", "gunicorn",
        "--workers", "2",
        "--worker-class", "sync",
        "--bind", f"127.0.0.1:{port}",
        "--chdir", str(ROOT),
        "--log-level", "warning",
        "--graceful-timeout", "5",
        app_spec,
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_until_ready(name, process, base + ready_path, log_path)
        yield base
    finally:
        _stop(process)


def _wait_until_ready(name: str, process: subprocess.Popen, url: str, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"{name}: gunicorn exited with {process.returncode}\n{_log_tail(log_path)}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, timeout=2, allow_redirects=False).status_code == 200:
                return
        time.sleep(0.2)
    raise BenchError(f"{name}: not answering 200 on {url} after {START_TIMEOUT:.0f}s\n{_log_tail(log_path)}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


# Signing in


class _CsrfFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.token: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "input" and values.get("name") == "csrf_token" and self.token is None:
            self.token = values.get("value")


def csrf_token(html: str) -> str:
    finder = _CsrfFinder()
    finder.feed(html)
    if not finder.token:
        raise BenchError("no csrf_token field on the sign-in page")
    return finder.token


def sign_in(base: str, identifier: str, password: str) -> dict[str, str]:
    """Sign in with requests; returns the headers (cookie and user agent) that make wrk that patient."""
    with requests.Session() as browser:
        browser.headers["User-Agent"] = USER_AGENT
        page = browser.get(base + "/sign-in", timeout=10)
        page.raise_for_status()
        response = browser.post(
            base + "/sign-in",
            data={"identifier": identifier, "password": password, "csrf_token": csrf_token(page.text)},
            allow_redirects=False,
            timeout=30,
        )
        if response.status_code != 302:
            raise BenchError(f"sign-in as {identifier} answered {response.status_code}, expected a redirect")
        # One page view as a browser would make, so the cookie holds everything the pages add to the
        # session (the CSRF token): wrk then replays a steady-state cookie, not a freshly signed-in one.
        browser.get(base + "/", timeout=10).raise_for_status()
        cookie = "; ".join(f"{c.name}={c.value}" for c in browser.cookies)
    if not cookie:
        raise BenchError("sign-in set no cookie")
    return {"Cookie": cookie, "User-Agent": USER_AGENT}


# Loading


def check_target(base: str, target: Target, headers: dict[str, str]) -> None:
    """The request wrk will send gets a 200 with the expected text: not a redirect, not an error page."""
    response = requests.request(target.method, base + target.url, headers=headers, allow_redirects=False, timeout=10)
    if response.status_code != 200:
        raise BenchError(f"{target.name}: {target.method} {target.url} answered {response.status_code}, expected 200")
    if target.expect and target.expect not in response.text:
        raise BenchError(f"{target.name}: {target.method} {target.url} does not contain {target.expect!r}")


def wrk_binary() -> str:
    wrk = os.environ.get("BENCH_WRK") or shutil.which("wrk") or "/usr/bin/wrk"
    if not Path(wrk).exists():
        raise BenchError(f"wrk not found ({wrk}); install it or set BENCH_WRK")
    return wrk


def run_wrk(url: str, method: str, headers: dict[str, str], seconds: int, work_dir: Path) -> str:
    command = [wrk_binary(), f"-t{WRK_THREADS}", f"-c{WRK_CONNECTIONS}", f"-d{seconds}s", "--latency"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    if method != "GET":
        script = work_dir / f"method-{method.lower()}.lua"
        script.write_text(f'wrk.method = "{method}"\n', encoding="utf-8")
        command += ["-s", str(script)]
    command.append(url)
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=False)
    if done.returncode != 0:
        raise BenchError(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def parse_wrk(output: str) -> Result:
    rps = re.search(r"^Requests/sec:\s+([0-9.]+)", output, re.MULTILINE)
    p99 = re.search(r"^\s*99(?:\.0+)?%\s+([0-9.]+)(us|ms|s|m)\b", output, re.MULTILINE)
    if not rps or not p99:
        raise BenchError(f"could not read wrk's output:\n{output}")
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    if bad:
        raise BenchError(f"{bad.group(1)} responses were errors:\n{output}")
    return Result(float(rps.group(1)), float(p99.group(1)) * _UNITS_MS[p99.group(2)])


@dataclass
class Job:
    """One target on one server, and the result of each round."""

    target: Target
    base: str
    headers: dict[str, str]
    runs: list[Result] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.base + self.target.url

    def result(self) -> Result:
        """The median round: a burst of load from elsewhere on the machine moves it least."""
        return Result(
            statistics.median(r.requests_per_second for r in self.runs),
            statistics.median(r.p99_ms for r in self.runs),
        )

    def ratio_to(self, baseline: Job) -> float:
        """Median over the rounds of this job's rate over the baseline's in the same round."""
        ratios = [
            mine.requests_per_second / theirs.requests_per_second
            for mine, theirs in zip(self.runs, baseline.runs, strict=True)
            if theirs.requests_per_second > 0
        ]
        return statistics.median(ratios) if ratios else 0.0


class FreshCookie:
    """Keeps the signed-in cookie that wrk replays as fresh as a browser's would be.

    The portal re-stamps a session's last-seen time when the stamp is a minute old (``STAMP_EVERY``) and then
    re-signs and resends the session. A browser takes the new cookie up; wrk replays one cookie, so once its
    stamp is a minute old every request would re-sign the session. Before each run, ``ensure`` makes sure the
    stamp will stay younger than a minute until the run ends: if not, it waits for the stamp to come due and
    takes up the re-stamped cookie (at most a minute's wait per minute of runs). A run longer than about a
    minute (BENCH_SECONDS) cannot avoid a re-stamp part-way through."""

    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers
        self.stamped = time.monotonic()  # sign_in's last page view stamped it

    def ensure(self, base: str, seconds: int) -> None:
        from portal.auth.sessions import STAMP_EVERY

        if time.monotonic() - self.stamped + seconds + 2 < STAMP_EVERY:
            return
        time.sleep(max(0.0, self.stamped + STAMP_EVERY + 1 - time.monotonic()))
        response = requests.get(base + "/", headers=self.headers, allow_redirects=False, timeout=10)
        if not response.cookies:
            raise BenchError("the portal did not re-stamp the session after a minute")
        cookies = dict(part.split("=", 1) for part in self.headers["Cookie"].split("; "))
        cookies.update(response.cookies.get_dict())
        self.headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in cookies.items())
        self.stamped = time.monotonic()


def measure(jobs: list[Job], *, seconds: int, warmup: int, rounds: int, work_dir: Path,
            cookie: FreshCookie | None = None) -> None:
    """Warm every job up, then run them in rounds, alternating the order (ABBA) so drift in the machine's
    load falls on all of them alike. ``cookie`` keeps the signed-in jobs' cookie fresh."""
    for job in jobs:
        check_target(job.base, job.target, job.headers)
        if warmup > 0:
            run_wrk(job.url, job.target.method, job.headers, warmup, work_dir)
    for round_number in range(rounds):
        for job in jobs if round_number % 2 == 0 else reversed(jobs):
            if cookie is not None and job.headers is cookie.headers:
                cookie.ensure(job.base, seconds)
            output = run_wrk(job.url, job.target.method, job.headers, seconds, work_dir)
            errors = re.search(r"Socket errors:.*", output)
            if errors:
                print(f"# {job.target.name}: {errors.group(0)}", file=sys.stderr)
            job.runs.append(parse_wrk(output))
    for job in jobs:
        # Still the page after the runs: the session did not expire or get refused halfway.
        check_target(job.base, job.target, job.headers)


def _whole_number(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    if not value.isdigit():
        raise BenchError(f"{name} must be a whole number, not {value!r}")
    return int(value)


def run() -> list[Job]:
    """Set up, serve, sign in and measure; the baseline's job is the last."""
    from portal.demo_data import DEMO_PASSWORD

    seconds = max(1, _whole_number("BENCH_SECONDS", 10))
    warmup = _whole_number("BENCH_WARMUP_SECONDS", 3)
    rounds = max(1, _whole_number("BENCH_ROUNDS", 8))
    wrk_binary()
    with tempfile.TemporaryDirectory(prefix="portal-bench-") as tmp:
        work_dir = Path(tmp)
        portal_db = f"sqlite:///{work_dir / 'portal.db'}"
        baseline_db = f"sqlite:///{work_dir / 'baseline.db'}"
        started = time.monotonic()
        prepare_portal_database(portal_db)
        prepare_baseline_database(baseline_db)
        print(
            f"# databases ready in {time.monotonic() - started:.1f}s; {rounds} rounds of {seconds}s per target",
            file=sys.stderr,
        )
        with (
            serve("portal", "bench.floor:create_app()", server_environment(portal_db, work_dir), work_dir,
                  ready_path="/healthz") as portal,
            serve("baseline", "bench.baseline_app:create_app()", server_environment(baseline_db, work_dir), work_dir,
                  ready_path="/") as baseline,
        ):
            headers = sign_in(portal, PATIENT_SIGN_IN, DEMO_PASSWORD)
            jobs = [Job(target, portal, headers) for target in PORTAL_TARGETS]
            jobs.append(Job(BASELINE_TARGET, baseline, {"User-Agent": USER_AGENT}))
            measure(jobs, seconds=seconds, warmup=warmup, rounds=rounds, work_dir=work_dir,
                    cookie=FreshCookie(headers))
    return jobs


def report(jobs: list[Job]) -> None:
    *portal_jobs, baseline = jobs
    for job in jobs:
        result = job.result()
        print(f"BENCH {job.target.name} {result.requests_per_second:.2f} {result.p99_ms:.2f}")
    for job in portal_jobs:
        print(f"RATIO {job.target.name}_vs_baseline {job.ratio_to(baseline):.2f}")


def main() -> int:
    started = time.monotonic()
    try:
        jobs = run()
    except (BenchError, requests.RequestException, subprocess.TimeoutExpired) as error:
        print(f"bench failed: {error}", file=sys.stderr)
        return 1
    report(jobs)
    with tempfile.TemporaryDirectory(prefix="portal-bench-writes-") as tmp:
        from bench import writes

        writes.report(writes.measure(Path(tmp), rounds=max(1, _whole_number("BENCH_ROUNDS", 8)),
                                     count=_whole_number("BENCH_WRITES", 200)))
    with tempfile.TemporaryDirectory(prefix="portal-bench-plan-") as tmp:
        from bench import plan  # reminder planning among 10,000 and 1,000,000 bookings: see bench/plan.py

        plan.report(plan.measure(Path(tmp)))
    with tempfile.TemporaryDirectory(prefix="portal-bench-dispatch-") as tmp:
        from bench import dispatch  # SMS dispatch into the fake Twilio: see bench/dispatch.py

        dispatch.report(dispatch.measure(Path(tmp)))
    from bench import reports  # service reports and reception search among 100,000 patients: see bench/reports.py

    reports.main()
    print(f"# took {dt.timedelta(seconds=round(time.monotonic() - started))}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
