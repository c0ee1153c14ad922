"""Self-management reading: the releases the scheduler has recorded, and what each patient has read or done.

The reading itself is Markdown in ``content/``; which week is open is worked out from the patient's state
(``release.place``). These tables hold what cannot be worked out again: that a week was released (and the
patient nudged) once, and that the patient opened it or marked it done.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, SmallInteger, String, false
from sqlalchemy.orm import Mapped, mapped_column

from portal.auth.models import User
from portal.db import Base, UTCDateTime, utcnow


class ContentRelease(Base):
    """A week of a track released to a patient: written once by the release job (insert ... on conflict do
    nothing on the unique key), so two runs at once record it, and text about it, once."""

    __tablename__ = "selfcare_release"
    __table_args__ = (
        # Also the index for "this patient's releases": patient_id leads.
        Index("uq_selfcare_release_patient_track_week", "patient_id", "track", "week", unique=True),
        CheckConstraint("week >= 1", name="week_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id", ondelete="CASCADE"))
    track: Mapped[str] = mapped_column(String(40))
    week: Mapped[int] = mapped_column(SmallInteger)
    # When the week opened (00:00 London on its day), and when the job recorded it.
    opens_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Whether this release queued a text nudge (the outbox row says whether it went).
    texted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class ReadingProgress(Base):
    """A patient's own record of one item: when they first opened it, and when they marked it done.

    Kept whatever track the patient follows later: items read earlier stay read (and readable)."""

    __tablename__ = "selfcare_progress"
    __table_args__ = (
        Index("uq_selfcare_progress_patient_track_week", "patient_id", "track", "week", unique=True),
        CheckConstraint("week >= 1", name="week_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id", ondelete="CASCADE"))
    track: Mapped[str] = mapped_column(String(40))
    week: Mapped[int] = mapped_column(SmallInteger)
    opened_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    done_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class ReleaseCursor(Base):
    """How far the release job has looked: the next run looks at the weeks that opened since."""

    __tablename__ = "selfcare_release_cursor"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    covered_until: Mapped[dt.datetime] = mapped_column(UTCDateTime)


# The release job finds the patients whose general-track week opens today by their activation time
# (user_account.created_at), in ranges: this index keeps that to the patients concerned, not every account.
# It is declared here, beside the job that needs it, and created by migration 0012.
Index("ix_user_account_created_at", User.__table__.c.created_at)
