"""Changing a whole cohort: its number of places (freed seats go to the waiting list at once), and cancelling it
(sessions, places, waits and offers end together, and everyone affected is texted)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update

from portal.attendance.models import Attendance
from portal.auth.models import Role
from portal.booking import cohort_changes, services, waitlist
from portal.booking.listing import open_cohort_listing
from portal.booking.models import Booking, Cohort, CohortSession, WaitlistEntry
from portal.calendars.services import events_for_patient
from portal.db import utcnow
from portal.messaging import texts
from portal.messaging.models import SmsMessage
from tests import factories
from tests.booking.helpers import seats_consistent


def _book(session, domain, cohort, count, **patient_kw):
    patients = [factories.create_patient(session, **patient_kw) for _ in range(count)]
    seats = [services.book_seat(session, domain, p, cohort.id, now=utcnow()) for p in patients]
    session.commit()
    return patients, seats


def _wait(session, domain, cohort, count, *, any_cohort=False):
    service = domain.catalogue.get(cohort.service_key)
    patients = [factories.create_patient(session) for _ in range(count)]
    entries = [waitlist.join(session, domain, p, service, cohort=None if any_cohort else cohort, now=utcnow())
               for p in patients]
    session.commit()
    return patients, entries


def _texts(session, kind):
    return list(session.scalars(select(SmsMessage).where(SmsMessage.kind == kind).order_by(SmsMessage.id)))


def _fresh(session, cohort_id):
    session.expire_all()
    return session.get(Cohort, cohort_id)


# Changing the number of places.

def test_raising_the_places_offers_them_to_the_waiting_list_at_once(session, domain):
    cohort = factories.create_cohort(session, capacity=2)
    _book(session, domain, cohort, 2)
    waiting, entries = _wait(session, domain, cohort, 3)
    change = cohort_changes.change_capacity(session, domain, cohort, 4, now=utcnow())
    session.commit()
    assert (change.before, change.after, change.offers_made) == (2, 4, 2)
    cohort = _fresh(session, cohort.id)
    assert (cohort.capacity, cohort.seats_taken) == (4, 4)
    assert [session.get(WaitlistEntry, e.id).status for e in entries] == ["offered", "offered", "waiting"]
    offers = _texts(session, "place_offered")
    assert [t.patient_id for t in offers] == [waiting[0].id, waiting[1].id]
    assert seats_consistent(session, cohort.id)


def test_lowering_the_places_stops_at_the_seats_booked_and_held(session, domain):
    cohort = factories.create_cohort(session, capacity=4)
    holders, seats = _book(session, domain, cohort, 4)
    _wait(session, domain, cohort, 1)
    # One place frees and is held for the patient waiting: 3 booked, 1 held.
    services.withdraw_seat(session, domain, holders[0], seats[0].id, reason="x", now=utcnow())
    session.commit()
    with pytest.raises(cohort_changes.CapacityTooLow) as refused:
        cohort_changes.change_capacity(session, domain, cohort, 3, now=utcnow())
    session.rollback()
    assert (refused.value.booked, refused.value.held) == (3, 1)
    assert str(refused.value) == ("Number of places must be 4 or more: 3 places are booked and 1 is held for "
                                  "waiting-list offers")
    assert _fresh(session, cohort.id).capacity == 4


def test_lowering_to_the_seats_taken_leaves_the_cohort_full(session, domain):
    cohort = factories.create_cohort(session, capacity=12)
    _book(session, domain, cohort, 5)
    change = cohort_changes.change_capacity(session, domain, cohort, 5, now=utcnow())
    session.commit()
    assert change.changed and change.offers_made == 0
    assert _fresh(session, cohort.id).seats_left == 0
    with pytest.raises(services.CohortFull):
        services.book_seat(session, domain, factories.create_patient(session), cohort.id, now=utcnow())
    session.rollback()


def test_the_same_number_changes_nothing(session, domain):
    cohort = factories.create_cohort(session, capacity=6)
    change = cohort_changes.change_capacity(session, domain, cohort, 6, now=utcnow())
    assert not change.changed


def test_a_cancelled_or_finished_cohort_keeps_its_places(session, domain):
    cancelled = factories.create_cohort(session)
    cohort_changes.cancel_cohort(session, domain, cancelled, reason="No room", now=utcnow())
    session.commit()
    with pytest.raises(cohort_changes.CohortLocked, match="is cancelled"):
        cohort_changes.change_capacity(session, domain, cancelled, 20, now=utcnow())
    session.rollback()
    finished = factories.create_cohort(session)
    later = utcnow() + dt.timedelta(weeks=20)
    with pytest.raises(cohort_changes.CohortLocked, match="has finished"):
        cohort_changes.change_capacity(session, domain, finished, 20, now=later)


def test_a_running_cohort_may_get_more_places_but_offers_none_once_started(session, domain):
    cohort = factories.create_cohort(session, capacity=1)
    _book(session, domain, cohort, 1)
    _wait(session, domain, cohort, 1)
    started = cohort.first_session.starts_at + dt.timedelta(minutes=5)
    change = cohort_changes.change_capacity(session, domain, cohort, 3, now=started)
    session.commit()
    assert change.after == 3 and change.offers_made == 0


# Cancelling the whole cohort.

def _arrange_cancellation(session, domain):
    """A cohort with 3 places booked (one patient takes no texts), one patient waiting for it alone, one waiting for
    any cohort who holds an offer of a seat in it, and one waiting for any cohort with no offer."""
    cohort = factories.create_cohort(session, capacity=4)
    booked, _ = _book(session, domain, cohort, 2)
    quiet, _ = _book(session, domain, cohort, 1, sms_consent=False)
    leaver, (seat,) = _book(session, domain, cohort, 1)
    offered, (offered_entry,) = _wait(session, domain, cohort, 1, any_cohort=True)
    # The fourth seat frees and is offered to the first in the queue.
    services.withdraw_seat(session, domain, leaver[0], seat.id, reason="x", now=utcnow())
    session.commit()
    here, (here_entry,) = _wait(session, domain, cohort, 1)
    anywhere, (anywhere_entry,) = _wait(session, domain, cohort, 1, any_cohort=True)
    assert session.get(WaitlistEntry, offered_entry.id).status == "offered"
    return cohort, {"booked": booked + quiet, "offered": offered_entry, "here": here_entry,
                    "anywhere": anywhere_entry}


def test_cancelling_a_cohort_ends_everything_in_one_go_and_texts_everyone_affected(session, domain):
    cohort, arranged = _arrange_cancellation(session, domain)
    preview = cohort_changes.cancellation_preview(session, cohort)
    assert (preview.patients_booked, preview.patients_texted, preview.waiting_here, preview.offers_elsewhere) == \
        (3, 2, 1, 1)
    first_start = cohort.first_session.starts_at
    done = cohort_changes.cancel_cohort(session, domain, cohort, reason="The venue has closed", now=utcnow())
    session.commit()
    assert done.changed and done.sessions_cancelled == 8 and done.texts_queued == 2
    assert sorted(p for p, _ in done.bookings) == sorted(p.id for p in arranged["booked"])

    cohort = _fresh(session, cohort.id)
    assert cohort.status == "cancelled" and cohort.seats_taken == 0
    assert {(s.status, s.change_reason, s.revision) for s in cohort.sessions} == {
        ("cancelled", "The venue has closed", 1)}
    places = session.scalars(select(Booking).where(Booking.cohort_id == cohort.id)).all()
    assert {(b.status, b.cancelled_by_staff, b.cancel_reason) for b in places if b.cancel_reason != "x"} == {
        ("cancelled", True, "Group cancelled: The venue has closed")}

    # Booked patients: the text a staff cancellation of a place sends.
    cancelled_texts = _texts(session, "booking_cancelled")
    told = {t.patient_id for t in cancelled_texts}
    assert told >= {p.id for p in arranged["booked"] if p.may_text}
    assert not told & {p.id for p in arranged["booked"] if not p.may_text}
    assert texts.seat_cancelled(first_session=first_start, phone=domain.policy.service.phone) in {
        t.body for t in cancelled_texts}

    # Waiting for this cohort alone: the wait ends and they are told.
    here = session.get(WaitlistEntry, arranged["here"].id)
    assert here.status == "expired"
    [wait_text] = _texts(session, "waiting_group_cancelled")
    assert wait_text.patient_id == here.patient_id and "that you were waiting for is cancelled" in wait_text.body

    # Waiting for any cohort, offered a seat here: the offer goes, the place in the queue stays, and they are told.
    offered = session.get(WaitlistEntry, arranged["offered"].id)
    assert (offered.status, offered.offer_cohort_id, offered.offer_expires_at) == ("waiting", None, None)
    assert offered.position == arranged["offered"].position
    [withdrawn_text] = _texts(session, "offer_withdrawn")
    assert withdrawn_text.patient_id == offered.patient_id and "You stay on the waiting list" in withdrawn_text.body
    offer_text = session.scalars(select(SmsMessage).where(
        SmsMessage.idempotency_key == waitlist.offer_text_key(offered.id, cohort.id))).one()
    assert offer_text.status == "cancelled"

    # Waiting for any cohort with no offer here: left alone, and not texted.
    anywhere = session.get(WaitlistEntry, arranged["anywhere"].id)
    assert anywhere.status == "waiting"
    assert session.scalar(select(SmsMessage.id).where(SmsMessage.patient_id == anywhere.patient_id)) is None
    assert seats_consistent(session, cohort.id)


def test_a_withdrawn_offer_leaves_its_patient_first_in_line_for_a_seat_free_in_another_cohort(session, domain):
    cohort, arranged = _arrange_cancellation(session, domain)
    # Another group of the course with a seat nobody holds (say its offers were declined before these patients
    # joined the queue): nothing offers it until a seat changes hands.
    other = factories.create_cohort(session, capacity=2, seats_taken=1,
                                    first_date=cohort.first_date + dt.timedelta(days=21))

    done = cohort_changes.cancel_cohort(session, domain, cohort, reason="The venue has closed", now=utcnow())
    session.commit()

    assert done.offered_in_other_cohorts == 1
    offered = session.get(WaitlistEntry, arranged["offered"].id)
    assert (offered.status, offered.offer_cohort_id) == ("offered", other.id)  # first in the queue
    assert session.get(WaitlistEntry, arranged["anywhere"].id).status == "waiting"
    # Texted about the new offer: its text is not taken for the withdrawn one's.
    offer_texts = {t.idempotency_key: t.status for t in _texts(session, "place_offered")
                   if t.patient_id == offered.patient_id}
    assert offer_texts == {waitlist.offer_text_key(offered.id, cohort.id): "cancelled",
                           waitlist.offer_text_key(offered.id, other.id): "pending"}
    assert _fresh(session, other.id).seats_taken == 2  # the one taken before, and the one held for the offer


def test_a_cancelled_cohort_is_not_listed_nor_bookable_and_its_feed_shows_every_session_cancelled(session, domain):
    cohort = factories.create_cohort(session)
    (patient,), (seat,) = _book(session, domain, cohort, 1)
    before = {e.uid: e.sequence for e in events_for_patient(session, domain, patient.id, now=utcnow())}
    cohort_changes.cancel_cohort(session, domain, cohort, reason="No facilitator", now=utcnow())
    session.commit()
    session.expire_all()
    other = factories.create_patient(session)
    service = domain.catalogue.get("t1-group")
    assert open_cohort_listing(session, domain, other, service, now=utcnow()) == []
    with pytest.raises(services.CohortNotFound):
        services.book_seat(session, domain, other, cohort.id, now=utcnow())
    session.rollback()
    events = events_for_patient(session, domain, patient.id, now=utcnow())
    assert len(events) == 8 and all(e.cancelled for e in events)
    # Each event's SEQUENCE rises, so a subscribed phone replaces its copy.
    assert all(e.sequence > before[e.uid] for e in events)


def test_cancelling_again_changes_nothing_and_texts_nobody_twice(session, domain):
    cohort = factories.create_cohort(session)
    _book(session, domain, cohort, 2)
    cohort_changes.cancel_cohort(session, domain, cohort, reason="No room", now=utcnow())
    session.commit()
    again = cohort_changes.cancel_cohort(session, domain, cohort, reason="No room", now=utcnow())
    session.commit()
    assert not again.changed
    assert len(_texts(session, "booking_cancelled")) == 2


def test_a_cohort_that_has_met_is_not_cancelled_whole(session, domain):
    cohort = factories.create_cohort(session)
    _book(session, domain, cohort, 1)
    after_first = cohort.first_session.starts_at + dt.timedelta(minutes=1)
    with pytest.raises(cohort_changes.CohortLocked, match="already met"):
        cohort_changes.cancel_cohort(session, domain, cohort, reason="x", now=after_first)
    session.rollback()
    assert _fresh(session, cohort.id).status == "open"


def test_a_cohort_whose_first_week_was_cancelled_may_still_be_cancelled_before_it_meets(session, domain):
    cohort = factories.create_cohort(session)
    session.execute(update(CohortSession).where(CohortSession.id == cohort.sessions[0].id)
                    .values(status="cancelled"))
    session.commit()
    after_week_one = cohort.sessions[0].starts_at + dt.timedelta(hours=3)
    done = cohort_changes.cancel_cohort(session, domain, _fresh(session, cohort.id), reason="x", now=after_week_one)
    assert done.changed and done.sessions_cancelled == 7


def test_marks_taken_as_people_arrived_for_the_first_session_go(session, domain):
    cohort = factories.create_cohort(session)
    (patient,), _ = _book(session, domain, cohort, 1)
    first = cohort.first_session
    facilitator = factories.create_staff(session, role=Role.FACILITATOR, enrolled=False)
    session.add(Attendance(cohort_session_id=first.id, patient_id=patient.id, service_key="t1-group",
                           starts_at=first.starts_at, mark="attended", recorded_by_id=facilitator.id))
    session.commit()
    done = cohort_changes.cancel_cohort(session, domain, cohort, reason="Fire alarm",
                                        now=first.starts_at - dt.timedelta(minutes=10))
    session.commit()
    assert done.marks_cleared == [(1, patient.id, "attended")]
    assert session.scalar(select(Attendance.id)) is None
