"""When questionnaires fall due: baseline, end of course and follow-up, as Europe/London dates.

- In a course (an active booking on a cohort that is not cancelled): baseline on the day of the first
  scheduled session, end on the day of the last, follow-up ``follow_up_months`` after the end. A patient
  holding seats on two courses (a Tier 1 Group they finished, then the Tier 2 Programme after re-triage)
  follows the course of their own tier, as their weekly reading does.
- Not in a course: baseline on the day the account was activated, follow-up ``follow_up_months`` after it.
- One baseline per episode of care, not one per track: a patient not in a course now who has answered a
  baseline (a course's, before they withdrew or their cohort was cancelled) is not asked another. Their plan
  goes on from the latest baseline they answered, on its track: a follow-up ``follow_up_months`` after it, as
  the general track has. Reports pair a follow-up with the baseline of its own track, so the track is kept.

Outcome measures are per episode of care. A patient discharged and then referred again starts a new episode on
the new referral's triage date (``Patient.episode_started_on``): their plan is worked out afresh from it, under
set keys of their own (the plan name carries ``@`` and the date), so answers from before the discharge neither
complete nor lapse the new sets. A course that began before the new episode belongs to the old one.

One set is due at a time: the latest occasion whose day has come. An earlier set left unfinished lapses
when the next one falls due (its drafts stay drafts, never scored). Dates are local calendar days, so a
session at 18:00 or an activation just after midnight in summer falls on the day people see.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from portal.auth.models import Role, User
from portal.booking.models import Booking, Cohort, CohortSession
from portal.db import read_rows
from portal.patients.models import Patient
from portal.questionnaires.instruments import OCCASIONS, Instrument
from portal.questionnaires.models import QuestionnaireResponse

LONDON = ZoneInfo("Europe/London")
GENERAL = "general"


@dataclass(frozen=True)
class Occasion:
    occasion: str  # baseline, end or follow_up
    plan: str  # "general" or "course-{service_key}"
    due_on: dt.date

    @property
    def set_key(self) -> str:
        return f"{self.plan}:{self.occasion}"


@dataclass(frozen=True)
class CourseDates:
    service_key: str
    first_day: dt.date
    last_day: dt.date


@dataclass(frozen=True)
class DueSet:
    """The questionnaires a patient has to fill in now, and how far they have got."""

    occasion: Occasion
    instruments: tuple[Instrument, ...]
    submitted: frozenset[str]
    started: frozenset[str]

    @property
    def set_key(self) -> str:
        return self.occasion.set_key

    @property
    def due_on(self) -> dt.date:
        return self.occasion.due_on

    @property
    def label(self) -> str:
        return OCCASIONS[self.occasion.occasion]

    @property
    def remaining(self) -> tuple[Instrument, ...]:
        return tuple(i for i in self.instruments if i.key not in self.submitted)

    @property
    def complete(self) -> bool:
        return not self.remaining

    def includes(self, instrument_key: str) -> bool:
        return any(i.key == instrument_key for i in self.instruments)

    def status_of(self, instrument_key: str) -> str:
        if instrument_key in self.submitted:
            return "done"
        return "started" if instrument_key in self.started else "not-started"

    def to_resume(self) -> Instrument | None:
        """Where "Continue" goes: a measure the patient started and saved, or else the next one not answered."""
        started = next((i for i in self.instruments if i.key in self.started and i.key not in self.submitted), None)
        return started or self.next_after()

    def next_after(self, instrument_key: str | None = None) -> Instrument | None:
        """The next measure still to answer, after the given one (wrapping round to earlier skipped ones)."""
        keys = [i.key for i in self.instruments]
        start = keys.index(instrument_key) + 1 if instrument_key in keys else 0
        ordered = self.instruments[start:] + self.instruments[:start]
        return next((i for i in ordered if i.key not in self.submitted and i.key != instrument_key), None)


def local_day(moment: dt.datetime) -> dt.date:
    return moment.astimezone(LONDON).date()


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` calendar months later, or the month's last day (31 Aug + 3 months = 30 Nov)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _episode_of(plan_name: str) -> str:
    """"@2026-11-20" of "course-t1-group@2026-11-20"; "" of a plan of the first referral."""
    _, at, day = plan_name.partition("@")
    return at + day


def plan(*, activated_on: dt.date | None, course: CourseDates | None, follow_up_months: int,
         answered_baseline: Occasion | None = None, episode_start: dt.date | None = None) -> list[Occasion]:
    """Every occasion of the patient's current plan, earliest first. ``answered_baseline`` is the latest
    baseline the patient has submitted any measure of (``latest_baselines``): out of a course, their plan goes
    on from it rather than asking a baseline again, if it belongs to this episode of care. ``episode_start``: the
    triage date of a new referral after a discharge (None on the first referral); the caller leaves out a course
    begun before it."""
    episode = f"@{episode_start.isoformat()}" if episode_start is not None else ""
    if answered_baseline is not None and _episode_of(answered_baseline.plan) != episode:
        answered_baseline = None  # answered in an earlier episode: the new one has a baseline of its own
    if course is not None:
        name = f"course-{course.service_key}{episode}"
        return [
            Occasion("baseline", name, course.first_day),
            Occasion("end", name, course.last_day),
            Occasion("follow_up", name, add_months(course.last_day, follow_up_months)),
        ]
    if answered_baseline is not None:
        return [
            answered_baseline,
            Occasion("follow_up", answered_baseline.plan, add_months(answered_baseline.due_on, follow_up_months)),
        ]
    if activated_on is None:
        return []
    start = max(activated_on, episode_start) if episode_start is not None else activated_on
    return [
        Occasion("baseline", GENERAL + episode, start),
        Occasion("follow_up", GENERAL + episode, add_months(start, follow_up_months)),
    ]


def course_plan_key(set_key: str) -> str | None:
    """The course's service key of a set key ("course-t1-group@2026-11-20:end" -> "t1-group"), or None for the
    general plan."""
    name = set_key.rsplit(":", 1)[0].split("@", 1)[0]
    return name.removeprefix("course-") if name.startswith("course-") else None


def current_occasion(occasions: list[Occasion], today: dt.date) -> Occasion | None:
    """The latest occasion whose day has come; earlier ones have lapsed."""
    reached = [o for o in occasions if o.due_on <= today]
    return max(reached, key=lambda o: o.due_on) if reached else None


# Course days per active booking: the first and last scheduled sessions of a cohort that still runs.
_COURSES = (
    select(
        Booking.patient_id,
        Patient.tier,
        Cohort.service_key,
        Cohort.timezone,
        func.min(CohortSession.starts_at),
        func.max(CohortSession.starts_at),
    )
    .join(Cohort, Booking.cohort_id == Cohort.id)
    .join(CohortSession, CohortSession.cohort_id == Cohort.id)
    .join(Patient, Patient.id == Booking.patient_id)
    .where(Booking.status == "active", Cohort.status != "cancelled", CohortSession.status == "scheduled")
    .group_by(Booking.id, Booking.patient_id, Patient.tier, Cohort.service_key, Cohort.timezone)
)


_COURSES_OF = _COURSES.where(Booking.patient_id.in_(bindparam("patient_ids", expanding=True)))


def courses_by_patient(session: Session, course_tiers: Mapping[str, int], patient_ids: list[int] | None = None,
                       *, episode_starts: Mapping[int, dt.date] | None = None) -> dict[int, CourseDates]:
    """Each patient's course, should they hold seats on two: the one of their own tier (``course_tiers``: each
    course's tier, from the catalogue), then the one that starts first. A Tier 1 patient re-triaged to Tier 2
    keeps their finished Group seat, and their Programme's questionnaires must not wait behind it. A course that
    began before the patient's new episode of care (``episode_starts``, by patient) is not theirs now."""
    episode_starts = episode_starts or {}
    # Every booking (the scheduler's jobs) streams through SQLAlchemy; a few patients' are a prepared read.
    rows = session.connection().execute(_COURSES) if patient_ids is None else read_rows(
        session, _COURSES_OF, {"patient_ids": patient_ids})
    found: dict[int, tuple[tuple[bool, dt.date], CourseDates]] = {}
    for patient_id, tier, service_key, zone, first, last in rows:
        tz = ZoneInfo(zone)
        dates = CourseDates(service_key, first.astimezone(tz).date(), last.astimezone(tz).date())
        episode_start = episode_starts.get(patient_id)
        if episode_start is not None and dates.first_day < episode_start:
            continue
        rank = (course_tiers.get(service_key) != tier, dates.first_day)
        if patient_id not in found or rank < found[patient_id][0]:
            found[patient_id] = (rank, dates)
    return {patient_id: dates for patient_id, (_, dates) in found.items()}


def answered(set_key: str, due_on: dt.date) -> Occasion:
    """The occasion of a set the patient has answered, from its stored key and day."""
    plan_name, _, occasion = set_key.rpartition(":")
    return Occasion(occasion, plan_name, due_on)


def _of_the_patient(column):
    return select(column).where(QuestionnaireResponse.patient_id == bindparam("patient_id"),
                                QuestionnaireResponse.occasion == "baseline",
                                QuestionnaireResponse.status == "submitted") \
        .order_by(QuestionnaireResponse.due_on.desc(), QuestionnaireResponse.id.desc()).limit(1).scalar_subquery()


# Where a patient not in a course starts from, in one read: when they activated their account, and the latest
# baseline they answered (its set and day), if any.
_STARTING_POINT = select(
    select(User.created_at).where(User.patient_id == bindparam("patient_id"), User.role == Role.PATIENT.value)
    .scalar_subquery(),
    _of_the_patient(QuestionnaireResponse.set_key),
    _of_the_patient(QuestionnaireResponse.due_on),
)


def starting_point(session: Session, patient_id: int) -> tuple[dt.date | None, Occasion | None]:
    """The day the patient activated their account, and the latest baseline they have answered, if any."""
    created, set_key, due_on = read_rows(session, _STARTING_POINT, {"patient_id": patient_id}).first()
    return (local_day(created) if created is not None else None,
            answered(set_key, due_on) if set_key is not None else None)
