"""Line charts of the diary, drawn on the server as SVG: no JavaScript, and readable without colour.

Each chart is one ``<svg role="img">`` named by its ``<title>`` and described by its ``<desc>`` (the period,
how many days were filled in, the lowest, highest and average), so a screen reader gets the gist; the page
puts a table with every day's numbers beside it. A day with no entry is a gap: the line stops and starts
again, and is never drawn across a missing day. Series differ by colour, line pattern and marker shape.
What they share with the reports' charts (size, opening, markers) is in ``portal.svg_charts``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from portal.dates import MONTHS, weekday_and_date
from portal.svg_charts import GRID_COLOUR, TEXT_COLOUR, WIDTH, PlotArea, marker, number, svg_open

LEFT, RIGHT, TOP, BOTTOM = 34, 14, 34, 30
FONT_SIZE = 14


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[int | None]
    colour: str
    marker: str = "circle"  # circle, square or diamond
    dash: str | None = None  # an SVG stroke-dasharray


def short_day(day: dt.date) -> str:
    return f"{day.day} {MONTHS[day.month - 1][:3]}"


def describe(name: str, scale: str, days: Sequence[dt.date], values: Sequence[int | None]) -> str:
    """One or two sentences a screen reader reads as the chart's description."""
    recorded = [v for v in values if v is not None]
    first, last = weekday_and_date(days[0]), weekday_and_date(days[-1])
    period = f"{name}, {scale}, for the {len(days)} days from {first} to {last}"
    if not recorded:
        return f"{period}. No days filled in yet."
    average = sum(recorded) / len(recorded)
    filled = "1 day" if len(recorded) == 1 else f"{len(recorded)} days"
    return f"{period}: {filled} filled in. Lowest {min(recorded)}, highest {max(recorded)}, average {average:.1f}."


@dataclass(frozen=True)
class _Frame(PlotArea):
    LEFT, RIGHT, TOP, BOTTOM = LEFT, RIGHT, TOP, BOTTOM
    days: int

    def x(self, index: int) -> float:
        if self.days == 1:
            return LEFT + self.plot_width / 2
        return LEFT + self.plot_width * index / (self.days - 1)


def runs(values: Sequence[int | None]) -> list[list[tuple[int, int]]]:
    """The unbroken stretches of recorded days, as (day index, value) pairs: a missing day ends a stretch."""
    stretches: list[list[tuple[int, int]]] = []
    current: list[tuple[int, int]] = []
    for index, value in enumerate(values):
        if value is None:
            if current:
                stretches.append(current)
            current = []
        else:
            current.append((index, value))
    if current:
        stretches.append(current)
    return stretches


def line_chart(
    *,
    chart_id: str,
    title: str,
    description: str,
    days: Sequence[dt.date],
    series: Sequence[Series],
    y_min: int,
    y_max: int,
    y_ticks: Sequence[int],
    height: int = 240,
) -> Markup:
    """An SVG line chart of one value per day for each series, with gaps where a day has no value."""
    if not days:
        raise ValueError("a chart needs at least one day")
    for line in series:
        if len(line.values) != len(days):
            raise ValueError(f"{line.name}: {len(line.values)} values for {len(days)} days")
    frame = _Frame(days=len(days), y_min=y_min, y_max=y_max, height=height)
    parts = svg_open(chart_id, title, description, height=height, font_size=FONT_SIZE)
    parts += _axes(frame, days, y_ticks)
    parts += _legend(series)
    for line in series:
        parts.append(f'<g class="portal-chart__series" data-series="{escape(line.name)}">')
        for stretch in runs(line.values):
            if len(stretch) > 1:
                points = " ".join(f"{number(frame.x(i))},{number(frame.y(v))}" for i, v in stretch)
                dash = f' stroke-dasharray="{line.dash}"' if line.dash else ""
                parts.append(f'<polyline points="{points}" fill="none" stroke="{line.colour}" stroke-width="2.5" '
                             f'stroke-linejoin="round"{dash}/>')
            for index, value in stretch:
                day = days[index]
                parts.append(marker(
                    line.marker, frame.x(index), frame.y(value), line.colour,
                    extra=f' data-day="{day.isoformat()}" data-value="{value}"',
                    title=f"{short_day(day)}: {line.name.lower()} {value}",
                ))
        parts.append("</g>")
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text is escaped above


def _axes(frame: _Frame, days: Sequence[dt.date], y_ticks: Sequence[int]) -> list[str]:
    parts = ['<g class="portal-chart__axes" aria-hidden="true">']
    for tick in y_ticks:
        y = number(frame.y(tick))
        parts.append(f'<line x1="{LEFT}" y1="{y}" x2="{WIDTH - RIGHT}" y2="{y}" stroke="{GRID_COLOUR}"/>')
        parts.append(f'<text x="{LEFT - 8}" y="{y}" dy="0.35em" text-anchor="end" fill="{TEXT_COLOUR}">{tick}</text>')
    bottom = number(frame.height - BOTTOM)
    parts.append(f'<line x1="{LEFT}" y1="{bottom}" x2="{WIDTH - RIGHT}" y2="{bottom}" stroke="{TEXT_COLOUR}"/>')
    step = 7 if len(days) <= 35 else 21  # a label a week, or every 3 weeks: never overlapping at 360 wide
    for index in range(0, len(days), step):
        x = number(frame.x(index))
        anchor = "start" if index == 0 else "middle"
        tick_end = number(frame.height - BOTTOM + 5)
        parts.append(f'<line x1="{x}" y1="{bottom}" x2="{x}" y2="{tick_end}" stroke="{TEXT_COLOUR}"/>')
        parts.append(f'<text x="{x}" y="{number(frame.height - 8)}" text-anchor="{anchor}" '
                     f'fill="{TEXT_COLOUR}">{escape(short_day(days[index]))}</text>')
    parts.append("</g>")
    return parts


def _legend(series: Sequence[Series]) -> list[str]:
    parts = ['<g class="portal-chart__legend" aria-hidden="true">']
    x = LEFT
    for line in series:
        dash = f' stroke-dasharray="{line.dash}"' if line.dash else ""
        parts.append(f'<line x1="{x}" y1="14" x2="{x + 28}" y2="14" stroke="{line.colour}" stroke-width="2.5"{dash}/>')
        parts.append(marker(line.marker, x + 14, 14, line.colour))
        parts.append(f'<text x="{x + 36}" y="14" dy="0.35em" fill="{TEXT_COLOUR}">{escape(line.name)}</text>')
        x += 36 + 9 * len(line.name) + 20
    parts.append("</g>")
    return parts


PAIN_COLOUR = "#005eb8"  # NHS blue
SLEEP_COLOUR = "#007f3b"  # NHS green
MOOD_COLOUR = "#330072"  # NHS purple
TABLE_NOTE = " The table after the charts gives every day's numbers."


def diary_charts(
    days: Sequence[dt.date],
    pain: Sequence[int | None],
    sleep: Sequence[int | None],
    mood: Sequence[int | None],
) -> list[Markup]:
    """The trend page's two charts: pain (0 to 10), then sleep and mood (1 to 5, higher is better)."""
    period = f"{len(days) // 7} weeks" if len(days) % 7 == 0 else f"{len(days)} days"
    pain_chart = line_chart(
        chart_id="pain-chart", title=f"Pain over the last {period}",
        description=describe("Pain", "0 (no pain) to 10 (worst pain)", days, pain) + TABLE_NOTE,
        days=days, series=[Series("Pain", pain, PAIN_COLOUR)], y_min=0, y_max=10, y_ticks=range(0, 11, 2),
    )
    sleep_mood_chart = line_chart(
        chart_id="sleep-mood-chart", title=f"Sleep and mood over the last {period}",
        description=describe("Sleep", "1 (very badly) to 5 (very well)", days, sleep) + " "
        + describe("Mood", "1 (very low) to 5 (very good)", days, mood) + TABLE_NOTE,
        days=days, y_min=1, y_max=5, y_ticks=range(1, 6), height=220,
        series=[Series("Sleep", sleep, SLEEP_COLOUR, marker="square", dash="7 4"),
                Series("Mood", mood, MOOD_COLOUR, marker="diamond", dash="2 3")],
    )
    return [pain_chart, sleep_mood_chart]
