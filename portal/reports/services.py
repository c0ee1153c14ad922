"""Service reports: a few aggregate queries each, grouped by London calendar month, team and service.

Months are Europe/London calendar months. Timestamps are stored in UTC, so a month is the span between two
London midnights turned into UTC (the clock changes move them by an hour); the month of a row is found by a
balanced CASE over those bounds, which runs the same on SQLite and PostgreSQL. Dates (triage, a cohort's first
day) are London dates already.

Every report returns a ``Report``: ``rows`` for the page (one per month, or per measure), and ``detail`` for
the CSV export (one row per month, team and service). Percentiles are linear between closest ranks, as
PostgreSQL's ``percentile_cont`` and a spreadsheet's PERCENTILE: the waits of one group are fetched sorted in
one query and the median and 90th percentile worked out here, so it runs on both databases alike.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, Date, Integer, and_, case, cast, func, literal, or_, select, union_all
from sqlalchemy.orm import Session

from portal.appointments.models import Appointment
from portal.attendance.models import ATTENDED_MARKS, MARKS, Attendance
from portal.booking.models import Booking, Cohort
from portal.dates import london_midnight, short_month
from portal.messaging.models import SmsMessage
from portal.patients.models import Patient
from portal.questionnaires.instruments import BY_KEY
from portal.questionnaires.models import QuestionnaireResponse
from portal.questionnaires.schedule import course_plan_key
from portal.settings import DomainConfig

# The longest range a report covers (the filters refuse more).
MAX_MONTHS = 36
NO_TEAM = "none"


@dataclass(frozen=True)
class Filters:
    """What a report covers: whole London months from ``first_month`` to ``last_month`` (both the 1st)."""

    first_month: dt.date
    last_month: dt.date
    team: str | None = None
    service: str | None = None

    def __post_init__(self) -> None:
        if self.first_month.day != 1 or self.last_month.day != 1:
            raise ValueError("months are given by their first day")
        if self.last_month < self.first_month:
            raise ValueError("the last month is before the first")
        if len(self.months) > MAX_MONTHS:
            raise ValueError(f"a report covers at most {MAX_MONTHS} months")

    @property
    def months(self) -> list[dt.date]:
        out, month = [], self.first_month
        while month <= self.last_month:
            out.append(month)
            month = add_months(month, 1)
        return out

    @property
    def end_date(self) -> dt.date:
        """The day after the last month."""
        return add_months(self.last_month, 1)


def add_months(month: dt.date, count: int) -> dt.date:
    index = month.year * 12 + month.month - 1 + count
    return dt.date(index // 12, index % 12 + 1, 1)


def default_filters(today: dt.date) -> Filters:
    """The last 12 months, this one included."""
    this_month = today.replace(day=1)
    return Filters(first_month=add_months(this_month, -11), last_month=this_month)


def month_label(month: dt.date) -> str:
    return short_month(month)


def _bucket(column: ColumnElement, starts: Sequence[object], lo: int, hi: int) -> ColumnElement:
    """The index of the month ``column`` falls in, for a value already known to be in [starts[lo], starts[hi])."""
    if hi - lo == 1:
        return literal(lo)
    mid = (lo + hi) // 2
    return case((column < starts[mid], _bucket(column, starts, lo, mid)), else_=_bucket(column, starts, mid, hi))


def _month_of(column: ColumnElement, filters: Filters, *, dates: bool) -> tuple[ColumnElement, ColumnElement]:
    """(month index expression, the WHERE clause keeping the range) for a Date or a UTC datetime column."""
    months = filters.months
    bounds: list[object] = [*months, filters.end_date]
    if not dates:
        bounds = [london_midnight(day) for day in bounds]  # type: ignore[arg-type]
    in_range = and_(column >= bounds[0], column < bounds[-1])
    return _bucket(column, bounds, 0, len(months)).label("month"), in_range


def percentile(ordered: Sequence[float], fraction: float) -> float | None:
    """Linear interpolation between closest ranks (PostgreSQL percentile_cont); ``ordered`` is sorted."""
    if not ordered:
        return None
    rank = (len(ordered) - 1) * fraction
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _rate(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    # count, days, percent, number (one decimal), money (pounds) or text
    kind: str = "count"


@dataclass
class Report:
    name: str
    columns: list[Column]
    rows: list[dict]
    detail_columns: list[Column]
    detail: list[dict] = field(default_factory=list)
    # What the report cannot be filtered by (the page says so next to the filters).
    notes: list[str] = field(default_factory=list)


def _team_label(domain: DomainConfig, team: str | None, tier: int | None = None) -> str:
    if team:
        found = domain.teams.get(team)
        return found.short_name if found else team
    return "Tier 1 (no team)" if tier == 1 else "No team"


def _service_label(domain: DomainConfig, key: str | None) -> str:
    if not key:
        return "No service"
    service = domain.catalogue.get(key)
    return f"{service.name} (Tier {service.tier})" if service else key


def _month_rows(filters: Filters) -> list[dict]:
    return [{"month": month, "label": month_label(month)} for month in filters.months]


MONTH = Column("label", "Month", "text")
TEAM = Column("team", "Team", "text")
SERVICE = Column("service", "Service", "text")


# Patients triaged ------------------------------------------------------------------------------------------


def patients_triaged(session: Session, domain: DomainConfig, filters: Filters, *, detail: bool = True) -> Report:
    """Patients by the month SPOA triaged them, by tier and team. (Triage is to a tier, not a service.)"""
    month, in_range = _month_of(Patient.triage_date, filters, dates=True)
    query = select(month, Patient.tier, Patient.team, func.count()).where(in_range)
    if filters.team:
        query = query.where(Patient.team == filters.team)
    query = query.group_by(month, Patient.tier, Patient.team)
    rows = _month_rows(filters)
    for row in rows:
        row.update(tier1=0, tier2=0, total=0)
    detail_rows = []
    for index, tier, team, count in session.execute(query):
        rows[index][f"tier{tier}"] += count
        rows[index]["total"] += count
        detail_rows.append({"label": month_label(filters.months[index]), "month": filters.months[index], "tier": tier,
                       "team": _team_label(domain, team, tier), "triaged": count})
    detail_rows.sort(key=lambda d: (d["month"], d["tier"], d["team"]))
    notes = ["Patients are triaged to a tier, not to a service, so the service filter does not apply here."]
    return Report(
        name="triaged",
        columns=[MONTH, Column("tier1", "Tier 1"), Column("tier2", "Tier 2"), Column("total", "All patients")],
        rows=rows,
        detail_columns=[MONTH, Column("tier", "Tier"), TEAM, Column("triaged", "Patients triaged")],
        detail=detail_rows,
        notes=notes if filters.service else [],
    )


# Waits -----------------------------------------------------------------------------------------------------


def summer_time_spans(first_year: int, last_year: int) -> list[tuple[dt.datetime, dt.datetime]]:
    """When London is on BST, as UTC spans: from 01:00 UTC on the last Sunday of March to 01:00 UTC on the last
    Sunday of October (the UK rule since 1996; a test checks it against the time zone database)."""
    def last_sunday(year: int, month: int) -> dt.datetime:
        day = dt.date(year, month + 1, 1) - dt.timedelta(days=1)
        day -= dt.timedelta(days=(day.weekday() + 1) % 7)
        return dt.datetime.combine(day, dt.time(1), tzinfo=dt.UTC)

    return [(last_sunday(year, 3), last_sunday(year, 10)) for year in range(first_year, last_year + 1)]


def _days_after(moment: ColumnElement, day: ColumnElement, dialect: str, spans: list) -> ColumnElement:
    """Whole days from the London date ``day`` to the London date of the UTC time ``moment``, in SQL."""
    if dialect == "postgresql":
        return cast(func.timezone("Europe/London", moment), Date) - day
    # SQLite keeps UTC as text: an hour is added to what falls in summer time before taking the date.
    shift = case(*[(and_(moment >= start, moment < end), "+1 hours") for start, end in spans], else_="+0 hours")
    return cast(func.julianday(func.date(moment, shift)) - func.julianday(day), Integer)


def percentile_of_counts(counts: Sequence[tuple[int, int]], fraction: float) -> float | None:
    """``percentile`` of the values that ``counts`` (value, how many; sorted by value) stand for."""
    total = sum(n for _value, n in counts)
    if not total:
        return None
    rank = (total - 1) * fraction
    low = int(rank)

    def value_at(position: int) -> int:
        seen = 0
        for value, n in counts:
            seen += n
            if position < seen:
                return value
        return counts[-1][0]

    below, above = value_at(low), value_at(min(low + 1, total - 1))
    return below + (above - below) * (rank - low)


def waits(session: Session, domain: DomainConfig, filters: Filters, *, detail: bool = True) -> Report:
    """Days from triage to the first booking and to the first attendance, by month of triage: median and 90th
    percentile over the patients who have got that far (with the service filter: that service only).

    The database does the per-patient work (each patient's first booking or attendance, in London days after
    triage) and returns how many patients waited each number of days, per month, tier and team: a few hundred
    rows, from which the percentiles are worked out here."""
    month, in_range = _month_of(Patient.triage_date, filters, dates=True)
    conditions = [in_range] + ([Patient.team == filters.team] if filters.team else [])
    service = filters.service
    dialect = session.get_bind().dialect.name
    # First bookings may come up to two years after the last month of triage.
    spans = summer_time_spans(filters.first_month.year, filters.last_month.year + 2)
    bookings = union_all(
        select(Booking.patient_id.label("patient_id"), Booking.created_at.label("at"))
        .where(*([Booking.service_key == service] if service else [])),
        select(Appointment.patient_id, Appointment.created_at)
        .where(*([Appointment.service_key == service] if service else [])),
    ).subquery("bookings")
    attended = (
        select(Attendance.patient_id.label("patient_id"), func.min(Attendance.starts_at).label("at"))
        .where(Attendance.mark.in_(sorted(ATTENDED_MARKS)), *([Attendance.service_key == service] if service else []))
        .group_by(Attendance.patient_id)
    ).subquery("attended")
    keys = (month, Patient.tier, Patient.team)

    def histogram(firsts, *, earliest: bool) -> dict[tuple, list[tuple[int, int]]]:
        days = _days_after(firsts.c.at, Patient.triage_date, dialect, spans)
        per_patient = (
            select(*keys, (func.min(days) if earliest else days).label("days"))
            .join_from(Patient, firsts, firsts.c.patient_id == Patient.id).where(*conditions)
        )
        if earliest:
            per_patient = per_patient.group_by(Patient.id, Patient.triage_date, Patient.tier, Patient.team)
        per_patient = per_patient.subquery("per_patient")
        c = per_patient.c
        query = select(c.month, c.tier, c.team, c.days, func.count()).group_by(c.month, c.tier, c.team, c.days)
        found: dict[tuple, list[tuple[int, int]]] = defaultdict(list)
        for index, tier, team, waited, count in session.execute(query):
            found[(index, tier, team)].append((int(waited), count))
        return found

    triaged = {(index, tier, team): count for index, tier, team, count in session.execute(
        select(*keys, func.count()).where(*conditions).group_by(*keys))}
    to_booking = histogram(bookings, earliest=True)
    to_attendance = histogram(attended, earliest=False)

    def merge(groups: Iterable[tuple], source: dict) -> list[tuple[int, int]]:
        merged: dict[int, int] = defaultdict(int)
        for group in groups:
            for waited, count in source.get(group, ()):
                merged[waited] += count
        return sorted(merged.items())

    def figures(groups: list[tuple]) -> dict:
        booked, came = merge(groups, to_booking), merge(groups, to_attendance)
        return {
            "triaged": sum(triaged[group] for group in groups),
            "booked": sum(n for _d, n in booked), "booking_median": percentile_of_counts(booked, 0.5),
            "booking_p90": percentile_of_counts(booked, 0.9),
            "attended": sum(n for _d, n in came), "attendance_median": percentile_of_counts(came, 0.5),
            "attendance_p90": percentile_of_counts(came, 0.9),
        }

    rows = _month_rows(filters)
    for index, row in enumerate(rows):
        row.update(figures([group for group in triaged if group[0] == index]))
    detail_rows = [
        {"label": month_label(filters.months[index]), "month": filters.months[index],
         "team": _team_label(domain, team, tier),
         "service": _service_label(domain, filters.service) if filters.service else "Any service",
         **figures([(index, tier, team)])}
        for index, tier, team in sorted(triaged, key=lambda group: (group[0], group[1], group[2] or ""))
    ] if detail else []
    measures = [
        Column("triaged", "Patients triaged"),
        Column("booked", "Booked so far"), Column("booking_median", "Median days to first booking", "days"),
        Column("booking_p90", "90th percentile days to first booking", "days"),
        Column("attended", "Attended so far"), Column("attendance_median", "Median days to first attendance", "days"),
        Column("attendance_p90", "90th percentile days to first attendance", "days"),
    ]
    return Report(name="waits", columns=[MONTH, *measures], rows=rows,
                  detail_columns=[MONTH, TEAM, SERVICE, *measures], detail=detail_rows)


# Cohort fill -----------------------------------------------------------------------------------------------


def cohort_fill(session: Session, domain: DomainConfig, filters: Filters, *, detail: bool = True) -> Report:
    """Seats taken over places offered, for the cohorts (not cancelled) whose first session is in the month."""
    month, in_range = _month_of(Cohort.first_date, filters, dates=True)
    query = (
        select(month, Cohort.service_key, Cohort.team, func.count(), func.sum(Cohort.capacity),
               func.sum(Cohort.seats_taken))
        .where(in_range, Cohort.status != "cancelled")
        .group_by(month, Cohort.service_key, Cohort.team)
    )
    if filters.team:
        query = query.where(Cohort.team == filters.team)
    if filters.service:
        query = query.where(Cohort.service_key == filters.service)
    rows = _month_rows(filters)
    for row in rows:
        row.update(cohorts=0, places=0, taken=0)
    detail_rows = []
    for index, service, team, cohorts, places, taken in session.execute(query):
        row = rows[index]
        row["cohorts"] += cohorts
        row["places"] += int(places or 0)
        row["taken"] += int(taken or 0)
        detail_rows.append({"label": month_label(filters.months[index]), "month": filters.months[index],
                       "team": _team_label(domain, team), "service": _service_label(domain, service),
                       "cohorts": cohorts, "places": int(places or 0), "taken": int(taken or 0),
                       "fill": _rate(int(taken or 0), int(places or 0))})
    for row in rows:
        row["fill"] = _rate(row["taken"], row["places"])
    detail_rows.sort(key=lambda d: (d["month"], d["service"], d["team"]))
    measures = [Column("cohorts", "Cohorts starting"), Column("places", "Places"), Column("taken", "Seats taken"),
                Column("fill", "Fill rate", "percent")]
    return Report(name="cohort-fill", columns=[MONTH, *measures], rows=rows,
                  detail_columns=[MONTH, TEAM, SERVICE, *measures], detail=detail_rows)


# Attendance ------------------------------------------------------------------------------------------------

# Marks of people who were expected: "cancelled with notice" (could_not_attend) is not, so it is left out of
# the rates' denominator (the NHS DNA rate is DNAs over attendances plus DNAs, late cancellations counted in).
EXPECTED_MARKS = ("attended", "late", "dna", "late_cancellation")


def attendance(session: Session, domain: DomainConfig, filters: Filters, *, detail: bool = True) -> Report:
    """Marks on registers and day lists by month of the session: attendance and DNA rates."""
    month, in_range = _month_of(Attendance.starts_at, filters, dates=False)
    conditions = [in_range]
    if filters.team:
        conditions.append(_of_team(Attendance.patient_id, filters.team))
    if filters.service:
        conditions.append(Attendance.service_key == filters.service)
    rows = _month_rows(filters)
    blank = {mark: 0 for mark in MARKS}
    for row in rows:
        row.update(blank)
    query = select(month, Attendance.mark, func.count()).where(*conditions).group_by(month, Attendance.mark)
    for index, mark, count in session.execute(query):
        rows[index][mark] += count

    def rates(counts: dict) -> dict:
        expected = sum(counts[m] for m in EXPECTED_MARKS)
        came = counts["attended"] + counts["late"]
        return {"expected": expected, "attendance_rate": _rate(came, expected),
                "dna_rate": _rate(counts["dna"], expected)}

    for row in rows:
        row.update(rates(row))
    groups: dict[tuple[int, str, str | None], dict] = defaultdict(lambda: dict(blank))
    if detail:
        query = (
            select(month, Attendance.service_key, Patient.team, Attendance.mark, func.count())
            .outerjoin(Patient, Patient.id == Attendance.patient_id).where(*conditions)
            .group_by(month, Attendance.service_key, Patient.team, Attendance.mark)
        )
        for index, service, team, mark, count in session.execute(query):
            groups[(index, service, team)][mark] += count
    detail_rows = []
    for (index, service, team), counts in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] or "")):
        detail_rows.append({"label": month_label(filters.months[index]), "month": filters.months[index],
                            "team": _team_label(domain, team), "service": _service_label(domain, service),
                            **counts, **rates(counts)})
    measures = [Column(mark, label) for mark, label in MARKS.items()] + [
        Column("attendance_rate", "Attendance rate", "percent"), Column("dna_rate", "DNA rate", "percent")]
    return Report(name="attendance", columns=[MONTH, *measures], rows=rows,
                  detail_columns=[MONTH, TEAM, SERVICE, *measures], detail=detail_rows)


# Texts -----------------------------------------------------------------------------------------------------

SENT_STATUSES = ("sent", "delivered")
FAILED_STATUSES = ("failed", "undelivered")
WAITING_STATUSES = ("pending", "sending")


def segments_expression() -> ColumnElement:
    """GSM-7 segments of a body: one up to 160 characters, then 153 each. Every text the portal writes is
    GSM-7 (messaging.texts checks), so the character count is the GSM-7 length but for the few characters
    that take two (^ { } [ ] ~ | \\ €), which no text template uses."""
    length = func.length(SmsMessage.body)
    return case((length <= 160, 1), else_=(length + 152) / 153)


def texts(session: Session, domain: DomainConfig, filters: Filters, *, detail: bool = True) -> Report:
    """Texts by the month they were written, by status, with the segments billed and what they cost.

    Segments are billed for every text the provider took (it has a provider id, or it is ``unknown``: a
    timeout after the request went out, counted as billed to be safe). Service: the course seat or the 1:1
    appointment the text is about; invitations and codes belong to no service."""
    month, in_range = _month_of(SmsMessage.created_at, filters, dates=False)
    billed = or_(SmsMessage.provider_sid.is_not(None), SmsMessage.status == "unknown")
    segments = func.sum(case((billed, segments_expression()), else_=0))
    conditions = [in_range]
    if filters.team:
        conditions.append(_of_team(SmsMessage.patient_id, filters.team))
    if filters.service:
        conditions.append(or_(
            SmsMessage.booking_id.in_(select(Booking.id).where(Booking.service_key == filters.service)),
            SmsMessage.appointment_id.in_(select(Appointment.id).where(Appointment.service_key == filters.service)),
        ))
    price = domain.policy.sms.price_per_segment_pence
    blank = {"written": 0, "sent": 0, "failed": 0, "unknown": 0, "waiting": 0, "cancelled": 0, "segments": 0}

    def add(target: dict, status: str, count: int, billed_segments: int | None) -> None:
        target["written"] += count
        target["segments"] += int(billed_segments or 0)
        if status in SENT_STATUSES:
            target["sent"] += count
        elif status in FAILED_STATUSES:
            target["failed"] += count
        elif status in WAITING_STATUSES:
            target["waiting"] += count
        else:
            target[status] += count

    rows = _month_rows(filters)
    for row in rows:
        row.update(blank)
    query = select(month, SmsMessage.status, func.count(), segments).where(*conditions).group_by(
        month, SmsMessage.status)
    for index, status, count, billed_segments in session.execute(query):
        add(rows[index], status, count, billed_segments)
    groups: dict[tuple[int, str | None, str | None], dict] = defaultdict(lambda: dict(blank))
    if detail:
        service = func.coalesce(Booking.service_key, Appointment.service_key)
        query = (
            select(month, Patient.team, service.label("service"), SmsMessage.status, func.count(), segments)
            .select_from(SmsMessage)
            .outerjoin(Patient, Patient.id == SmsMessage.patient_id)
            .outerjoin(Booking, Booking.id == SmsMessage.booking_id)
            .outerjoin(Appointment, Appointment.id == SmsMessage.appointment_id)
            .where(*conditions)
            .group_by(month, Patient.team, service, SmsMessage.status)
        )
        for index, team, service_key, status, count, billed_segments in session.execute(query):
            add(groups[(index, team, service_key)], status, count, billed_segments)
    for target in [*rows, *groups.values()]:
        target["cost"] = round(target["segments"] * price / 100, 2)
    detail_rows = [
        {"label": month_label(filters.months[index]), "month": filters.months[index],
         "team": _team_label(domain, team), "service": _service_label(domain, service_key), **counts}
        for (index, team, service_key), counts in sorted(
            groups.items(), key=lambda kv: (kv[0][0], kv[0][1] or "", kv[0][2] or ""))
    ]
    measures = [Column("written", "Texts written"), Column("sent", "Sent or delivered"),
                Column("failed", "Failed"), Column("unknown", "Not known"), Column("waiting", "Waiting to go"),
                Column("cancelled", "Cancelled"), Column("segments", "Segments billed"),
                Column("cost", "Cost", "money")]
    return Report(name="texts", columns=[MONTH, *measures], rows=rows,
                  detail_columns=[MONTH, TEAM, SERVICE, *measures], detail=detail_rows)


# Questionnaires --------------------------------------------------------------------------------------------

LATER_OCCASIONS = ("end", "follow_up")
# What a chart's axis calls each measure (the table gives the full name).
SHORT_NAMES = {"pain_intensity": "Pain intensity", "pain_interference": "Pain interference", "phq9": "PHQ-9",
               "gad7": "GAD-7", "pgic": "PGIC", "bpi": "BPI", "peg": "PEG", "pseq": "PSEQ"}


def questionnaire_change(session: Session, domain: DomainConfig, filters: Filters, *, detail: bool = True) -> Report:
    """Mean change from baseline per measure, at the end (of the course) and at follow-up, for patients who
    submitted both; by the month the later one was submitted. Service: the course whose questionnaires they
    are (the general set, for patients not in a course, belongs to no service)."""
    later = QuestionnaireResponse.__table__.alias("later")
    baseline = QuestionnaireResponse.__table__.alias("baseline")
    month, in_range = _month_of(later.c.submitted_at, filters, dates=False)
    baseline_key = func.replace(func.replace(later.c.set_key, ":end", ":baseline"), ":follow_up", ":baseline")
    change = later.c.score - baseline.c.score
    paired = and_(baseline.c.patient_id == later.c.patient_id, baseline.c.set_key == baseline_key,
                  baseline.c.instrument == later.c.instrument, baseline.c.status == "submitted")
    conditions = [in_range, later.c.occasion.in_(LATER_OCCASIONS), later.c.status == "submitted"]
    if filters.team:
        conditions.append(_of_team(later.c.patient_id, filters.team))
    if filters.service:
        # The course's sets of a first referral, and of any new episode after a discharge ("course-x@date:end").
        conditions.append(or_(
            later.c.set_key.in_([f"course-{filters.service}:{o}" for o in LATER_OCCASIONS]),
            later.c.set_key.startswith(f"course-{filters.service}@", autoescape=True),
        ))
    sums = (func.count(), func.sum(change), func.sum(baseline.c.score))
    totals: dict[str, dict] = {}
    query = (select(later.c.instrument, later.c.occasion, *sums).select_from(later).join(baseline, paired)
             .where(*conditions).group_by(later.c.instrument, later.c.occasion))
    for instrument, occasion, pairs, change_sum, baseline_sum in session.execute(query):
        totals.setdefault(instrument, {o: [0, 0.0, 0.0] for o in LATER_OCCASIONS})
        totals[instrument][occasion] = [pairs, float(change_sum or 0), float(baseline_sum or 0)]
    groups: dict[tuple, list] = defaultdict(lambda: [0, 0.0, 0.0])
    if detail:
        query = (
            select(month, later.c.instrument, later.c.occasion, later.c.set_key, Patient.team, *sums)
            .select_from(later).join(baseline, paired).join(Patient, Patient.id == later.c.patient_id)
            .where(*conditions)
            .group_by(month, later.c.instrument, later.c.occasion, later.c.set_key, Patient.team)
        )
        for index, instrument, occasion, set_key, team, pairs, change_sum, baseline_sum in session.execute(query):
            service = course_plan_key(set_key)
            target = groups[(index, team, service, instrument, occasion)]
            target[0] += pairs
            target[1] += float(change_sum or 0)
            target[2] += float(baseline_sum or 0)

    def mean(total: list) -> tuple[int, float | None, float | None]:
        pairs, change_sum, baseline_sum = total
        return pairs, (round(change_sum / pairs, 2) if pairs else None), (
            round(baseline_sum / pairs, 2) if pairs else None)

    rows = []
    for instrument in sorted(totals, key=_instrument_order):
        row = {"label": _instrument_name(instrument), "short": SHORT_NAMES.get(instrument, instrument),
               "instrument": instrument,
               "direction": _direction(instrument)}
        for occasion in LATER_OCCASIONS:
            pairs, change_mean, baseline_mean = mean(totals[instrument][occasion])
            row.update({f"{occasion}_pairs": pairs, f"{occasion}_baseline": baseline_mean,
                        f"{occasion}_change": change_mean})
        rows.append(row)
    detail_rows = []
    for (index, team, service, instrument, occasion), total in sorted(
            groups.items(), key=lambda kv: (kv[0][0], kv[0][1] or "", kv[0][2] or "", kv[0][3], kv[0][4])):
        pairs, change_mean, baseline_mean = mean(total)
        detail_rows.append({"label": month_label(filters.months[index]), "month": filters.months[index],
                       "team": _team_label(domain, team), "service": _service_label(domain, service),
                       "measure": _instrument_name(instrument), "occasion": occasion.replace("_", "-"),
                       "pairs": pairs, "baseline": baseline_mean, "change": change_mean})
    columns = [Column("label", "Measure", "text"), Column("direction", "Better is", "text")]
    for occasion, words in (("end", "at the end"), ("follow_up", "at follow-up")):
        columns += [Column(f"{occasion}_pairs", f"Patients {words}"),
                    Column(f"{occasion}_baseline", f"Mean baseline score ({words})", "number"),
                    Column(f"{occasion}_change", f"Mean change {words}", "number")]
    detail_columns = [MONTH, TEAM, SERVICE, Column("measure", "Measure", "text"),
                      Column("occasion", "Occasion", "text"), Column("pairs", "Patients"),
                      Column("baseline", "Mean baseline score", "number"), Column("change", "Mean change", "number")]
    return Report(name="questionnaires", columns=columns, rows=rows, detail_columns=detail_columns, detail=detail_rows)


def _instrument_order(key: str) -> int:
    keys = list(BY_KEY)
    return keys.index(key) if key in keys else len(keys)


def _instrument_name(key: str) -> str:
    instrument = BY_KEY.get(key)
    return instrument.name if instrument else key


def _direction(key: str) -> str:
    instrument = BY_KEY.get(key)
    if instrument is None or instrument.change is None:
        return "Lower"
    return "Lower" if instrument.change.lower_is_better else "Higher"


def _of_team(patient_id: ColumnElement, team: str) -> ColumnElement:
    """Rows of the team's patients: an IN over the team's patient ids, which both databases answer from a hash
    or a temporary index, far cheaper than joining every row to its patient."""
    return patient_id.in_(select(Patient.id).where(Patient.team == team))


REPORTS = {
    "triaged": patients_triaged,
    "waits": waits,
    "cohort-fill": cohort_fill,
    "attendance": attendance,
    "texts": texts,
    "questionnaires": questionnaire_change,
}


def run(session: Session, domain: DomainConfig, name: str, filters: Filters, *, detail: bool = False) -> Report:
    """The named report (a key of REPORTS) for these filters. ``detail``: also the rows by month, team and
    service that the CSV export gives (a page shows the rows by month only, which are cheaper)."""
    return REPORTS[name](session, domain, filters, detail=detail)


def team_choices(domain: DomainConfig) -> list[tuple[str, str]]:
    return [(team.key, team.short_name) for team in domain.teams.teams]


def service_choices(domain: DomainConfig) -> list[tuple[str, str]]:
    return [(s.key, _service_label(domain, s.key)) for s in domain.catalogue.services]


def rows_for_csv(report: Report) -> Iterable[list[object]]:
    """The detail rows as CSV cells, the header first (values plain; the route makes them spreadsheet-safe)."""
    yield [column.label for column in report.detail_columns]
    for row in report.detail:
        yield [row.get(column.key) if column.key != "label" else row["month"].strftime("%Y-%m")
               for column in report.detail_columns]
