"""Waiting lists: joining, offers held for a time, accept, decline and expiry passing the seat on."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from portal.booking import cohort_changes, services, waitlist
from portal.booking import sessions as course_sessions
from portal.booking.models import Booking, Cohort, WaitlistEntry
from portal.db import utcnow
from portal.messaging import texts
from portal.messaging.models import SmsMessage
from tests import factories
from tests.booking.helpers import seats_consistent, signed_in
from tests.pages import csrf_token, error_for, get_page, parse

LONDON = ZoneInfo("Europe/London")


def _service(domain, key="t1-group"):
    return domain.catalogue.get(key)


def _queue(session, domain, cohort, count, *, any_cohort=False):
    patients = [factories.create_patient(session) for _ in range(count)]
    entries = [
        waitlist.join(session, domain, p, _service(domain, cohort.service_key),
                      cohort=None if any_cohort else cohort, now=utcnow())
        for p in patients
    ]
    session.commit()
    return patients, entries


def _local(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=LONDON).astimezone(dt.UTC)


def _tomorrow() -> dt.date:
    return utcnow().astimezone(LONDON).date() + dt.timedelta(days=1)


def test_a_freed_seat_is_offered_to_the_first_waiting_patient_and_held(session, domain):
    cohort = factories.create_cohort(session, capacity=2)
    holders = [factories.create_patient(session) for _ in range(2)]
    seats = [services.book_seat(session, domain, p, cohort.id, now=utcnow()) for p in holders]
    (first, second), entries = _queue(session, domain, cohort, 2)
    now = _local(_tomorrow(), 12)  # inside the send window, whenever the test runs
    services.withdraw_seat(session, domain, holders[0], seats[0].id, reason="I am feeling better", now=now)
    session.commit()
    session.expire_all()
    offered = session.get(WaitlistEntry, entries[0].id)
    assert offered.status == "offered" and offered.offer_cohort_id == cohort.id
    assert offered.offer_expires_at == now + dt.timedelta(hours=domain.policy.booking.offer_hold_hours)
    assert session.get(WaitlistEntry, entries[1].id).status == "waiting"
    # The seat is held: nobody else can take it while the offer stands.
    assert session.get(Cohort, cohort.id).seats_left == 0
    with pytest.raises(services.CohortFull):
        services.book_seat(session, domain, factories.create_patient(session), cohort.id, now=utcnow())
    session.rollback()
    offer_text = session.scalars(select(SmsMessage).where(SmsMessage.kind == "place_offered")).one()
    assert offer_text.patient_id == first.id
    assert f"Sign in by {texts.short_datetime(now + dt.timedelta(hours=48))} to accept" in offer_text.body
    assert seats_consistent(session, cohort.id)


def test_accepting_an_offer_books_the_held_seat_once(session, domain):
    cohort = factories.create_cohort(session, capacity=1)
    holder = factories.create_patient(session)
    seat = services.book_seat(session, domain, holder, cohort.id, now=utcnow())
    (waiting,), (entry,) = _queue(session, domain, cohort, 1)
    services.withdraw_seat(session, domain, holder, seat.id, reason="x", now=utcnow())
    session.commit()
    booking = waitlist.accept_offer(session, domain, waiting, entry.id, now=utcnow())
    session.commit()
    with pytest.raises(waitlist.OfferNotFound):
        waitlist.accept_offer(session, domain, waiting, entry.id, now=utcnow())
    session.rollback()
    session.expire_all()
    assert session.get(Booking, booking.id).status == "active"
    assert session.get(Cohort, cohort.id).seats_taken == 1
    assert session.get(WaitlistEntry, entry.id).status == "booked"
    assert seats_consistent(session, cohort.id)


def test_declined_and_expired_offers_pass_the_seat_to_the_next_patient(session, domain):
    cohort = factories.create_cohort(session, capacity=1)
    holder = factories.create_patient(session)
    seat = services.book_seat(session, domain, holder, cohort.id, now=utcnow())
    (first, second, third), entries = _queue(session, domain, cohort, 3)
    services.withdraw_seat(session, domain, holder, seat.id, reason="x", now=utcnow())
    waitlist.decline_offer(session, domain, first, entries[0].id, now=utcnow())
    session.commit()
    session.expire_all()
    assert [session.get(WaitlistEntry, e.id).status for e in entries] == ["declined", "offered", "waiting"]
    # Nobody answers: after the hold time the expiry job moves the offer on.
    later = utcnow() + dt.timedelta(hours=domain.policy.booking.offer_hold_hours, minutes=1)
    assert waitlist.expire_offers(session, domain, now=later) == 1
    session.commit()
    session.expire_all()
    assert [session.get(WaitlistEntry, e.id).status for e in entries] == ["declined", "expired", "offered"]
    assert session.get(Cohort, cohort.id).seats_taken == 1
    assert seats_consistent(session, cohort.id)
    offers = session.scalars(select(SmsMessage.patient_id).where(SmsMessage.kind == "place_offered")).all()
    assert sorted(offers) == sorted([first.id, second.id, third.id])


def test_a_seat_freed_at_night_is_texted_when_the_window_opens_and_held_from_then(session, domain):
    cohort = factories.create_cohort(session, capacity=1, first_date=_tomorrow() + dt.timedelta(days=10))
    holder = factories.create_patient(session)
    seat = services.book_seat(session, domain, holder, cohort.id, now=utcnow())
    _, (entry,) = _queue(session, domain, cohort, 1)
    night = _local(_tomorrow(), 23, 30)
    services.withdraw_seat(session, domain, holder, seat.id, reason="x", now=night)
    session.commit()
    session.expire_all()
    opens = _local(_tomorrow() + dt.timedelta(days=1), domain.policy.reminders.window[0].hour,
                   domain.policy.reminders.window[0].minute)
    offer = session.get(WaitlistEntry, entry.id)
    # Offered at once (the portal shows it), held for the full time from when the text goes.
    assert offer.status == "offered"
    assert offer.offer_expires_at == opens + dt.timedelta(hours=domain.policy.booking.offer_hold_hours)
    text = session.scalars(select(SmsMessage).where(SmsMessage.kind == "place_offered")).one()
    assert (text.due_at, text.expires_at) == (opens, offer.offer_expires_at)
    assert f"Sign in by {texts.short_datetime(offer.offer_expires_at)} to accept" in text.body


def test_a_seat_freed_at_night_before_an_early_group_is_texted_at_once(session, domain):
    # The group starts before the send window opens: a text at night is better than none.
    cohort = factories.create_cohort(session, capacity=1, first_date=_tomorrow() + dt.timedelta(days=1),
                                     start_time=dt.time(8, 0))
    holder = factories.create_patient(session)
    seat = services.book_seat(session, domain, holder, cohort.id, now=utcnow(), by_staff=True,
                              override_closing=True)
    _, (entry,) = _queue(session, domain, cohort, 1)
    night = _local(_tomorrow(), 23, 30)
    services.withdraw_seat(session, domain, holder, seat.id, reason="x", now=night)
    session.commit()
    session.expire_all()
    offer = session.get(WaitlistEntry, entry.id)
    assert offer.offer_expires_at == session.get(Cohort, cohort.id).first_session.starts_at
    assert session.scalars(select(SmsMessage.due_at).where(SmsMessage.kind == "place_offered")).one() == night


def test_an_offer_never_outlasts_the_start_of_the_course(session, domain):
    cohort = factories.create_cohort(session, capacity=1, first_date=utcnow().date() + dt.timedelta(days=1))
    holder = factories.create_patient(session)
    seat = services.book_seat(session, domain, holder, cohort.id, now=utcnow(), by_staff=True,
                              override_closing=True)
    _, (entry,) = _queue(session, domain, cohort, 1)
    services.withdraw_seat(session, domain, holder, seat.id, reason="x", now=utcnow())
    session.commit()
    session.expire_all()
    entry = session.get(WaitlistEntry, entry.id)
    assert entry.offer_expires_at <= session.get(Cohort, cohort.id).first_session.starts_at


def test_any_cohort_entries_are_offered_a_seat_in_any_group_of_their_team(session, domain):
    own = factories.create_cohort(session, service_key="t2-programme", team="whittington", capacity=1)
    other = factories.create_cohort(session, service_key="t2-programme", team="haringey", capacity=1)
    holders = [factories.create_patient(session, tier=2, team=t) for t in ("whittington", "haringey")]
    pairs = zip(holders, (own, other), strict=True)
    seats = [services.book_seat(session, domain, p, c.id, now=utcnow()) for p, c in pairs]
    waiting = factories.create_patient(session, tier=2, team="whittington")
    entry = waitlist.join(session, domain, waiting, _service(domain, "t2-programme"), cohort=None, now=utcnow())
    services.withdraw_seat(session, domain, holders[1], seats[1].id, reason="x", now=utcnow())
    session.commit()
    session.expire_all()
    assert session.get(WaitlistEntry, entry.id).status == "waiting"  # the other team's seat is not for them
    services.withdraw_seat(session, domain, holders[0], seats[0].id, reason="x", now=utcnow())
    session.commit()
    session.expire_all()
    assert session.get(WaitlistEntry, entry.id).offer_cohort_id == own.id


def test_booking_directly_ends_the_queue_place_and_releases_a_held_offer(session, domain):
    full = factories.create_cohort(session, capacity=1)
    holder = factories.create_patient(session)
    seat = services.book_seat(session, domain, holder, full.id, now=utcnow())
    (patient, nxt), entries = _queue(session, domain, full, 2, any_cohort=True)
    spare = factories.create_cohort(session, first_date=utcnow().date() + dt.timedelta(days=40))
    services.withdraw_seat(session, domain, holder, seat.id, reason="x", now=utcnow())
    session.commit()
    services.book_seat(session, domain, patient, spare.id, now=utcnow())
    session.commit()
    session.expire_all()
    assert session.get(WaitlistEntry, entries[0].id).status == "booked"
    # The seat held for them in the full group went straight to the next patient.
    assert session.get(WaitlistEntry, entries[1].id).status == "offered"
    assert seats_consistent(session, full.id) and seats_consistent(session, spare.id)


def test_one_live_place_per_course_and_none_when_booked(session, domain):
    cohort = factories.create_cohort(session, capacity=1, seats_taken=1)
    patient = factories.create_patient(session)
    waitlist.join(session, domain, patient, _service(domain), cohort=cohort, now=utcnow())
    session.commit()
    with pytest.raises(waitlist.WaitlistError):
        waitlist.join(session, domain, patient, _service(domain), cohort=None, now=utcnow())
    session.rollback()
    booked = factories.create_patient(session)
    services.book_seat(session, domain, booked, factories.create_cohort(session, capacity=1).id, now=utcnow())
    with pytest.raises(waitlist.WaitlistError, match="already have a place"):
        waitlist.join(session, domain, booked, _service(domain), cohort=None, now=utcnow())
    session.rollback()


def test_reception_reorders_the_queue(session, domain):
    cohort = factories.create_cohort(session, capacity=1, seats_taken=1)
    _, entries = _queue(session, domain, cohort, 3)
    waitlist.move_in_queue(session, entries[2].id, direction="up", now=utcnow())
    session.commit()
    order = [e.id for e in waitlist.queue_for_course(session, "t1-group")]
    assert order == [entries[0].id, entries[2].id, entries[1].id]
    with pytest.raises(waitlist.WaitlistError, match="top"):
        waitlist.move_in_queue(session, entries[0].id, direction="up", now=utcnow())
    session.rollback()


def test_no_waiting_list_while_there_are_places(session, domain):
    spare = factories.create_cohort(session, capacity=2, seats_taken=1)
    full = factories.create_cohort(session, capacity=1, seats_taken=1,
                                   first_date=utcnow().date() + dt.timedelta(days=40))
    patient = factories.create_patient(session)
    with pytest.raises(waitlist.WaitlistError, match="This group has places left"):
        waitlist.join(session, domain, patient, _service(domain), cohort=spare, now=utcnow())
    with pytest.raises(waitlist.WaitlistError, match="A group of this course has places left"):
        waitlist.join(session, domain, patient, _service(domain), cohort=None, now=utcnow())
    session.rollback()
    # The full group's own list is open, and once the last place goes, so is any group's.
    assert waitlist.join(session, domain, patient, _service(domain), cohort=full, now=utcnow()).cohort_id == full.id
    last_place = factories.create_patient(session)
    services.book_seat(session, domain, last_place, spare.id, now=utcnow())
    other = factories.create_patient(session)
    assert waitlist.join(session, domain, other, _service(domain), cohort=None, now=utcnow()).cohort_id is None
    # Reception reads about the patient, not "you".
    with pytest.raises(waitlist.WaitlistError, match="The patient already has a place on this course"):
        waitlist.join(session, domain, last_place, _service(domain), cohort=None, now=utcnow(), by_staff=True)
    session.rollback()


def test_joining_the_list_of_a_group_no_longer_open_is_refused(session, domain):
    cohort = factories.create_cohort(session, capacity=1, seats_taken=1)
    cohort.status = "cancelled"
    session.commit()
    with pytest.raises(waitlist.WaitlistError, match="no longer taking bookings"):
        waitlist.join(session, domain, factories.create_patient(session), _service(domain), cohort=cohort,
                      now=utcnow())
    session.rollback()


def test_reception_reads_every_refusal_about_the_patient(session, domain):
    cohort = factories.create_cohort(session, service_key="t2-programme", capacity=1, seats_taken=1)
    no_team = factories.create_patient(session, tier=2)
    no_team.team = None
    tier_1 = factories.create_patient(session)
    session.commit()
    programme = _service(domain, "t2-programme")
    for patient in (no_team, tier_1):
        with pytest.raises(waitlist.WaitlistError) as refused:
            waitlist.join(session, domain, patient, programme, cohort=cohort, now=utcnow(), by_staff=True)
        assert "you" not in str(refused.value).lower().split(), str(refused.value)
        session.rollback()


# Through the patient's pages.

def test_a_full_group_says_up_front_that_a_patient_with_a_place_cannot_wait_for_it(app, session, domain):
    """waitlist.join refuses a patient with a place on the course: the page must not offer what will be refused."""
    client = signed_in(app, session)
    later = factories.create_cohort(session, first_date=utcnow().date() + dt.timedelta(days=40))
    services.book_seat(session, domain, client.user.patient, later.id, now=utcnow())
    full = factories.create_cohort(session, capacity=3, seats_taken=3)
    session.commit()
    page = get_page(client, f"/cohorts/{full.id}")
    text = page.get_text(" ", strip=True)
    assert "You already have a place on this course" in text and "cannot join its waiting list" in text
    assert page.find("button", string=lambda s: s and "Join the waiting list" in s) is None


@pytest.mark.parametrize(("consent", "promised"), [(True, True), (False, False)])
def test_the_waiting_list_promises_a_text_only_to_a_patient_we_may_text(app, session, consent, promised):
    client = signed_in(app, session)
    client.user.patient.sms_consent = consent
    full = factories.create_cohort(session, capacity=3, seats_taken=3)
    session.commit()
    page = get_page(client, f"/cohorts/{full.id}").get_text(" ", strip=True)
    assert ("we will text you" in page) is promised and "it will show on your home page" in page
    client.post(f"/cohorts/{full.id}/waiting-list", data={"csrf_token": csrf_token(get_page(
        client, f"/cohorts/{full.id}")), "which": "any"})
    for url in ("/bookings", "/"):
        assert ("We will text you if a place comes up" in get_page(client, url).get_text(" ", strip=True)) is promised

def test_a_full_cohort_offers_the_waiting_list_and_joining_shows_the_place(app, session):
    client = signed_in(app, session)
    full = factories.create_cohort(session, capacity=3, seats_taken=3)
    page = get_page(client, f"/cohorts/{full.id}")
    assert "This group is full" in page.get_text()
    token = csrf_token(page)
    missing = client.post(f"/cohorts/{full.id}/waiting-list", data={"csrf_token": token})
    assert missing.status_code == 400
    assert error_for(parse(missing), "which") == "Select which groups you would take a place in"
    response = client.post(f"/cohorts/{full.id}/waiting-list", data={"csrf_token": token, "which": "any"})
    assert response.status_code == 302
    bookings = get_page(client, "/bookings").get_text()
    assert "number 1 on the waiting list" in bookings and "any group of this course" in bookings
    # A double submit leaves one entry.
    client.post(f"/cohorts/{full.id}/waiting-list", data={"csrf_token": token, "which": "this"})
    assert session.scalar(select(func.count()).select_from(WaitlistEntry)) == 1


def _offered_in_a_full_cohort(session, domain, patient, *, any_cohort=False):
    """A cohort of one place, its place freed and offered to ``patient`` (waiting for it, or for any cohort)."""
    cohort = factories.create_cohort(session, capacity=1)
    holder = factories.create_patient(session)
    seat = services.book_seat(session, domain, holder, cohort.id, now=utcnow())
    entry = waitlist.join(session, domain, patient, _service(domain), cohort=None if any_cohort else cohort,
                          now=utcnow())
    services.withdraw_seat(session, domain, holder, seat.id, reason="x", now=utcnow())
    session.commit()
    return cohort, entry


def test_patient_accepts_an_offer_in_the_portal(app, session, domain):
    client = signed_in(app, session)
    _, entry = _offered_in_a_full_cohort(session, domain, client.user.patient)
    assert get_page(client, "/bookings").find("a", href=f"/offers/{entry.id}")
    page = get_page(client, f"/offers/{entry.id}")
    token = csrf_token(page)
    blank = client.post(f"/offers/{entry.id}", data={"csrf_token": token})
    assert error_for(parse(blank), "decision").startswith("Select yes to book")
    assert client.post(f"/offers/{entry.id}", data={"csrf_token": token, "decision": "accept"}).status_code == 302
    assert client.post(f"/offers/{entry.id}", data={"csrf_token": token, "decision": "accept"}).status_code == 410
    session.expire_all()
    assert session.scalars(select(Booking).where(Booking.patient_id == client.user.patient_id)).one().status == "active"


@pytest.mark.parametrize("decision", ["accept", "decline"])
def test_an_answer_to_an_offer_whose_group_was_cancelled_meanwhile_is_not_taken_for_the_new_offer(
    app, session, domain, decision
):
    """The patient has the offer page open when the group is cancelled, and the same place in the queue is offered a
    seat in another group (other dates). Their answer was to the first offer: it neither books them on the other
    group nor turns it down, and they see the new offer."""
    client = signed_in(app, session)
    cohort, entry = _offered_in_a_full_cohort(session, domain, client.user.patient, any_cohort=True)
    page = first_page = get_page(client, f"/offers/{entry.id}")
    other = factories.create_cohort(session, capacity=2, first_date=cohort.first_date + dt.timedelta(days=21))
    cohort_changes.cancel_cohort(session, domain, session.get(Cohort, cohort.id), reason="Venue closed",
                                 now=utcnow())
    session.commit()
    session.expire_all()
    assert session.get(WaitlistEntry, entry.id).offer_cohort_id == other.id

    form = {"csrf_token": csrf_token(page), "decision": decision, "cohort": str(cohort.id)}
    response = client.post(f"/offers/{entry.id}", data=form)

    assert response.status_code == 302 and response.headers["Location"].endswith(f"/offers/{entry.id}")
    session.expire_all()
    assert (session.get(WaitlistEntry, entry.id).status, session.get(WaitlistEntry, entry.id).offer_cohort_id) == (
        "offered", other.id)
    assert session.scalar(select(Booking.id).where(Booking.patient_id == client.user.patient_id)) is None
    assert "has been cancelled" in get_page(client, f"/offers/{entry.id}").get_text()
    # Answered again from the new page, the answer stands.
    page = get_page(client, f"/offers/{entry.id}")
    form = {"csrf_token": csrf_token(page), "decision": decision, "cohort": str(other.id)}
    assert client.post(f"/offers/{entry.id}", data=form).status_code == 302
    session.expire_all()
    assert session.get(WaitlistEntry, entry.id).status == ("booked" if decision == "accept" else "declined")
    assert seats_consistent(session, other.id)
    # What the first page sent with the answer: the group it showed.
    assert first_page.find("input", {"name": "cohort"})["value"] == str(cohort.id)


def test_another_patients_offer_is_not_found(app, session, domain):
    client = signed_in(app, session)
    cohort = factories.create_cohort(session, capacity=1)
    holder = factories.create_patient(session)
    seat = services.book_seat(session, domain, holder, cohort.id, now=utcnow())
    other = factories.create_patient(session)
    entry = waitlist.join(session, domain, other, _service(domain), cohort=cohort, now=utcnow())
    services.withdraw_seat(session, domain, holder, seat.id, reason="x", now=utcnow())
    session.commit()
    response = client.get(f"/offers/{entry.id}")
    assert response.status_code == 410 and other.family_name not in response.get_data(as_text=True)
    assert client.post(f"/waiting-list/{entry.id}/leave", data={"csrf_token": "x"}).status_code in (400, 404)
    session.expire_all()
    assert session.get(WaitlistEntry, entry.id).status == "offered"


def _full_with_one_waiting(session, domain, *, capacity=1, **cohort):
    """A full cohort, one patient waiting for it, and the patients holding its seats."""
    cohort = factories.create_cohort(session, capacity=capacity, **cohort)
    holders = [factories.create_patient(session, tier=domain.catalogue.get(cohort.service_key).tier,
                                        team=cohort.team) for _ in range(capacity)]
    seats = [services.book_seat(session, domain, p, cohort.id, now=utcnow()) for p in holders]
    waiting = factories.create_patient(session, tier=holders[0].tier, team=cohort.team)
    entry = waitlist.join(session, domain, waiting, _service(domain, cohort.service_key), cohort=cohort, now=utcnow())
    session.commit()
    return cohort, holders, seats, waiting, entry


def test_booking_the_group_you_hold_an_offer_on_books_the_held_seat(session, domain):
    cohort, holders, seats, waiting, entry = _full_with_one_waiting(session, domain, capacity=3)
    # Two seats free: the one waiting patient is offered one, the other stays free for anyone.
    for holder, seat in zip(holders[:2], seats[:2], strict=True):
        services.withdraw_seat(session, domain, holder, seat.id, reason="x", now=utcnow())
    session.commit()
    # They book from the course page instead of accepting the offer.
    services.book_seat(session, domain, waiting, cohort.id, now=utcnow())
    session.commit()
    session.expire_all()
    assert session.get(WaitlistEntry, entry.id).status == "booked"
    assert session.get(Cohort, cohort.id).seats_left == 1  # the other freed seat is still free
    assert seats_consistent(session, cohort.id)


def test_booking_the_group_you_hold_an_offer_on_works_when_only_your_seat_is_left(session, domain):
    cohort, holders, seats, waiting, entry = _full_with_one_waiting(session, domain)
    services.withdraw_seat(session, domain, holders[0], seats[0].id, reason="x", now=utcnow())
    session.commit()
    services.book_seat(session, domain, waiting, cohort.id, now=utcnow())
    session.commit()
    session.expire_all()
    assert session.get(WaitlistEntry, entry.id).status == "booked"
    assert session.get(Cohort, cohort.id).seats_left == 0
    assert seats_consistent(session, cohort.id)


def test_booking_another_group_passes_the_held_seat_on(session, domain):
    cohort, holders, seats, waiting, entry = _full_with_one_waiting(session, domain)
    (next_in_line,), (next_entry,) = _queue(session, domain, cohort, 1)
    services.withdraw_seat(session, domain, holders[0], seats[0].id, reason="x", now=utcnow())
    session.commit()
    services.book_seat(session, domain, waiting, factories.create_cohort(session).id, now=utcnow())
    session.commit()
    session.expire_all()
    assert session.get(WaitlistEntry, entry.id).status == "booked"
    assert session.get(WaitlistEntry, next_entry.id).status == "offered"
    assert seats_consistent(session, cohort.id)


def test_the_offer_text_gives_the_time_it_lapses_when_the_group_starts_before_the_hold_ends(session, domain):
    now = utcnow()
    start = (now + dt.timedelta(hours=30)).astimezone(LONDON)
    cohort = factories.create_cohort(session, capacity=1, first_date=start.date(), start_time=dt.time(start.hour))
    holder = factories.create_patient(session)
    seat = services.book_seat(session, domain, holder, cohort.id, now=now - dt.timedelta(days=5))
    (waiting,), (entry,) = _queue(session, domain, cohort, 1)
    services.withdraw_seat(session, domain, holder, seat.id, reason="x", now=now)
    session.commit()
    session.expire_all()
    offer = session.get(WaitlistEntry, entry.id)
    assert offer.offer_expires_at < now + dt.timedelta(hours=30)
    body = session.scalars(select(SmsMessage.body).where(SmsMessage.kind == "place_offered")).one()
    assert f"Sign in by {texts.short_datetime(offer.offer_expires_at)} to accept" in body
    assert "48 hours" not in body


def test_a_discharged_patient_is_passed_over_for_a_freed_seat(session, domain):
    cohort, holders, seats, discharged, discharged_entry = _full_with_one_waiting(session, domain)
    (second,), (second_entry,) = _queue(session, domain, cohort, 1)
    discharged.discharge(utcnow(), "Back to the GP after review")
    session.commit()
    services.withdraw_seat(session, domain, holders[0], seats[0].id, reason="x", now=utcnow())
    session.commit()
    session.expire_all()
    assert session.get(WaitlistEntry, discharged_entry.id).status == "waiting"
    assert session.get(WaitlistEntry, second_entry.id).status == "offered"
    texted = session.scalars(select(SmsMessage.patient_id).where(SmsMessage.kind == "place_offered")).all()
    assert texted == [second.id]


def test_reception_cannot_queue_a_discharged_patient_who_would_never_be_offered_the_place(session, domain):
    # Reception may still book a place for a discharged patient after a new referral, but a waiting list passes
    # them over: joining one would leave them waiting for ever, told they would be texted.
    cohort, holders, seats, waiting, entry = _full_with_one_waiting(session, domain)
    discharged = factories.create_patient(session)
    discharged.discharge(utcnow(), "Back to the GP after review")
    session.commit()
    with pytest.raises(waitlist.WaitlistError, match="discharged"):
        waitlist.join(session, domain, discharged, _service(domain), cohort=cohort, now=utcnow(), by_staff=True)
    session.rollback()
    assert not waitlist.on_waiting_list(session, discharged.id, "t1-group")


def test_a_patient_moved_to_another_team_is_not_offered_their_old_teams_group(session, domain):
    from portal.patients import services as patients

    cohort, holders, seats, moved, moved_entry = _full_with_one_waiting(
        session, domain, service_key="t2-programme", team="whittington")
    patients.assign_team(session, domain, moved, "haringey")
    session.commit()
    services.withdraw_seat(session, domain, holders[0], seats[0].id, reason="x", now=utcnow())
    session.commit()
    session.expire_all()
    assert session.get(WaitlistEntry, moved_entry.id).status == "waiting"
    assert seats_consistent(session, cohort.id)


def test_an_offer_made_before_a_team_change_cannot_be_accepted(session, domain):
    from portal.patients import services as patients

    cohort, holders, seats, moved, entry = _full_with_one_waiting(
        session, domain, service_key="t2-programme", team="whittington")
    services.withdraw_seat(session, domain, holders[0], seats[0].id, reason="x", now=utcnow())
    session.commit()
    patients.assign_team(session, domain, moved, "haringey")
    session.commit()
    with pytest.raises(waitlist.OfferNotFound):
        waitlist.accept_offer(session, domain, moved, entry.id, now=utcnow())
    session.rollback()
    assert session.scalar(select(func.count(Booking.id)).where(Booking.patient_id == moved.id)) == 0


@pytest.mark.parametrize("change", ["none", "discharged", "team", "tier"])
def test_the_patients_pages_show_an_offer_only_while_they_may_accept_it(app, session, domain, change):
    from portal.patients import services as patients

    cohort = factories.create_cohort(session, service_key="t2-programme", team="whittington", capacity=1)
    holder = factories.create_patient(session, tier=2, team="whittington")
    seat = services.book_seat(session, domain, holder, cohort.id, now=utcnow())
    client = signed_in(app, session, tier=2, team="whittington")
    patient = client.user.patient
    entry = waitlist.join(session, domain, patient, _service(domain, "t2-programme"), cohort=cohort, now=utcnow())
    services.withdraw_seat(session, domain, holder, seat.id, reason="x", now=utcnow())
    session.commit()
    # The offer was made; then the patient's situation changes before they answer it.
    if change == "discharged":
        patient.discharge(utcnow(), "Back to the GP after review")
    elif change == "team":
        patients.assign_team(session, domain, patient, "haringey")
    elif change == "tier":
        patient.tier, patient.team = 1, None
    session.commit()
    for page in ("/", "/bookings"):
        offer_link = get_page(client, page).find("a", href=f"/offers/{entry.id}")
        assert (offer_link is not None) is (change == "none"), page


@pytest.mark.parametrize(("change", "promised"), [
    ("none", True), ("discharged", False), ("tier", False), ("team", False), ("team-any-group", True)])
def test_the_patients_pages_promise_a_place_only_while_the_waiting_list_can_offer_one(app, session, domain,
                                                                                     change, promised):
    from portal.patients import services as patients

    cohort = factories.create_cohort(session, service_key="t2-programme", team="whittington", capacity=1)
    services.book_seat(session, domain, factories.create_patient(session, tier=2, team="whittington"), cohort.id,
                       now=utcnow())
    client = signed_in(app, session, tier=2, team="whittington")
    patient = client.user.patient
    waitlist.join(session, domain, patient, _service(domain, "t2-programme"),
                  cohort=None if change == "team-any-group" else cohort, now=utcnow())
    session.commit()
    if change == "discharged":
        patient.discharge(utcnow(), "Back to the GP after review")
    elif change == "tier":
        patient.tier, patient.team = 1, None
    elif change.startswith("team"):
        patients.assign_team(session, domain, patient, "haringey")
    session.commit()
    page = get_page(client, "/bookings").get_text(" ", strip=True)
    assert ("We will text you if a place comes up" in page) is promised
    assert ("a place on it will not be offered to you" in page) is not promised
    # The home page says the same of the course of the patient's tier; it says nothing of waiting lists to a
    # patient now in Tier 1, nor to one discharged (their care has been passed back: it says that instead).
    home = get_page(client, "/").get_text(" ", strip=True)
    assert ("We will text you if a place comes up" in home) is promised
    assert ("a place on it will not be offered to you" in home) is (change == "team")


def test_leaving_while_the_offer_lapses_frees_the_held_seat_once(db, session, domain):
    """Two requests interleaved: the view has read the offered entry when the expiry job lapses it and offers the
    seat to the next patient; the view's leave must then release nothing. Only PostgreSQL lets the two run at
    once (SQLite's writers queue on BEGIN IMMEDIATE, so this interleaving cannot happen there)."""
    if db.is_sqlite:
        pytest.skip("the interleaving needs two concurrent writers: PostgreSQL (make test-postgres)")
    cohort, holders, seats, waiting, entry = _full_with_one_waiting(session, domain)
    (next_in_line,), (next_entry,) = _queue(session, domain, cohort, 1)
    services.withdraw_seat(session, domain, holders[0], seats[0].id, reason="x", now=utcnow())
    session.commit()
    later = utcnow() + dt.timedelta(hours=49)
    request = db.sessionmaker()
    try:
        mine = waitlist.live_entry_by_id(request, waiting.id, entry.id)
        assert mine is not None and mine.status == "offered"
        with db.transaction() as job:
            assert waitlist.expire_offers(job, domain, now=later) == 1
        waitlist.leave(request, domain, mine, now=later)
        request.commit()
    finally:
        request.close()
    session.expire_all()
    assert session.get(WaitlistEntry, entry.id).status == "expired"
    assert session.get(WaitlistEntry, next_entry.id).status == "offered"
    assert seats_consistent(session, cohort.id)


def test_the_home_page_says_the_patient_is_waiting_for_a_place(app, session, domain):
    cohort = factories.create_cohort(session, capacity=1)
    services.book_seat(session, domain, factories.create_patient(session), cohort.id, now=utcnow())
    client = signed_in(app, session)
    home = get_page(client, "/")
    assert home.find("a", string="Book the Eight-week Pain Management Group") is not None
    patient = client.user.patient
    waitlist.join(session, domain, patient, _service(domain), cohort=cohort, now=utcnow())
    session.commit()
    home = get_page(client, "/")
    assert "You are on the waiting list for the Eight-week Pain Management Group." in home.get_text(" ", strip=True)
    assert home.find("a", string="Book the Eight-week Pain Management Group") is None


@pytest.mark.parametrize("answer", ["accept", "decline", "leave"])
def test_an_offer_answered_before_its_text_goes_is_not_texted(session, domain, answer):
    cohort, holders, seats, waiting, entry = _full_with_one_waiting(session, domain)
    (next_in_line,), _ = _queue(session, domain, cohort, 1)
    services.withdraw_seat(session, domain, holders[0], seats[0].id, reason="x", now=utcnow())
    session.commit()
    if answer == "accept":
        waitlist.accept_offer(session, domain, waiting, entry.id, now=utcnow())
    elif answer == "decline":
        waitlist.decline_offer(session, domain, waiting, entry.id, now=utcnow())
    else:
        waitlist.leave(session, domain, session.get(WaitlistEntry, entry.id), now=utcnow())
    session.commit()
    offers = {m.patient_id: (m.status, m.error_code) for m in session.scalars(
        select(SmsMessage).where(SmsMessage.kind == "place_offered"))}
    expected = {waiting.id: ("cancelled", "offer-ended")}
    if answer != "accept":  # the seat went on to the next patient, whose text waits to go
        expected[next_in_line.id] = ("pending", None)
    assert offers == expected


def test_an_offer_to_a_patient_who_has_a_place_already_is_refused_not_a_crash(session, domain):
    """Booking a group ends a waiting-list place, so this is a state only a hand-made change leaves; accepting must
    still answer with words, not fail on the one-seat-a-course index."""
    cohort, holders, seats, waiting, entry = _full_with_one_waiting(session, domain)
    services.withdraw_seat(session, domain, holders[0], seats[0].id, reason="x", now=utcnow())
    session.commit()
    other = factories.create_cohort(session, first_date=utcnow().date() + dt.timedelta(days=50))
    session.add(Booking(patient_id=waiting.id, service_key=other.service_key, cohort_id=other.id))
    session.commit()
    with pytest.raises(waitlist.OfferNotFound, match="already have a place"):
        waitlist.accept_offer(session, domain, waiting, entry.id, now=utcnow())
    session.rollback()
    assert session.get(WaitlistEntry, entry.id, populate_existing=True).status == "offered"


def test_leaving_twice_says_already_left_and_another_patients_entry_is_not_found(app, session, domain):
    client = signed_in(app, session)
    cohort = factories.create_cohort(session, capacity=1, seats_taken=1)
    mine = waitlist.join(session, domain, client.user.patient, _service(domain), cohort=cohort, now=utcnow())
    other = waitlist.join(session, domain, factories.create_patient(session), _service(domain), cohort=cohort,
                          now=utcnow())
    waitlist.leave(session, domain, other, now=utcnow())
    session.commit()
    token = csrf_token(get_page(client, "/bookings"))
    first = client.post(f"/waiting-list/{mine.id}/leave", data={"csrf_token": token})
    assert first.status_code == 302 and "You have left the waiting list." in get_page(client, "/bookings").get_text()
    again = client.post(f"/waiting-list/{mine.id}/leave", data={"csrf_token": token})
    assert again.status_code == 302
    assert "You have already left this waiting list." in get_page(client, "/bookings").get_text()
    # Another patient's entry, left or not, is not there at all for this patient.
    assert client.post(f"/waiting-list/{other.id}/leave", data={"csrf_token": token}).status_code == 404


def test_the_offer_text_names_the_first_session_going_ahead_when_week_one_is_cancelled(session, domain):
    cohort, holders, seats, _, _ = _full_with_one_waiting(session, domain)
    week_one, week_two = cohort.sessions[0], cohort.sessions[1]
    course_sessions.cancel_session(session, domain, week_one, reason="Room flooded", now=utcnow())
    session.commit()

    services.withdraw_seat(session, domain, holders[0], seats[0].id, reason="x", now=utcnow())
    session.commit()

    body = session.scalars(select(SmsMessage.body).where(SmsMessage.kind == "place_offered")).one()
    assert texts.short_datetime(week_two.starts_at) in body
    assert texts.short_datetime(week_one.starts_at) not in body
