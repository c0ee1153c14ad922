"""England and Wales bank holidays, from the ``holidays`` package (the service is in London)."""

from __future__ import annotations

import datetime as dt
import functools

import holidays


@functools.cache
def _england(year: int) -> dict[dt.date, str]:
    return dict(holidays.country_holidays("GB", subdiv="ENG", years=year))


def england_bank_holiday(day: dt.date) -> str | None:
    """The bank holiday's name if ``day`` is one in England, else None."""
    return _england(day.year).get(day)
