import datetime as dt

import pytest
from bs4 import BeautifulSoup

from portal.selfcare.content_loader import ContentError, load_library, parse_reading, render_markdown


def test_every_tier_has_a_week_1_reading():
    library = load_library()
    for tier in (1, 2):
        reading = library[(f"tier-{tier}-general", 1)]
        assert reading.title and reading.summary and reading.task
        assert reading.reading_minutes > 0
        assert reading.review_due > dt.date(2026, 11, 1)
        assert "<h2>" in reading.html


def test_markdown_is_sanitised():
    html = render_markdown(
        "Hi <script>alert(1)</script>\n\n[x](javascript:alert(1)) [ok](https://www.nhs.uk)\n\n<img src=x onerror=y>"
    )
    soup = BeautifulSoup(html, "html.parser")
    assert not soup.find_all(["script", "img"])
    assert [a["href"] for a in soup.find_all("a")] == ["https://www.nhs.uk"]
    assert not any(attr.startswith("on") for tag in soup.find_all(True) for attr in tag.attrs)


def test_missing_front_matter_is_an_error(tmp_path):
    path = tmp_path / "week-01.md"
    path.write_text("---\ntitle: Only a title\n---\nBody\n")
    with pytest.raises(ContentError, match="front matter lacks"):
        parse_reading(path)


def test_every_track_has_its_weeks_in_order():
    library = load_library()
    expected = {"tier-1-group": 8, "tier-2-programme": 12, "tier-1-general": 8, "tier-2-general": 8}
    for track, weeks in expected.items():
        assert [w for (t, w) in sorted(library) if t == track] == list(range(1, weeks + 1)), track
    for reading in library.values():
        assert reading.slug == f"week-{reading.week:02d}"
