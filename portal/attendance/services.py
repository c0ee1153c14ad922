"""Taking attendance: today's sessions and clinics, group registers, 1:1 day lists, and the counts per patient.

A mark may be saved from shortly before a session starts until the end of the day ``correction_days`` after
it (local time). Saving locks the session (or the day's appointments) first and then upserts each changed
mark on the partial unique index, so a double tap or a resubmitted form finds the same rows and writes
nothing twice; each real change is audited with the old and new mark. Reaching a did-not-attend threshold
opens a review (portal.attendance.review) in the same transaction.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, selectinload

from portal.appointments.models import Appointment, AppointmentSlot
from portal.attendance import review
from portal.attendance.models import MARKS, MARKS_AFTER_START, Attendance
from portal.audit.services import Actor, record
from portal.auth.models import Role, User
from portal.booking.models import Booking, Cohort, CohortSession, cohort_facilitator
from portal.dates import LONDON, london_today
from portal.db import upsert_insert
from portal.patients.models import Patient
from portal.settings import DomainConfig

# Staff may take a register as people arrive: marking opens this long before the start.
OPENS_BEFORE = dt.timedelta(minutes=30)


class NotFound(LookupError):
    """No such session, clinician or day (the views answer 404)."""


@dataclass(frozen=True)
class Refusal:
    """Why marks cannot be saved now. ``kind``: 'cancelled' (the session or appointment), 'not_yet' (marking
    opens at ``opens_at``), 'closed' (corrections ended after ``last_day``) or 'mark_not_yet' (``mark``, one of
    MARKS_AFTER_START, before the start, ``opens_at``). The views put it in words."""

    kind: str
    opens_at: dt.datetime | None = None
    last_day: dt.date | None = None
    mark: str | None = None


class MarkingRefused(Exception):
    """Marks cannot be saved now. ``row`` is the day list's line at fault, if the refusal is about one."""

    def __init__(self, refusal: Refusal, row: Row | None = None) -> None:
        super().__init__(refusal.kind)
        self.refusal = refusal
        self.row = row


@dataclass(frozen=True)
class Window:
    """When marks for something starting at ``starts_at`` may be saved: [opens_at, closes_at)."""

    opens_at: dt.datetime
    closes_at: dt.datetime

    def state(self, now: dt.datetime) -> str:
        if now < self.opens_at:
            return "not_yet"
        return "open" if now < self.closes_at else "closed"

    @property
    def last_day(self) -> dt.date:
        """The last local day on which corrections are allowed."""
        return (self.closes_at.astimezone(LONDON) - dt.timedelta(days=1)).date()


def marking_window(domain: DomainConfig, starts_at: dt.datetime) -> Window:
    local_day = starts_at.astimezone(LONDON).date()
    days = domain.policy.attendance.correction_days
    closes = dt.datetime.combine(local_day + dt.timedelta(days=days + 1), dt.time(), tzinfo=LONDON)
    return Window(opens_at=starts_at - OPENS_BEFORE, closes_at=closes.astimezone(dt.UTC))


def _day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(day, dt.time(), tzinfo=LONDON)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=LONDON)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def _refusal(window: Window, now: dt.datetime) -> Refusal | None:
    state = window.state(now)
    if state == "not_yet":
        return Refusal("not_yet", opens_at=window.opens_at)
    if state == "closed":
        return Refusal("closed", last_day=window.last_day)
    return None


# --- Who may mark -------------------------------------------------------------------------------------------


def is_admin(user: User) -> bool:
    return user.role == Role.ADMIN.value


def may_mark_register(user: User, cohort: Cohort) -> bool:
    """The cohort's facilitators and admins mark its registers; other clinical staff may only read them."""
    return is_admin(user) or any(f.id == user.id for f in cohort.facilitators)


def may_mark_clinic(user: User, clinician_id: int) -> bool:
    return is_admin(user) or user.id == clinician_id


# --- Today --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupSessionToday:
    cohort_session: CohortSession
    patients: int
    marked: int


@dataclass(frozen=True)
class ClinicToday:
    clinician: User
    day: dt.date
    appointments: int
    marked: int
    first_at: dt.datetime
    last_at: dt.datetime


@dataclass(frozen=True)
class Today:
    day: dt.date
    groups: list[GroupSessionToday]
    clinics: list[ClinicToday]


def sessions_today(session: Session, user: User, *, now: dt.datetime) -> Today:
    """The group sessions ``user`` facilitates today and their own 1:1 clinic; everyone's for an admin."""
    day = london_today(now)
    start, end = _day_bounds(day)
    groups = (
        select(CohortSession)
        .join(Cohort, CohortSession.cohort_id == Cohort.id)
        .where(CohortSession.starts_at >= start, CohortSession.starts_at < end)
        .options(selectinload(CohortSession.cohort).selectinload(Cohort.facilitators))
        .order_by(CohortSession.starts_at, CohortSession.id)
    )
    if not is_admin(user):
        groups = groups.where(Cohort.id.in_(
            select(cohort_facilitator.c.cohort_id).where(cohort_facilitator.c.user_id == user.id)))
    found = list(session.scalars(groups))
    # Counted as the registers list them, so "all marked" means every patient on the register has a mark.
    booked = _count_by(session, select(CohortSession.id, func.count(func.distinct(Booking.patient_id)))
                       .join(Booking, _on_register(CohortSession))
                       .where(CohortSession.id.in_([s.id for s in found])).group_by(CohortSession.id))
    marked = _count_by(session, select(Attendance.cohort_session_id, func.count()).where(
        Attendance.cohort_session_id.in_([s.id for s in found])).group_by(Attendance.cohort_session_id))
    group_rows = [GroupSessionToday(s, booked.get(s.id, 0), marked.get(s.id, 0)) for s in found]

    clinics = (
        select(AppointmentSlot.clinician_id, func.count(Appointment.id), func.count(Attendance.id),
               func.min(AppointmentSlot.starts_at), func.max(AppointmentSlot.starts_at))
        .join(Appointment, Appointment.slot_id == AppointmentSlot.id)
        .outerjoin(Attendance, Attendance.appointment_id == Appointment.id)
        .where(AppointmentSlot.starts_at >= start, AppointmentSlot.starts_at < end, Appointment.status == "active")
        .group_by(AppointmentSlot.clinician_id)
    )
    if not is_admin(user):
        clinics = clinics.where(AppointmentSlot.clinician_id == user.id)
    rows = session.execute(clinics).all()
    people = {u.id: u for u in session.scalars(select(User).where(User.id.in_([r[0] for r in rows])))}
    clinic_rows = sorted(
        (ClinicToday(people[r[0]], day, r[1], r[2], r[3], r[4]) for r in rows),
        key=lambda c: (c.first_at, c.clinician.display_name),
    )
    return Today(day=day, groups=group_rows, clinics=clinic_rows)


def _count_by(session: Session, query) -> dict[int, int]:
    return {key: count for key, count in session.execute(query).all()}


# --- Registers and day lists --------------------------------------------------------------------------------


@dataclass
class Row:
    """One line of a register or day list. ``key`` names its form field: the patient's id on a group register,
    the appointment's id on a day list."""

    key: int
    patient: Patient
    starts_at: dt.datetime
    mark: str | None
    window: Window
    appointment: Appointment | None = None
    refusal: Refusal | None = None
    # On a group register: when the patient left the group (withdrew, or moved to another), if they have.
    left_at: dt.datetime | None = None

    @property
    def state(self) -> str:
        return "open" if self.refusal is None else self.refusal.kind

    @property
    def mark_label(self) -> str:
        return MARKS[self.mark] if self.mark else "Not marked"


@dataclass
class Register:
    cohort_session: CohortSession
    window: Window
    rows: list[Row]
    # None when marks may be saved now; otherwise why not.
    refusal: Refusal | None

    @property
    def cohort(self) -> Cohort:
        return self.cohort_session.cohort


def _group_session(session: Session, cohort_session_id: int, *, lock: bool = False) -> CohortSession:
    if not 0 < cohort_session_id < 2**31:
        raise NotFound(cohort_session_id)
    query = select(CohortSession).where(CohortSession.id == cohort_session_id)
    if lock:
        # Serialises saves of one register on PostgreSQL (SQLite's BEGIN IMMEDIATE already does).
        query = query.with_for_update()
    found = session.scalars(query).one_or_none()
    if found is None:
        raise NotFound(cohort_session_id)
    return found


def _register_refusal(domain: DomainConfig, cohort_session: CohortSession, now: dt.datetime) -> Refusal | None:
    if cohort_session.status == "cancelled" or cohort_session.cohort.status == "cancelled":
        return Refusal("cancelled")
    return _refusal(marking_window(domain, cohort_session.starts_at), now)


def _on_register(cohort_session: CohortSession | type[CohortSession]):
    """Who belongs on a session's register: everyone with an active seat on the cohort, and anyone who withdrew
    or was moved to another group after the session began (they were in the room, or meant to be, and their mark
    may be taken or corrected the next morning), and anyone already marked for it (a mark never vanishes).

    A condition on Booking, for one session, or given the CohortSession class, for the session joined to it."""
    marked = select(Attendance.id).where(Attendance.cohort_session_id == cohort_session.id,
                                         Attendance.patient_id == Booking.patient_id).exists()
    return (Booking.cohort_id == cohort_session.cohort_id) & (
        (Booking.status == "active")
        | (Booking.cancelled_at > cohort_session.starts_at)
        | marked
    )


def _register_patient_ids(session: Session, cohort_session: CohortSession) -> set[int]:
    return set(session.scalars(select(Booking.patient_id).where(_on_register(cohort_session))))


def group_register(session: Session, domain: DomainConfig, cohort_session_id: int, *, now: dt.datetime) -> Register:
    """The register of one group session: the patients who held a seat on its cohort when it began, and their
    marks. A patient who has since left the group shows with ``left_at`` set."""
    cohort_session = _group_session(session, cohort_session_id)
    bookings = session.scalars(
        select(Booking)
        .join(Patient, Booking.patient_id == Patient.id)
        .where(_on_register(cohort_session))
        .options(selectinload(Booking.patient))
        # The active seat first, so a patient with an older, ended seat on the cohort as well is listed once.
        .order_by(Patient.family_name, Patient.given_name, Booking.patient_id, Booking.status, Booking.id.desc())
    ).all()
    marks = dict(session.execute(
        select(Attendance.patient_id, Attendance.mark).where(Attendance.cohort_session_id == cohort_session.id)
    ).all())
    window = marking_window(domain, cohort_session.starts_at)
    refusal = _register_refusal(domain, cohort_session, now)
    rows, listed = [], set()
    for b in bookings:
        if b.patient_id in listed:
            continue
        listed.add(b.patient_id)
        rows.append(Row(b.patient_id, b.patient, cohort_session.starts_at, marks.get(b.patient_id), window,
                        refusal=refusal, left_at=b.cancelled_at if b.status != "active" else None))
    return Register(cohort_session, window, rows, refusal)


@dataclass(frozen=True)
class Change:
    patient_id: int
    old: str | None
    new: str


@dataclass
class Saved:
    changes: list[Change] = field(default_factory=list)
    reviews_opened: list[int] = field(default_factory=list)


def too_early_for(mark: str | None, starts_at: dt.datetime, now: dt.datetime) -> bool:
    """Marking opens before the start, for people as they arrive; but nobody is late or has not attended until
    it starts (and a DNA counts towards a review)."""
    return mark in MARKS_AFTER_START and now < starts_at


def _early_refusal(marks: dict[int, str], existing: dict[int, str | None], starts_at: dt.datetime,
                   now: dt.datetime) -> Refusal | None:
    """The refusal for the first changed mark (by key) that must wait for the start, if any."""
    for key, mark in sorted(marks.items()):
        if existing.get(key) != mark and too_early_for(mark, starts_at, now):
            return Refusal("mark_not_yet", opens_at=starts_at, mark=mark)
    return None


def _check_marks(marks: dict[int, str], allowed_keys: set[int]) -> None:
    unknown = set(marks) - allowed_keys
    if unknown:
        raise ValueError(f"not on this list: {sorted(unknown)}")
    bad = {mark for mark in marks.values() if mark not in MARKS}
    if bad:
        raise ValueError(f"unknown marks: {sorted(bad)}")


_MARK_COLUMNS = ("patient_id", "cohort_session_id", "appointment_id", "service_key", "starts_at", "mark",
                 "recorded_by_id", "recorded_at", "updated_at")


def _upsert_mark(session: Session, values: dict) -> None:
    """Insert the mark, or change the one already there: the partial unique index is the conflict target."""
    connection = session.connection()
    insert = upsert_insert(connection.dialect.name)(Attendance).values(
        {name: values.get(name) for name in _MARK_COLUMNS})
    if values.get("cohort_session_id") is not None:
        target = {"index_elements": ["cohort_session_id", "patient_id"],
                  "index_where": text("cohort_session_id IS NOT NULL")}
    else:
        target = {"index_elements": ["appointment_id"], "index_where": text("appointment_id IS NOT NULL")}
    connection.execute(insert.on_conflict_do_update(
        **target,
        set_={"mark": insert.excluded.mark, "recorded_by_id": insert.excluded.recorded_by_id,
              "updated_at": insert.excluded.updated_at},
    ))


def save_register(
    session: Session,
    domain: DomainConfig,
    cohort_session_id: int,
    marks: dict[int, str],
    *,
    actor: Actor,
    now: dt.datetime,
) -> Saved:
    """Save marks (patient id -> mark) for one group session, in the caller's transaction.

    Unchanged marks write nothing. Raises NotFound, MarkingRefused (cancelled, not started, past the correction
    window, or a late or did-not-attend mark before the start) or ValueError (a patient not on the register, or
    an unknown mark).
    """
    cohort_session = _group_session(session, cohort_session_id, lock=True)
    refusal = _register_refusal(domain, cohort_session, now)
    if refusal is not None:
        raise MarkingRefused(refusal)
    cohort = cohort_session.cohort
    _check_marks(marks, _register_patient_ids(session, cohort_session))
    existing = dict(session.execute(
        select(Attendance.patient_id, Attendance.mark).where(Attendance.cohort_session_id == cohort_session.id)
    ).all())
    early = _early_refusal(marks, existing, cohort_session.starts_at, now)
    if early is not None:
        raise MarkingRefused(early)
    saved = Saved()
    for patient_id, mark in sorted(marks.items()):
        old = existing.get(patient_id)
        if old == mark:
            continue
        _upsert_mark(session, {
            "patient_id": patient_id, "cohort_session_id": cohort_session.id, "service_key": cohort.service_key,
            "starts_at": cohort_session.starts_at, "mark": mark, "recorded_by_id": actor.user_id,
            "recorded_at": now, "updated_at": now,
        })
        record(session, actor, "attendance_marked" if old is None else "attendance_corrected", patient_id=patient_id,
               detail=f"cohort {cohort.id} session {cohort_session.number} ({cohort_session.id}): "
                      f"{old or 'not marked'} -> {mark}")
        saved.changes.append(Change(patient_id, old, mark))
    for change in saved.changes:
        if change.new == "dna":
            opened = review.open_if_course_threshold(session, domain, patient_id=change.patient_id, cohort=cohort,
                                                     actor=actor, now=now)
            if opened is not None:
                saved.reviews_opened.append(opened)
        elif change.old == "dna":
            review.withdraw_if_no_longer_met(session, domain, patient_id=change.patient_id,
                                             service_key=cohort.service_key, actor=actor, now=now)
    return saved


@dataclass
class DayList:
    clinician: User
    day: dt.date
    rows: list[Row]

    @property
    def open_rows(self) -> list[Row]:
        return [r for r in self.rows if r.state == "open"]


def _clinic_appointments(session: Session, clinician_id: int, day: dt.date, *, lock: bool = False) -> list[Appointment]:
    start, end = _day_bounds(day)
    marked = select(Attendance.appointment_id).where(Attendance.appointment_id.is_not(None))
    query = (
        select(Appointment)
        .join(AppointmentSlot, Appointment.slot_id == AppointmentSlot.id)
        .where(AppointmentSlot.clinician_id == clinician_id, AppointmentSlot.starts_at >= start,
               AppointmentSlot.starts_at < end,
               # Active ones, and any already marked (a mark never vanishes from the list).
               (Appointment.status == "active") | Appointment.id.in_(marked))
        .order_by(AppointmentSlot.starts_at, Appointment.id)
    )
    if lock:
        query = query.with_for_update(of=Appointment)
    else:
        query = query.options(selectinload(Appointment.patient))
    return list(session.scalars(query))


def _clinician(session: Session, clinician_id: int) -> User:
    user = session.get(User, clinician_id) if 0 < clinician_id < 2**31 else None
    if user is None or not user.is_staff or user.role == Role.RECEPTION.value:
        raise NotFound(clinician_id)
    return user


def _appointment_refusal(domain: DomainConfig, appointment: Appointment, now: dt.datetime) -> Refusal | None:
    if appointment.status != "active":
        return Refusal("cancelled")
    return _refusal(marking_window(domain, appointment.starts_at), now)


def _day_rows(session: Session, domain: DomainConfig, appointments: list[Appointment], now: dt.datetime) -> list[Row]:
    marks = dict(session.execute(
        select(Attendance.appointment_id, Attendance.mark)
        .where(Attendance.appointment_id.in_([a.id for a in appointments]))
    ).all())
    return [Row(a.id, a.patient, a.starts_at, marks.get(a.id), marking_window(domain, a.starts_at), appointment=a,
                refusal=_appointment_refusal(domain, a, now)) for a in appointments]


def day_list(session: Session, domain: DomainConfig, clinician_id: int, day: dt.date, *, now: dt.datetime) -> DayList:
    """A clinician's 1:1 appointments on one local day, with their marks."""
    clinician = _clinician(session, clinician_id)
    return DayList(clinician, day, _day_rows(session, domain, _clinic_appointments(session, clinician.id, day), now))


def save_day_list(
    session: Session,
    domain: DomainConfig,
    clinician_id: int,
    day: dt.date,
    marks: dict[int, str],
    *,
    actor: Actor,
    now: dt.datetime,
) -> Saved:
    """Save marks (appointment id -> mark) for a clinician's day, in the caller's transaction.

    Raises NotFound, MarkingRefused (naming the appointment whose mark cannot change now) or ValueError.
    """
    clinician = _clinician(session, clinician_id)
    appointments = _clinic_appointments(session, clinician.id, day, lock=True)
    _check_marks(marks, {a.id for a in appointments})
    rows = {row.key: row for row in _day_rows(session, domain, appointments, now)}
    changed = [rows[key] for key, mark in sorted(marks.items()) if rows[key].mark != mark]
    for row in changed:
        if row.refusal:
            raise MarkingRefused(row.refusal, row)
        early = _early_refusal({row.key: marks[row.key]}, {row.key: row.mark}, row.starts_at, now)
        if early is not None:
            raise MarkingRefused(early, row)
    saved = Saved()
    for row in changed:
        appointment, old, mark = row.appointment, row.mark, marks[row.key]
        _upsert_mark(session, {
            "patient_id": appointment.patient_id, "appointment_id": appointment.id,
            "service_key": appointment.service_key, "starts_at": appointment.starts_at, "mark": mark,
            "recorded_by_id": actor.user_id, "recorded_at": now, "updated_at": now,
        })
        record(session, actor, "attendance_marked" if old is None else "attendance_corrected",
               patient_id=appointment.patient_id,
               detail=f"appointment {appointment.id} ({appointment.service_key}): {old or 'not marked'} -> {mark}")
        saved.changes.append(Change(appointment.patient_id, old, mark))
    for row in changed:
        appointment, mark = row.appointment, marks[row.key]
        if mark == "dna":
            opened = review.open_if_appointment_threshold(
                session, domain, patient_id=appointment.patient_id, service_key=appointment.service_key,
                actor=actor, now=now)
            if opened is not None:
                saved.reviews_opened.append(opened)
        elif row.mark == "dna":
            review.withdraw_if_no_longer_met(session, domain, patient_id=appointment.patient_id,
                                             service_key=appointment.service_key, actor=actor, now=now)
    return saved


# --- Counts and history, for the patient's record -----------------------------------------------------------


@dataclass(frozen=True)
class ServiceAttendance:
    """One patient's marks for one service, each kind counted apart (only DNAs count towards a review)."""

    service_key: str
    attended: int = 0
    late: int = 0
    dna: int = 0
    could_not_attend: int = 0
    late_cancellation: int = 0

    @property
    def total(self) -> int:
        return self.attended + self.late + self.dna + self.could_not_attend + self.late_cancellation


def attendance_summary(session: Session, patient_id: int) -> list[ServiceAttendance]:
    """Per service the patient has marks for: how many of each mark, kept apart. Services by key."""
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    for service_key, mark, count in session.execute(
        select(Attendance.service_key, Attendance.mark, func.count())
        .where(Attendance.patient_id == patient_id)
        .group_by(Attendance.service_key, Attendance.mark)
    ):
        counts[service_key][mark] = count
    return [ServiceAttendance(service_key=key, **marks) for key, marks in sorted(counts.items())]


def attendance_history(session: Session, patient_id: int, *, limit: int = 200) -> list[Attendance]:
    """The patient's marks, newest session first (``mark``, ``service_key``, ``starts_at``, ``recorded_by``)."""
    return list(session.scalars(
        select(Attendance)
        .where(Attendance.patient_id == patient_id)
        .options(selectinload(Attendance.recorded_by))
        .order_by(Attendance.starts_at.desc(), Attendance.id.desc())
        .limit(limit)
    ))
