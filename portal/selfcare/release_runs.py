"""The release job's work: record each week as it opens for each patient, once, and text a nudge.

Scale. A run looks only at the patients who may have something newly due, found through indexes:

- weeks open at local midnight, so a run first works out which midnights passed since the last run (the
  cursor row ``selfcare_release_cursor``). Most runs cross none, and look at nobody for that reason;
- course weeks: patients with an active course seat whose session falls on one of those days
  (``cohort_session.starts_at``), or on any day from the window's first to today if the session was moved
  (a session moved onto today changes its week's day after that midnight passed);
- general weeks: patients whose account was set up on one of those days minus 7(k - 1) days, for each week
  k (``user_account.created_at``), and accounts set up since the last run (their week 1 opened at midnight
  on the day they signed up, before the run could see them).

Each candidate's track and weeks are worked out from their current state (``release.place``), and every
open week of that track not yet recorded is recorded, so a patient who moved tier or cohort is put right
the next time one of their weeks opens. (Pages never wait for this job: they work the open weeks out
themselves.)

Idempotent and safe to run concurrently. Each release is one insert ... on conflict do nothing on the
unique (patient, track, week); only the run whose insert took texts about it, with the outbox key
``selfcare:{patient}:{track}:{week}``. Patients are handled in one order (by id, then week), so two runs at
once on PostgreSQL wait for each other's rows in the same order and never deadlock.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import and_, bindparam, or_, select, update
from sqlalchemy.orm import Session

from portal.auth.models import Role, User
from portal.booking.models import Booking, CohortSession
from portal.db import upsert_insert
from portal.messaging import texts
from portal.messaging.services import enqueue_sms, may_nudge
from portal.patients.models import Patient
from portal.selfcare import services
from portal.selfcare.models import ContentRelease, ReleaseCursor
from portal.selfcare.release import (
    COURSE_TRACKS,
    Opening,
    general_track,
    local_date,
    local_midnight,
    midnights_between,
    nudge_times,
    nudge_week,
    place,
)
from portal.settings import DomainConfig

CURSOR = "weekly"
KIND = "selfcare"
# With no cursor yet (the first run ever), look back this far.
FIRST_LOOKBACK = dt.timedelta(days=1)
# After a long outage, catch up at most this far back: older weeks are recorded the next time one of the
# patient's weeks opens.
LONGEST_CATCH_UP = dt.timedelta(days=14)
# New accounts are looked for a little before the cursor: an account created in a transaction that
# committed after the last run had read must not slip between two runs.
ACCOUNT_OVERLAP = dt.timedelta(minutes=10)


@dataclass(frozen=True)
class ReleaseResult:
    patients: int = 0
    recorded: int = 0
    texted: int = 0


def nudge_key(patient_id: int, track: str, week: int) -> str:
    return f"selfcare:{patient_id}:{track}:{week}"


def release_due(session: Session, domain: DomainConfig, *, now: dt.datetime) -> ReleaseResult:
    """Record every week newly open for the patients concerned and queue their nudges, in the caller's
    transaction. Returns how many patients were looked at, releases recorded and texts queued."""
    zone = ZoneInfo(domain.policy.service.timezone)
    since = _since(session, now)
    candidates = sorted(candidate_patients(session, domain, since=since, now=now, zone=zone))
    recorded = texted = 0
    for chunk in services.chunks(candidates):
        r, t = _release_for(session, domain, chunk, now=now, zone=zone)
        recorded += r
        texted += t
    _advance_cursor(session, now)
    return ReleaseResult(patients=len(candidates), recorded=recorded, texted=texted)


def _since(session: Session, now: dt.datetime) -> dt.datetime:
    covered = session.scalar(select(ReleaseCursor.covered_until).where(ReleaseCursor.name == CURSOR))
    since = covered if covered is not None else now - FIRST_LOOKBACK
    return max(since, now - LONGEST_CATCH_UP)


def candidate_patients(
    session: Session, domain: DomainConfig, *, since: dt.datetime, now: dt.datetime, zone: ZoneInfo
) -> set[int]:
    """Patients who may have a week newly open in (since, now], through indexed ranges only."""
    days = midnights_between(since, now, zone)
    found: set[int] = set()

    # Course weeks: sessions on the days whose midnight passed, and moved sessions up to today.
    today_end = local_midnight(local_date(now, zone) + dt.timedelta(days=1), zone)
    ranges = [and_(CohortSession.starts_at >= local_midnight(local_date(since, zone), zone),
                   CohortSession.starts_at < today_end, CohortSession.moved_from.is_not(None))]
    if days:
        ranges.append(and_(CohortSession.starts_at >= local_midnight(days[0], zone),
                           CohortSession.starts_at < local_midnight(days[-1] + dt.timedelta(days=1), zone)))
    found.update(session.scalars(
        select(Booking.patient_id).distinct()
        .join(CohortSession, CohortSession.cohort_id == Booking.cohort_id)
        .where(Booking.status == "active", Booking.service_key.in_(list(COURSE_TRACKS)), or_(*ranges))
    ))

    # General weeks: accounts whose week k opened on one of those days, then accounts new since the last run.
    weeks = max((services.weeks_in_tracks().get(general_track(tier), 0) for tier in (1, 2)), default=0)
    account_ranges = [(since - ACCOUNT_OVERLAP, now + dt.timedelta(seconds=1))]
    if days:
        for k in range(1, weeks + 1):
            back = dt.timedelta(days=7 * (k - 1))
            account_ranges.append((local_midnight(days[0] - back, zone),
                                   local_midnight(days[-1] - back + dt.timedelta(days=1), zone)))
    for low, high in account_ranges:
        # One range per statement: each is a plain range scan of ix_user_account_created_at on every backend.
        found.update(session.scalars(
            select(User.patient_id)
            .where(User.created_at >= low, User.created_at < high, User.role == Role.PATIENT.value,
                   User.is_active.is_(True))
        ))
    found.discard(None)  # type: ignore[arg-type]
    return found


def _release_for(session: Session, domain: DomainConfig, patient_ids: list[int], *, now: dt.datetime,
                 zone: ZoneInfo) -> tuple[int, int]:
    accounts = {
        patient.id: (patient, created_at)
        for patient, created_at in session.execute(
            select(Patient, User.created_at)
            .join(User, User.patient_id == Patient.id)
            .where(Patient.id.in_(patient_ids), User.is_active.is_(True))
        )
    }
    seats = services.course_seats(session, domain, {pid: patient.tier for pid, (patient, _) in accounts.items()})
    existing = {tuple(row) for row in session.execute(
        select(ContentRelease.patient_id, ContentRelease.track, ContentRelease.week)
        .where(ContentRelease.patient_id.in_(list(accounts)))
    )}
    window = domain.policy.reminders.window
    recorded = texted = 0
    for patient_id in sorted(accounts):
        patient, activated_at = accounts[patient_id]
        placement = place(tier=patient.tier, activated_at=activated_at, seat=seats.get(patient_id), now=now,
                          weeks_in_track=services.weeks_in_tracks(), zone=zone)
        if placement is None:
            continue
        track = placement.plan.track
        new = [w for w in placement.plan.opened(now) if (patient_id, track, w.week) not in existing]
        nudge = nudge_week(new, activated_at=activated_at, now=now) if may_nudge(patient) else None
        taken: list[Opening] = []
        for opening in sorted(new, key=lambda w: w.week):
            if _record(session, patient_id, track, opening, texted=opening == nudge, now=now):
                taken.append(opening)
        recorded += len(taken)
        if nudge is not None and nudge in taken:
            due_at, expires_at = nudge_times(opens_at=nudge.opens_at, now=now, window=window, zone=zone)
            texted += enqueue_sms(
                session, key=nudge_key(patient_id, track, nudge.week), patient=patient, kind=KIND,
                body=texts.selfcare_week_ready(), now=now, due_at=due_at, expires_at=expires_at,
            )
    return recorded, texted


def _record(session: Session, patient_id: int, track: str, opening: Opening, *, texted: bool,
            now: dt.datetime) -> bool:
    connection = session.connection()
    row = connection.execute(_insert_release(connection.dialect.name), {
        "patient_id": patient_id, "track": track, "week": opening.week, "opens_at": opening.opens_at,
        "recorded_at": now, "texted": texted,
    }).first()
    return row is not None


@functools.cache
def _insert_release(dialect: str):
    """INSERT ... ON CONFLICT (patient_id, track, week) DO NOTHING RETURNING id, built once per dialect."""
    insert = upsert_insert(dialect)
    columns = ("patient_id", "track", "week", "opens_at", "recorded_at", "texted")
    return (
        insert(ContentRelease)
        .values({name: bindparam(name, type_=ContentRelease.__table__.c[name].type) for name in columns})
        .on_conflict_do_nothing(index_elements=["patient_id", "track", "week"])
        .returning(ContentRelease.id)
    )


def _advance_cursor(session: Session, now: dt.datetime) -> None:
    """Move the cursor to ``now``, never back (a slower concurrent run may finish after a later one)."""
    connection = session.connection()
    insert = upsert_insert(connection.dialect.name)
    connection.execute(
        insert(ReleaseCursor).values(name=CURSOR, covered_until=now).on_conflict_do_nothing(index_elements=["name"])
    )
    connection.execute(
        update(ReleaseCursor).where(ReleaseCursor.name == CURSOR, ReleaseCursor.covered_until < now)
        .values(covered_until=now)
    )
