"""Waiting lists for full courses, and the time-limited offers made from them.

A patient waits for one cohort or for any cohort of the course. When a seat frees on a cohort that has not
started, the first waiting patient in ``position`` order is offered it: the seat is held for them (counted in
``seats_taken``) and they get a text. They accept in the portal, or decline; an offer not accepted within
``offer_hold_hours`` expires (a scheduled job), and each time the seat goes on to the next patient.

A seat freed at night is offered at once (the portal shows it), but its text waits for the local send window,
and the hold is counted from when the text goes: nobody is woken by an offer, or loses hours of it asleep.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Row, and_, bindparam, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from portal.booking import notices
from portal.booking.listing import has_free_seat
from portal.booking.models import WAITING_STATUSES, Booking, Cohort, CohortSession, WaitlistEntry
from portal.booking.seats import release_seat, take_seat
from portal.db import UTCDateTime, read_rows
from portal.messaging import texts
from portal.messaging.models import SmsMessage
from portal.messaging.services import enqueue_sms, into_send_window
from portal.patients.models import Patient
from portal.settings import DomainConfig, Service


class WaitlistError(Exception):
    """A waiting-list action could not be done; the message is fit to show the patient."""


class OfferNotFound(WaitlistError):
    pass


class OfferChanged(OfferNotFound):
    """The place in the queue now holds an offer in another cohort than the one the page showed: that cohort was
    cancelled and a seat in another one offered instead. An answer to the old offer is no answer to the new one."""


# Read on every course page and home page: built once, with bound parameters (building a statement costs
# more than running it). _LIVE_ENTRY is a patient's live entry on a course (at most one): its id, its status
# and the cohort of an offer it holds.
_LIVE_ENTRY = select(WaitlistEntry.id, WaitlistEntry.status, WaitlistEntry.offer_cohort_id).where(
    WaitlistEntry.patient_id == bindparam("patient_id"),
    WaitlistEntry.service_key == bindparam("service_key"),
    WaitlistEntry.status.in_(WAITING_STATUSES),
)
_OPEN_OFFER = (
    select(WaitlistEntry.id)
    .join(Cohort, Cohort.id == WaitlistEntry.offer_cohort_id)
    .where(
        WaitlistEntry.patient_id == bindparam("patient_id"),
        WaitlistEntry.status == "offered",
        WaitlistEntry.offer_expires_at > bindparam("now", type_=UTCDateTime()),
        # Only an offer the patient may still accept (accept_offer's rule): one on their own tier's course,
        # and for a team's course, their team's cohort.
        Cohort.service_key == bindparam("course_key"),
        or_(Cohort.team.is_(None), Cohort.team == bindparam("team")),
    )
    .limit(1)
)


def on_waiting_list(session: Session, patient_id: int, service_key: str) -> bool:
    """Whether the patient waits (or holds an offer) on a course's waiting list."""
    return live_entry(session, patient_id, service_key) is not None


def live_entry_by_id(session: Session, patient_id: int, entry_id: int) -> WaitlistEntry | None:
    """The patient's own live entry; another patient's id finds nothing."""
    entry = session.get(WaitlistEntry, entry_id)
    return entry if entry is not None and entry.patient_id == patient_id and entry.live else None


def has_left(session: Session, patient_id: int, entry_id: int) -> bool:
    """Whether this is the patient's own entry and they have left it: the answer to a second tap of Leave."""
    entry = session.get(WaitlistEntry, entry_id)
    return entry is not None and entry.patient_id == patient_id and entry.status == "left"


def waiting_entry(session: Session, entry_id: int) -> WaitlistEntry | None:
    """An entry still waiting in a queue (for reception to reorder)."""
    entry = session.get(WaitlistEntry, entry_id)
    return entry if entry is not None and entry.status == "waiting" else None


def open_offer_id(session: Session, domain: DomainConfig, patient: Patient, *, now: dt.datetime) -> int | None:
    """The id of an offer waiting for the patient's answer, for the home page (one indexed lookup). An offer
    made before the patient was discharged, or moved to another tier or team, is not one: accepting it is
    refused, so the home page must not say a place is free for them."""
    course = domain.catalogue.course_for_tier(patient.tier)
    if patient.discharged or course is None:
        return None
    return read_rows(session, _OPEN_OFFER, {"patient_id": patient.id, "now": now, "course_key": course.key,
                                            "team": patient.team}).scalar()


def live_entries_for_patient(session: Session, patient_id: int) -> list[WaitlistEntry]:
    return list(
        session.scalars(
            select(WaitlistEntry)
            .where(WaitlistEntry.patient_id == patient_id, WaitlistEntry.status.in_(WAITING_STATUSES))
            .options(selectinload(WaitlistEntry.cohort), selectinload(WaitlistEntry.offer_cohort))
            .order_by(WaitlistEntry.created_at)
        )
    )


def place_in_queue(session: Session, entry: WaitlistEntry) -> int:
    """1 for the first waiting patient of the course; entries for one cohort and for any cohort share a queue."""
    ahead = session.scalar(
        select(func.count(WaitlistEntry.id)).where(
            WaitlistEntry.service_key == entry.service_key,
            WaitlistEntry.status == "waiting",
            or_(
                WaitlistEntry.position < entry.position,
                and_(WaitlistEntry.position == entry.position, WaitlistEntry.id < entry.id),
            ),
        )
    )
    return (ahead or 0) + 1


_ALREADY_WAITING = ("You are already on the waiting list for this course",
                    "The patient is already on the waiting list for this course")


def join(
    session: Session,
    domain: DomainConfig,
    patient: Patient,
    service: Service,
    *,
    cohort: Cohort | None,
    now: dt.datetime,
    by_staff: bool = False,
) -> WaitlistEntry:
    """Put the patient at the end of the course's queue, for one cohort or (``cohort=None``) for any.

    A queue is for places that are not there: a cohort with places left (or, for any cohort, a course with one)
    is refused, so that the patient books instead. Messages speak to the patient, or of them when ``by_staff``.
    """
    def refuse(to_patient: str, of_patient: str) -> WaitlistError:
        return WaitlistError(of_patient if by_staff else to_patient)

    if service.kind != "course" or service.tier != patient.tier:
        raise refuse("This course is not available to you", "This course is not for the patient's tier")
    if patient.discharged:
        # Offers pass discharged patients over (offer_free_seats), so the place would never come to them.
        raise refuse("You cannot join a waiting list now. Please call us.",
                     "The patient has been discharged, so a place would never be offered to them from the waiting "
                     "list. Book them a place instead")
    if service.team_scoped and patient.team is None:
        raise refuse("You need a pain team before you can join this waiting list. Please call us.",
                     "The patient needs a pain team before they can join this waiting list. Assign one first")
    if cohort is not None and cohort.service_key != service.key:
        raise WaitlistError("That group is not part of this course")
    booked = session.scalar(
        select(Booking.id).where(
            Booking.patient_id == patient.id, Booking.service_key == service.key, Booking.status == "active"
        )
    )
    if booked is not None:
        raise refuse("You already have a place on this course", "The patient already has a place on this course")
    if on_waiting_list(session, patient.id, service.key):
        raise refuse(*_ALREADY_WAITING)
    # Seats are counted by UPDATE statements, so the count is read afresh, not from the loaded cohort.
    if cohort is not None:
        left = session.scalar(select(Cohort.capacity - Cohort.seats_taken).where(Cohort.id == cohort.id,
                                                                                 Cohort.status == "open"))
        if left is None:
            raise WaitlistError("This group is no longer taking bookings. Choose another group")
        if left > 0:
            raise WaitlistError("This group has places left: book one instead of joining its waiting list")
    elif has_free_seat(session, domain, patient, service, now=now, override_closing=by_staff):
        raise WaitlistError("A group of this course has places left: book one instead of joining the waiting list")
    last = session.scalar(select(func.max(WaitlistEntry.position)).where(WaitlistEntry.service_key == service.key))
    entry = WaitlistEntry(
        patient_id=patient.id,
        service_key=service.key,
        cohort_id=cohort.id if cohort else None,
        team=patient.team if service.team_scoped else None,
        position=(last or 0) + 1,
        status="waiting",
        joined_by_staff=by_staff,
        created_at=now,
        updated_at=now,
    )
    try:
        with session.begin_nested():
            session.add(entry)
            session.flush()
    except IntegrityError:
        # A double submit: the partial unique index kept one live entry.
        raise refuse(*_ALREADY_WAITING) from None
    return entry


def leave(session: Session, domain: DomainConfig, entry: WaitlistEntry, *, now: dt.datetime) -> None:
    """Take the patient off the queue; a seat held for their offer goes to the next patient. Conditional: if the
    entry ended meanwhile (the offer lapsed, say, and its seat moved on), nothing is released twice."""
    _end_live_entries(session, domain, WaitlistEntry.id == entry.id, status="left", now=now)
    session.expire(entry)


def end_for_new_referral(session: Session, domain: DomainConfig, patient_id: int, *, now: dt.datetime) -> int:
    """A discharged patient is referred again: every place they still hold in a queue ends (as if they left it),
    and a seat held for an offer goes to the next patient. Returns how many ended.

    Those places belong to the episode of care the discharge closed. Offers passed the patient over while they
    were discharged, and a new referral is a new wait: keeping the old place would put them, unseen, ahead of
    patients who waited while they were away, and revive an offer whose text they were sent weeks ago.
    Reception puts them on a waiting list again, as for any patient, if they want a place."""
    return _end_live_entries(session, domain, WaitlistEntry.patient_id == patient_id, status="left", now=now)


def live_entry(session: Session, patient_id: int, service_key: str) -> Row | None:
    """The patient's live entry on a course (at most one), as a row of ``_LIVE_ENTRY``, or None."""
    return read_rows(session, _LIVE_ENTRY, {"patient_id": patient_id, "service_key": service_key}).first()


def book_held_seat(session: Session, entry: Row, cohort_id: int, *, now: dt.datetime) -> bool:
    """If the live ``entry`` holds an open offer of a seat in this cohort, turn it into the patient's booking of
    that seat: True if it did (``book_seat`` then takes no other seat). Conditional, so an offer that lapsed or
    was taken meanwhile books nothing."""
    if entry.status != "offered" or entry.offer_cohort_id != cohort_id:
        return False
    booked = session.execute(
        update(WaitlistEntry)
        .where(WaitlistEntry.id == entry.id, WaitlistEntry.status == "offered", WaitlistEntry.offer_expires_at > now)
        .values(status="booked", updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount == 1
    if booked:
        withdraw_offer_text(session, entry.id, now=now)
    return booked


def end_for_booking(session: Session, domain: DomainConfig, entry: Row, *, now: dt.datetime) -> None:
    """The patient booked a free seat on the course: their queue place (``entry``) ends, and a seat held for an
    offer they did not book with goes to the next patient."""
    _end_live_entries(session, domain, WaitlistEntry.id == entry.id, status="booked", now=now)


def _end_live_entries(session: Session, domain: DomainConfig, which, *, status: str, now: dt.datetime) -> int:
    """End the live entries ``which`` picks, in one conditional UPDATE: only what is still live changes, so an entry
    ended by a concurrent request (an expiry, an accept) frees its seat once. Waiting entries have no offer cohort,
    so what comes back names exactly the seats that were held. Returns how many ended."""
    ended = session.execute(
        update(WaitlistEntry)
        .where(which, WaitlistEntry.status.in_(WAITING_STATUSES))
        .values(status=status, updated_at=now)
        .returning(WaitlistEntry.id, WaitlistEntry.offer_cohort_id)
        .execution_options(synchronize_session=False)
    ).all()
    for entry_id, cohort_id in ended:
        if cohort_id is not None:
            withdraw_offer_text(session, entry_id, now=now)
            _pass_seat_on(session, domain, cohort_id, now=now)
    return len(ended)


def offer_text_key(entry_id: int, cohort_id: int) -> str:
    """One offer text per place in the queue and cohort: a patient waiting for any cohort whose offer was withdrawn
    (its cohort cancelled) may be offered a seat in another one, and is texted about that offer too."""
    return f"{_offer_text_prefix(entry_id)}{cohort_id}"


def _offer_text_prefix(entry_id: int) -> str:
    return f"offer:{entry_id}:"


def withdraw_offer_text(session: Session, entry_id: int, *, now: dt.datetime) -> None:
    """The offer ended before its text went (the patient answered it in the portal first, or left the list):
    the text would only confuse, so it is not sent. A text already on its way is left to go."""
    session.execute(
        update(SmsMessage)
        .where(SmsMessage.idempotency_key.startswith(_offer_text_prefix(entry_id)), SmsMessage.status == "pending")
        .values(status="cancelled", error_code="offer-ended", updated_at=now)
        .execution_options(synchronize_session=False)
    )


def _pass_seat_on(session: Session, domain: DomainConfig, cohort_id: int, *, now: dt.datetime) -> None:
    release_seat(session, cohort_id)
    cohort = session.get(Cohort, cohort_id)
    if cohort is not None:
        session.refresh(cohort)
        offer_free_seats(session, domain, cohort, now=now)


def _first_session_start(session: Session, cohort_id: int) -> dt.datetime | None:
    return session.scalar(
        select(CohortSession.starts_at).where(CohortSession.cohort_id == cohort_id, CohortSession.number == 1)
    )


def offer_free_seats(session: Session, domain: DomainConfig, cohort: Cohort, *, now: dt.datetime) -> int:
    """Offer each free seat of a cohort that has not started to the next waiting patient. Returns offers made."""
    first = _first_session_start(session, cohort.id)
    if cohort.status != "open" or first is None or first <= now:
        return 0
    service = domain.catalogue.get(cohort.service_key)
    if service is None:
        return 0
    texted_at = into_send_window(now, domain.policy.reminders.window)
    if texted_at >= first:
        texted_at = now  # the group starts before the window opens: a text at night beats none
    expires = min(texted_at + dt.timedelta(hours=domain.policy.booking.offer_hold_hours), first)
    # Who may have the seat is decided by the patient as they are now, not as they were when they joined: a
    # patient since discharged, moved to the other tier or (for a team's course) to another team is passed over.
    eligible = [Patient.discharged_at.is_(None), Patient.tier == service.tier]
    if service.team_scoped:
        eligible.append(Patient.team == cohort.team)
    made = 0
    while True:
        candidate = session.scalars(
            select(WaitlistEntry)
            .join(Patient, Patient.id == WaitlistEntry.patient_id)
            .where(
                WaitlistEntry.service_key == cohort.service_key,
                WaitlistEntry.status == "waiting",
                or_(WaitlistEntry.cohort_id == cohort.id, WaitlistEntry.cohort_id.is_(None)),
                *eligible,
            )
            .order_by(WaitlistEntry.position, WaitlistEntry.id)
            .limit(1)
        ).first()
        if candidate is None:
            return made
        with session.begin_nested() as savepoint:
            # Claim the entry first, conditionally: a concurrent release may be offering to the same patient.
            claimed = session.execute(
                update(WaitlistEntry)
                .where(WaitlistEntry.id == candidate.id, WaitlistEntry.status == "waiting")
                .values(status="offered", offer_cohort_id=cohort.id, offer_expires_at=expires, updated_at=now)
                .execution_options(synchronize_session=False)
            ).rowcount == 1
            if claimed and not take_seat(session, cohort.id):
                savepoint.rollback()
                return made
        if not claimed:
            continue
        session.refresh(candidate)
        made += 1
        enqueue_sms(
            session,
            key=offer_text_key(candidate.id, cohort.id),
            patient=candidate.patient,
            kind="place_offered",
            body=texts.place_offered(first_session=cohort.first_session_going_ahead.starts_at, until=expires,
                                     phone=domain.policy.service.phone),
            now=now,
            due_at=texted_at,
            expires_at=expires,
        )


def offers_held_until(session: Session, cohort_id: int) -> dt.datetime | None:
    """When the last open offer of a seat in this cohort lapses, or None if none is open."""
    return session.scalar(select(func.max(WaitlistEntry.offer_expires_at)).where(
        WaitlistEntry.offer_cohort_id == cohort_id, WaitlistEntry.status == "offered"))


def open_to(domain: DomainConfig, patient: Patient, cohort: Cohort) -> bool:
    """Whether the patient, as they are now, may take a seat offered in this cohort: not discharged, and on a
    course of their tier (of their team, for a team's course). An offer made before that changed is not."""
    service = domain.catalogue.get(cohort.service_key)
    return not (patient.discharged or service is None or service.tier != patient.tier
                or (service.team_scoped and cohort.team != patient.team))


def may_be_offered(domain: DomainConfig, patient: Patient, entry: WaitlistEntry) -> bool:
    """Whether offer_free_seats can still offer the waiting ``entry`` a seat, the patient being as they are now:
    not for a discharged patient, nor one moved to the other tier, nor, for a team's course, one moved to
    another team while waiting for one of the old team's groups (waiting for any group follows their team)."""
    service = domain.catalogue.get(entry.service_key)
    if patient.discharged or service is None or service.tier != patient.tier:
        return False
    if service.team_scoped:
        return patient.team is not None and (entry.cohort is None or entry.cohort.team == patient.team)
    return True


def offer_for_patient(session: Session, patient: Patient, entry_id: int, *, now: dt.datetime,
                      cohort_id: int | None = None) -> WaitlistEntry:
    """The patient's own open offer, or OfferNotFound (a tampered or stale id reveals nothing); OfferChanged if
    ``cohort_id`` is given and the offer is now of a seat in another cohort."""
    entry = session.get(WaitlistEntry, entry_id)
    if (
        entry is None
        or entry.patient_id != patient.id
        or entry.status != "offered"
        or entry.offer_expires_at is None
        or entry.offer_expires_at <= now
    ):
        raise OfferNotFound("This offer is no longer open")
    if cohort_id is not None and entry.offer_cohort_id != cohort_id:
        raise OfferChanged("The place offered has changed")
    return entry


def accept_offer(
    session: Session, domain: DomainConfig, patient: Patient, entry_id: int, *, now: dt.datetime,
    by_staff: bool = False, cohort_id: int | None = None,
) -> Booking:
    """Turn the held seat into the patient's booking, with its confirmation text. ``cohort_id``: the cohort of the
    offer the patient (or staff) saw; OfferChanged if the entry's offer is now of another."""
    entry = offer_for_patient(session, patient, entry_id, now=now, cohort_id=cohort_id)
    offered = entry.offer_cohort
    if not open_to(domain, patient, offered):
        # Made before the patient's tier or team changed: the seat stays held until the offer lapses, then moves on.
        raise OfferNotFound("This offer is no longer open")
    if session.scalar(select(Booking.id).where(Booking.patient_id == patient.id,
                                               Booking.service_key == offered.service_key,
                                               Booking.status == "active")) is not None:
        # Booking a group ends its waiting-list place, so this is data put right by hand: the held seat stays until
        # the offer lapses rather than the booking failing on the one-seat-a-course index.
        raise OfferNotFound("You already have a place on this course")
    # Conditional, so an accept racing the expiry job (or a double tap) books at most once, and one racing the
    # cancellation of the offered cohort (which may offer the entry a seat elsewhere) books nothing.
    won = session.execute(
        update(WaitlistEntry)
        .where(WaitlistEntry.id == entry.id, WaitlistEntry.status == "offered",
               WaitlistEntry.offer_cohort_id == offered.id)
        .values(status="booked", updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount == 1
    if not won:
        raise OfferNotFound("This offer is no longer open")
    withdraw_offer_text(session, entry.id, now=now)
    session.refresh(entry)
    cohort = entry.offer_cohort
    assert cohort is not None
    booking = Booking(
        patient_id=patient.id, service_key=cohort.service_key, cohort_id=cohort.id, booked_by_staff=by_staff,
        created_at=now,
    )
    session.add(booking)
    session.flush()
    notices.seat_booked(
        session, domain, patient, booking_id=booking.id, first_session_at=cohort.first_session_going_ahead.starts_at,
        venue_short_name=notices.venue_name(booking), now=now,
    )
    return booking


def decline_offer(session: Session, domain: DomainConfig, patient: Patient, entry_id: int, *, now: dt.datetime,
                  cohort_id: int | None = None) -> None:
    """Turn the offer down: the place in the queue ends and the held seat goes to the next patient. ``cohort_id`` as
    for accept_offer."""
    entry = offer_for_patient(session, patient, entry_id, now=now, cohort_id=cohort_id)
    offered = entry.offer_cohort_id
    # Of the cohort read: if a cancellation moved the offer elsewhere meanwhile, the seat freed is not this one.
    declined = session.execute(
        update(WaitlistEntry)
        .where(WaitlistEntry.id == entry.id, WaitlistEntry.status == "offered",
               WaitlistEntry.offer_cohort_id == offered)
        .values(status="declined", updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount == 1
    if declined:
        withdraw_offer_text(session, entry.id, now=now)
        _pass_seat_on(session, domain, offered, now=now)


def expire_offers(session: Session, domain: DomainConfig, *, now: dt.datetime) -> int:
    """The scheduled job: offers past their time lapse, and their seats go to the next patient."""
    expired = 0
    for entry_id, cohort_id in session.execute(
        select(WaitlistEntry.id, WaitlistEntry.offer_cohort_id).where(
            WaitlistEntry.status == "offered", WaitlistEntry.offer_expires_at <= now
        )
    ).all():
        lapsed = session.execute(
            update(WaitlistEntry)
            .where(WaitlistEntry.id == entry_id, WaitlistEntry.status == "offered")
            .values(status="expired", updated_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount == 1
        if lapsed:
            expired += 1
            _pass_seat_on(session, domain, cohort_id, now=now)
    return expired


def queue_for_course(session: Session, service_key: str, *, reread: bool = False) -> list[WaitlistEntry]:
    """The live queue of a course in offer order, for reception. ``reread`` refreshes entries this session
    has already loaded, for a caller that has just waited for other writers."""
    query = (
        select(WaitlistEntry)
        .where(WaitlistEntry.service_key == service_key, WaitlistEntry.status.in_(WAITING_STATUSES))
        .options(selectinload(WaitlistEntry.patient), selectinload(WaitlistEntry.cohort))
        .order_by(WaitlistEntry.position, WaitlistEntry.id)
    )
    if reread:
        query = query.execution_options(populate_existing=True)
    return list(session.scalars(query))


def move_in_queue(session: Session, entry_id: int, *, direction: str, now: dt.datetime) -> WaitlistEntry:
    """Swap a waiting entry with its neighbour above ('up') or below ('down'). Reception records why."""
    service_key = _service_of(session, entry_id)
    # Two receptionists reordering one queue at once would each renumber the order they read, and the later
    # commit would undo the other's move. Lock the queue's live entries (in id order, so lockers never
    # deadlock) and read it afresh once the lock is ours; SQLite's writers already run one at a time.
    session.execute(
        select(WaitlistEntry.id)
        .where(WaitlistEntry.service_key == service_key, WaitlistEntry.status.in_(WAITING_STATUSES))
        .order_by(WaitlistEntry.id)
        .with_for_update()
    )
    queue = [e for e in queue_for_course(session, service_key, reread=True) if e.status == "waiting"]
    index = next((i for i, e in enumerate(queue) if e.id == entry_id), None)
    if index is None:
        raise WaitlistError("This patient is no longer waiting")
    other = index - 1 if direction == "up" else index + 1
    if other < 0 or other >= len(queue):
        raise WaitlistError("This patient is already at the " + ("top" if direction == "up" else "bottom"))
    # Renumber the whole queue so equal positions (two joins at once) cannot make a swap a no-op.
    queue[index], queue[other] = queue[other], queue[index]
    for number, entry in enumerate(queue, start=1):
        entry.position = number
        entry.updated_at = now
    session.flush()
    return queue[other]


def _service_of(session: Session, entry_id: int) -> str:
    entry = session.get(WaitlistEntry, entry_id)
    if entry is None:
        raise WaitlistError("This patient is no longer waiting")
    return entry.service_key
