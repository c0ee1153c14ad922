"""The course page's plain-row listing says what the ORM says: same cohorts, order, seats, venues and sessions."""

import datetime as dt

from portal.booking import listing, services
from portal.db import utcnow
from tests import factories


def _fields(cohort):
    """An ORM Cohort and a CohortListing read the same way: the template cannot tell them apart."""
    venue = cohort.venue
    return (
        cohort.id, cohort.capacity, cohort.seats_left,
        (venue.name, venue.address, venue.access_notes, venue.is_online),
        [(s.starts_at, s.ends_at, s.status, s.moved_from) for s in cohort.sessions],
    )


def _both(session, domain, patient, service_key):
    service = domain.catalogue.get(service_key)
    now = utcnow()
    orm = services.open_cohorts(session, domain, patient, service, now=now)
    rows = listing.open_cohort_listing(session, domain, patient, service, now=now)
    return [_fields(c) for c in orm], [_fields(r) for r in rows]


def test_tier_1_listing_matches_the_orm_with_a_moved_and_a_cancelled_session(session, domain):
    patient = factories.create_patient(session, tier=1)
    today = utcnow().date()
    later = factories.create_cohort(session, first_date=today + dt.timedelta(days=40), capacity=10, seats_taken=10)
    sooner = factories.create_cohort(session, first_date=today + dt.timedelta(days=12), seats_taken=3,
                                     venue=factories.create_venue(session, name="Whittington Park", access_notes=""))
    factories.create_cohort(session, first_date=today)  # booking has closed
    sooner.sessions[2].status = "cancelled"
    sooner.sessions[3].moved_from = sooner.sessions[3].starts_at
    sooner.sessions[3].starts_at += dt.timedelta(days=1)
    sooner.sessions[3].ends_at += dt.timedelta(days=1)
    session.commit()

    orm, rows = _both(session, domain, patient, "t1-group")

    assert rows == orm
    assert [r[0] for r in rows] == [sooner.id, later.id]
    assert rows[1][2] == 0 and len(rows[0][4]) == 8
    assert rows[0][4][2][2] == "cancelled" and rows[0][4][3][3] is not None


def test_tier_2_listing_keeps_to_the_patients_team(session, domain):
    patient = factories.create_patient(session, tier=2, team="whittington")
    own = factories.create_cohort(session, service_key="t2-programme", team="whittington")
    factories.create_cohort(session, service_key="t2-programme", team="haringey")

    orm, rows = _both(session, domain, patient, "t2-programme")

    assert rows == orm and [r[0] for r in rows] == [own.id] and len(rows[0][4]) == 12


def test_a_patient_with_no_team_is_listed_nothing(session, domain):
    patient = factories.create_patient(session, tier=2, team=None, postcode="N4 3LS")
    factories.create_cohort(session, service_key="t2-programme", team="whittington")

    assert _both(session, domain, patient, "t2-programme") == ([], [])


def test_current_seat_starts_at_the_first_session_of_the_active_seat_only(session, domain):
    patient = factories.create_patient(session, tier=1)
    cohort = factories.create_cohort(session)
    assert listing.current_seat_starts(session, patient.id, "t1-group") is None

    seat = services.book_seat(session, domain, patient, cohort.id, now=utcnow())
    session.commit()
    assert listing.current_seat_starts(session, patient.id, "t1-group") == cohort.sessions[0].starts_at
    assert listing.current_seat_starts(session, patient.id, "t2-programme") is None

    services.withdraw_seat(session, domain, patient, seat.id, reason="Moving away", now=utcnow())
    session.commit()
    assert listing.current_seat_starts(session, patient.id, "t1-group") is None


def test_the_course_page_never_shows_a_stale_card(app, session, domain):
    # Each cohort's card is rendered once per distinct state and reused: a change must show at once.
    from tests.booking.helpers import signed_in
    from tests.pages import get_page

    client = signed_in(app, session, tier=1)
    cohort = factories.create_cohort(session, capacity=12, seats_taken=5)

    def places_left():
        return get_page(client, "/services/t1-group").select_one(".portal-seats-left").get_text(strip=True)

    assert places_left() == "7 of 12" and places_left() == "7 of 12"
    services.book_seat(session, domain, factories.create_patient(session, tier=1), cohort.id, now=utcnow())
    session.commit()
    assert places_left() == "6 of 12"
    cohort.sessions[1].status = "cancelled"
    session.commit()
    assert "Cancelled" in get_page(client, "/services/t1-group").select_one(".portal-session-list").get_text()
