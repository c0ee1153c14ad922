"""Input an outside tester tried: numbers too big for a date, digits of other scripts, hidden characters, and
the last day there is. Each once answered 500 or was stored as typed."""

import datetime as dt

import pytest
from sqlalchemy import func, select

from portal.audit.models import AuditEvent
from portal.auth.models import Role
from portal.auth.services import invite_patient
from portal.booking.models import Booking
from portal.booking.services import book_seat
from portal.dates import InvalidDate, parse_date_parts
from portal.db import utcnow
from portal.forms import parse_time, whole_number
from portal.messaging.models import SmsMessage
from portal.patients.intake import NAME_CHARACTERS
from portal.patients.models import Patient
from portal.patients.search import search_patients
from tests import factories
from tests.conftest import sign_in
from tests.pages import csrf_token, get_page, parse
from tests.staff.registration import post_registration

HUGE_DAY = {"day": "9999999999", "month": "1", "year": "2027"}


@pytest.fixture
def admin_client(app, session):
    client = app.test_client()
    assert sign_in(client, factories.create_staff(session, role=Role.ADMIN).email).status_code == 302
    return client


def _errors(response) -> list[str]:
    return [e.get_text(" ", strip=True) for e in parse(response).select(".nhsuk-error-message")]


def _post_date(client, url, field, parts=HUGE_DAY):
    token = csrf_token(get_page(client, url))
    return client.post(url, data={"csrf_token": token, **{f"{field}[{k}]": v for k, v in parts.items()}})


def test_a_day_too_big_for_any_date_is_not_a_real_date(patient_client):
    response = _post_date(patient_client, "/goals/new", "target_date")
    assert response.status_code == 400
    assert any("must be a real date" in e for e in _errors(response)), _errors(response)


@pytest.mark.parametrize("url, field", [
    ("/staff/patients/new", "date_of_birth"), ("/staff/courses/new", "first_date"),
    ("/staff/admin/appointments/templates/new", "valid_from"), ("/staff/admin/appointments/leave/new", "first_day"),
])
def test_staff_date_boxes_take_a_huge_day_or_month(admin_client, url, field):
    for parts in (HUGE_DAY, {"day": "1", "month": "99999999999", "year": "2027"}):
        response = _post_date(admin_client, url, field, parts)
        assert response.status_code in (200, 400)
        assert "must be a real date" in response.get_data(as_text=True)


def test_the_activation_page_takes_a_huge_day(app, session, domain):
    invite_patient(session, domain, factories.create_patient(session), base_url="https://portal.test", now=utcnow())
    session.commit()
    token = session.scalars(select(SmsMessage.body)).one().rsplit("/", 1)[1]
    response = _post_date(app.test_client(), f"/activate/{token}", "date_of_birth")
    assert response.status_code in (200, 400)
    assert "must be a real date" in response.get_data(as_text=True)


def test_the_audit_trail_reaches_the_last_day_there_is(admin_client, session):
    session.add(AuditEvent(occurred_at=utcnow(), actor_role="admin", action="probe", detail="LATEST EVENT"))
    session.commit()
    response = admin_client.get("/staff/audit?until=9999-12-31")
    assert response.status_code == 200 and "LATEST EVENT" in response.get_data(as_text=True)


def test_the_audit_trail_days_are_london_days(admin_client, session):
    # 23:30 UTC on 30 June is 00:30 on 1 July in London, as the trail shows it.
    session.add(AuditEvent(occurred_at=dt.datetime(2026, 6, 30, 23, 30, tzinfo=dt.UTC), actor_role="admin",
                           action="probe", detail="JUST AFTER MIDNIGHT"))
    session.commit()
    assert "JUST AFTER MIDNIGHT" in admin_client.get(
        "/staff/audit?since=2026-07-01&until=2026-07-01").get_data(as_text=True)
    assert "JUST AFTER MIDNIGHT" not in admin_client.get(
        "/staff/audit?since=2026-06-30&until=2026-06-30").get_data(as_text=True)


SUPERSCRIPT_TWO = "\u00b2"  # str.isdigit() says yes; int() says no


def test_a_superscript_digit_is_no_group_when_a_patient_moves(patient_client, session):
    first = factories.create_cohort(session)
    factories.create_cohort(session)
    seat = book_seat(session, factories.domain(), patient_client.user.patient, first.id, now=utcnow())
    session.commit()
    url = f"/bookings/{seat.id}/move"
    response = patient_client.post(url, data={"csrf_token": csrf_token(get_page(patient_client, url)),
                                              "cohort": SUPERSCRIPT_TWO})
    assert response.status_code == 400


def test_a_superscript_digit_is_no_group_when_reception_books(reception_client, session):
    patient = factories.create_patient(session)
    factories.create_cohort(session)
    url = f"/staff/patients/{patient.id}/courses/t1-group/book"
    response = reception_client.post(url, data={"csrf_token": csrf_token(get_page(reception_client, url)),
                                                 "cohort": SUPERSCRIPT_TWO})
    assert response.status_code == 400


def test_a_superscript_week_is_no_page(patient_client, admin_client):
    assert patient_client.get("/self-care/tier-1-group/week-\u00b2\u00b3").status_code == 404
    assert admin_client.get("/staff/admin/self-care-content/tier-1-group/week-\u00b2\u00b3").status_code == 404


def test_an_nhs_number_typed_in_full_width_digits_is_the_same_number(reception_client, session):
    assert post_registration(reception_client).status_code == 302
    full_width = "".join(chr(ord("\uff10") + int(d)) for d in "9434765919")
    response = post_registration(reception_client, nhs_number=full_width, mobile="07700 900 457")
    assert "already registered" in response.get_data(as_text=True)
    assert session.scalars(select(Patient.nhs_number)).all() == ["9434765919"]
    arabic_indic = "".join(chr(0x0660 + int(d)) for d in "9434765919")
    assert [p.nhs_number for p in search_patients(session, arabic_indic).patients] == ["9434765919"]


def _arabic_indic(ascii_text: str) -> str:
    return "".join(chr(0x0660 + int(ch)) if ch.isdigit() else ch for ch in ascii_text)


def test_dates_numbers_and_times_typed_in_another_script_s_digits_are_read_as_those_digits():
    # A phone set to Arabic (or a full-width keyboard) types its own digits: "must be in numbers" would be untrue.
    day = {"day": _arabic_indic("10"), "month": "\uff11\uff12", "year": _arabic_indic("1975")}
    assert parse_date_parts(day, label="Date of birth") == dt.date(1975, 12, 10)
    assert whole_number(_arabic_indic("120"), label="Session length", example=120, low=30, high=240) == 120
    assert parse_time(_arabic_indic("18:30"), label="Start time") == dt.time(18, 30)
    # Superscripts are not digits anyone types for a number, and stay refused.
    with pytest.raises(InvalidDate):
        parse_date_parts({"day": "\u00b9", "month": "1", "year": "1975"}, label="Date of birth")


def test_in_the_hour_after_midnight_in_summer_past_and_future_are_london_s(monkeypatch):
    class HalfPastMidnightBst(dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return dt.datetime(2026, 6, 30, 23, 30, tzinfo=dt.UTC)  # 00:30 on 1 July in London

    monkeypatch.setattr(dt, "datetime", HalfPastMidnightBst)
    yesterday = {"day": "30", "month": "6", "year": "2026"}
    assert parse_date_parts(yesterday, label="Date", past_only=True) == dt.date(2026, 6, 30)
    today = {"day": "1", "month": "7", "year": "2026"}
    assert parse_date_parts(today, label="Date", not_future=True) == dt.date(2026, 7, 1)


def test_a_texted_code_typed_in_arabic_indic_digits_changes_the_mobile(patient_client, session):
    page = get_page(patient_client, "/profile/mobile")
    patient_client.post("/profile/mobile", data={"mobile": "07700 900999", "password": factories.PASSWORD,
                                                 "csrf_token": csrf_token(page)})
    body = session.scalars(select(SmsMessage.body).where(SmsMessage.kind == "mobile_change")).one()
    code = next(word for word in body.split() if word.rstrip(".").isdigit() and len(word.rstrip(".")) == 6)
    page = get_page(patient_client, "/profile/mobile/code")
    response = patient_client.post("/profile/mobile/code", data={"code": _arabic_indic(code.rstrip(".")),
                                                                 "csrf_token": csrf_token(page)})
    assert response.status_code == 302
    session.expire_all()
    assert session.get(Patient, patient_client.user.patient_id).mobile == "+447700900999"


def test_names_of_invisible_or_reversing_characters_are_refused(reception_client, session):
    response = post_registration(reception_client, given_name="\u200b", family_name="\u202eeciLA\u202c")
    # Each error names its box, so the summary does not say the same thing twice.
    assert _errors(response) == [f"Error: {NAME_CHARACTERS.format(label='First name')}",
                                 f"Error: {NAME_CHARACTERS.format(label='Last name')}"]
    assert session.scalar(select(func.count()).select_from(Patient)) == 0
    # Joiners are letters' business in some scripts (Persian among them), and stay allowed.
    assert post_registration(reception_client, given_name="Nima", family_name="Mehr\u200cabadi").status_code == 302


@pytest.mark.parametrize(("given", "family", "accepted"), [
    ("Zo\u00eb \U0001f600", "Smith", False),  # an emoji is no letter
    ("Ann", "Smith 2", False),
    ("Ann", "Sm\u2605th", False),
    ("Se\u0301an", "O\u2019Brien", True),  # a combining accent; a typographic apostrophe
    ("Mary-Jane", "St. John", True),
    ("\u0645\u0631\u06cc\u0645", "\u5f20", True),  # Persian and Chinese letters
])
def test_a_name_is_letters_spaces_hyphens_apostrophes_and_full_stops(reception_client, session, given, family,
                                                                     accepted):
    response = post_registration(reception_client, given_name=given, family_name=family)
    assert (response.status_code == 302) is accepted
    assert (session.scalar(select(func.count()).select_from(Patient)) == 1) is accepted
    if not accepted:
        label = "First name" if given != "Ann" else "Last name"
        assert f"Error: {NAME_CHARACTERS.format(label=label)}" in _errors(response)


def test_a_staff_member_s_name_takes_no_emoji(admin_client, session):
    from portal.auth.models import User

    url = "/staff/admin/staff-accounts/invite"
    response = admin_client.post(url, data={
        "csrf_token": csrf_token(get_page(admin_client, url)), "display_name": "Probe One \U0001f600",
        "email": "probe.one@nhs.net", "role": "facilitator"})
    assert "Error: Full name must only use letters, numbers and punctuation" in _errors(response)
    assert session.scalar(select(func.count()).select_from(User).where(User.email == "probe.one@nhs.net")) == 0


def test_hidden_characters_in_communication_needs_are_refused_before_anything_is_saved(patient_client, session):
    url = "/profile/communication-needs"
    response = patient_client.post(url, data={
        "csrf_token": csrf_token(get_page(patient_client, url)), "needs_interpreter": "y",
        "interpreter_language": "Pol\x00ish", "has_carer": "y", "carer_name": "Bob\x1b[2J",
        "carer_phone": "07700 900123"})
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "must not include hidden characters" in page
    patient = session.get(Patient, patient_client.user.patient_id)
    session.refresh(patient)
    assert patient.interpreter_language in (None, "") and patient.carer_name in (None, "")


def test_hidden_characters_in_a_withdrawal_reason_are_refused(patient_client, session):
    seat = book_seat(session, factories.domain(), patient_client.user.patient, factories.create_cohort(session).id,
                     now=utcnow())
    session.commit()
    url = f"/bookings/{seat.id}/cancel"
    response = patient_client.post(url, data={"csrf_token": csrf_token(get_page(patient_client, url)),
                                              "reason": "other", "detail": "x\x00y"})
    assert response.status_code in (200, 400)
    assert "must not include hidden characters" in response.get_data(as_text=True)
    assert session.get(Booking, seat.id, populate_existing=True).status == "active"


def test_spaces_around_a_reason_do_not_count_towards_its_length(app):
    from portal.staff.course_forms import REASON_LENGTH, CancelSessionForm

    typed = "a" * REASON_LENGTH
    with app.test_request_context(method="POST", data={"reason": f"  {typed}   \r\n"}):
        form = CancelSessionForm(meta={"csrf": False})
        assert form.validate(), form.errors
        assert form.reason.data == typed


def test_wtforms_own_messages_are_put_in_the_portal_s_words(client, patient_client, session):
    long_identifier = client.post("/sign-in", data={"csrf_token": csrf_token(get_page(client, "/sign-in")),
                                                    "identifier": "x" * 300, "password": "p"})
    assert _errors(long_identifier) == ["Error: Email address or mobile number must be 254 characters or fewer"]
    seat = book_seat(session, factories.domain(), patient_client.user.patient, factories.create_cohort(session).id,
                     now=utcnow())
    session.commit()
    url = f"/bookings/{seat.id}/cancel"
    tampered = patient_client.post(url, data={"csrf_token": csrf_token(get_page(patient_client, url)),
                                              "reason": "not-a-reason"})
    assert "Error: Select one of the options shown" in _errors(tampered)


def _form_as_shown(soup, action: str) -> dict[str, str]:
    """What a browser would send back from the page's form posting to ``action``, with nothing changed."""
    form = next(f for f in soup.select("form[method=post]") if f.get("action", action) == action)
    values = {i["name"]: i.get("value", "") for i in form.select("input[name]")
              if i.get("type") not in ("radio", "checkbox") or i.has_attr("checked")}
    values |= {t["name"]: t.get_text() for t in form.select("textarea[name]")}
    for select_box in form.select("select[name]"):
        chosen = select_box.select_one("option[selected]") or select_box.select_one("option")
        values[select_box["name"]] = chosen.get("value", chosen.get_text())
    return values


SAVED_BEFORE_THE_RULE = "Walk\u200b to the \u202epark\u202c"


def test_a_goal_saved_with_hidden_characters_is_shown_without_them_and_saves_as_shown(patient_client, session):
    from portal.diary.models import Goal
    from tests.diary.factories import create_goal

    goal = create_goal(session, patient_client.user.patient_id, what=SAVED_BEFORE_THE_RULE)
    url = f"/goals/{goal.id}/edit"
    shown = _form_as_shown(get_page(patient_client, url), url)
    assert shown["what"] == "Walk to the park"
    assert patient_client.post(url, data=shown).status_code == 302
    assert session.get(Goal, goal.id, populate_existing=True).what == "Walk to the park"


def test_a_flare_up_plan_saved_with_hidden_characters_saves_as_shown(patient_client, session):
    from portal.diary.models import FlareUpPlan

    session.add(FlareUpPlan(patient_id=patient_client.user.patient_id, what_helps=SAVED_BEFORE_THE_RULE,
                            updated_at=utcnow()))
    session.commit()
    shown = _form_as_shown(get_page(patient_client, "/flare-up-plan"), "/flare-up-plan")
    assert shown["what_helps"] == "Walk to the park"
    assert patient_client.post("/flare-up-plan", data=shown).status_code == 302
    plan = session.scalars(select(FlareUpPlan)).one()
    session.refresh(plan)
    assert plan.what_helps == "Walk to the park"


def test_typed_hidden_characters_are_still_refused_not_dropped(patient_client, session):
    from portal.diary.models import Goal
    from tests.diary.factories import create_goal

    goal = create_goal(session, patient_client.user.patient_id)
    url = f"/goals/{goal.id}/edit"
    shown = _form_as_shown(get_page(patient_client, url), url)
    response = patient_client.post(url, data={**shown, "what": SAVED_BEFORE_THE_RULE})
    assert response.status_code == 400
    assert _errors(response) == ["Error: Your goal must be plain text, without special characters"]
    assert session.get(Goal, goal.id, populate_existing=True).what == "Walk to the park"
