"""Taking a register on a phone and a tablet, and deciding a did-not-attend review, in a real browser.
axe checks every page, and nothing may scroll sideways at either width."""

from __future__ import annotations

import datetime as dt
import re

from playwright.sync_api import expect
from sqlalchemy import select

from portal.attendance import services
from portal.attendance.models import Attendance, DnaReview
from portal.audit.services import Actor
from portal.auth.models import Role, User
from portal.db import utcnow
from tests import factories
from tests.attendance import helpers
from tests.e2e.conftest import check_accessibility
from tests.e2e.test_thin_path import expect_success_banner, heading, sign_in

TABLET = {"width": 768, "height": 1024}
PHONE = {"width": 390, "height": 844}


def _facilitator(db):
    with db.transaction() as s:
        user = factories.create_staff(s, role=Role.FACILITATOR, display_name="Femi Okafor")
        return user.id, user.email, user.totp_secret


def test_a_facilitator_takes_the_register_on_a_phone_and_a_tablet(db, new_page, session):
    user_id, email, secret = _facilitator(db)
    facilitator = session.get(User, user_id)
    patients = [
        factories.create_patient(session, given_name="Amara", family_name="Adeyemi", needs_bsl_interpreter=True,
                                 carer_name="Chidi Adeyemi", carer_phone="07700900111"),
        factories.create_patient(session, given_name="Bartholomew", family_name="Featherstonehaugh-Montgomery",
                                 interpreter_language="Portuguese", needs_large_print=True, no_texts=True),
        factories.create_patient(session, given_name="Cara", family_name="Cole"),
    ]
    helpers.group_session(session, booked=patients, facilitators=(facilitator,))

    page = new_page()
    page.set_viewport_size(PHONE)
    sign_in(page, email, who="facilitator", totp_secret=secret)
    expect(heading(page)).to_have_text("Staff home")
    page.get_by_role("link", name="My sessions today").click()
    expect(heading(page)).to_have_text("My sessions today")
    check_accessibility(page, "attendance-today")
    page.get_by_role("link", name=re.compile(r"Eight-week Pain Management Group, session 1")).click()
    expect(heading(page)).to_have_text(re.compile(r"^Register for "))
    check_accessibility(page, "attendance-register-phone")

    amara = page.get_by_role("group", name="Amara Adeyemi")
    expect(amara).to_contain_text("BSL interpreter")
    expect(amara).to_contain_text("Carer receives messages")
    expect(page.get_by_role("group", name="Bartholomew Featherstonehaugh-Montgomery")).to_contain_text(
        "Interpreter (Portuguese)")
    amara.get_by_role("radio", name="Did not attend").check()
    page.get_by_role("group", name="Cara Cole").get_by_role("radio", name="Attended late").check()
    page.get_by_role("button", name="Mark everyone else as attended").click()
    expect_success_banner(page, "3 marks saved.")
    expect(page.get_by_role("group", name="Amara Adeyemi").get_by_role("radio", name="Did not attend")).to_be_checked()
    check_accessibility(page, "attendance-register-saved-phone")

    marks = dict(session.execute(select(Attendance.patient_id, Attendance.mark)).all())
    assert marks == {patients[0].id: "dna", patients[1].id: "attended", patients[2].id: "late"}

    # On a tablet: a correction, saved with the main button.
    page.set_viewport_size(TABLET)
    page.reload()
    check_accessibility(page, "attendance-register-tablet")
    page.get_by_role("group", name="Amara Adeyemi").get_by_role("radio", name="Late cancellation").check()
    page.get_by_role("button", name="Save marks").click()
    expect_success_banner(page, "1 mark saved.")
    session.expire_all()
    assert session.scalars(select(Attendance.mark).where(Attendance.patient_id == patients[0].id)).one() == (
        "late_cancellation")


def test_a_clinician_decides_a_did_not_attend_review(db, new_page, session, domain):
    with db.transaction() as s:
        clinician = factories.create_staff(s, role=Role.CLINICIAN, display_name="Dr Kim Lee")
        email, secret, clinician_id = clinician.email, clinician.totp_secret, clinician.id
    patient = factories.create_patient(session, given_name="Dev", family_name="Dhillon", interpreter_language="Punjabi")
    first = helpers.group_session(session, booked=[patient], starts_at=utcnow() - dt.timedelta(days=8))
    second = helpers.group_session(session, cohort=first.cohort, number=2, starts_at=utcnow() - dt.timedelta(days=1))
    actor = Actor(user_id=clinician_id, role="clinician")
    for target in (first, second):
        with db.transaction() as s:
            services.save_register(s, domain, target.id, {patient.id: "dna"}, actor=actor,
                                   now=target.starts_at + dt.timedelta(hours=1))

    page = new_page()
    sign_in(page, email, who="clinician", totp_secret=secret)
    page.get_by_role("link", name="Did-not-attend reviews").click()
    expect(heading(page)).to_have_text("Did-not-attend reviews")
    check_accessibility(page, "dna-review-queue")
    page.get_by_role("link", name=re.compile("Dev Dhillon")).click()
    expect(heading(page)).to_have_text("Did-not-attend review")
    expect(page.get_by_text("2 did not attend in the course")).to_be_visible()
    check_accessibility(page, "dna-review")

    page.get_by_role("radio", name="Discharge back to the referrer").check()
    page.get_by_role("button", name="Record decision").click()
    expect(page).to_have_title(re.compile(r"^Error: "))
    message = "Enter the reason for discharging the patient back to the referrer"
    expect(page.get_by_label("Note")).to_have_accessible_description(re.compile(re.escape(message)))
    check_accessibility(page, "dna-review-error")

    page.get_by_role("radio", name="Keep them on").check()
    page.get_by_label("Note").fill("Spoke with Dev through a Punjabi interpreter: transport problems, now sorted.")
    page.get_by_role("button", name="Record decision").click()
    expect(heading(page)).to_have_text("Did-not-attend reviews")
    expect_success_banner(page, "Keep them on: recorded for Dev Dhillon.")
    expect(page.get_by_text("No patients are waiting for a review.")).to_be_visible()
    found = session.scalars(select(DnaReview)).one()
    assert (found.status, found.decision) == ("closed", "kept_on")
