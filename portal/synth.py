"""A synthetic service at scale (`portal synth --patients 100000`), for the reports and search benchmarks.

It writes 18 months of a plausible service: triaged patients across the tiers and teams, cohorts with their
weekly sessions and bookings, attendance marks (some did not attend), 1:1 appointments in clinicians' slots,
texts in the outbox in every status, and questionnaires at baseline and at the end. Rows go in with bulk Core
inserts in chunks, with the primary keys chosen here (so children point at parents without a round trip);
on PostgreSQL the id sequences are moved past them at the end.

Nothing in it can reach or identify a person: NHS numbers come from the 999 test range (valid modulus 11,
never issued), mobiles from Ofcom's drama range 07700 900000-900899 (900900-900999 stay for tests), and the
staff it invents cannot sign in (their password is random and thrown away).

Safety: it refuses a database holding any patient that looks real (an NHS number outside the 999 range, or a
mobile outside the drama range), always; and a database holding any patients at all unless ``force`` is given
(say, on top of the demo data). The `portal synth` command refuses to run in production config.
"""

from __future__ import annotations

import datetime as dt
import random
import secrets
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy import Table, func, or_, select, text
from sqlalchemy.orm import Session

from portal.appointments.models import Appointment, AppointmentSlot
from portal.attendance.models import Attendance
from portal.auth.models import User
from portal.auth.passwords import hash_password
from portal.booking.models import Booking, Cohort, CohortSession, Venue, cohort_facilitator, venue_name_key
from portal.messaging.models import SmsMessage
from portal.patients.models import PAIN_DURATIONS, Patient, name_key
from portal.questionnaires import instruments
from portal.questionnaires.models import QuestionnaireResponse
from portal.settings import DomainConfig, load_domain_config

LONDON = ZoneInfo("Europe/London")
# Synthetic NHS numbers start here in the 999 test range, clear of the demo data (9990000000 up) and the
# test factories (9990500000 up).
NHS_NUMBER_START = 9_993_000_000
TEST_RANGE_PREFIX = "999"
DRAMA_PREFIX = "+447700900"
SYNTH_MOBILES = 900  # 07700 900000 to 900899
HISTORY_DAYS = 548  # 18 months of triage dates
CHUNK = 5_000

GIVEN = ("Amara", "Ben", "Chen", "Dara", "Ebony", "Farah", "George", "Hana", "Idris", "Jade", "Kemal", "Lena",
         "Mehmet", "Niamh", "Olu", "Priya", "Quinn", "Rosa", "Sami", "Tomasz", "Uma", "Viktor", "Wen", "Yusuf",
         "Zofia", "Aisha", "Bola", "Ciaran", "Deniz", "Elif", "Femi", "Grace", "Hassan", "Ines", "Jamal",
         "Kofi", "Layla", "Marek", "Nadia", "Owen", "Patrick", "Rahel", "Sophie", "Tariq", "Ursula", "Vera",
         "William", "Xena", "Yaw", "Zainab")
FAMILY = ("Abbott", "Adeyemi", "Ahmed", "Akhtar", "Baker", "Banda", "Bianchi", "Brown", "Campbell", "Chaudhry",
          "Clarke", "Costa", "Demir", "Dimitriou", "Doyle", "Evans", "Fernandes", "Fraser", "Georgiou", "Green",
          "Gupta", "Hall", "Hussain", "Ibrahim", "Jackson", "Jones", "Kaya", "Kelly", "Khan", "Kowalski", "Lee",
          "Lewis", "Lopez", "Mahmoud", "Martin", "Mensah", "Murphy", "Nguyen", "Novak", "O'Brien", "Okafor",
          "Osei", "Papadopoulos", "Patel", "Quinn", "Rahman", "Reid", "Rossi", "Santos", "Shah", "Silva",
          "Smith", "Taylor", "Thomas", "Turner", "Varga", "Walker", "Ward", "White", "Williams", "Wilson",
          "Wong", "Yilmaz", "Young", "Zielinski", "Ozturk", "Mwangi", "Haddad", "Nowak", "Byrne")
LETTERS = "ABDEFGHJLNPQRSTUWXYZ"

# Marks on a register, with how often each is given (a few patients miss more than others: see _mark).
MARK_WEIGHTS = (("attended", 80), ("late", 5), ("dna", 7), ("could_not_attend", 5), ("late_cancellation", 3))
TEXT_STATUS_WEIGHTS = (("delivered", 90), ("sent", 2), ("undelivered", 2), ("failed", 3), ("unknown", 1),
                       ("cancelled", 2))
REPORTED_INSTRUMENTS = ("pain_intensity", "pain_interference", "phq9", "gad7")


class SynthRefused(Exception):
    """The database is not one to fill with synthetic data; the message says why."""


@dataclass
class Summary:
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def __str__(self) -> str:
        return ", ".join(f"{count:,} {table}" for table, count in self.counts.items())


def nhs_check_digit(nine: str) -> int | None:
    """The modulus 11 check digit of nine digits, or None when the number would be invalid (remainder 10)."""
    total = sum(int(d) * w for d, w in zip(nine, range(10, 1, -1), strict=True))
    check = 11 - total % 11
    if check == 11:
        return 0
    return None if check == 10 else check


def _nhs_numbers(after: int) -> Iterable[str]:
    candidate = max(after + 1, NHS_NUMBER_START) // 10
    while True:
        nine = str(candidate)
        digit = nhs_check_digit(nine)
        if digit is not None:
            yield nine + str(digit)
        candidate += 1


def check_safe(session: Session, *, force: bool = False) -> None:
    """Refuse a database with real-looking patients (always), or with any patients at all (unless forced)."""
    real = session.scalar(
        select(func.count()).select_from(Patient).where(
            or_(~Patient.nhs_number.startswith(TEST_RANGE_PREFIX), ~Patient.mobile.startswith(DRAMA_PREFIX)))
    )
    if real:
        raise SynthRefused(f"this database holds {real} patients with a real-looking NHS number or mobile: "
                           "synthetic data is never added to it")
    existing = session.scalar(select(func.count()).select_from(Patient))
    if existing and not force:
        raise SynthRefused(f"this database already holds {existing} patients (test-range ones): use --force to add "
                           "synthetic data beside them, or start from an empty database")


class _Writer:
    """Buffers rows per table and inserts them in chunks, parents before children."""

    ORDER = ("user_account", "venue", "patient", "cohort", "cohort_facilitator", "cohort_session", "booking",
             "appointment_slot", "appointment", "attendance", "sms_outbox", "questionnaire_response")

    def __init__(self, session: Session, summary: Summary) -> None:
        self.session = session
        self.summary = summary
        self.tables: dict[str, Table] = {
            "user_account": User.__table__, "venue": Venue.__table__, "patient": Patient.__table__,
            "cohort": Cohort.__table__, "cohort_facilitator": cohort_facilitator,
            "cohort_session": CohortSession.__table__, "booking": Booking.__table__,
            "appointment_slot": AppointmentSlot.__table__, "appointment": Appointment.__table__,
            "attendance": Attendance.__table__, "sms_outbox": SmsMessage.__table__,
            "questionnaire_response": QuestionnaireResponse.__table__,
        }
        self.buffers: dict[str, list[dict]] = {name: [] for name in self.ORDER}
        # Rows a live service writes as time passes (texts, questionnaires) are held back and written in time
        # order at the end, so their ids follow time as in a real database (a range by time then reads the
        # table in order, not all over it).
        self.in_time_order: dict[str, list[dict]] = {"sms_outbox": [], "questionnaire_response": []}
        self.buffered = 0
        self.next_ids = {
            name: (session.scalar(select(func.max(table.c.id))) or 0) + 1
            for name, table in self.tables.items() if "id" in table.c
        }

    def new_id(self, table: str) -> int:
        value = self.next_ids[table]
        self.next_ids[table] = value + 1
        return value

    def add(self, table: str, row: dict) -> None:
        self.buffers[table].append(row)
        self.buffered += 1
        if self.buffered >= CHUNK * 4:
            self.flush()

    def flush(self) -> None:
        for name in self.ORDER:
            rows = self.buffers[name]
            for start in range(0, len(rows), CHUNK):
                self.session.execute(self.tables[name].insert(), rows[start:start + CHUNK])
            self.summary.counts[name] += len(rows)
            self.buffers[name] = []
        self.buffered = 0

    def later(self, table: str, row: dict) -> None:
        self.in_time_order[table].append(row)

    def finish(self) -> None:
        for table, rows in self.in_time_order.items():
            rows.sort(key=lambda row: row["created_at"])
            for row in rows:
                row["id"] = self.new_id(table)
                if row.get("provider_sid") == "":
                    row["provider_sid"] = f"SM{row['id']:032x}"
                self.add(table, row)
            rows.clear()
        self.flush()
        if self.session.get_bind().dialect.name == "postgresql":
            for name, table in self.tables.items():
                if "id" in table.c:
                    self.session.execute(text(
                        # The names are this module's own table names, never input.
                        f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "  # noqa: S608
                        f"(SELECT coalesce(max(id), 1) FROM {name}))"))


def _at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    """A London wall-clock time on ``day``, in UTC."""
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=LONDON).astimezone(dt.UTC)


def _weekday_on_or_after(day: dt.date, weekday: int) -> dt.date:
    return day + dt.timedelta(days=(weekday - day.weekday()) % 7)


def _pick(rng: random.Random, weighted: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([v for v, _ in weighted], weights=[w for _, w in weighted])[0]


@dataclass
class _Cohort:
    id: int
    service_key: str
    team: str | None
    capacity: int
    target: int
    sessions: list[tuple[int, dt.datetime]]
    facilitator_id: int
    venue_id: int
    first_date: dt.date
    start_time: dt.time
    created_at: dt.datetime
    taken: int = 0


def generate(session: Session, patients: int, seed: int = 1, *, now: dt.datetime | None = None,
             domain: DomainConfig | None = None, force: bool = False) -> Summary:
    """Write a synthetic service of ``patients`` patients, reproducibly from ``seed``; flushes, never commits.

    Raises SynthRefused (before writing anything) when the database is not safe to fill: see check_safe."""
    if patients < 1:
        raise ValueError("generate at least one patient")
    check_safe(session, force=force)
    domain = domain or load_domain_config()
    now = now or dt.datetime.now(dt.UTC)
    today = now.astimezone(LONDON).date()
    rng = random.Random(seed)
    summary = Summary()
    out = _Writer(session, summary)
    tag = secrets.token_hex(3)  # keeps the staff e-mail addresses of a second (forced) run apart

    # Staff: facilitators for the groups, clinicians for the 1:1 services. Nobody can sign in as them.
    unusable = hash_password(secrets.token_urlsafe(32))
    facilitators = []
    for n in range(8):
        user_id = out.new_id("user_account")
        facilitators.append(user_id)
        out.add("user_account", {"id": user_id, "role": "facilitator", "display_name": f"Synthetic Facilitator {n + 1}",
                                 "email": f"synth-{tag}-facilitator-{n + 1}@synthetic.invalid",
                                 "password_hash": unusable, "created_at": now})
    appointment_services = [s for s in domain.catalogue.services if s.kind == "appointment"]
    clinicians: dict[tuple[str, str | None], list[int]] = defaultdict(list)
    teams = [t.key for t in domain.teams.teams]
    number = 0
    for service in appointment_services:
        for team in (teams if service.team_scoped else [None]):
            for _ in range(4 if service.tier == 1 else 3):
                number += 1
                user_id = out.new_id("user_account")
                clinicians[(service.key, team)].append(user_id)
                out.add("user_account", {"id": user_id, "role": "clinician",
                                         "display_name": f"Synthetic Clinician {number}",
                                         "email": f"synth-{tag}-clinician-{number}@synthetic.invalid",
                                         "password_hash": unusable, "created_at": now})
    venues = []
    # Venue names are unique (uq_venue_name_key): a second (forced) run meets in the venues of the first.
    named = dict(session.execute(select(Venue.name_key, Venue.id).where(Venue.name_key.is_not(None))).all())
    for name, short, online in (("Synthetic Health Centre North", "Synth North", False),
                                ("Synthetic Health Centre South", "Synth South", False),
                                ("Synthetic Community Hall", "Synth Hall", False),
                                ("Online (video call)", "Online", True)):
        if venue_name_key(name) in named:
            venues.append(named[venue_name_key(name)])
            continue
        venue_id = out.new_id("venue")
        venues.append(venue_id)
        out.add("venue", {"id": venue_id, "name": name, "name_key": venue_name_key(name), "short_name": short,
                          "address": "1 Synthetic Road, London N7 0AA", "access_notes": "Step-free access.",
                          "is_online": online})

    # Patients.
    districts = {t.key: t.postcode_districts for t in domain.teams.teams}
    area = domain.teams.service_area.postcode_districts
    last_synth = session.scalar(select(func.max(Patient.nhs_number)).where(Patient.nhs_number >= str(NHS_NUMBER_START)))
    numbers = iter(_nhs_numbers(int(last_synth) if last_synth else NHS_NUMBER_START - 1))
    people = []  # (id, tier, team, created_at, triage_date, mobile, no_texts, severity)
    for n in range(patients):
        patient_id = out.new_id("patient")
        triaged = today - dt.timedelta(days=rng.randrange(HISTORY_DAYS))
        created = min(_at(triaged + dt.timedelta(days=rng.randrange(0, 10)), rng.randrange(9, 17), rng.randrange(60)),
                      now - dt.timedelta(minutes=5))
        tier = 1 if rng.random() < 0.6 else 2
        team = None if tier == 1 else (rng.choice(teams) if rng.random() < 0.95 else None)
        district = rng.choice(districts[team]) if team else rng.choice(area if tier == 1 else ["N4", "N6", "N11"])
        postcode = f"{district} {rng.randrange(1, 10)}{rng.choice(LETTERS)}{rng.choice(LETTERS)}"
        given, family = rng.choice(GIVEN), rng.choice(FAMILY)
        mobile = f"{DRAMA_PREFIX}{n % SYNTH_MOBILES:03d}"
        no_texts = rng.random() < 0.03
        people.append((patient_id, tier, team, created, triaged, mobile, no_texts, rng.random()))
        out.add("patient", {
            "id": patient_id, "nhs_number": next(numbers), "given_name": given, "family_name": family,
            "given_name_key": name_key(given), "family_name_key": name_key(family),
            "date_of_birth": dt.date(1940, 1, 1) + dt.timedelta(days=rng.randrange(23_000)), "mobile": mobile,
            "postcode": postcode, "tier": tier, "team": team, "sms_consent": True, "created_at": created,
            "triage_date": triaged, "pain_duration": rng.choice(list(PAIN_DURATIONS)[1:]),
            "diagnosis_recorded": True, "investigations_recorded": rng.random() < 0.8, "treatment_recorded": True,
            "letters_received": rng.random() < 0.7, "eligibility_warnings": "", "no_texts": no_texts,
            "needs_large_print": rng.random() < 0.03, "needs_bsl_interpreter": rng.random() < 0.005,
            "interpreter_language": (rng.choice(("Turkish", "Polish", "Somali", "Bengali"))
                                     if rng.random() < 0.04 else None),
        })

    # Course seats: cohorts are opened as patients need them, each to its own target fill.
    courses = {s.tier: s for s in domain.catalogue.services if s.kind == "course"}
    open_cohorts: dict[tuple[str, str | None, dt.date], _Cohort] = {}
    cohorts: list[_Cohort] = []
    seats = []  # (booking id, patient, cohort, created_at, cancelled_at)
    horizon = today + dt.timedelta(days=56)
    for person in sorted(people, key=lambda p: p[3]):
        patient_id, tier, team, created = person[:4]
        course = courses.get(tier)
        if course is None or (course.team_scoped and team is None) or rng.random() > 0.55:
            continue
        wanted = created.astimezone(LONDON).date() + dt.timedelta(days=rng.randrange(14, 70))
        week = wanted - dt.timedelta(days=wanted.weekday())
        if week > horizon:
            continue
        key = (course.key, team if course.team_scoped else None, week)
        cohort = open_cohorts.get(key)
        if cohort is None or cohort.taken >= cohort.target:
            cohort = _new_cohort(out, rng, course, key[1], week, venues, facilitators, today)
            open_cohorts[key] = cohort
            cohorts.append(cohort)
        first_start = cohort.sessions[0][1]
        latest = min(first_start - dt.timedelta(days=2), now - dt.timedelta(minutes=1))
        booked = created + (latest - created) * rng.random() if latest > created else created
        cancelled = None
        if rng.random() < 0.07:
            cancelled = min(booked + (first_start - booked) * rng.random(), now)
        else:
            cohort.taken += 1
        seats.append((out.new_id("booking"), person, cohort, booked, cancelled))
    for cohort in cohorts:
        out.add("cohort", {
            "id": cohort.id, "service_key": cohort.service_key, "team": cohort.team, "venue_id": cohort.venue_id,
            "first_date": cohort.first_date, "weekday": cohort.first_date.weekday(), "start_time": cohort.start_time,
            "timezone": "Europe/London", "session_minutes": 120, "capacity": cohort.capacity,
            "seats_taken": cohort.taken, "status": "open" if cohort.first_date > today else "closed",
            "created_at": cohort.created_at,
        })
        out.add("cohort_facilitator", {"cohort_id": cohort.id, "user_id": cohort.facilitator_id})
        for number, (session_id, starts) in enumerate(cohort.sessions, start=1):
            out.add("cohort_session", {"id": session_id, "cohort_id": cohort.id, "number": number, "starts_at": starts,
                                       "ends_at": starts + dt.timedelta(minutes=120), "status": "scheduled"})
    courses_of: dict[int, tuple[str, dt.datetime, dt.datetime]] = {}
    for booking_id, person, cohort, booked, cancelled in seats:
        out.add("booking", {
            "id": booking_id, "patient_id": person[0], "service_key": cohort.service_key, "cohort_id": cohort.id,
            "status": "cancelled" if cancelled else "active", "booked_by_staff": rng.random() < 0.3,
            "created_at": booked, "cancelled_at": cancelled, "cancelled_by_staff": False,
            "cancel_reason": "Cannot make the dates" if cancelled else None,
        })
        _text(out, rng, person, "seat_booked", f"booking:{booking_id}", booked, now, booking_id=booking_id,
              body="NHS: you have a place in a group starting Tue 3 Mar at 18:00 at Synth North. To change it call "
                   "020 3316 8888.")
        if cancelled:
            continue
        first_start = cohort.sessions[0][1]
        _text(out, rng, person, "session_reminder", f"reminder:{booking_id}:first", first_start - dt.timedelta(days=2),
              now, booking_id=booking_id,
              body="NHS: reminder of your group session Tue 3 Mar at 18:00 at Synth North. To change it call "
                   "020 3316 8888.")
        for session_id, starts in cohort.sessions:
            if starts < now - dt.timedelta(hours=3):
                _attend(out, rng, person, starts, cohort.service_key, cohort.facilitator_id,
                        cohort_session_id=session_id)
        courses_of[person[0]] = (cohort.service_key, booked, cohort.sessions[-1][1])

    # 1:1 appointments in clinicians' slots.
    taken_slots: set[tuple[int, dt.datetime]] = set()
    services_of = {tier: [s for s in appointment_services if s.tier == tier] for tier in (1, 2)}
    for person in people:
        patient_id, tier, team, created = person[:4]
        if tier == 2 and team is None:
            continue
        for _ in range(rng.choices((0, 1, 2, 3), weights=(30, 40, 20, 10))[0]):
            service = rng.choice(services_of[tier])
            booked = created + dt.timedelta(days=rng.randrange(1, 90), minutes=rng.randrange(600))
            if booked >= now:
                continue
            pool = clinicians[(service.key, team if service.team_scoped else None)]
            starts, clinician = _free_slot(rng, taken_slots, pool, booked.astimezone(LONDON).date()
                                           + dt.timedelta(days=rng.randrange(3, 35)))
            cancelled = rng.random() < 0.08
            slot_id, appointment_id = out.new_id("appointment_slot"), out.new_id("appointment")
            out.add("appointment_slot", {
                "id": slot_id, "clinician_id": clinician, "service_key": service.key,
                "team": team if service.team_scoped else None, "venue_id": venues[rng.randrange(3)],
                "starts_at": starts, "ends_at": starts + dt.timedelta(minutes=30),
                "status": "open" if cancelled else "booked", "created_at": min(booked, starts) - dt.timedelta(days=7)})
            ended = min(booked + (starts - booked) * rng.random(), now) if cancelled else None
            out.add("appointment", {
                "id": appointment_id, "patient_id": patient_id, "slot_id": slot_id, "service_key": service.key,
                "status": "cancelled" if cancelled else "active", "booked_by_staff": not service.self_bookable,
                "created_at": booked, "ended_at": ended, "cancel_reason": "Patient cancelled" if cancelled else None,
                "ended_by_staff": False})
            _text(out, rng, person, "appointment_booked", f"appointment:{appointment_id}", booked, now,
                  appointment_id=appointment_id,
                  body="NHS: your appointment is on Wed 4 Mar at 10:30 at Synth South. To change it sign in or call "
                       "020 3316 8888.")
            if cancelled:
                continue
            _text(out, rng, person, "appointment_reminder", f"reminder:{appointment_id}:1",
                  starts - dt.timedelta(days=1), now, appointment_id=appointment_id,
                  body="NHS: reminder of your appointment Wed 4 Mar at 10:30 at Synth South. Reply YES to confirm or "
                       "call 020 3316 8888.")
            if starts < now - dt.timedelta(hours=3):
                _attend(out, rng, person, starts, service.key, clinician, appointment_id=appointment_id)

    # Invitations, and questionnaires at baseline and at the end.
    for person in people:
        _text(out, rng, person, "invitation", f"invitation:{person[0]}", person[3], now,
              body="NHS: you have been referred to a community service. Set up your account: "
                   "https://portal.example/activate/synthetic")
        course = courses_of.get(person[0])
        if course is not None:
            service_key, booked, last = course
            plan, baseline_at, end_at = f"course-{service_key}", booked + dt.timedelta(days=rng.randrange(1, 6)), (
                last + dt.timedelta(days=rng.randrange(1, 14)))
        else:
            plan, baseline_at = "general", person[3] + dt.timedelta(days=rng.randrange(3, 20))
            end_at = baseline_at + dt.timedelta(days=rng.randrange(90, 120))
        if baseline_at >= now or rng.random() > 0.85:
            continue
        severity = person[7]
        _questionnaires(out, rng, person[0], plan, "baseline", baseline_at, severity)
        later = "end" if plan != "general" else "follow_up"
        if end_at < now and rng.random() < 0.65:
            _questionnaires(out, rng, person[0], plan, later, end_at, max(0.0, severity - rng.gauss(0.15, 0.15)))
    out.finish()
    return summary


def _new_cohort(out: _Writer, rng: random.Random, course, team: str | None, week: dt.date, venues: list[int],
                facilitators: list[int], today: dt.date) -> _Cohort:
    first = week + dt.timedelta(days=rng.randrange(5))
    start_time = rng.choice((dt.time(10, 0), dt.time(14, 0), dt.time(18, 0)))
    sessions = [(out.new_id("cohort_session"), _at(first + dt.timedelta(weeks=n), start_time.hour))
                for n in range(course.weeks or 1)]
    capacity = rng.randrange(10, 17)
    return _Cohort(id=out.new_id("cohort"), service_key=course.key, team=team, capacity=capacity,
                   target=max(3, round(capacity * rng.uniform(0.55, 1.0))), sessions=sessions,
                   facilitator_id=rng.choice(facilitators), venue_id=rng.choice(venues), first_date=first,
                   start_time=start_time, created_at=_at(min(first - dt.timedelta(days=60), today), 9))


def _free_slot(rng: random.Random, taken: set, pool: list[int], day: dt.date) -> tuple[dt.datetime, int]:
    """A half-hour slot from 09:00 on a weekday on or after ``day`` that none of the pool has yet."""
    while True:
        if day.weekday() >= 5:
            day = _weekday_on_or_after(day, 0)
        for _ in range(12):
            clinician = rng.choice(pool)
            half_hours = rng.randrange(15)
            starts = _at(day, 9 + half_hours // 2, 30 * (half_hours % 2))
            if (clinician, starts) not in taken:
                taken.add((clinician, starts))
                return starts, clinician
        day += dt.timedelta(days=1)


def _attend(out: _Writer, rng: random.Random, person: tuple, starts: dt.datetime, service_key: str, recorder: int,
            *, cohort_session_id: int | None = None, appointment_id: int | None = None) -> None:
    # Some patients miss more than others: the severity draw doubles as how hard it is for them to come.
    mark = _pick(rng, MARK_WEIGHTS)
    if mark == "attended" and person[7] > 0.9 and rng.random() < 0.3:
        mark = "dna"
    recorded = starts + dt.timedelta(hours=2)
    out.add("attendance", {"id": out.new_id("attendance"), "patient_id": person[0],
                           "cohort_session_id": cohort_session_id, "appointment_id": appointment_id,
                           "service_key": service_key, "starts_at": starts, "mark": mark, "recorded_by_id": recorder,
                           "recorded_at": recorded, "updated_at": recorded})


def _text(out: _Writer, rng: random.Random, person: tuple, kind: str, key: str, due: dt.datetime, now: dt.datetime,
          *, body: str, booking_id: int | None = None, appointment_id: int | None = None) -> None:
    if person[6]:  # no texts: contacted by phone or letter
        return
    status = "pending" if due > now else _pick(rng, TEXT_STATUS_WEIGHTS)
    handed_over = status not in ("pending", "cancelled") and not (status == "failed" and rng.random() < 0.5)
    sent_at = due + dt.timedelta(seconds=rng.randrange(1, 60)) if handed_over else None
    out.later("sms_outbox", {
        "idempotency_key": f"synth:{kind}:{key}", "patient_id": person[0], "booking_id": booking_id,
        "appointment_id": appointment_id, "kind": kind, "to_number": person[5], "body": body, "status": status,
        "attempts": 0 if status == "pending" else 1, "due_at": due, "next_attempt_at": due,
        "provider": "twilio" if handed_over else None,
        "provider_sid": "" if handed_over else None,  # made from the id, given in time order at the end
        "error_code": {"failed": "30003" if handed_over else "21211", "undelivered": "30005"}.get(status),
        "created_at": min(due, now), "sent_at": sent_at, "updated_at": sent_at or min(due, now),
    })


def _questionnaires(out: _Writer, rng: random.Random, patient_id: int, plan: str, occasion: str, at: dt.datetime,
                    severity: float) -> None:
    for key in REPORTED_INSTRUMENTS:
        instrument = instruments.BY_KEY[key]
        if occasion not in instrument.occasions:
            continue
        answers = {}
        for item in instrument.items:
            values = sorted(option.value for option in item.options)
            if item.key == instrument.safety_item:
                answers[item.key] = values[0]  # never an urgent flag: those need a clinician's acknowledgement
                continue
            index = round(rng.gauss(severity * (len(values) - 1), 0.8))
            answers[item.key] = values[min(max(index, 0), len(values) - 1)]
        score = instruments.score(instrument, answers)
        out.later("questionnaire_response", {
            "patient_id": patient_id, "instrument": key,
            "set_key": f"{plan}:{occasion}", "occasion": occasion, "due_on": at.astimezone(LONDON).date(),
            "status": "submitted", "answers": answers, "score": score, "band": instrument.band_for(score),
            "created_at": at, "updated_at": at, "submitted_at": at,
        })
