"""The two statements that move a cohort's seat count: every seat taken or freed goes through them.

Taking a seat is one conditional UPDATE (``seats_taken < capacity``): of two requests for the last seat
only one changes a row, whatever the isolation level, and the CHECK constraint backs it up.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from portal.booking.models import Cohort


def take_seat(session: Session, cohort_id: int) -> bool:
    """Take one seat of an open cohort; False if it is full (or not open)."""
    result = session.execute(
        update(Cohort)
        .where(Cohort.id == cohort_id, Cohort.seats_taken < Cohort.capacity, Cohort.status == "open")
        .values(seats_taken=Cohort.seats_taken + 1)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def release_seat(session: Session, cohort_id: int) -> None:
    session.execute(
        update(Cohort)
        .where(Cohort.id == cohort_id, Cohort.seats_taken > 0)
        .values(seats_taken=Cohort.seats_taken - 1)
        .execution_options(synchronize_session=False)
    )
