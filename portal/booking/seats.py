"""The two statements that move a cohort's seat count: every seat taken or freed goes through them.

Taking a seat is one conditional UPDATE (``seats_taken < capacity``): of two requests for the last seat
only one changes a row, whatever the isolation level, and the CHECK constraint backs it up.
"""

from __future__ import annotations

from sqlalchemy import bindparam, update
from sqlalchemy.orm import Session

from portal.booking.models import Cohort

# Built once, with the cohort id bound per call.
_TAKE = (
    update(Cohort)
    .where(Cohort.id == bindparam("cohort_id"), Cohort.seats_taken < Cohort.capacity, Cohort.status == "open")
    .values(seats_taken=Cohort.seats_taken + 1)
    .execution_options(synchronize_session=False)
)
_RELEASE = (
    update(Cohort)
    .where(Cohort.id == bindparam("cohort_id"), Cohort.seats_taken > 0)
    .values(seats_taken=Cohort.seats_taken - 1)
    .execution_options(synchronize_session=False)
)


def take_seat(session: Session, cohort_id: int) -> bool:
    """Take one seat of an open cohort; False if it is full (or not open)."""
    return session.connection().execute(_TAKE, {"cohort_id": cohort_id}).rowcount == 1


def release_seat(session: Session, cohort_id: int) -> None:
    session.connection().execute(_RELEASE, {"cohort_id": cohort_id})
