"""Bar and line charts of the service reports, drawn on the server as SVG: no JavaScript, readable without colour.
What they share with the diary's charts (size, opening, markers) is in ``portal.svg_charts``.

Each chart is one ``<svg role="img">`` named by its ``<title>`` (``aria-labelledby``) and summarised by its
``<desc>`` (``aria-describedby``); every bar and point carries its own ``<title>`` with the exact figure, and
the page puts the full data table beside the chart. Two series differ by fill or line pattern and by marker
shape, not only by colour. A missing value (no data that month) is a gap, never drawn as zero.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from portal.svg_charts import GRID_COLOUR, TEXT_COLOUR, WIDTH, PlotArea, marker, number, svg_open

LEFT, RIGHT, TOP, BOTTOM = 44, 10, 40, 42
FONT_SIZE = 13
# NHS blue and NHS dark blue: both pass 3:1 against white (WCAG 1.4.11 non-text contrast).
COLOURS = ("#005eb8", "#330072")
MARKERS = ("circle", "square")
DASHES = (None, "6 4")


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]


def nice_ticks(low: float, high: float, *, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (always including 0 when the range crosses or touches it)."""
    low, high = min(low, 0.0), max(high, 0.0)
    if high == low:
        high = low + 1
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step) * step
    ticks = []
    value = first
    while value < high + step * 0.999:
        ticks.append(round(value, 10))
        value += step
    return ticks


def _format_tick(value: float) -> str:
    return f"{value:g}"


@dataclass(frozen=True)
class _Frame(PlotArea):
    """One band across per category: a bar stands in it, a point at its middle."""

    LEFT, RIGHT, TOP, BOTTOM = LEFT, RIGHT, TOP, BOTTOM
    n: int

    def band(self, index: int) -> float:
        """The left edge of the index-th category's band."""
        return LEFT + self.plot_width * index / self.n

    @property
    def band_width(self) -> float:
        return self.plot_width / self.n

    def x(self, index: int) -> float:
        return self.band(index) + self.band_width / 2


def _label_every(n: int) -> int:
    """Label every k-th category so that the labels (about 30 px each) do not overlap."""
    return max(1, math.ceil(n * 34 / (WIDTH - LEFT - RIGHT)))


def _axes(frame: _Frame, labels: Sequence[str], ticks: Sequence[float], unit: str) -> list[str]:
    parts = ['<g class="portal-chart__axes" aria-hidden="true">']
    for tick in ticks:
        y = frame.y(tick)
        colour = TEXT_COLOUR if tick == 0 else GRID_COLOUR
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{number(y)}" y2="{number(y)}" stroke="{colour}"/>')
        parts.append(f'<text x="{LEFT - 5}" y="{number(y + 4)}" text-anchor="end" fill="{TEXT_COLOUR}">'
                     f'{escape(_format_tick(tick))}</text>')
    if unit:
        parts.append(f'<text x="2" y="{TOP - 8}" fill="{TEXT_COLOUR}">{escape(unit)}</text>')
    every = _label_every(len(labels))
    for index, label in enumerate(labels):
        if index % every:
            continue
        first, _, second = label.partition(" ")
        x = number(frame.x(index))
        base = frame.height - BOTTOM + 16
        parts.append(f'<text x="{x}" y="{base}" text-anchor="middle" fill="{TEXT_COLOUR}">{escape(first)}</text>')
        if second:
            parts.append(f'<text x="{x}" y="{base + 15}" text-anchor="middle" fill="{TEXT_COLOUR}">'
                         f'{escape(second)}</text>')
    parts.append("</g>")
    return parts


def _legend(series: Sequence[Series], kind: str) -> list[str]:
    if len(series) < 2:
        return []
    parts = ['<g class="portal-chart__legend" aria-hidden="true">']
    x = LEFT
    for index, line in enumerate(series):
        colour = COLOURS[index % 2]
        if kind == "bar":
            fill = colour if index % 2 == 0 else "#ffffff"
            parts.append(f'<rect x="{x}" y="6" width="14" height="14" fill="{fill}" stroke="{colour}" '
                         'stroke-width="2"/>')
        else:
            dash = f' stroke-dasharray="{DASHES[index % 2]}"' if DASHES[index % 2] else ""
            parts.append(f'<line x1="{x}" x2="{x + 20}" y1="13" y2="13" stroke="{colour}" stroke-width="2"{dash}/>')
            parts.append(marker(MARKERS[index % 2], x + 10, 13, colour))
        parts.append(f'<text x="{x + 24}" y="18" fill="{TEXT_COLOUR}">{escape(line.name)}</text>')
        x += 34 + len(line.name) * 7
    parts.append("</g>")
    return parts


def _check(labels: Sequence[str], series: Sequence[Series]) -> tuple[float, float]:
    if not labels:
        raise ValueError("a chart needs at least one category")
    if not 1 <= len(series) <= 2:
        raise ValueError("a chart draws one or two series")
    for line in series:
        if len(line.values) != len(labels):
            raise ValueError(f"{line.name}: {len(line.values)} values for {len(labels)} categories")
    present = [v for line in series for v in line.values if v is not None]
    return (min(present, default=0.0), max(present, default=0.0))


def _point_title(label: str, line: Series, value: float | None, unit: str) -> str:
    shown = "no data" if value is None else f"{_format_value(value)}{(' ' + unit) if unit else ''}"
    return f"{label}, {line.name}: {shown}"


def _format_value(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def bar_chart(*, chart_id: str, title: str, description: str, labels: Sequence[str], series: Sequence[Series],
              unit: str = "", height: int = 250, y_max: float | None = None) -> Markup:
    """Vertical bars, one per category (two side by side with two series); negative values hang below 0."""
    low, high = _check(labels, series)
    ticks = nice_ticks(low, max(high, y_max or high))
    frame = _Frame(n=len(labels), y_min=ticks[0], y_max=ticks[-1], height=height)
    parts = svg_open(chart_id, title, description, height=height, font_size=FONT_SIZE)
    parts += _axes(frame, labels, ticks, unit) + _legend(series, "bar")
    gap = frame.band_width * 0.2
    width = (frame.band_width - gap) / len(series)
    zero = frame.y(0)
    for s, line in enumerate(series):
        colour = COLOURS[s % 2]
        fill = colour if s % 2 == 0 else "#ffffff"
        parts.append(f'<g class="portal-chart__series" data-series="{escape(line.name)}">')
        for index, value in enumerate(line.values):
            if value is None:
                continue
            x = frame.band(index) + gap / 2 + width * s
            top, bottom = sorted((frame.y(value), zero))
            parts.append(
                f'<rect x="{number(x)}" y="{number(top)}" width="{number(max(width - 1, 1))}" '
                f'height="{number(max(bottom - top, 0.5))}" '
                f'fill="{fill}" stroke="{colour}" stroke-width="1.5">'
                f"<title>{escape(_point_title(labels[index], line, value, unit))}</title></rect>"
            )
        parts.append("</g>")
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text is escaped above


def line_chart(*, chart_id: str, title: str, description: str, labels: Sequence[str], series: Sequence[Series],
               unit: str = "", height: int = 250, y_max: float | None = None) -> Markup:
    """One point per category for each series, joined by a line; a missing value breaks the line."""
    low, high = _check(labels, series)
    ticks = nice_ticks(low, max(high, y_max or high))
    frame = _Frame(n=len(labels), y_min=ticks[0], y_max=ticks[-1], height=height)
    parts = svg_open(chart_id, title, description, height=height, font_size=FONT_SIZE)
    parts += _axes(frame, labels, ticks, unit) + _legend(series, "line")
    for s, line in enumerate(series):
        colour = COLOURS[s % 2]
        dash = f' stroke-dasharray="{DASHES[s % 2]}"' if DASHES[s % 2] else ""
        parts.append(f'<g class="portal-chart__series" data-series="{escape(line.name)}">')
        stretch: list[str] = []
        for index, value in enumerate([*line.values, None]):
            if value is None:
                if len(stretch) > 1:
                    parts.append(f'<polyline points="{" ".join(stretch)}" fill="none" stroke="{colour}" '
                                 f'stroke-width="2"{dash}/>')
                stretch = []
                continue
            stretch.append(f"{number(frame.x(index))},{number(frame.y(value))}")
        for index, value in enumerate(line.values):
            if value is not None:
                parts.append(marker(MARKERS[s % 2], frame.x(index), frame.y(value), colour,
                                    title=_point_title(labels[index], line, value, unit)))
        parts.append("</g>")
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text is escaped above
