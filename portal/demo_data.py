"""Demo data for `make run`: staff of each role, patients of each tier and team, and open cohorts.

NHS numbers come from the 999 range (never issued to real people) and mobiles from Ofcom's drama
range 07700 900000-900999, so the demo can never text or identify a real person.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import nhs_number
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.appointments.models import AvailabilityTemplate
from portal.appointments.slots import generate_slots
from portal.auth.models import Role, User
from portal.auth.passwords import hash_password
from portal.auth.services import create_staff_user, invite_patient
from portal.booking import waitlist
from portal.booking.models import Booking, Venue
from portal.booking.services import create_cohort
from portal.booking.sessions import new_cohort_clashes
from portal.dates import LONDON
from portal.diary import services as diary
from portal.diary.models import DiaryEntry
from portal.patients.models import Patient
from portal.settings import DomainConfig

DEMO_PASSWORD = "demo-pass-2026"  # noqa: S105 - printed for demo sign-ins


@dataclass(frozen=True)
class DemoLogin:
    who: str
    sign_in_as: str
    password: str


def demo_nhs_numbers(start: int = 0):
    """Valid (modulus 11) NHS numbers from the 999 test range, in order."""
    candidate = 9_990_000_000 + start
    while candidate < 10_000_000_000:
        text = str(candidate)
        if nhs_number.is_valid(text):
            yield text
        candidate += 1


def demo_mobile(n: int) -> str:
    return f"+447700900{n:03d}"


def has_data(session: Session) -> bool:
    return bool(session.scalar(select(func.count()).select_from(User)))


def _next_weekday(day: dt.date, weekday: int, weeks_ahead: int) -> dt.date:
    return day + dt.timedelta(days=(weekday - day.weekday()) % 7 + 7 * weeks_ahead)


def load(session: Session, domain: DomainConfig, *, today: dt.date, now: dt.datetime, base_url: str) -> list[DemoLogin]:
    """Fill an empty database. Returns the demo sign-ins to print."""
    logins: list[DemoLogin] = []
    for role, name in ((Role.RECEPTION, "Rita Reception"), (Role.FACILITATOR, "Femi Facilitator"),
                       (Role.CLINICIAN, "Kim Clinician"), (Role.ADMIN, "Ada Admin")):
        email = f"{role.value}@demo.portal.nhs.uk"
        create_staff_user(session, email=email, display_name=name, role=role, password=DEMO_PASSWORD)
        logins.append(DemoLogin(f"{role.value.title()} ({name})", email, DEMO_PASSWORD))

    numbers = demo_nhs_numbers()
    people = [
        ("Tess", "Tierone", 1, None, "N7 6PA", "Patient, Tier 1"),
        ("Wynne", "Whittington", 2, "whittington", "N19 5NF", "Patient, Tier 2, Whittington team"),
        ("Harry", "Haringey", 2, "haringey", "N8 8JD", "Patient, Tier 2, Haringey team"),
    ]
    for i, (given, family, tier, team, postcode, label) in enumerate(people, start=1):
        patient = Patient(nhs_number=next(numbers), given_name=given, family_name=family,
                          date_of_birth=dt.date(1970 + i, i, 10 + i), mobile=demo_mobile(i),
                          postcode=postcode, tier=tier, team=team)
        session.add(patient)
        session.flush()
        session.add(User(role=Role.PATIENT.value, patient=patient, display_name=patient.full_name,
                         password_hash=hash_password(DEMO_PASSWORD)))
        logins.append(DemoLogin(label, f"07700 900{i:03d}", DEMO_PASSWORD))

    # One Tier 2 patient whose postcode is in no catchment (the 'needs a team' queue), and one who has
    # been invited but not yet set up an account: their link is in the dev inbox.
    session.add(Patient(nhs_number=next(numbers), given_name="Nadia", family_name="Noteam",
                        date_of_birth=dt.date(1981, 2, 3), mobile=demo_mobile(4), postcode="N4 3LS",
                        tier=2, team=None))
    invited = Patient(nhs_number=next(numbers), given_name="Ivan", family_name="Invited",
                      date_of_birth=dt.date(1962, 7, 21), mobile=demo_mobile(5), postcode="N15 5AZ",
                      tier=2, team="haringey")
    session.add(invited)
    session.flush()
    invite_patient(session, domain, invited, base_url=base_url, now=now)

    venues = {
        "finsbury": Venue(name="Finsbury Health Centre", short_name="Finsbury HC",
                          address="Pine Street, London EC1R 0LP",
                          access_notes="Step-free entrance on Pine Street. Lift to all floors."),
        "hornsey": Venue(name="Hornsey Central Neighbourhood Health Centre", short_name="Hornsey Central",
                         address="151 Park Road, London N8 8JD",
                         access_notes="Step-free. Accessible toilet on the ground floor."),
        "whittington": Venue(name="Whittington Hospital, Jenner Building", short_name="Whittington",
                             address="Magdala Avenue, London N19 5NF",
                             access_notes="Blue badge parking by the main entrance."),
        "laurels": Venue(name="The Laurels Healthy Living Centre", short_name="The Laurels",
                         address="256 St Ann's Road, London N15 5AZ",
                         access_notes="Step-free. Hearing loop in the group room."),
        "online": Venue(name="Online group (video call)", short_name="online", address="Online", is_online=True,
                        access_notes="Join from a phone, tablet or computer. Captions are available."),
    }
    session.add_all(venues.values())
    session.flush()

    plan = [
        ("t1-group", None, "finsbury", 1, dt.time(18, 0), 1, 12, 11),
        ("t1-group", None, "hornsey", 3, dt.time(10, 0), 3, 12, 4),
        ("t1-group", None, "finsbury", 1, dt.time(18, 0), 10, 12, 0),
        ("t2-programme", "whittington", "whittington", 2, dt.time(14, 0), 2, 10, 9),
        ("t2-programme", "whittington", "whittington", 3, dt.time(14, 0), 8, 10, 2),
        ("t2-programme", "whittington", "whittington", 4, dt.time(10, 30), 14, 10, 0),
        ("t2-programme", "haringey", "laurels", 0, dt.time(13, 0), 2, 10, 10),
        ("t2-programme", "haringey", "hornsey", 2, dt.time(18, 0), 5, 10, 8),
        ("t2-programme", "haringey", "laurels", 1, dt.time(13, 0), 12, 10, 1),
        ("t1-group", None, "online", 2, dt.time(12, 30), 4, 12, 6),
    ]
    filler = 100
    for service_key, team, venue_key, weekday, start, weeks_ahead, capacity, taken in plan:
        cohort = create_cohort(session, domain, service_key=service_key, team=team, venue=venues[venue_key],
                               first_date=_next_weekday(today, weekday, weeks_ahead), start_time=start,
                               session_minutes=120 if service_key == "t1-group" else 150, capacity=capacity,
                               online_link="https://meet.example.nhs.uk/pain-group" if venue_key == "online" else None)
        # Other patients already booked, so some cohorts are nearly full.
        for _ in range(taken):
            filler += 1
            other = Patient(nhs_number=next(numbers), given_name="Demo", family_name=f"Patient {filler}",
                            date_of_birth=dt.date(1960, 1, 1) + dt.timedelta(days=filler * 97),
                            mobile=demo_mobile(filler % 1000), postcode="N7 0AA",
                            tier=1 if service_key == "t1-group" else 2, team=team)
            session.add(other)
            session.flush()
            session.add(Booking(patient_id=other.id, service_key=service_key, cohort_id=cohort.id, created_at=now))
        cohort.seats_taken = taken
        if taken == capacity:
            # A full group has people waiting, for reception's waiting-list page.
            for _ in range(2):
                filler += 1
                waiting = Patient(nhs_number=next(numbers), given_name="Waiting", family_name=f"Patient {filler}",
                                  date_of_birth=dt.date(1965, 1, 1) + dt.timedelta(days=filler * 53),
                                  mobile=demo_mobile(filler % 1000), postcode="N15 5AZ", tier=2, team=team)
                session.add(waiting)
                session.flush()
                waitlist.join(session, domain, waiting, domain.catalogue.get(service_key), cohort=cohort, now=now)
    session.flush()
    _clinics(session, domain, venues, now=now)
    _running_group(session, domain, [venues[key] for key in ("finsbury", "hornsey", "laurels")], numbers, now=now)
    _running_programme(session, domain, venues["whittington"], numbers, today=today, now=now)
    # Demo sign-ins for a patient of each tier already part-way through a course, whose weekly reading
    # follows their sessions.
    for n, label in ((184, "Patient, Tier 1, in a group running now (session 3 today)"),
                     (6, "Patient, Tier 2, Whittington team, in a programme running now (week 5)")):
        patient = session.scalars(select(Patient).where(Patient.mobile == demo_mobile(n))).one()
        session.add(User(role=Role.PATIENT.value, patient=patient, display_name=patient.full_name,
                         password_hash=hash_password(DEMO_PASSWORD)))
        logins.append(DemoLogin(label, f"07700 900{n:03d}", DEMO_PASSWORD))
    _self_management(session, today=today, now=now)
    _discharged(session, numbers, today=today, now=now)
    return logins


def _discharged(session: Session, numbers, *, today: dt.date, now: dt.datetime) -> None:
    """A Tier 1 patient a clinician discharged back to their GP after a did-not-attend review, ten days ago: the GP
    has referred them again, so reception can record the new referral from their record."""
    patient = Patient(nhs_number=next(numbers), given_name="Dora", family_name="Dalton",
                      date_of_birth=dt.date(1977, 9, 14), mobile=demo_mobile(7), postcode="N7 6PA", tier=1,
                      team=None, triage_date=today - dt.timedelta(days=120))
    patient.discharge(now - dt.timedelta(days=10), "Did not attend two group sessions and could not be reached "
                                                   "by phone or letter. Back to the GP.")
    session.add(patient)


def _clinics(session: Session, domain: DomainConfig, venues: dict[str, Venue], *, now: dt.datetime) -> None:
    """Weekly 1:1 clinics for each appointment service, run by the demo clinician, and their slots."""
    clinician = session.scalars(select(User).where(User.email == "clinician@demo.portal.nhs.uk")).one()
    plan = [
        ("t1-physio", None, "finsbury", 1, dt.time(9, 0), dt.time(12, 0), 30),
        ("t1-pharmacy", None, "hornsey", 3, dt.time(13, 0), dt.time(16, 0), 30),
        ("t2-physio", "whittington", "whittington", 0, dt.time(9, 30), dt.time(12, 30), 45),
        ("t2-physio", "haringey", "laurels", 2, dt.time(14, 0), dt.time(17, 0), 45),
        ("t2-acupuncture", "whittington", "whittington", 4, dt.time(10, 0), dt.time(12, 0), 30),
        ("t2-acupuncture", "haringey", "laurels", 4, dt.time(13, 30), dt.time(15, 30), 30),
        ("t2-pharmacology", "whittington", "whittington", 1, dt.time(14, 0), dt.time(16, 0), 40),
        ("t2-pharmacology", "haringey", "hornsey", 3, dt.time(9, 30), dt.time(11, 30), 40),
    ]
    for service_key, team, venue_key, weekday, start, end, minutes in plan:
        if domain.catalogue.get(service_key) is None:
            continue
        session.add(AvailabilityTemplate(
            clinician_id=clinician.id, service_key=service_key, team=team, venue_id=venues[venue_key].id,
            weekday=weekday, start_time=start, end_time=end, slot_minutes=minutes, valid_from=now.date(),
        ))
    session.flush()
    generate_slots(session, domain, now=now)


def _self_management(session: Session, *, today: dt.date, now: dt.datetime) -> None:
    """Four weeks of diary for the Tier 1 and the first Tier 2 demo patient (today left for them to fill in,
    and a few days missed, as real diaries have), a goal with last week's check-in, and one flare-up plan."""
    for n, plan in ((1, True), (2, False)):
        patient = session.scalars(select(Patient).where(Patient.mobile == demo_mobile(n))).one()
        for days_ago in range(1, 29):
            if days_ago % 6 == 0:
                continue
            wave = (days_ago * 7 + n * 3) % 5  # a steady pattern that looks like a week with ups and downs
            session.add(DiaryEntry(
                patient_id=patient.id, entry_date=today - dt.timedelta(days=days_ago),
                # Pain 0-10 eases over the month; sleep, mood and activity are 1-5.
                pain=3 + wave // 2 + (days_ago > 14), sleep=5 - wave, mood=2 + wave % 3, activity=1 + days_ago % 4,
                note="Paced the shopping in two trips." if days_ago % 5 == 1 else "", created_at=now, updated_at=now,
            ))
        goal = diary.add_goal(session, patient.id, diary.GoalValues(
            what="Walk to the park and back", how_much="10 minutes, 3 times a week",
            target_date=today + dt.timedelta(weeks=6), why="To play with my grandchildren", confidence=7,
        ), now=now).goal
        diary.check_in(session, goal, outcome="partly", note="Managed twice this week.",
                       today=today - dt.timedelta(weeks=1), now=now)
        if plan:
            diary.save_flare_plan(session, patient.id, {
                "what_helps": "Heat pack, a warm bath, short walks every hour, breathing exercise.",
                "what_to_reduce": "Hoovering and carrying shopping; split jobs into smaller parts.",
                "who_to_tell": "My daughter, and my manager if it is a work day.",
                "when_to_seek_help": "New numbness or weakness, or pain that is different from usual: call 111.",
            }, now=now)
    session.flush()


def _running_programme(session: Session, domain: DomainConfig, venue: Venue, numbers, *, today: dt.date,
                       now: dt.datetime) -> None:
    """A Whittington team programme that began four weeks ago (its fifth session is this week), with one
    patient on it: the Tier 2 demo sign-in who is part-way through a course."""
    first = today - dt.timedelta(weeks=4, days=1)
    cohort = create_cohort(session, domain, service_key="t2-programme", team="whittington", venue=venue,
                           first_date=first, start_time=dt.time(10, 0), session_minutes=150, capacity=10)
    patient = Patient(nhs_number=next(numbers), given_name="Paula", family_name="Programme",
                      date_of_birth=dt.date(1968, 5, 17), mobile=demo_mobile(6), postcode="N19 5NF", tier=2,
                      team="whittington")
    session.add(patient)
    session.flush()
    session.add(Booking(patient_id=patient.id, service_key="t2-programme", cohort_id=cohort.id,
                        created_at=now - dt.timedelta(weeks=5)))
    cohort.seats_taken = 1
    session.flush()


def _running_group(session: Session, domain: DomainConfig, venues: list[Venue], numbers, *,
                   now: dt.datetime) -> None:
    """A group the demo facilitator is running: its third session is today, an hour before the demo data was
    loaded (so "My sessions today" has a register to take), its first two are marked, and one patient who
    missed both is in the did-not-attend review queue. It meets at the first of ``venues`` with no other group
    then (its time follows the time of loading, so it can fall on another demo group's)."""
    from portal.attendance import services as attendance
    from portal.audit.services import Actor

    facilitator = session.scalars(select(User).where(User.email == "facilitator@demo.portal.nhs.uk")).one()
    local_now = now.astimezone(LONDON)
    start = max(local_now - dt.timedelta(hours=1), local_now.replace(hour=0, minute=15))
    when = {"first_date": local_now.date() - dt.timedelta(weeks=2),
            "start_time": dt.time(start.hour, start.minute // 15 * 15), "minutes": 120}
    service = domain.catalogue.get("t1-group")
    venue = next(v for v in venues if not new_cohort_clashes(session, domain, service=service, venue=v,
                                                             facilitators=[], **when))
    cohort = create_cohort(session, domain, service_key="t1-group", team=None, venue=venue,
                           first_date=when["first_date"], start_time=when["start_time"],
                           session_minutes=when["minutes"], capacity=8, facilitators=[facilitator])
    people = [("Grace", "Okonkwo", {"needs_bsl_interpreter": True}),
              ("Tomasz", "Nowak", {"interpreter_language": "Polish"}),
              ("Maureen", "Kelly", {"needs_large_print": True, "carer_name": "Sean Kelly",
                                    "carer_phone": demo_mobile(190)}),
              ("Yusuf", "Demir", {"no_texts": True}),
              ("Ellen", "Price", {})]
    group = []
    for n, (given, family, needs) in enumerate(people, start=180):
        patient = Patient(nhs_number=next(numbers), given_name=given, family_name=family,
                          date_of_birth=dt.date(1950 + n % 30, n % 12 + 1, n % 27 + 1), mobile=demo_mobile(n),
                          postcode="N7 6PA", tier=1, team=None, **needs)
        session.add(patient)
        session.flush()
        session.add(Booking(patient_id=patient.id, service_key="t1-group", cohort_id=cohort.id, created_at=now))
        group.append(patient)
    cohort.seats_taken = len(group)
    session.flush()
    actor = Actor(user_id=facilitator.id, role=facilitator.role)
    missed = group[3]
    for cohort_session in cohort.sessions[:2]:
        marks = {p.id: "attended" for p in group} | {missed.id: "dna"}
        if cohort_session.number == 2:
            marks |= {group[1].id: "late_cancellation", group[4].id: "late"}
        attendance.save_register(session, domain, cohort_session.id, marks, actor=actor, now=cohort_session.ends_at)
