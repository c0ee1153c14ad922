"""A patient keeps their diary, sees their trends, sets a goal and writes a flare-up plan, at phone size, with
axe on every page, including the error states. The plan's print view fits on one sheet of A4."""

from __future__ import annotations

import datetime as dt
import re

from playwright.sync_api import expect
from sqlalchemy import select

from portal.diary.forms import printed_lines
from portal.diary.models import DiaryEntry
from tests import factories
from tests.diary.factories import today
from tests.e2e.conftest import check_accessibility
from tests.e2e.test_thin_path import expect_success_banner, fill_date, heading, sign_in


def _arrange(db) -> dict:
    """A patient with three weeks of entries, some days missed, all before the week that may be filled in."""
    with db.transaction() as s:
        user = factories.create_patient_user(s, tier=2)
        for n in range(9, 30):
            if n % 4:
                s.add(DiaryEntry(patient_id=user.patient_id, entry_date=today() - dt.timedelta(days=n),
                                 pain=3 + n % 6, sleep=1 + n % 5, mood=1 + (n + 2) % 5, activity=1 + n % 3, note=""))
        return {"mobile": user.patient.mobile, "patient_id": user.patient_id}


def _pdf_pages(pdf: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page(?!s)", pdf))


def test_a_patient_keeps_a_diary_sets_a_goal_and_writes_a_flare_up_plan(db, new_page):
    data = _arrange(db)
    page = new_page()
    sign_in(page, data["mobile"], who="diary-patient")

    # The day's entry: nothing chosen yet (the last entry is over a week old), so saving shows every problem.
    page.get_by_role("link", name="Diary and goals").first.click()
    expect(heading(page)).to_have_text("Your pain diary")
    expect(page.get_by_label("Which day is this for?")).to_have_value(today().isoformat())
    check_accessibility(page, "diary-entry")
    page.get_by_role("button", name="Save my diary").click()
    summary = page.get_by_role("alert").filter(has_text="There is a problem")
    expect(summary).to_contain_text("Select how bad your pain was, from 0 to 10")
    expect(summary).to_contain_text("Select how active you were")
    expect(page).to_have_title(re.compile(r"^Error: "))
    check_accessibility(page, "diary-entry-error")

    pain = page.get_by_role("group", name="How bad was your pain?")
    pain.get_by_role("radio", name="6", exact=True).check()
    for question, answer in (("How did you sleep?", "Badly"), ("How was your mood?", "OK"),
                             ("How active were you?", "More than usual")):
        page.get_by_role("group", name=question).get_by_role("radio", name=answer, exact=True).check()
    page.get_by_label("Pacing note (optional)").fill("Gardening: 3 goes of 10 minutes with rests")
    page.get_by_role("button", name="Save my diary").click()
    expect_success_banner(page, "Your diary for today is saved.")
    expect(page.get_by_role("main")).to_contain_text("You have filled in today.")
    check_accessibility(page, "diary-entry-saved")

    # Yesterday was missed: fill it in from the list, starting from today's answers.
    page.get_by_role("link", name=re.compile(r"^Fill in Yesterday")).click()
    expect(page.get_by_label("Which day is this for?")).to_have_value(
        (today() - dt.timedelta(days=1)).isoformat())
    page.get_by_role("button", name="Save my diary").click()
    expect_success_banner(page, "Your diary for yesterday is saved.")
    with db.transaction() as s:
        recent = s.execute(select(DiaryEntry.entry_date, DiaryEntry.pain).where(
            DiaryEntry.patient_id == data["patient_id"], DiaryEntry.entry_date >= today() - dt.timedelta(days=1))
            .order_by(DiaryEntry.entry_date)).all()
    assert recent == [(today() - dt.timedelta(days=1), 6), (today(), 6)]

    # Trends: two charts drawn on the server, and the same numbers in a table.
    page.get_by_role("link", name="See your trends over 4 or 12 weeks").click()
    expect(heading(page)).to_have_text("Your diary trends")
    pain_chart = page.get_by_role("img", name="Pain over the last 4 weeks")
    expect(pain_chart).to_be_visible()
    expect(page.get_by_role("img", name="Sleep and mood over the last 4 weeks")).to_be_visible()
    check_accessibility(page, "diary-trends")
    page.get_by_role("link", name="Last 12 weeks").click()
    expect(page.get_by_role("img", name="Pain over the last 12 weeks")).to_be_visible()
    page.get_by_text("Show the numbers as a table").click()
    table = page.get_by_role("table", name="Your diary, day by day")
    expect(table).to_be_visible()
    expect(table.get_by_role("row").filter(has_text="No entry").first).to_be_visible()
    check_accessibility(page, "diary-trends-12-weeks-table")

    # A goal: the form's problems next to its fields, then saved, then this week's check-in.
    page.goto("/goals")
    check_accessibility(page, "goals-none")
    page.get_by_role("link", name="Add a goal").click()
    page.get_by_role("button", name="Save goal").click()
    expect(page.get_by_role("alert").filter(has_text="There is a problem")).to_contain_text(
        "Enter what you want to do")
    check_accessibility(page, "goal-new-error")
    page.get_by_label("What do you want to do?").fill("Walk to the park and back")
    page.get_by_label("How much, or how often?").fill("15 minutes, 3 times a week")
    fill_date(page, "When do you want to do it by?", today() + dt.timedelta(days=28))
    page.get_by_label("Why does it matter to you?").fill("To meet my friends there")
    page.get_by_role("group", name="How confident are you that you can do it?").get_by_role(
        "radio", name="8", exact=True).check()
    page.get_by_role("button", name="Save goal").click()
    expect_success_banner(page, "Your goal is saved.")
    expect(heading(page)).to_have_text("Walk to the park and back")
    check_accessibility(page, "goal")
    page.get_by_role("link", name="Check in for this week").click()
    page.get_by_role("radio", name="Partly done").check()
    check_accessibility(page, "goal-check-in")
    page.get_by_role("button", name="Save check-in").click()
    expect_success_banner(page, "Your check-in for this week is saved.")
    expect(page.get_by_role("table")).to_contain_text("Partly done")

    # The flare-up plan, then its print view.
    page.goto("/flare-up-plan")
    expect(heading(page)).to_have_text("Your flare-up plan")
    page.get_by_role("button", name="Save my plan").click()
    expect(page.get_by_role("alert").filter(has_text="There is a problem")).to_contain_text(
        "Fill in at least one part of your plan")
    check_accessibility(page, "flare-up-plan-error")
    page.get_by_label("What helps me in a flare-up").fill("Heat pack on my back\nSlow breathing, 5 minutes")
    page.get_by_label("What I will cut down on or put off").fill("Hoovering and the big shop")
    page.get_by_label("Who I will tell, and what I will ask them").fill("My sister: to collect the children")
    page.get_by_label("When I will get help").fill("If it lasts more than a week: GP surgery")
    page.get_by_role("button", name="Save my plan").click()
    expect_success_banner(page, "Your flare-up plan is saved.")
    check_accessibility(page, "flare-up-plan")
    page.get_by_role("link", name="Print your plan").click()
    expect(heading(page)).to_have_text("My flare-up plan")
    expect(page.get_by_role("main")).to_contain_text("Slow breathing, 5 minutes")
    expect(page.get_by_role("main")).to_contain_text("999")
    check_accessibility(page, "flare-up-plan-print")

    # On paper: no header, menu or footer, and one sheet of A4 even with every part as full as the form allows.
    page.emulate_media(media="print")
    expect(page.locator("header.nhsuk-header")).to_be_hidden()
    expect(page.locator("footer")).to_be_hidden()
    page.emulate_media(media="null")  # back to the screen; pdf() lays the page out for print
    assert _pdf_pages(page.pdf(format="A4")) == 1
    words = "Rest, then Move Gently; Warm Water, Heat Packs and WhatsApp My Mum. "
    one_paragraph = (words * 10)[:600]
    many_lines = "\n".join([words[:70]] * 8) + "\n" + words[:30]
    for longest in (one_paragraph, many_lines):
        assert printed_lines(longest) == 9
        page.goto("/flare-up-plan")
        for label in ("What helps me in a flare-up", "What I will cut down on or put off",
                      "Who I will tell, and what I will ask them", "When I will get help"):
            page.get_by_label(label).fill(longest)
        page.get_by_role("button", name="Save my plan").click()
        expect_success_banner(page, "Your flare-up plan is saved.")
        page.goto("/flare-up-plan/print")
        assert _pdf_pages(page.pdf(format="A4")) == 1
