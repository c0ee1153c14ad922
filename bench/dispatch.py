"""SMS dispatch into the fake Twilio: how fast one scheduler process sends, and whether the rate limit holds.

The dispatcher is the scheduler's own job body (portal.scheduler.dispatch_outbox: claim a batch, re-check,
send through the real twilio library, record), run in this process against a throwaway SQLite outbox. The
fake Twilio runs in a process of its own (spawned), so it does not share this one's interpreter lock and the
figure is the dispatcher's. The configuration is config/ with only [sms] max_per_second changed.

- Unthrottled: BENCH_DISPATCH_MESSAGES (default 2,000) texts, no limit; the rate is texts over wall time.
- Limited: max_per_second = 10 for about BENCH_DISPATCH_LIMITED_SECONDS (default 30); the rate is measured
  where it matters, at the fake: (requests - 1) over the time from its first request to its last.

Output:
    BENCH dispatch_msgs_per_s <rate>
    BENCH dispatch_limited_msgs_per_s <rate>
    RATIO dispatch_limited_vs_limit <rate / 10>       (the issue asks for 0.95 to 1.05)
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import re
import shutil
import time
from multiprocessing.connection import Connection
from pathlib import Path

from bench.run import BenchError

ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "bench-token"  # noqa: S105 - the fake's made-up token
LIMIT = 10.0


def _serve_fake(pipe: Connection) -> None:
    """The child: serve the fake until told to stop, then hand back when each message request arrived."""
    from portal.messaging.fake_twilio import FakeTwilio

    fake = FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, callbacks=False).start()
    pipe.send(fake.base_url)
    pipe.recv()
    arrivals = [r.received_at for r in fake.requests if r.method == "POST" and r.response_status == 201]
    fake.stop()
    pipe.send(arrivals)


class _Fake:
    def __enter__(self) -> _Fake:
        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        self._process = context.Process(target=_serve_fake, args=(child,), daemon=True)
        self._process.start()
        if not self._pipe.poll(30):
            raise BenchError("the fake Twilio did not start")
        self.base_url: str = self._pipe.recv()
        return self

    def arrivals(self) -> list[float]:
        self._pipe.send("stop")
        if not self._pipe.poll(30):
            raise BenchError("the fake Twilio did not answer")
        return self._pipe.recv()

    def __exit__(self, *exc: object) -> None:
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.kill()


def _config(work_dir: Path, max_per_second: float | None) -> Path:
    from portal.settings import DEFAULT_CONFIG_DIR

    target = work_dir / f"config-{max_per_second}"
    shutil.copytree(DEFAULT_CONFIG_DIR, target)
    policy = target / "policy.toml"
    line = "" if max_per_second is None else f"max_per_second = {max_per_second}\n"
    text, count = re.subn(r"(?m)^max_per_second\s*=.*\n", line, policy.read_text(encoding="utf-8"))
    if count != 1:
        raise BenchError("config/policy.toml has no [sms] max_per_second line to change")
    policy.write_text(text, encoding="utf-8")
    return target


def _outbox(url: str, count: int) -> None:
    """A fresh database with one patient and ``count`` due texts, each with its own body."""
    from portal.cli import upgrade_database
    from portal.db import Database, utcnow
    from portal.demo_data import demo_mobile, demo_nhs_numbers
    from portal.messaging.services import enqueue_sms
    from portal.patients.models import Patient

    upgrade_database(url)
    db = Database(url)
    now = utcnow()
    try:
        with db.transaction() as session:
            patient = Patient(nhs_number=next(demo_nhs_numbers()), given_name="Bench", family_name="Patient",
                              date_of_birth=dt.date(1970, 1, 1), mobile=demo_mobile(1), postcode="N19 5NF", tier=1)
            session.add(patient)
            session.flush()
            for n in range(count):
                enqueue_sms(session, key=f"bench:{n}", patient=patient, kind="bench", body=f"NHS: bench text {n:06d}",
                            now=now)
    finally:
        db.dispose()


def _dispatch(work_dir: Path, name: str, count: int, max_per_second: float | None) -> tuple[float, list[float]]:
    """Send ``count`` texts with the scheduler's dispatch job; (seconds taken, the fake's arrival times)."""
    from portal.db import Database
    from portal.messaging.clients import TwilioSmsClient
    from portal.scheduler import JobContext, dispatch_outbox
    from portal.settings import load_domain_config

    url = f"sqlite:///{work_dir / f'{name}.db'}"
    _outbox(url, count)
    domain = load_domain_config(_config(work_dir, max_per_second))
    db = Database(url)
    try:
        with _Fake() as fake:
            sms = TwilioSmsClient(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, sender="NHS Appts",
                                  api_base=fake.base_url)
            ctx = JobContext(db=db, domain=domain, sms=sms, config={"PUBLIC_BASE_URL": "http://127.0.0.1:9"})
            started = time.perf_counter()
            dispatch_outbox(ctx)
            taken = time.perf_counter() - started
            arrivals = sorted(fake.arrivals())
    finally:
        db.dispose()
    if len(arrivals) != count:
        raise BenchError(f"dispatch bench: the fake took {len(arrivals)} texts, not {count}")
    return taken, arrivals


def measure(work_dir: Path) -> dict[str, float]:
    import logging

    # One log line per text would be measured too.
    logging.getLogger("twilio").setLevel(logging.WARNING)
    count = int(os.environ.get("BENCH_DISPATCH_MESSAGES", "2000"))
    limited_seconds = float(os.environ.get("BENCH_DISPATCH_LIMITED_SECONDS", "30"))
    taken, _ = _dispatch(work_dir, "unthrottled", count, None)
    _, arrivals = _dispatch(work_dir, "limited", int(limited_seconds * LIMIT) + 1, LIMIT)
    limited_rate = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
    return {"rate": count / taken, "limited_rate": limited_rate, "ratio": limited_rate / LIMIT}


def report(figures: dict[str, float]) -> None:
    print(f"BENCH dispatch_msgs_per_s {figures['rate']:.2f}")
    print(f"BENCH dispatch_limited_msgs_per_s {figures['limited_rate']:.3f}")
    print(f"RATIO dispatch_limited_vs_limit {figures['ratio']:.3f}")


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory(prefix="portal-bench-dispatch-") as tmp:
        report(measure(Path(tmp)))
