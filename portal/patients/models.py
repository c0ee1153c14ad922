"""Triaged patient records."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, CheckConstraint, Date, Integer, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import Base, UTCDateTime, utcnow


class Patient(Base):
    __tablename__ = "patient"
    __table_args__ = (
        CheckConstraint("tier IN (1, 2)", name="tier_known"),
        CheckConstraint("length(nhs_number) = 10", name="nhs_number_ten_digits"),
        # Tier 1 has no team; a Tier 2 patient without one waits in the "needs a team" queue.
        CheckConstraint("tier = 2 OR team IS NULL", name="team_only_in_tier_2"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    nhs_number: Mapped[str] = mapped_column(String(10), unique=True)
    given_name: Mapped[str] = mapped_column(String(100))
    family_name: Mapped[str] = mapped_column(String(100))
    date_of_birth: Mapped[dt.date] = mapped_column(Date)
    mobile: Mapped[str] = mapped_column(String(16), index=True)
    email: Mapped[str | None] = mapped_column(String(254))
    postcode: Mapped[str] = mapped_column(String(8))
    tier: Mapped[int] = mapped_column(SmallInteger)
    team: Mapped[str | None] = mapped_column(String(40))
    sms_consent: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def full_name(self) -> str:
        return f"{self.given_name} {self.family_name}"

    @property
    def needs_team(self) -> bool:
        return self.tier == 2 and self.team is None

    @property
    def nhs_number_display(self) -> str:
        n = self.nhs_number
        return f"{n[:3]} {n[3:6]} {n[6:]}"
