"""Every form the portal shows, sent back empty or with nonsense typed in: each link in the error summary must
move focus to a box on that page (NHS.UK error summary: the input's id, a date's day box, a radio group's first
radio). A link to an id the page lacks, or to a wrapper that cannot take focus, leaves a keyboard or screen
reader user where they were. The links come in the order the page shows the boxes, and the page title
starts with "Error: ", so a screen reader says so first.

The forms are found by following links, as each demo person (both tiers, in and out of a course, and every
staff role), so a new form is checked without being listed here."""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

import pyotp
from bs4 import BeautifulSoup
from sqlalchemy import select

from portal import demo_data
from portal.auth.models import StaffSecondFactor, User
from portal.dates import london_today
from portal.db import utcnow
from tests.conftest import sign_in
from tests.pages import check_page, parse

DEMO_SIGN_INS = ["07700 900001", "07700 900002", "07700 900003", "07700 900184", "07700 900006",
                 "reception@demo.portal.nhs.uk", "facilitator@demo.portal.nhs.uk", "clinician@demo.portal.nhs.uk",
                 "admin@demo.portal.nhs.uk"]
# Not followed: files, sign-out (it would end the walk), and the development inbox.
NOT_FOLLOWED = re.compile(r"sign-out|\.ics$|\.csv$|/print$|/dev/|^/static/")
CONTROLS = {"input", "select", "textarea"}


def _kind(url: str) -> str:
    """/staff/patients/12?tab=x and /staff/patients/40?tab=y are one kind of page."""
    parts = urlsplit(url)
    return re.sub(r"\d+", "N", parts.path) + "?" + ",".join(sorted(re.findall(r"([^&=]+)=", parts.query)))


def _forms_reachable(client, start: str) -> dict[str, tuple[str, dict[str, str], list[str]]]:
    """POST forms on the pages reachable by links from ``start``, one of each kind of address: by kind, the
    (address, hidden values, names of the boxes a person types into)."""
    queue, seen, forms = [start], set(), {}
    while queue:
        url = queue.pop(0)
        if _kind(url) in seen:
            continue
        seen.add(_kind(url))
        response = client.get(url)
        if response.status_code != 200 or response.mimetype != "text/html":
            continue
        html = response.get_data(as_text=True)
        for href in re.findall(r'href="([^"#]+)', html):
            target = urlsplit(urljoin(url, href.replace("&amp;", "&")))
            if not target.netloc and not NOT_FOLLOWED.search(target.path):
                queue.append(target.path + (f"?{target.query}" if target.query else ""))
        # Only the main content: the header's one form is sign-out. Parsing is most of this test's time.
        main = html[html.find("<main"):html.find("</main>")]
        if 'method="post"' not in main:
            continue
        for form in BeautifulSoup(main, "html.parser").select("form[method=post]"):
            action = urljoin(url, form.get("action") or url)
            if NOT_FOLLOWED.search(action):
                continue
            hidden = {field["name"]: field.get("value", "") for field in form.select("input[type=hidden][name]")}
            typed = [field["name"] for field in form.select("input[name], textarea[name]")
                     if field.get("type", "text") in ("text", "tel", "email", "url", "password", "number")
                     or field.name == "textarea"]
            forms.setdefault(_kind(action), (action, hidden, typed))
    return forms


def _summary_problems(page) -> list[str]:
    problems = []
    summary = page.select_one(".nhsuk-error-summary")
    # Where each id sits on the page, so the summary's order can be held to the page's.
    position = {element["id"]: n for n, element in enumerate(page.find_all(id=True))}
    targets = []
    for link in summary.select("a[href]") if summary else []:
        target = link["href"].removeprefix("#")
        element = page.find(id=target)
        if target == "maincontent" and element is not None:
            continue  # "This form has expired": there is no one field to go to.
        if element is None or element.name not in CONTROLS:
            problems.append(f"{link['href']} ({link.get_text(strip=True)}) goes to "
                            f"{'nothing' if element is None else '<' + element.name + '>'}")
        else:
            targets.append(target)
    if targets != sorted(targets, key=position.__getitem__):
        problems.append(f"the summary lists {targets}, not in the order the page shows them")
    if summary and not page.title.get_text().startswith("Error: "):
        problems.append(f"the title ({page.title.get_text()!r}) does not start with 'Error: '")
    return problems


def test_every_error_summary_link_goes_to_a_box_on_its_page(app, session, domain):
    now = utcnow()
    demo_data.load(session, domain, today=london_today(now), now=now, base_url="http://127.0.0.1")
    for user in session.scalars(select(User).where(User.email.is_not(None))):
        session.add(StaffSecondFactor(user_id=user.id, secret=pyotp.random_base32(), confirmed_at=now))
    session.commit()

    problems, error_pages, sent = [], 0, set()
    for who in DEMO_SIGN_INS:
        client = app.test_client()
        assert sign_in(client, who, demo_data.DEMO_PASSWORD).status_code == 302, who
        forms = _forms_reachable(client, "/staff" if "@" in who else "/")
        assert forms, f"no forms found as {who}"
        for kind, (action, hidden, typed) in forms.items():
            if kind in sent:
                continue  # the same form, already sent as someone else
            sent.add(kind)
            for data in ({}, dict.fromkeys(typed, "zz")) if typed else ({},):
                response = client.post(action, data={**hidden, **data})
                if response.status_code in (301, 302, 303) or response.mimetype != "text/html":
                    continue
                page = parse(response)
                if page.select_one(".nhsuk-error-summary") is None:
                    continue
                error_pages += 1
                check_page(page)
                problems += [f"{who} {action}: {problem}" for problem in _summary_problems(page)]
    assert error_pages > 40, f"only {error_pages} error pages were reached: is the walk still finding the forms?"
    assert problems == []
