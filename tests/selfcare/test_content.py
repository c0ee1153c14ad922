import datetime as dt

import pytest
from bs4 import BeautifulSoup

from portal.selfcare.content_loader import ContentError, load_library, parse_reading, render_markdown
from portal.selfcare.services import current_reading
from tests import factories
from tests.pages import get_page


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


@pytest.mark.parametrize(("days", "week"), [(0, 1), (6, 1), (7, 1), (100, 1)])
def test_current_reading_is_the_newest_week_reached(days, week):
    # Only week 1 is written so far: every patient sees it, however long ago they started.
    start = dt.date(2026, 1, 5)
    reading = current_reading(tier=1, started=start, today=start + dt.timedelta(days=days))
    assert reading.week == week and reading.track == "tier-1-general"


def test_home_page_links_this_weeks_reading_and_it_opens(app, session):
    from tests.conftest import sign_in

    user = factories.create_patient_user(session, tier=2)
    client = app.test_client()
    sign_in(client, user.patient.mobile)
    home = get_page(client, "/")
    link = home.find("a", href="/reading/week-01")
    assert link and "Your pain team" in link.get_text()
    page = get_page(client, "/reading/week-01")
    assert "When to get urgent help" in page.get_text() and "999" in page.get_text()
    assert client.get("/reading/week-99").status_code == 404
