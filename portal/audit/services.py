"""Writing and searching the audit trail."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import bindparam, func, insert, select
from sqlalchemy.orm import Session

from portal.audit.models import AuditEvent
from portal.dates import london_midnight
from portal.db import utcnow


@dataclass(frozen=True)
class Actor:
    """Who did it, and from where. ``user_id`` is None for an anonymous visitor."""

    user_id: int | None
    role: str
    ip: str | None = None
    request_id: str | None = None


SYSTEM = Actor(user_id=None, role="system")


# Built once: nearly every request that changes something appends an event.
_APPEND = insert(AuditEvent).values(
    {name: bindparam(name, type_=AuditEvent.__table__.c[name].type)
     for name in ("occurred_at", "actor_user_id", "actor_role", "action", "patient_id", "detail", "ip", "request_id")}
)


def record(
    session: Session, actor: Actor, action: str, *, patient_id: int | None = None, detail: str = ""
) -> None:
    """Append one event in the caller's transaction (so a rolled-back change leaves no event).

    A plain INSERT on the session's connection: an event is never read back in the request that writes it.
    """
    session.connection().execute(_APPEND, {
        "occurred_at": utcnow(),
        "actor_user_id": actor.user_id,
        "actor_role": actor.role,
        "action": action,
        "patient_id": patient_id,
        "detail": detail[:300],
        "ip": actor.ip,
        "request_id": actor.request_id,
    })


def count_since(session: Session, action: str, *, patient_id: int, since: dt.datetime) -> int:
    """How many ``action`` events the trail holds about this patient since ``since``."""
    return session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.patient_id == patient_id, AuditEvent.occurred_at >= since, AuditEvent.action == action))


def search(
    session: Session,
    *,
    patient_id: int | None = None,
    user_id: int | None = None,
    since: dt.date | None = None,
    until: dt.date | None = None,
    limit: int = 200,
) -> list[AuditEvent]:
    query = select(AuditEvent)
    if patient_id is not None:
        query = query.where(AuditEvent.patient_id == patient_id)
    if user_id is not None:
        query = query.where(AuditEvent.actor_user_id == user_id)
    # The days are London's, as the trail shows its times.
    if since is not None:
        query = query.where(AuditEvent.occurred_at >= london_midnight(since))
    if until is not None and until < dt.date.max:
        query = query.where(AuditEvent.occurred_at < london_midnight(until + dt.timedelta(days=1)))
    return list(session.scalars(query.order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc()).limit(limit)))


def actor_names(session: Session, events: list[AuditEvent]) -> dict[int, str]:
    """The display names of the accounts that acted in ``events`` (one query), for staff reading a trail."""
    from portal.auth.models import User

    ids = {event.actor_user_id for event in events if event.actor_user_id is not None}
    if not ids:
        return {}
    return dict(session.execute(select(User.id, User.display_name).where(User.id.in_(ids))).all())
