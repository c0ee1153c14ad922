"""Concurrency: two receptionists reordering one waiting list at once both have their move kept.

Each thread runs the service in its own transaction, as a request would, released together by a
threading.Barrier (see tests/races.py). The same tests run on SQLite and on PostgreSQL.
"""

from portal.booking import waitlist
from portal.booking.models import WaitlistEntry
from portal.db import utcnow
from tests import factories
from tests.booking.test_waitlist import _queue
from tests.races import count_together


def _move(db, entry_id, direction):
    def job():
        with db.transaction() as s:
            # As the view does: the entry is loaded before the move.
            waitlist.waiting_entry(s, entry_id)
            waitlist.move_in_queue(s, entry_id, direction=direction, now=utcnow())
        return "moved"
    return job


def test_two_moves_in_one_queue_at_once_are_both_kept(session, race_db, domain):
    cohort = factories.create_cohort(session, capacity=1, seats_taken=1)
    _, entries = _queue(session, domain, cohort, 4)
    a, b, c, d = (e.id for e in entries)
    session.commit()
    # Moves that share an entry: b swaps with a while c swaps with b.
    outcomes = count_together([_move(race_db, b, "up"), _move(race_db, c, "up")])
    assert outcomes == {"moved": 2}, outcomes
    session.expire_all()
    order = [e.id for e in waitlist.queue_for_course(session, "t1-group")]
    # One after the other, in either order; never one move overwritten by the other.
    assert order in ([b, c, a, d], [a, b, c, d]), order
    positions = sorted(session.get(WaitlistEntry, i).position for i in (a, b, c, d))
    assert positions == [1, 2, 3, 4]
