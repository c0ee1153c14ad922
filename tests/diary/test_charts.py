"""The trend charts: well-formed SVG with an accessible name and description, points where the data are, and
gaps where a day has no entry."""

import datetime as dt
import xml.etree.ElementTree as ET

import pytest

from portal.diary import charts

SVG = "{http://www.w3.org/2000/svg}"
FIRST = dt.date(2026, 3, 2)


def _days(n):
    return [FIRST + dt.timedelta(days=i) for i in range(n)]


def _parse(markup) -> ET.Element:
    # Our own markup, not untrusted input; fromstring raises on anything that is not well-formed XML.
    return ET.fromstring(str(markup))  # noqa: S314


def _pain_chart(values, **kw):
    return charts.line_chart(chart_id="pain", title="Pain <over> 4 weeks", description="Pain & more",
                             days=_days(len(values)), series=[charts.Series("Pain", values, "#005eb8")],
                             y_min=0, y_max=10, y_ticks=range(0, 11, 2), **kw)


def _points(svg, series="Pain"):
    group = next(g for g in svg.iter(f"{SVG}g") if g.get("data-series") == series)
    markers = [el for el in group if el.get("data-day")]
    return group, markers


def test_the_chart_is_well_formed_svg_named_by_its_title_and_desc():
    svg = _parse(_pain_chart([5, 6, None, 7]))
    assert svg.tag == f"{SVG}svg" and svg.get("role") == "img"
    title, desc = svg.find(f"{SVG}title"), svg.find(f"{SVG}desc")
    assert svg.get("aria-labelledby") == title.get("id") == "pain-title"
    assert svg.get("aria-describedby") == desc.get("id") == "pain-desc"
    # Text is escaped, never markup.
    assert title.text == "Pain <over> 4 weeks" and desc.text == "Pain & more"
    assert svg.get("viewBox") == f"0 0 {charts.WIDTH} 240"


def test_each_point_sits_where_its_value_is():
    values = [0, 10, 5, 2]
    svg = _parse(_pain_chart(values))
    _, markers = _points(svg)
    assert [(m.get("data-day"), int(m.get("data-value"))) for m in markers] == [
        (day.isoformat(), value) for day, value in zip(_days(4), values, strict=True)]
    top, bottom = charts.TOP, 240 - charts.BOTTOM
    ys = [float(m.get("cy")) for m in markers]
    assert ys[0] == bottom and ys[1] == top  # 0 at the bottom, 10 at the top
    assert ys[2] == pytest.approx((top + bottom) / 2)
    assert ys[3] == pytest.approx(bottom - (bottom - top) * 0.2)
    xs = [float(m.get("cx")) for m in markers]
    assert xs[0] == charts.LEFT and xs[-1] == charts.WIDTH - charts.RIGHT
    assert xs == sorted(xs) and len({round(b - a, 1) for a, b in zip(xs, xs[1:], strict=False)}) == 1


def test_a_missing_day_breaks_the_line():
    values = [4, 5, None, None, 6, 7, 8, None, 3]
    svg = _parse(_pain_chart(values))
    group, markers = _points(svg)
    lines = [el.get("points").split() for el in group.iter(f"{SVG}polyline")]
    # Two stretches long enough for a line (4-5 and 6-7-8); the lone 3 is a point with no line.
    assert [len(points) for points in lines] == [2, 3]
    assert len(markers) == 6
    marker_xy = {m.get("data-day"): (float(m.get("cx")), float(m.get("cy"))) for m in markers}
    days = _days(len(values))
    for line, indexes in zip(lines, ([0, 1], [4, 5, 6]), strict=True):
        assert [tuple(map(float, p.split(","))) for p in line] == [marker_xy[days[i].isoformat()] for i in indexes]
    assert days[2].isoformat() not in marker_xy and days[3].isoformat() not in marker_xy


def test_runs_split_on_gaps():
    assert charts.runs([None, 1, 2, None, 3]) == [[(1, 1), (2, 2)], [(4, 3)]]
    assert charts.runs([None, None]) == []


def test_a_chart_with_no_data_has_axes_and_no_points():
    svg = _parse(_pain_chart([None] * 28))
    group, markers = _points(svg)
    assert markers == [] and list(group.iter(f"{SVG}polyline")) == []
    labels = [t.text for t in svg.iter(f"{SVG}text")]
    assert "0" in labels and "10" in labels and "2 Mar" in labels


def test_one_day_is_drawn_in_the_middle():
    svg = _parse(_pain_chart([3]))
    _, [marker] = _points(svg)
    assert float(marker.get("cx")) == pytest.approx(charts.LEFT + (charts.WIDTH - charts.LEFT - charts.RIGHT) / 2)


def test_values_and_days_must_match():
    with pytest.raises(ValueError, match="3 values for 4 days"):
        charts.line_chart(chart_id="x", title="t", description="d", days=_days(4),
                          series=[charts.Series("Pain", [1, 2, 3], "#000")], y_min=0, y_max=10, y_ticks=[0])


@pytest.mark.parametrize("weeks, labels", [(4, 4), (12, 4)])
def test_the_diary_charts_label_weeks_along_the_bottom(weeks, labels):
    days = _days(weeks * 7)
    pain = [(i % 11) if i % 5 else None for i in range(len(days))]
    sleep = [(i % 5) + 1 if i % 3 else None for i in range(len(days))]
    mood = [((i + 2) % 5) + 1 for i in range(len(days))]
    pain_svg, sleep_mood_svg = (_parse(chart) for chart in charts.diary_charts(days, pain, sleep, mood))
    assert pain_svg.find(f"{SVG}title").text == f"Pain over the last {weeks} weeks"
    axis_labels = [t.text for t in pain_svg.iter(f"{SVG}text") if t.get("text-anchor") in ("start", "middle")]
    assert len(axis_labels) == labels and axis_labels[0] == "2 Mar"
    for svg, name, values in ((pain_svg, "Pain", pain), (sleep_mood_svg, "Sleep", sleep),
                              (sleep_mood_svg, "Mood", mood)):
        _, markers = _points(svg, name)
        assert [int(m.get("data-value")) for m in markers] == [v for v in values if v is not None]
    # Sleep and mood differ by more than colour: line pattern and marker shape.
    sleep_group, sleep_markers = _points(sleep_mood_svg, "Sleep")
    mood_group, mood_markers = _points(sleep_mood_svg, "Mood")
    assert {m.tag for m in sleep_markers} == {f"{SVG}rect"} and {m.tag for m in mood_markers} == {f"{SVG}polygon"}
    assert next(sleep_group.iter(f"{SVG}polyline")).get("stroke-dasharray") != next(
        mood_group.iter(f"{SVG}polyline")).get("stroke-dasharray")
    desc = sleep_mood_svg.find(f"{SVG}desc").text
    assert desc.startswith("Sleep, 1 (very badly) to 5 (very well)") and "Mood" in desc


def test_the_description_summarises_the_numbers():
    days = _days(28)
    text = charts.describe("Pain", "0 to 10", days, [None] * 26 + [2, 7])
    assert text == ("Pain, 0 to 10, for the 28 days from Monday 2 March 2026 to Sunday 29 March 2026: 2 days filled "
                    "in. Lowest 2, highest 7, average 4.5.")
    assert charts.describe("Pain", "0 to 10", days, [None] * 28).endswith("No days filled in yet.")
