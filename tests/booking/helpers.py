"""Helpers shared by the booking tests."""

from sqlalchemy import func, select

from portal.booking.models import Booking, Cohort, WaitlistEntry
from tests import factories
from tests.conftest import sign_in


def seats_consistent(session, cohort_id: int) -> bool:
    """A cohort's seat count is exactly its active bookings plus the offers holding a seat."""
    session.expire_all()
    taken = session.get(Cohort, cohort_id).seats_taken
    active = session.scalar(
        select(func.count()).select_from(Booking).where(Booking.cohort_id == cohort_id, Booking.status == "active")
    )
    held = session.scalar(
        select(func.count()).select_from(WaitlistEntry).where(
            WaitlistEntry.offer_cohort_id == cohort_id, WaitlistEntry.status == "offered"
        )
    )
    return taken == active + held


def signed_in(app, session, **kw):
    user = factories.create_patient_user(session, **kw)
    client = app.test_client()
    assert sign_in(client, user.patient.mobile).status_code == 302
    client.user = user
    return client
