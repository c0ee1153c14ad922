"""What the portal's server-drawn SVG charts share: the size they are drawn at, the opening of the chart with
its accessible name and description, point markers, and how coordinates are written.

The diary's trend charts (``portal.diary.charts``) and the service reports' charts (``portal.reports.svg``)
each lay out their own axes; both are one ``<svg role="img">`` named by its ``<title>`` (``aria-labelledby``)
and summarised by its ``<desc>`` (``aria-describedby``), with the data table beside it on the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from markupsafe import escape

# Drawn at about phone width, so that its text is read at about its own size on a phone.
WIDTH = 360
TEXT_COLOUR = "#212b32"
GRID_COLOUR = "#d8dde0"
MARKER = 4  # a marker's half-width


@dataclass(frozen=True)
class PlotArea:
    """The part of a chart inside its margins (each kind of chart sets its own), and the height in it of a
    value between ``y_min`` (the bottom) and ``y_max`` (the top). Each kind adds where its points go across."""

    LEFT: ClassVar[int]
    RIGHT: ClassVar[int]
    TOP: ClassVar[int]
    BOTTOM: ClassVar[int]

    y_min: float
    y_max: float
    height: int

    @property
    def plot_width(self) -> float:
        return WIDTH - self.LEFT - self.RIGHT

    @property
    def plot_height(self) -> float:
        return self.height - self.TOP - self.BOTTOM

    def y(self, value: float) -> float:
        return self.TOP + self.plot_height * (self.y_max - value) / (self.y_max - self.y_min)


def number(value: float) -> str:
    """A coordinate to 0.1 of a unit: enough for a screen, and short."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def svg_open(chart_id: str, title: str, description: str, *, height: int, font_size: int) -> list[str]:
    """The chart's opening tag, its title (its accessible name) and its description."""
    title_id, desc_id = f"{chart_id}-title", f"{chart_id}-desc"
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="{escape(chart_id)}" class="portal-chart" '
        f'viewBox="0 0 {WIDTH} {height}" width="100%" role="img" focusable="false" '
        f'aria-labelledby="{escape(title_id)}" aria-describedby="{escape(desc_id)}" '
        f'font-family="arial, sans-serif" font-size="{font_size}">',
        f'<title id="{escape(title_id)}">{escape(title)}</title>',
        f'<desc id="{escape(desc_id)}">{escape(description)}</desc>',
    ]


def marker(shape: str, x: float, y: float, colour: str, *, extra: str = "", title: str | None = None) -> str:
    """A point's marker: circle, square or diamond, so that series differ without colour. ``extra`` is more
    attributes (already escaped); ``title`` is the point's own text, read on hover and by screen readers."""
    if shape == "square":
        tag = "rect"
        attrs = f'x="{number(x - MARKER)}" y="{number(y - MARKER)}" width="{MARKER * 2}" height="{MARKER * 2}"'
    elif shape == "diamond":
        tag, r = "polygon", MARKER + 1
        attrs = (f'points="{number(x)},{number(y - r)} {number(x + r)},{number(y)} '
                 f'{number(x)},{number(y + r)} {number(x - r)},{number(y)}"')
    else:
        tag, attrs = "circle", f'cx="{number(x)}" cy="{number(y)}" r="{MARKER}"'
    attrs += f' fill="{colour}"{extra}'
    if title is None:
        return f"<{tag} {attrs}/>"
    return f"<{tag} {attrs}><title>{escape(title)}</title></{tag}>"
