"""Every staff page (registers, did-not-attend reviews, the reception desk, admin tasks and the service reports)
opened by an admin at a phone's, a tablet's and a desktop's width: axe-core clean (WCAG 2.2 AA), nothing
scrolling sideways, exactly one h1 and a title that says what the page is. Problems are gathered across all
pages and widths, so one run lists every one of them."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from playwright.sync_api import expect

from portal import synth
from portal.attendance import services as attendance
from portal.attendance.models import DnaReview
from portal.audit.services import Actor
from portal.auth.models import Role
from portal.booking import waitlist
from portal.booking.services import book_seat
from portal.booking.sessions import cancel_session
from portal.db import utcnow
from portal.reports.pages import PAGES
from tests import factories
from tests.appointments import factories as appt
from tests.attendance import helpers
from tests.e2e.conftest import AXE_JS, AXE_TAGS, SCREENSHOTS
from tests.e2e.test_thin_path import heading, sign_in

WIDTHS = {"phone": {"width": 390, "height": 844}, "tablet": {"width": 768, "height": 1024},
          "desktop": {"width": 1280, "height": 900}}
SITE = " – Pain management – NHS"
LONDON = ZoneInfo("Europe/London")


def _arrange(db, domain) -> dict:
    with db.transaction() as s:
        synth.generate(s, 40, seed=7, domain=domain)
    with db.transaction() as s:
        admin = factories.create_staff(s, role=Role.ADMIN, display_name="Ada Admin")
        clinician = appt.create_clinician(s, role=Role.CLINICIAN, display_name="Dr Kim Lee")
        venue = factories.create_venue(s, name="Archway Health Centre", short_name="Archway HC")
        now = utcnow()
        first = factories.create_cohort(s, capacity=2, venue=venue)
        # A later group, in another room: where the patients of the cancelled session move to.
        factories.create_cohort(s, first_date=now.date() + dt.timedelta(days=21))
        ana = factories.create_patient(s, given_name="Ana", family_name="Featherstonehaugh-Montgomery",
                                       interpreter_language="Portuguese", needs_large_print=True)
        ben = factories.create_patient(s, given_name="Ben", family_name="Okoro", needs_bsl_interpreter=True)
        seat = book_seat(s, domain, ana, first.id, now=now)
        book_seat(s, domain, ben, first.id, now=now)
        waiting = factories.create_patient(s, given_name="Cal", family_name="Wren")
        entry = waitlist.join(s, domain, waiting, domain.catalogue.get("t1-group"), cohort=first, now=now)
        # A name with nowhere to break: it must wrap, not widen the lists and the record it shows in.
        unbroken = factories.create_patient(s, given_name="Zed", family_name="Quillfeatherstonehaugh" * 4)
        waitlist.join(s, domain, unbroken, domain.catalogue.get("t1-group"), cohort=first, now=now)
        cancelled = first.sessions[2]
        cancel_session(s, domain, cancelled, reason="Room flooded", now=now)
        s.commit()

        # Today's register, a 1:1 day list and a did-not-attend review.
        cara = factories.create_patient(s, given_name="Cara", family_name="Cole", needs_bsl_interpreter=True,
                                        carer_name="Chidi Cole", carer_phone="07700900111")
        today = helpers.group_session(s, booked=[cara, factories.create_patient(s)], facilitators=(admin,))
        helpers.appointment(s, ben, clinician=clinician, starts_at=now - dt.timedelta(hours=1))
        dev = factories.create_patient(s, given_name="Dev", family_name="Dhillon", interpreter_language="Punjabi")
        one = helpers.group_session(s, booked=[dev], starts_at=now - dt.timedelta(days=8))
        two = helpers.group_session(s, cohort=one.cohort, number=2, starts_at=now - dt.timedelta(days=1))
        actor = Actor(user_id=admin.id, role="admin")
        for target in (one, two):
            attendance.save_register(s, domain, target.id, {dev.id: "dna"}, actor=actor,
                                     now=target.starts_at + dt.timedelta(hours=1))
            s.commit()
        review_id = s.query(DnaReview.id).scalar()
        return {"email": admin.email, "secret": admin.totp_secret, "ana": ana.id, "seat": seat.id,
                "entry": entry.id, "cancelled": cancelled.id, "register": today.id, "venue": venue.id,
                "clinician": clinician.id, "day": now.astimezone(LONDON).date().isoformat(),
                "review": review_id, "nhs": ana.nhs_number, "cohort": today.cohort_id,
                "unbroken": unbroken.id}


def _press(label: str, *, choose: bool = False, reason: str | None = None):
    """Submit the page's form with the button ``label``; first choose its first radio and give ``reason``."""
    def act(page):
        if choose:
            page.get_by_role("radio").first.check()
        if reason:
            page.get_by_role("textbox", name=reason).fill("Room flooded: moved to the next group")
        with page.expect_navigation():
            page.get_by_role("button", name=label).click()
    return act


def _pages(d: dict) -> list[tuple]:
    p = f"/staff/patients/{d['ana']}"
    move = f"/staff/schedule/sessions/{d['cancelled']}/move-patients"
    return [
        ("today", "/staff/today"), ("register", f"/staff/registers/{d['register']}"),
        ("day-list", f"/staff/clinics/{d['clinician']}/{d['day']}"),
        ("dna-reviews", "/staff/dna-reviews"), ("dna-review", f"/staff/dna-reviews/{d['review']}"),
        ("dna-review-error", f"/staff/dna-reviews/{d['review']}", _press("Record decision")),
        ("patients", "/staff/patients"), ("patients-found", f"/staff/patients?q={d['nhs']}"),
        ("patients-error", "/staff/patients?q="), ("record", p),
        ("patients-unbroken", "/staff/patients?q=Quillfeatherstonehaugh"),
        ("record-unbroken", f"/staff/patients/{d['unbroken']}"),
        ("bookings-courses", f"{p}/courses"), ("bookings-book", f"{p}/courses/t1-group/book"),
        ("bookings-move", f"{p}/bookings/{d['seat']}/move"), ("bookings-cancel", f"{p}/bookings/{d['seat']}/cancel"),
        ("bookings-cancel-error", f"{p}/bookings/{d['seat']}/cancel", _press("Cancel the place")),
        ("bookings-join-list", f"{p}/courses/t1-group/waiting-list"),
        ("waiting-lists", "/staff/waiting-lists"), ("waiting-list-entry", f"/staff/waiting-lists/{d['entry']}"),
        ("waiting-list-entry-error", f"/staff/waiting-lists/{d['entry']}", _press("Change the order")),
        ("week", "/staff/schedule"), ("day", f"/staff/schedule?venue={d['venue']}&view=day"),
        ("week-error", "/staff/schedule?date[day]=31&date[month]=2&date[year]=2026"),
        ("move-patients", move), ("move-patients-error", move, _press("Move 2 patients")),
        ("cohort", f"/staff/courses/{d['cohort']}"),
        ("cohort-facilitators", f"/staff/courses/{d['cohort']}/facilitators"),
        ("queues", "/staff/queues"), ("invitations", "/staff/queues/invitations"),
        ("needs-a-team", "/staff/queues/needs-a-team"),
        ("admin", "/staff/admin"), ("venues", "/staff/admin/venues"), ("venue", f"/staff/admin/venues/{d['venue']}"),
        ("venue-new", "/staff/admin/venues/new"), ("venue-new-error", "/staff/admin/venues/new", _press("Save venue")),
        ("accounts", "/staff/admin/staff-accounts"), ("account", f"/staff/admin/staff-accounts/{d['clinician']}"),
        ("invite", "/staff/admin/staff-accounts/invite"),
        ("invite-error", "/staff/admin/staff-accounts/invite", _press("Create account and set-up link")),
        ("configuration", "/staff/admin/configuration"),
        ("reports", "/staff/reports"), *[(f"report-{n}", f"/staff/reports/{n}") for n in PAGES],
        ("moved", move, _press("Move 2 patients", choose=True, reason="Why are they moving?")),
    ]


def _problems(page, name: str, width: str) -> list[str]:
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE_JS))
    found = page.evaluate(
        """async (tags) => {
            const r = await axe.run(document, {runOnly: {type: 'tag', values: tags}});
            const h1s = document.querySelectorAll('h1').length;
            const levels = [...document.querySelectorAll('main h1, main h2, main h3, main h4')]
                .map(h => +h.tagName[1]);
            const skips = levels.filter((l, i) => i > 0 && l > levels[i - 1] + 1).length;
            return {axe: r.violations.map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', ')),
                    overflow: document.documentElement.scrollWidth - window.innerWidth,
                    h1s, skips, title: document.title};
        }""",
        AXE_TAGS,
    )
    where = f"{name} at {width}"
    problems = [f"{where}: axe {v}" for v in found["axe"]]
    if found["overflow"] > 0:
        problems.append(f"{where}: {found['overflow']}px wider than the screen")
    if found["h1s"] != 1:
        problems.append(f"{where}: {found['h1s']} h1 elements")
    if found["skips"]:
        problems.append(f"{where}: headings skip a level")
    title = found["title"]
    error = name.endswith("-error")
    if not title.endswith(SITE) or len(title) <= len(SITE) + 3 or title.count("Error: ") != error or (
            error and not title.startswith("Error: ")):
        problems.append(f"{where}: title {title!r} does not name the page")
    page.screenshot(path=str(SCREENSHOTS / f"widths-{width}-{name}.png"), full_page=True)
    return problems


def test_every_staff_page_at_phone_tablet_and_desktop_widths(db, domain, page):
    data = _arrange(db, domain)
    sign_in(page, data["email"], who="admin-widths", totp_secret=data["secret"])
    expect(heading(page)).to_have_text("Staff home")
    SCREENSHOTS.mkdir(exist_ok=True)
    problems: list[str] = []
    for name, url, *act in _pages(data):
        response = page.goto(url)
        assert response is not None and response.status in (200, 400), f"{url} answered {response and response.status}"
        if act:
            act[0](page)
        for width, size in WIDTHS.items():
            page.set_viewport_size(size)
            problems += _problems(page, name, width)
        page.set_viewport_size(WIDTHS["phone"])
    expect(heading(page)).to_have_text("2 patients moved")  # the last step moved them, and it is on screen
    assert not problems, "\n".join(problems)
