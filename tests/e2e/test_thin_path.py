"""The walking skeleton in a real browser at phone size, by accessible names, with axe on every page.

Reception registers a patient; the invitation text goes out through the dispatcher; the patient
activates their account from the link, books a seat on their team's programme and opens this week's
reading. Then the ways a person can go wrong on the way: bad registration input, the wrong date of
birth, a group that fills while the patient looks, and a link used twice.
"""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import urlsplit

import pyotp
from playwright.sync_api import Page, expect
from sqlalchemy import select, update

from portal.auth.models import Role
from portal.auth.services import invite_patient
from portal.booking.models import Cohort, Venue
from portal.db import utcnow
from portal.demo_data import demo_nhs_numbers
from portal.messaging.clients import TwilioSmsClient
from portal.messaging.dispatch import dispatch_due
from portal.messaging.models import SmsMessage
from portal.patients.models import Patient
from portal.templating import local_date
from tests import factories
from tests.e2e.conftest import check_accessibility
from tests.fixtures.fake_twilio import FakeTwilio

NHS_NUMBERS = demo_nhs_numbers(start=700_000)
NEW_PASSWORD = "blue kettle sunrise"
ACTIVATION_LINK = re.compile(r"https?://\S+/activate/[A-Za-z0-9_-]+")


# Steps a person takes, by what they see.

def sign_in(page: Page, identifier: str, password: str = factories.PASSWORD, *, who: str,
            totp_secret: str | None = None) -> None:
    """Sign in; staff (with ``totp_secret``) then type the code their authenticator app shows."""
    page.goto("/sign-in")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    check_accessibility(page, f"sign-in-{who}")
    page.get_by_label("Email address or mobile number").fill(identifier)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    if totp_secret is not None:
        expect(page.get_by_role("heading", level=1)).to_have_text("Enter the code from your authenticator app")
        check_accessibility(page, f"security-code-{who}")
        page.get_by_label("Security code").fill(pyotp.TOTP(totp_secret).now())
        page.get_by_role("button", name="Continue").click()


def create_staff(db, role: Role) -> tuple[str, str]:
    """A staff account with an authenticator app: its email and the app's secret."""
    with db.transaction() as s:
        user = factories.create_staff(s, role=role)
        return user.email, user.totp_secret


def fill_date(page: Page, legend: str, date: dt.date) -> None:
    group = page.get_by_role("group", name=legend)
    group.get_by_label("Day").fill(str(date.day))
    group.get_by_label("Month").fill(str(date.month))
    group.get_by_label("Year").fill(str(date.year))


def fill_registration(page: Page, *, nhs_number: str, date_of_birth: dt.date, given: str = "Grace",
                      family: str = "Hopper") -> None:
    page.get_by_label("First name").fill(given)
    page.get_by_label("Last name").fill(family)
    page.get_by_label("NHS number").fill(nhs_number)
    fill_date(page, "Date of birth", date_of_birth)
    page.get_by_label("Mobile number").fill("07700 900 123")
    page.get_by_label("Postcode").fill("N19 5NF")
    fill_date(page, "Triage date", utcnow().date() - dt.timedelta(days=7))
    page.get_by_role("radio", name="Tier 2").check()
    page.get_by_role("radio", name="1 to 5 years").check()
    page.get_by_role("checkbox", name="Diagnosis recorded").check()
    page.get_by_role("button", name="Register and send invitation").click()


def open_menu_link(page: Page, name: str) -> None:
    page.get_by_role("navigation", name="Menu").get_by_role("link", name=name, exact=True).click()


def heading(page: Page):
    return page.get_by_role("heading", level=1)


def expect_success_banner(page: Page, text: str) -> None:
    banner = page.get_by_role("alert").filter(has_text="Success")
    expect(banner).to_contain_text(text)
    # Focus starts on it, so a screen reader reads what happened first.
    expect(banner).to_be_focused()


def activate(page: Page, *, date_of_birth: dt.date, postcode: str = "N19 5NF", password: str = NEW_PASSWORD) -> None:
    fill_date(page, "What is your date of birth?", date_of_birth)
    page.get_by_label("What is your postcode?").fill(postcode)
    page.get_by_label("Create a password").fill(password)
    page.get_by_label("Type your password again").fill(password)
    page.get_by_role("button", name="Set up account").click()


# The data behind the pages.

def invitation_bodies(db, patient_id: int) -> list[str]:
    with db.transaction() as s:
        return list(s.scalars(
            select(SmsMessage.body).where(SmsMessage.patient_id == patient_id, SmsMessage.kind == "invitation")
        ))


def activation_path(body: str) -> str:
    match = ACTIVATION_LINK.search(body)
    assert match, f"no activation link in the text: {body!r}"
    return urlsplit(match.group(0)).path


def send_invitation(app, db, domain, patient_id: int) -> str:
    """Send the outbox through the real dispatcher and Twilio client to the fake Twilio server.

    Returns the path of the activation link in the text the fake received.
    """
    queued = invitation_bodies(db, patient_id)
    assert len(queued) == 1, f"expected one invitation text in the outbox, found {len(queued)}"
    fake = FakeTwilio(account_sid=app.config["TWILIO_ACCOUNT_SID"], auth_token=app.config["TWILIO_AUTH_TOKEN"])
    fake.start()
    try:
        client = TwilioSmsClient(
            account_sid=app.config["TWILIO_ACCOUNT_SID"],
            auth_token=app.config["TWILIO_AUTH_TOKEN"],
            sender=app.config["TWILIO_FROM"],
            api_base=fake.base_url,
            timeout=5,
        )
        report = dispatch_due(db, client, validity_period=domain.policy.sms.validity_period_seconds,
                              max_attempts=domain.policy.sms.max_attempts)
        received = fake.messages
    finally:
        fake.stop()
    assert (report.claimed, report.sent) == (1, 1), report
    assert len(received) == 1
    text = received[0]
    assert (text.to, text.from_, text.body) == ("+447700900123", app.config["TWILIO_FROM"], queued[0])
    with db.transaction() as s:
        row = s.scalars(select(SmsMessage).where(SmsMessage.patient_id == patient_id)).one()
        assert (row.status, row.provider_sid) == ("sent", text.sid)
    return activation_path(text.body)


def create_cohort(db, *, team: str | None, weeks_ahead: int, venue: str, service_key: str = "t2-programme") -> dict:
    with db.transaction() as s:
        # Names are unique: a second group at the same place meets in the venue made for the first.
        place = s.scalars(select(Venue).where(Venue.name == venue)).first() or factories.create_venue(
            s, name=venue, short_name=venue[:20], address=f"1 {venue} Road, London N19 5NF")
        cohort = factories.create_cohort(
            s, service_key=service_key, team=team, venue=place,
            first_date=utcnow().date() + dt.timedelta(weeks=weeks_ahead),
        )
        first = cohort.sessions[0]
        return {"id": cohort.id, "starts": local_date(first.starts_at),
                "venue": venue, "capacity": cohort.capacity}


def create_patient_user(db, **kw):
    with db.transaction() as s:
        user = factories.create_patient_user(s, **kw)
        return {"mobile": user.patient.mobile, "given_name": user.patient.given_name}


# The thin path.

def test_reception_registers_a_patient_who_activates_books_and_reads(app, db, domain, new_page):
    reception, secret = create_staff(db, Role.RECEPTION)
    nhs_number = next(NHS_NUMBERS)
    date_of_birth = dt.date(1961, 4, 23)

    # a) Reception registers the patient.
    staff = new_page()
    sign_in(staff, reception, who="reception", totp_secret=secret)
    expect(heading(staff)).to_have_text("Staff home")
    check_accessibility(staff, "staff-home")
    open_menu_link(staff, "Register a patient")
    expect(heading(staff)).to_have_text("Register a triaged patient")
    check_accessibility(staff, "register-patient")
    fill_registration(staff, nhs_number=nhs_number, date_of_birth=date_of_birth)
    expect(heading(staff)).to_have_text("Grace Hopper")
    expect(staff).to_have_url(re.compile(r"/staff/patients/\d+$"))
    expect_success_banner(staff, "Grace Hopper is registered")
    expect(staff.get_by_text("Whittington Health Secondary Care Pain Team")).to_be_visible()
    check_accessibility(staff, "patient-record")
    patient_id = int(staff.url.rsplit("/", 1)[1])
    with db.transaction() as s:
        patient = s.get(Patient, patient_id)
        assert (patient.nhs_number, patient.mobile, patient.tier, patient.team) == (
            nhs_number, "+447700900123", 2, "whittington")

    # b) The invitation text goes out; the link in it opens the portal.
    link = send_invitation(app, db, domain, patient_id)

    # c) The patient confirms their date of birth and creates a password.
    patient_page = new_page()
    patient_page.goto(link)
    expect(heading(patient_page)).to_have_text("Set up your account")
    check_accessibility(patient_page, "activate")
    activate(patient_page, date_of_birth=date_of_birth)
    expect(heading(patient_page)).to_have_text("Hello Grace")
    expect_success_banner(patient_page, "Your account is ready. You are signed in.")
    expect(patient_page.get_by_role("button", name="Sign out")).to_be_visible()
    check_accessibility(patient_page, "patient-home-new")

    # d) The patient books a seat with their own team and sees it on their home page.
    soon = create_cohort(db, team="whittington", weeks_ahead=2, venue="Archway Centre")
    later = create_cohort(db, team="whittington", weeks_ahead=5, venue="Holloway Hub")
    other_team = create_cohort(db, team="haringey", weeks_ahead=3, venue="Tottenham Clinic")

    open_menu_link(patient_page, "Book")
    expect(heading(patient_page)).to_have_text("Services you can book")
    check_accessibility(patient_page, "services-tier-2")
    patient_page.get_by_role("link", name="12-week Pain Management Programme").click()
    expect(heading(patient_page)).to_have_text("12-week Pain Management Programme")
    check_accessibility(patient_page, "cohorts-tier-2")

    groups = patient_page.get_by_role("region")
    expect(groups).to_have_count(2)
    expect(patient_page.get_by_text("Tottenham Clinic")).to_have_count(0)
    expect(patient_page.get_by_text(f"Group starting {other_team['starts']}")).to_have_count(0)
    for cohort in (soon, later):
        group = patient_page.get_by_role("region", name=f"Group starting {cohort['starts']}")
        expect(group).to_contain_text(cohort["venue"])
        expect(group).to_contain_text("12 of 12")
        expect(group).to_contain_text("6pm to 8pm")
    patient_page.get_by_role("region", name=f"Group starting {soon['starts']}").get_by_role(
        "link", name="Choose this group").click()

    expect(heading(patient_page)).to_have_text("Check and book your place")
    expect(patient_page.get_by_role("main")).to_contain_text("Archway Centre")
    check_accessibility(patient_page, "confirm-booking")
    patient_page.get_by_role("button", name="Book my place").click()

    expect(heading(patient_page)).to_have_text("My bookings")
    expect_success_banner(patient_page, "You are booked on the 12-week Pain Management Programme")
    expect(patient_page.get_by_role("main")).to_contain_text(soon["starts"])
    # A booked patient's card shows what they need (calendar, move, cancel), not the places left.
    expect(patient_page.get_by_role("link", name="Add all sessions to your calendar")).to_be_visible()
    check_accessibility(patient_page, "my-bookings")
    with db.transaction() as s:
        assert s.get(Cohort, soon["id"]).seats_taken == 1
        assert s.get(Cohort, later["id"]).seats_taken == 0

    open_menu_link(patient_page, "Home")
    expect(heading(patient_page)).to_have_text("Hello Grace")
    main = patient_page.get_by_role("main")
    expect(main).to_contain_text(f"{soon['starts']}")
    expect(main).to_contain_text("12-week Pain Management Programme, session 1 of 12")
    expect(main).to_contain_text("Archway Centre")
    expect(patient_page.get_by_role("heading", name="This week's reading")).to_be_visible()
    check_accessibility(patient_page, "patient-home-booked")
    patient_page.get_by_role("link", name="Your pain team and how persistent pain works").click()
    expect(heading(patient_page)).to_have_text("Your pain team and how persistent pain works")
    expect(patient_page.get_by_role("heading", name="Your task this week")).to_be_visible()
    check_accessibility(patient_page, "reading")


# Going wrong.

def test_registration_shows_each_problem_next_to_its_field(db, new_page):
    reception, secret = create_staff(db, Role.RECEPTION)
    valid = next(NHS_NUMBERS)
    invalid = valid[:-1] + str((int(valid[-1]) + 1) % 10)
    next_year = utcnow().date().replace(month=1, day=1) + dt.timedelta(days=400)

    page = new_page()
    sign_in(page, reception, who="reception", totp_secret=secret)
    expect(heading(page)).to_have_text("Staff home")
    check_accessibility(page, "staff-home")
    page.goto("/staff/patients/new")
    expect(heading(page)).to_have_text("Register a triaged patient")
    check_accessibility(page, "register-patient")
    fill_registration(page, nhs_number=invalid, date_of_birth=next_year)

    expect(heading(page)).to_have_text("Register a triaged patient")
    expect(page).to_have_title(re.compile(r"^Error: "))
    summary = page.get_by_role("alert").filter(has_text="There is a problem")
    # Focus starts on the summary, so a screen reader reads the problems first and Tab reaches their links.
    expect(page.locator(".nhsuk-error-summary")).to_be_focused()
    nhs_message = "This is not a valid NHS number. Check it and try again"
    expect(summary.get_by_role("link", name=nhs_message)).to_have_attribute("href", "#nhs_number")
    expect(summary.get_by_role("link", name="Date of birth must be in the past")).to_be_visible()
    expect(page.get_by_label("NHS number")).to_have_accessible_description(re.compile(re.escape(nhs_message)))
    expect(page.get_by_role("group", name="Date of birth")).to_have_accessible_description(
        re.compile("Date of birth must be in the past"))
    # What was typed stays, so only the wrong parts need typing again.
    expect(page.get_by_label("First name")).to_have_value("Grace")
    expect(page.get_by_role("radio", name="Tier 2")).to_be_checked()
    check_accessibility(page, "register-patient-errors")
    with db.transaction() as s:
        assert s.scalar(select(Patient.id).where(Patient.nhs_number == invalid)) is None


def test_activation_needs_the_right_date_of_birth_and_works_once(db, new_page):
    with db.transaction() as s:
        patient = factories.create_patient(s, tier=1, date_of_birth=dt.date(1962, 7, 21), given_name="Ivan")
        invite_patient(s, factories.domain(), patient, base_url="https://portal.test", now=utcnow())
        patient_id = patient.id
    link = activation_path(invitation_bodies(db, patient_id)[0])

    page = new_page()
    page.goto(link)
    expect(heading(page)).to_have_text("Set up your account")
    check_accessibility(page, "activate")
    activate(page, date_of_birth=dt.date(1962, 7, 12), postcode="N8 8JD")
    expect(heading(page)).to_have_text("Set up your account")
    message = "Check your date of birth: it or your postcode does not match our records"
    expect(page.get_by_role("group", name="What is your date of birth?")).to_have_accessible_description(
        re.compile(re.escape(message)))
    expect(page.get_by_label("What is your postcode?")).to_have_accessible_description(
        re.compile(re.escape("Check your postcode: it or your date of birth does not match our records")))
    expect(page.get_by_role("alert").filter(has_text="There is a problem")).to_contain_text(message)
    check_accessibility(page, "activate-wrong-date-of-birth")

    activate(page, date_of_birth=dt.date(1962, 7, 21), postcode="N8 8JD")
    expect(heading(page)).to_have_text("Hello Ivan")
    check_accessibility(page, "tier-1-home-new")

    second = new_page()
    response = second.goto(link)
    assert response is not None and response.status == 410
    expect(heading(second)).to_have_text("This link cannot be used")
    expect(second.get_by_role("link", name="sign in")).to_be_visible()
    check_accessibility(second, "activation-link-used")


def test_a_group_that_fills_while_the_patient_looks_offers_the_others(db, new_page):
    patient = create_patient_user(db, tier=2, team="whittington")
    wanted = create_cohort(db, team="whittington", weeks_ahead=2, venue="Archway Centre")
    other = create_cohort(db, team="whittington", weeks_ahead=4, venue="Holloway Hub")

    page = new_page()
    sign_in(page, patient["mobile"], who="tier-2-patient")
    expect(heading(page)).to_have_text(f"Hello {patient['given_name']}")
    check_accessibility(page, "tier-2-home")
    page.goto("/services/t2-programme")
    check_accessibility(page, "cohorts-before-filling")
    page.get_by_role("region", name=f"Group starting {wanted['starts']}").get_by_role(
        "link", name="Choose this group").click()
    expect(heading(page)).to_have_text("Check and book your place")
    check_accessibility(page, "confirm-before-filling")

    with db.transaction() as s:
        s.execute(update(Cohort).where(Cohort.id == wanted["id"]).values(seats_taken=Cohort.capacity))
    page.get_by_role("button", name="Book my place").click()

    expect(heading(page)).to_have_text("This group is full")
    expect(page.get_by_role("alert")).to_contain_text(f"The group starting {wanted['starts']} filled up")
    # The next best options: another group with places, and the waiting list.
    expect(page.get_by_role("button", name="Join the waiting list")).to_be_visible()
    expect(page.get_by_role("link", name=f"Group starting {other['starts']}")).to_have_attribute(
        "href", f"/cohorts/{other['id']}")
    check_accessibility(page, "cohort-full")
    with db.transaction() as s:
        assert s.get(Cohort, wanted["id"]).seats_taken == wanted["capacity"]
    page.goto("/bookings")
    expect(page.get_by_text("You have no bookings.")).to_be_visible()
    check_accessibility(page, "no-bookings")


def test_tier_1_home_services_and_group_pages_are_accessible(db, new_page):
    patient = create_patient_user(db, tier=1)
    group = create_cohort(db, team=None, weeks_ahead=3, venue="Finsbury Park Centre", service_key="t1-group")

    page = new_page()
    sign_in(page, patient["mobile"], who="tier-1-patient")
    expect(heading(page)).to_have_text(f"Hello {patient['given_name']}")
    expect(page.get_by_text("You have no sessions booked.")).to_be_visible()
    check_accessibility(page, "tier-1-home")
    open_menu_link(page, "Book")
    expect(heading(page)).to_have_text("Services you can book")
    expect(page.get_by_role("heading", name="Pharmacy-led medication review")).to_be_visible()
    check_accessibility(page, "tier-1-services")
    page.get_by_role("link", name="Eight-week Pain Management Group").click()
    expect(heading(page)).to_have_text("Eight-week Pain Management Group")
    region = page.get_by_role("region", name=f"Group starting {group['starts']}")
    expect(region).to_contain_text("Finsbury Park Centre")
    expect(region).to_contain_text("12 of 12")
    check_accessibility(page, "tier-1-cohorts")
