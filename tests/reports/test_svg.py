"""The charts are well-formed SVG, named and described for screen readers, and carry every figure."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from portal.reports import svg

NS = {"svg": "http://www.w3.org/2000/svg"}


def _parse(markup) -> ET.Element:
    return ET.fromstring(str(markup))  # noqa: S314 - the markup is our own, in a test


@pytest.mark.parametrize("draw", [svg.bar_chart, svg.line_chart])
def test_chart_is_well_formed_and_accessible(draw):
    chart = _parse(draw(chart_id="c1", title="Texts <sent> & failed", description="Lowest 1, highest 9.",
                        labels=["Jan 2026", "Feb 2026", "Mar 2026"],
                        series=[svg.Series("Sent", [3, None, 9]), svg.Series("Failed", [1, 2, 0])], unit="texts"))
    assert chart.tag == "{http://www.w3.org/2000/svg}svg"
    assert chart.get("role") == "img"
    title = chart.find("svg:title", NS)
    desc = chart.find("svg:desc", NS)
    assert title is not None and title.text == "Texts <sent> & failed"  # escaped in the markup, whole here
    assert chart.get("aria-labelledby") == title.get("id") == "c1-title"
    assert chart.get("aria-describedby") == desc.get("id") == "c1-desc"
    tips = [t.text for t in chart.iter("{http://www.w3.org/2000/svg}title")][1:]
    assert "Jan 2026, Sent: 3 texts" in tips and "Mar 2026, Failed: 0 texts" in tips
    # The missing February value is a gap: no mark for it, rather than a zero.
    assert not any(tip.startswith("Feb 2026, Sent") for tip in tips)
    assert "<script" not in str(draw(chart_id="c2", title="t", description="d", labels=["a"],
                                     series=[svg.Series("s", [1])]))


def test_bars_below_zero_hang_from_the_zero_line():
    chart = _parse(svg.bar_chart(chart_id="c", title="Change", description="d", labels=["PHQ-9", "GAD-7"],
                                 series=[svg.Series("At the end", [-4, 2])]))
    rects = [r for r in chart.iter("{http://www.w3.org/2000/svg}rect")]
    negative, positive = rects[0], rects[1]
    assert float(negative.get("y")) >= float(positive.get("y")) + float(positive.get("height")) - 0.2


def test_a_chart_refuses_values_that_do_not_match_its_labels():
    with pytest.raises(ValueError):
        svg.line_chart(chart_id="c", title="t", description="d", labels=["a", "b"], series=[svg.Series("s", [1])])
    with pytest.raises(ValueError):
        svg.bar_chart(chart_id="c", title="t", description="d", labels=[], series=[])


def test_ticks_are_round_and_cover_the_values():
    assert svg.nice_ticks(0, 87) == [0, 20, 40, 60, 80, 100]
    ticks = svg.nice_ticks(-4.2, 2)
    assert ticks[0] <= -4.2 and ticks[-1] >= 2 and 0 in ticks
