"""Dates in words: English names whatever the process's locale, which strftime's %a, %A, %b and %B follow."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from portal.dates import short_day, short_month, weekday_and_date, written_date

PORTAL = Path(__file__).resolve().parents[1] / "portal"
LOCALE_NAMES = re.compile(r"%[aAbB]")


def test_dates_in_words():
    day = dt.date(2026, 1, 6)
    assert written_date(day) == "6 January 2026"
    assert weekday_and_date(day) == "Tuesday 6 January 2026"
    assert short_day(day) == "Tue 6 Jan"
    assert short_month(dt.date(2026, 9, 1)) == "Sep 2026"


def test_no_code_or_template_asks_the_locale_for_a_name():
    found = [f"{path.relative_to(PORTAL)}:{number}"
             for path in sorted(PORTAL.rglob("*")) if path.suffix in {".py", ".html", ".txt"}
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if LOCALE_NAMES.search(line) and not line.lstrip().startswith("#")]
    assert found == []
