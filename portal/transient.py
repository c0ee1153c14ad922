"""A request that loses a lock conflict in the database runs again, once or twice, before anyone sees an error.

PostgreSQL ends one of two transactions that wait for each other's rows (a deadlock, SQLSTATE 40P01) so that the
other can finish, and may end one under serialisable isolation (40001). Nothing the ended request wrote is kept,
and the other transaction has gone by the time it runs again, so running the whole request afresh (a new
session, the signed-in user loaded again, the cookie session as it arrived) almost always succeeds. The portal
takes rows in one order where it can (booking.cohort_changes explains its order), but no single order serves
every path: a booking takes its cohort's row before its patient's waiting-list entry, while cancelling a cohort
takes the entries first. This is the one mechanism that covers the rest.

If every attempt loses, the patient gets a page saying nothing was saved and to try again (503), not the
"problem with the service" page. SQLite is not retried: its writers queue for the busy timeout instead.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from flask import Flask, g, render_template, session
from sqlalchemy.exc import DBAPIError

log = logging.getLogger(__name__)

# Deadlock detected; could not serialise access.
TRANSIENT_SQLSTATES = frozenset({"40P01", "40001"})
REQUEST_ATTEMPTS = 3


def is_transient(error: BaseException) -> bool:
    """Whether the database ended this transaction only because another one held what it needed."""
    return isinstance(error, DBAPIError) and getattr(error.orig, "sqlstate", None) in TRANSIENT_SQLSTATES


class RetryingFlask(Flask):
    """Flask, running a request again when its transaction loses a lock conflict (see the module docstring).

    ``portal.errors`` lets such an error through its catch-all handler, so it reaches this loop."""

    def full_dispatch_request(self) -> Any:
        # A deep copy: flash() appends to the session's list of messages in place.
        arrived = copy.deepcopy(dict(session))
        for attempt in range(1, REQUEST_ATTEMPTS + 1):
            try:
                return super().full_dispatch_request()
            except DBAPIError as error:
                if not is_transient(error):
                    raise
                log.warning("request lost a lock conflict (%s), attempt %s of %s", error.orig.sqlstate, attempt,
                            REQUEST_ATTEMPTS)
                _start_again(arrived)
        return self.finalize_request((render_template("errors/busy.html"), 503, {"Retry-After": "2"}))


def _start_again(arrived: dict[str, Any]) -> None:
    """Forget what the lost attempt did: its database session (rolled back), the user it loaded in that session,
    and any change it made to the cookie session."""
    lost = g.pop("db_session", None)
    if lost is not None:
        lost.rollback()
        lost.close()
    g.pop("_login_user", None)
    session.clear()
    session.update(copy.deepcopy(arrived))
