"""Fetching pages as a browser would, with the checks every page must pass."""

from __future__ import annotations

import re

from bs4 import BeautifulSoup

# Markup a template escaped by mistake shows as text: "<p>Only ..." on the page, tags and all.
ESCAPED_MARKUP = re.compile(r"</?(p|span|a|strong|br)( [a-z-]+=\"[^\"]*\")*\s*/?>")


def parse(response) -> BeautifulSoup:
    return BeautifulSoup(response.get_data(as_text=True), "html.parser")


def check_page(soup: BeautifulSoup) -> None:
    """Every page has a title, exactly one h1, a skip link to its one main landmark, a CSRF token in every POST
    form, and headings that go up one level at a time, and no markup shown as text."""
    assert soup.title and soup.title.string and soup.title.string.strip(), "page has no <title>"
    assert len(soup.find_all("h1")) == 1, f"expected one <h1>, found {len(soup.find_all('h1'))}"
    assert soup.select_one("a.nhsuk-skip-link[href='#maincontent']"), "no skip link"
    # Its target is the one <main>, able to take focus: the portal has no script to move focus there instead.
    assert len(soup.select("main, [role=main]")) == 1, "expected one main landmark"
    assert soup.select_one("main#maincontent[tabindex='-1']"), "the skip link's target cannot take focus"
    for form in soup.find_all("form"):
        if (form.get("method") or "get").lower() == "post":
            assert form.find("input", attrs={"name": "csrf_token"}), f"POST form without CSRF token: {form}"
    shown = ESCAPED_MARKUP.search(soup.get_text())
    assert shown is None, f"markup shown as text: {shown.group(0)!r}"
    # Heading levels go up one at a time (axe's heading-order): a screen reader's list of headings has no gaps.
    levels = [int(h.name[1]) for h in soup.find_all(["h1", "h2", "h3", "h4", "h5", "h6"])]
    for before, after in zip(levels, levels[1:], strict=False):
        assert after <= before + 1, f"heading levels jump from h{before} to h{after}: {levels}"


def get_page(client, url: str, *, status: int = 200) -> BeautifulSoup:
    response = client.get(url)
    assert response.status_code == status, f"GET {url}: {response.status_code}, expected {status}"
    soup = parse(response)
    check_page(soup)
    return soup


def csrf_token(soup: BeautifulSoup) -> str:
    field = soup.find("input", attrs={"name": "csrf_token"})
    assert field is not None, "no CSRF token on the page"
    return field["value"]


def error_for(soup: BeautifulSoup, field_id: str) -> str | None:
    """The error message shown next to a field (inside its form group), or None."""
    anchor = soup.find(id=field_id) or soup.find(id=f"{field_id}-day")
    if anchor is None:
        return None
    group = anchor.find_parent(class_="nhsuk-form-group")
    message = group.find(class_="nhsuk-error-message") if group else None
    return message.get_text(" ", strip=True).removeprefix("Error:").strip() if message else None


def accessible_name(tag) -> str:
    """What a screen reader calls a link or button: its aria-label, or else its text with visually hidden words
    included and anything aria-hidden left out, spaces collapsed (enough for the portal's markup)."""
    if tag.get("aria-label"):
        return " ".join(tag["aria-label"].split())

    def hidden(text) -> bool:
        for parent in text.parents:
            if parent.get("aria-hidden") == "true":
                return True
            if parent is tag:
                return False
        return False

    return " ".join("".join(str(text) for text in tag.find_all(string=True) if not hidden(text)).split())
