"""Venues, for admins: add, change and (while nothing uses it) delete a place where sessions happen.

A venue's short name goes into texts, so it follows the texts' rule: short, and no clinical words.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import Table, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal.booking.models import Cohort, CohortSession, Venue, venue_name_key
from portal.messaging import texts

SHORT_NAME_LENGTH = (2, Venue.__table__.c.short_name.type.length)
NAME_LENGTH = Venue.__table__.c.name.type.length
FIELDS = ("name", "short_name", "address", "access_notes", "is_online")
# What the rows that point at a venue are called on the page; another table shows under its own name.
_USED_BY = {
    "cohort": ("cohort", "cohorts"),
    "availability_template": ("weekly clinic", "weekly clinics"),
    "appointment_slot": ("1:1 appointment slot", "1:1 appointment slots"),
}


class VenueInUse(Exception):
    """The venue cannot be deleted, or switched between online and in person: ``use`` says what needs it."""

    def __init__(self, use: VenueUse) -> None:
        super().__init__(use.summary())
        self.use = use


class VenueNameTaken(ValueError):
    """Another venue has this name (ignoring case and spaces): lists would show two identical choices."""

    def __init__(self, name: str) -> None:
        super().__init__(f"There is already a venue called {name}. Enter a different name, or change that venue")


def _refuse_taken_name(session: Session, name: str, *, other_than: int | None = None) -> None:
    """VenueNameTaken if another venue reads the same. Compared here rather than in SQL, so that venues named
    before the unique ``name_key`` index (which keeps no key for a second copy) count too: a trust has tens of
    venues, not thousands."""
    key = venue_name_key(name)
    for venue_id, existing in session.execute(select(Venue.id, Venue.name)):
        if venue_id != other_than and venue_name_key(existing) == key:
            raise VenueNameTaken(existing)


@contextlib.contextmanager
def _named(session: Session, name: str, *, other_than: int | None = None) -> Iterator[None]:
    """Around adding or renaming a venue to ``name``: VenueNameTaken if another of that name was committed since
    the check (two identical forms sent at once: the unique index on ``name_key`` refuses the second). The change
    is made in a savepoint, begun before it (beginning one flushes what is pending), so the transaction stays
    usable for the page that says so."""
    try:
        with session.begin_nested():
            yield
            session.flush()
    except IntegrityError:
        _refuse_taken_name(session, name, other_than=other_than)
        raise


def short_name_problem(short_name: str) -> str | None:
    """Why this may not be a venue's short name, or None. Texts carry it, so it must be short, use only
    characters a GSM-7 text carries (an emoji would reach the patient as '?', or double the text's cost), and
    say nothing clinical (the same words ``messaging.texts`` keeps out of every text)."""
    low, high = SHORT_NAME_LENGTH
    if not low <= len(short_name) <= high:
        return f"Short name must be between {low} and {high} characters"
    if not texts.carried_as_typed(short_name):
        return "Short name must only use letters, numbers and simple punctuation that texts can carry, not emoji"
    found = texts.clinical_words_in(short_name)
    if found:
        return (f"Short name must not say anything clinical, like \u2018{found[0]}\u2019: texts can be read "
                "by anyone who sees the patient\u2019s phone")
    return None


@dataclass(frozen=True)
class VenueUse:
    """What points at a venue: rows by kind, and how many of its cohorts are still to run."""

    counts: dict[str, int]
    upcoming_cohorts: int

    @property
    def in_use(self) -> bool:
        return any(self.counts.values())

    def summary(self) -> str:
        """'2 cohorts and 14 1:1 appointment slots'."""
        parts = []
        for table, count in self.counts.items():
            if count:
                one, many = _USED_BY.get(table, (table.replace("_", " "), table.replace("_", " ") + " rows"))
                parts.append(f"{count} {one if count == 1 else many}")
        if len(parts) < 2:
            return "".join(parts)
        return ", ".join(parts[:-1]) + " and " + parts[-1]

    def uses_it(self) -> str:
        """'1 cohort uses it' or '2 cohorts and 14 1:1 appointment slots use it'."""
        return f"{self.summary()} {'uses' if sum(self.counts.values()) == 1 else 'use'} it"


def _referencing_tables() -> list[tuple[Table, str]]:
    """Every table with a foreign key to venue.id, read from the metadata: a feature that adds one later
    is counted (and protects its venues from deletion) without touching this file."""
    found = []
    for table in Venue.metadata.sorted_tables:
        for key in table.foreign_keys:
            if key.column.table is Venue.__table__:
                found.append((table, key.parent.name))
    return found


def _upcoming_cohorts(now: dt.datetime):
    """Cohorts not cancelled with a session still to come, by venue."""
    return (
        select(Cohort.venue_id, func.count(func.distinct(Cohort.id)))
        .join(CohortSession, CohortSession.cohort_id == Cohort.id)
        .where(Cohort.status != "cancelled", CohortSession.starts_at > now)
        .group_by(Cohort.venue_id)
    )


def venue_use(session: Session, venue: Venue, *, now: dt.datetime) -> VenueUse:
    counts = {
        table.name: session.scalar(select(func.count()).select_from(table).where(table.c[column] == venue.id))
        for table, column in _referencing_tables()
    }
    upcoming = dict(session.execute(_upcoming_cohorts(now).where(Cohort.venue_id == venue.id)).all())
    return VenueUse(counts=counts, upcoming_cohorts=upcoming.get(venue.id, 0))


@dataclass(frozen=True)
class VenueRow:
    venue: Venue
    upcoming_cohorts: int


def venues_for_admin(session: Session, *, now: dt.datetime) -> list[VenueRow]:
    """Every venue, in-person ones first, with how many upcoming cohorts each has."""
    upcoming = dict(session.execute(_upcoming_cohorts(now)).all())
    venues = session.scalars(select(Venue).order_by(Venue.is_online, Venue.name, Venue.id))
    return [VenueRow(venue, upcoming.get(venue.id, 0)) for venue in venues]


def create_venue(
    session: Session, *, name: str, short_name: str, address: str, access_notes: str, is_online: bool
) -> Venue:
    """Add a venue. The caller has checked the short name (``short_name_problem``). VenueNameTaken if another
    venue has the same name."""
    _refuse_taken_name(session, name)
    venue = Venue(name=name, short_name=short_name, address=address, access_notes=access_notes, is_online=is_online)
    with _named(session, name):
        session.add(venue)
    return venue


def update_venue(session: Session, venue: Venue, *, now: dt.datetime, **values: object) -> list[str]:
    """Change a venue; returns the names of the fields that changed. The change shows everywhere the
    venue does, upcoming cohorts and texts included. Whether it is online cannot change while anything
    uses it (its cohorts' joining links, and what reminders say, depend on it): VenueInUse. A name another
    venue has is refused: VenueNameTaken."""
    unknown = set(values) - set(FIELDS)
    if unknown:
        raise TypeError(f"not venue fields: {sorted(unknown)}")
    changed = [name for name in FIELDS if name in values and getattr(venue, name) != values[name]]
    if "name" in changed:
        _refuse_taken_name(session, str(values["name"]), other_than=venue.id)
    if "is_online" in changed:
        use = venue_use(session, venue, now=now)
        if use.in_use:
            raise VenueInUse(use)
    with _named(session, str(values.get("name", venue.name)), other_than=venue.id):
        for name in changed:
            setattr(venue, name, values[name])
    return changed


def delete_venue(session: Session, venue: Venue, *, now: dt.datetime) -> None:
    """Delete a venue nothing uses; otherwise VenueInUse, and nothing changes."""
    use = venue_use(session, venue, now=now)
    if use.in_use:
        raise VenueInUse(use)
    session.delete(venue)
    session.flush()
