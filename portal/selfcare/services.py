"""Self-management reading for patients and staff: which weeks a patient may read, and what they have done.

Which track and week fit a patient is worked out from their current state each time (``release.place``):
their tier, when they set up their account, and their seat on their tier's course. On top of that, an
item stays readable once it was released to them (``selfcare_release``) or they opened it
(``selfcare_progress``), so a patient who moves cohort or tier keeps what they had.

The release job (``release_runs``) records releases and texts nudges; pages never wait for it.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy import Row, and_, bindparam, select, update
from sqlalchemy.orm import Session

from portal.auth.models import User
from portal.booking.models import Booking, Cohort, CohortSession
from portal.db import read_rows, upsert_insert
from portal.patients.models import Patient
from portal.selfcare.content_loader import Reading, load_library
from portal.selfcare.models import ContentRelease, ReadingProgress
from portal.selfcare.release import (
    COURSE_TRACKS,
    TRACK_LABELS,
    CourseSeat,
    Opening,
    Placement,
    place,
    slug,
    week_from_slug,
)
from portal.settings import DomainConfig

# Keys per IN (...) list: well under every database's limit on bound parameters.
CHUNK = 500
# Content whose review date is this close is flagged as due soon on the admin list.
REVIEW_SOON = dt.timedelta(days=60)

Key = tuple[str, int]  # (track, week)


class ItemNotFound(LookupError):
    """No such item, or not one this patient may read: the page answers 404."""


class ItemNotOpenYet(LookupError):
    """A week of the patient's own track that has not opened yet."""

    def __init__(self, opening: Opening, reading: Reading) -> None:
        super().__init__(f"week {opening.week} opens on {opening.opens_on}")
        self.opening = opening
        self.reading = reading


# The content


@functools.cache
def weeks_in_tracks() -> Mapping[str, int]:
    """How many weeks each track has, from the content library."""
    counts: dict[str, int] = {}
    for track, week in load_library():
        counts[track] = max(counts.get(track, 0), week)
    return counts


def reading(track: str, week: int) -> Reading | None:
    return load_library().get((track, week))


@dataclass(frozen=True)
class ReviewItem:
    reading: Reading
    overdue: bool
    due_soon: bool


def content_review(*, today: dt.date) -> list[ReviewItem]:
    """Every item with its review date, by track and week: overdue ones (review date passed) flagged."""
    order = {track: n for n, track in enumerate(TRACK_LABELS)}
    items = sorted(load_library().values(), key=lambda r: (order.get(r.track, len(order)), r.track, r.week))
    return [review_item(r, today=today) for r in items]


def review_item(item: Reading, *, today: dt.date) -> ReviewItem:
    return ReviewItem(reading=item, overdue=item.review_due < today,
                      due_soon=today <= item.review_due < today + REVIEW_SOON)


# Where a patient is


def chunks(items: list, size: int = CHUNK) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


# Read on every home and weekly reading page: built once, with bound parameters (building a statement costs
# more than running it).
_COURSE_SEATS = (
    select(Booking.patient_id, Booking.service_key, Cohort.timezone, CohortSession.number, CohortSession.starts_at,
           CohortSession.status)
    .join(Cohort, Cohort.id == Booking.cohort_id)
    .join(CohortSession, CohortSession.cohort_id == Cohort.id)
    .where(Booking.patient_id.in_(bindparam("patient_ids", expanding=True)), Booking.status == "active",
           Booking.service_key.in_(bindparam("course_keys", expanding=True)), Cohort.status != "cancelled")
)
# A patient's records are read as plain rows (attribute access like the models, no ORM objects): only the
# columns a WeekEntry shows.
_PROGRESS = select(
    ReadingProgress.patient_id, ReadingProgress.track, ReadingProgress.week, ReadingProgress.opened_at,
    ReadingProgress.done_at,
).where(ReadingProgress.patient_id.in_(bindparam("patient_ids", expanding=True)))
_RELEASES = select(
    ContentRelease.patient_id, ContentRelease.track, ContentRelease.week, ContentRelease.recorded_at,
    ContentRelease.texted,
).where(ContentRelease.patient_id.in_(bindparam("patient_ids", expanding=True)))


def course_seats(session: Session, domain: DomainConfig, tiers: Mapping[int, int]) -> dict[int, CourseSeat]:
    """Each patient's active seat on the course of their own tier (``tiers``: patient id -> tier), with
    its sessions' actual starts. A seat on another tier's course does not count: the tier decides. Nor does a
    seat on a cohort called off (cancelled, or every one of its sessions cancelled)."""
    course_keys = [key for key in COURSE_TRACKS if domain.catalogue.get(key) is not None]
    rows: list = []
    for chunk in chunks(sorted(tiers)):
        rows.extend(read_rows(session, _COURSE_SEATS, {"patient_ids": chunk, "course_keys": course_keys}))
    found: dict[int, tuple[str, str, dict[int, dt.datetime]]] = {}
    going_ahead: set[int] = set()
    for patient_id, service_key, timezone, number, starts_at, status in rows:
        service = domain.catalogue.get(service_key)
        if service is None or service.tier != tiers[patient_id]:
            continue
        found.setdefault(patient_id, (service_key, timezone, {}))[2][number] = starts_at
        if status == "scheduled":
            going_ahead.add(patient_id)
    # A week whose session was cancelled still opens on its day, but a group with every session cancelled is no
    # course at all (as for questionnaires and reminders): its patient follows the general track meanwhile.
    return {pid: CourseSeat(service_key=key, sessions=starts, timezone=timezone)
            for pid, (key, timezone, starts) in found.items() if pid in going_ahead}


def placement_for(
    session: Session, domain: DomainConfig, patient: Patient, *, activated_at: dt.datetime | None,
    now: dt.datetime,
) -> Placement | None:
    seat = course_seats(session, domain, {patient.id: patient.tier}).get(patient.id)
    return place(tier=patient.tier, activated_at=activated_at, seat=seat, now=now,
                 weeks_in_track=weeks_in_tracks(), zone=ZoneInfo(domain.policy.service.timezone))


# What a patient sees


@dataclass(frozen=True)
class WeekEntry:
    """One week of a track, as a patient's list shows it."""

    track: str
    week: int
    reading: Reading
    status: str  # "done", "this-week", "catch-up", "not-open"
    opens_on: dt.date | None
    opened_at: dt.datetime | None
    done_at: dt.datetime | None
    # For staff: whether the release job recorded it, and whether it texted about it.
    released_at: dt.datetime | None = None
    texted: bool = False

    @property
    def slug(self) -> str:
        return slug(self.week)

    @property
    def readable(self) -> bool:
        return self.status != "not-open"


@dataclass
class PatientReading:
    """A patient's reading: the plan they follow now, and their own records (progress, releases)."""

    placement: Placement | None
    now: dt.datetime
    # Rows of _PROGRESS and _RELEASES: (track, week) -> opened_at, done_at / recorded_at, texted.
    progress: dict[Key, Row] = field(default_factory=dict)
    releases: dict[Key, Row] = field(default_factory=dict)

    @property
    def track(self) -> str | None:
        return self.placement.plan.track if self.placement else None

    @property
    def current(self) -> Opening | None:
        return self.placement.plan.current(self.now) if self.placement else None

    def _kept(self, key: Key) -> bool:
        """Released to the patient earlier, or opened by them: it stays readable."""
        return key in self.releases or key in self.progress

    def opening(self, track: str, week: int) -> Opening | None:
        """When this week opens on the track the patient follows now, or on the course that takes over later."""
        if self.placement is None:
            return None
        for plan in (self.placement.plan, self.placement.upcoming):
            if plan is not None and plan.track == track:
                return plan.week(week)
        return None

    def readable(self, track: str, week: int) -> bool:
        if reading(track, week) is None:
            return False
        opening = self.opening(track, week)
        return (opening is not None and opening.is_open(self.now)) or self._kept((track, week))

    def entry(self, track: str, week: int) -> WeekEntry | None:
        item = reading(track, week)
        if item is None:
            return None
        key = (track, week)
        progress = self.progress.get(key)
        release = self.releases.get(key)
        opening = self.opening(track, week)
        current = self.current
        if progress is not None and progress.done_at is not None:
            status = "done"
        elif not self.readable(track, week):
            status = "not-open"
        elif current is not None and track == self.track and week == current.week:
            status = "this-week"
        else:
            status = "catch-up"
        return WeekEntry(
            track=track, week=week, reading=item, status=status, opens_on=opening.opens_on if opening else None,
            opened_at=progress.opened_at if progress else None, done_at=progress.done_at if progress else None,
            released_at=release.recorded_at if release else None, texted=bool(release and release.texted),
        )

    def weeks(self) -> list[WeekEntry]:
        """Every week of the track the patient follows now, in order."""
        if self.placement is None:
            return []
        plan = self.placement.plan
        return [e for e in (self.entry(plan.track, w.week) for w in plan.weeks) if e is not None]

    def earlier(self) -> list[WeekEntry]:
        """Items of other tracks the patient had before a move: still theirs to read."""
        keys = sorted(key for key in {*self.progress, *self.releases} if key[0] != self.track)
        return [e for e in (self.entry(track, week) for track, week in keys) if e is not None]

    def this_week(self) -> WeekEntry | None:
        current = self.current
        return self.entry(self.track, current.week) if current is not None and self.track else None

    def neighbours(self, track: str, week: int) -> tuple[WeekEntry | None, WeekEntry | None]:
        """The weeks before and after on the same track, each only if the patient may read it."""
        before = self.entry(track, week - 1) if week > 1 else None
        after = self.entry(track, week + 1)
        return (before if before and before.readable else None, after if after and after.readable else None)

    @property
    def counts(self) -> tuple[int, int, int]:
        """On the current track: weeks open, weeks opened by the patient, weeks done."""
        entries = self.weeks()
        return (sum(e.readable for e in entries), sum(e.opened_at is not None for e in entries),
                sum(e.done_at is not None for e in entries))


def _records(session: Session, patient_ids: list[int], *, with_releases: bool = True) -> tuple[
        dict[int, dict[Key, Row]], dict[int, dict[Key, Row]]]:
    """Each patient's progress and release rows (``_PROGRESS``, ``_RELEASES``) by (track, week)."""
    progress: dict[int, dict[Key, Row]] = {pid: {} for pid in patient_ids}
    releases: dict[int, dict[Key, Row]] = {pid: {} for pid in patient_ids}
    for chunk in chunks(sorted(patient_ids)):
        for row in read_rows(session, _PROGRESS, {"patient_ids": chunk}):
            progress[row.patient_id][(row.track, row.week)] = row
        if not with_releases:
            continue
        for row in read_rows(session, _RELEASES, {"patient_ids": chunk}):
            releases[row.patient_id][(row.track, row.week)] = row
    return progress, releases


def reading_for_patient(
    session: Session, domain: DomainConfig, patient: Patient, *, activated_at: dt.datetime | None,
    now: dt.datetime, with_releases: bool = True,
) -> PatientReading:
    """The signed-in patient's reading (``patient`` is always the current patient: their records only).

    ``with_releases=False`` (the home page) skips the release records: they only keep open a week that the
    patient's current plan no longer opens (a session moved later after its week was released)."""
    placement = placement_for(session, domain, patient, activated_at=activated_at, now=now)
    progress, releases = _records(session, [patient.id], with_releases=with_releases)
    return PatientReading(placement=placement, now=now, progress=progress[patient.id],
                          releases=releases[patient.id])


def item_for_patient(mine: PatientReading, track: str, item_slug: str) -> WeekEntry:
    """The item at /self-care/<track>/<slug> if this patient may read it. ItemNotOpenYet for a later week
    of their own track; ItemNotFound for anything else (another track, a week that does not exist)."""
    week = week_from_slug(item_slug)
    entry = mine.entry(track, week) if week is not None else None
    if entry is None:
        raise ItemNotFound(f"{track}/{item_slug}")
    if not entry.readable:
        opening = mine.opening(track, entry.week)
        if opening is None:
            raise ItemNotFound(f"{track}/{item_slug}")
        raise ItemNotOpenYet(opening, entry.reading)
    return entry


def _insert(session: Session, model):
    return upsert_insert(session.get_bind().dialect.name)(model)


def mark_opened(session: Session, patient_id: int, track: str, week: int, *, now: dt.datetime) -> bool:
    """Record that the patient opened the item; only the first time counts. True if this was the first."""
    statement = (
        _insert(session, ReadingProgress)
        .values(patient_id=patient_id, track=track, week=week, opened_at=now)
        .on_conflict_do_nothing(index_elements=["patient_id", "track", "week"])
        .returning(ReadingProgress.id)
    )
    return session.execute(statement).first() is not None


def mark_done(session: Session, patient_id: int, track: str, week: int, *, now: dt.datetime) -> bool:
    """Mark the item done (and opened, if it was not). Idempotent: True only the first time."""
    insert = _insert(session, ReadingProgress)
    statement = (
        insert.values(patient_id=patient_id, track=track, week=week, opened_at=now, done_at=now)
        .on_conflict_do_update(
            index_elements=["patient_id", "track", "week"],
            set_={"done_at": insert.excluded.done_at},
            where=ReadingProgress.done_at.is_(None),
        )
        .returning(ReadingProgress.id)
    )
    return session.execute(statement).first() is not None


def mark_not_done(session: Session, patient_id: int, track: str, week: int) -> bool:
    """Take back "done" on the item (it stays opened). True only if it was marked done."""
    statement = (
        update(ReadingProgress)
        .where(ReadingProgress.patient_id == patient_id, ReadingProgress.track == track, ReadingProgress.week == week,
               ReadingProgress.done_at.is_not(None))
        .values(done_at=None)
        .returning(ReadingProgress.id)
    )
    return session.execute(statement).first() is not None


# What staff see


@dataclass(frozen=True)
class PatientSummary:
    patient: Patient
    has_account: bool
    reading: PatientReading

    @property
    def track_label(self) -> str | None:
        return TRACK_LABELS.get(self.reading.track or "", self.reading.track)

    @property
    def upcoming_label(self) -> str | None:
        placement = self.reading.placement
        if placement is None or placement.upcoming is None:
            return None
        return TRACK_LABELS.get(placement.upcoming.track, placement.upcoming.track)


def summaries(session: Session, domain: DomainConfig, patients: Iterable[Patient], *,
              now: dt.datetime) -> list[PatientSummary]:
    """Each patient's track, week and what they have read and done, in a fixed number of queries."""
    patients = list(patients)
    ids = [p.id for p in patients]
    activations: dict[int, dt.datetime] = {}
    for chunk in chunks(sorted(ids)):
        activations.update((patient_id, created_at) for patient_id, created_at in session.execute(
            select(User.patient_id, User.created_at).where(User.patient_id.in_(chunk))
        ))
    seats = course_seats(session, domain, {p.id: p.tier for p in patients})
    progress, releases = _records(session, ids)
    zone = ZoneInfo(domain.policy.service.timezone)
    found = []
    for p in patients:
        placement = place(tier=p.tier, activated_at=activations.get(p.id), seat=seats.get(p.id), now=now,
                          weeks_in_track=weeks_in_tracks(), zone=zone)
        found.append(PatientSummary(
            patient=p, has_account=p.id in activations,
            reading=PatientReading(placement=placement, now=now, progress=progress[p.id],
                                   releases=releases[p.id]),
        ))
    return found


def cohort_patients(session: Session, cohort_id: int) -> tuple[Cohort, list[Patient]] | None:
    """A cohort and the patients with an active seat on it, by name; None if there is no such cohort."""
    cohort = session.get(Cohort, cohort_id) if 0 < cohort_id < 2**31 else None
    if cohort is None:
        return None
    patients = list(session.scalars(
        select(Patient)
        .join(Booking, and_(Booking.patient_id == Patient.id, Booking.cohort_id == cohort.id,
                            Booking.status == "active"))
        .order_by(Patient.family_name, Patient.given_name, Patient.id)
    ))
    return cohort, patients
