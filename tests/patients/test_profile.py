"""The patient's profile: email, texts, communication needs and a new mobile proved by a code, all on the
signed-in patient's own record (no ids in these URLs), audited, and shown to staff."""

import datetime as dt
import re

import pytest
from sqlalchemy import func, select

from portal.audit.models import AuditEvent
from portal.db import utcnow
from portal.messaging.models import SmsMessage
from portal.messaging.services import enqueue_sms
from portal.patients.identifiers import format_uk_mobile
from portal.patients.models import Patient
from tests import factories
from tests.pages import csrf_token, error_for, get_page, parse

NEW_MOBILE = "07700 900999"
NEW_MOBILE_E164 = "+447700900999"
CODE_REFUSED = "The code is not right, or it has expired. Check the text, or ask for a new code"


def _post(client, url, data):
    page = get_page(client, url)
    return client.post(url, data={**data, "csrf_token": csrf_token(page)})


def _patient(session, client) -> Patient:
    session.expire_all()
    return session.get(Patient, client.user.patient_id)


def _events(session, action):
    return session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)).all()


def _sms_count(session):
    return session.scalar(select(func.count()).select_from(SmsMessage))


def _texted_code(session) -> tuple[str, str]:
    message = session.scalars(
        select(SmsMessage).where(SmsMessage.kind == "mobile_change").order_by(SmsMessage.id.desc())
    ).first()
    return re.search(r"\b(\d{6})\b", message.body).group(1), message.to_number


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


NO_NEEDS = {}
ALL_NEEDS = {
    "needs_large_print": "y", "needs_easy_read": "y", "needs_bsl_interpreter": "y", "needs_interpreter": "y",
    "interpreter_language": "Turkish", "has_carer": "y", "carer_name": "Ayla Demir", "carer_phone": "020 7946 0000",
}


def test_the_account_page_links_to_the_profile(patient_client):
    page = get_page(patient_client, "/account")
    assert page.find("a", href="/profile")


def test_the_profile_shows_the_patients_own_details(patient_client, session):
    patient = _patient(session, patient_client)
    page = get_page(patient_client, "/profile")
    text = page.get_text(" ", strip=True)
    assert patient.mobile_display in text
    assert "None recorded" in text


def test_the_email_address_changes_and_is_audited(patient_client, session):
    response = _post(patient_client, "/profile/email", {"email": "New.Person@Example.com"})
    assert response.status_code == 302
    assert _patient(session, patient_client).email == "new.person@example.com"
    assert len(_events(session, "profile_email_changed")) == 1


def test_the_email_address_may_be_removed(patient_client, session):
    _post(patient_client, "/profile/email", {"email": "someone@example.com"})
    assert _post(patient_client, "/profile/email", {"email": "  "}).status_code == 302
    assert _patient(session, patient_client).email is None


def test_a_bad_email_address_shows_an_error_next_to_the_field_and_writes_nothing(patient_client, session):
    before = _patient(session, patient_client).email
    response = _post(patient_client, "/profile/email", {"email": "not an email"})
    page = parse(response)
    assert response.status_code == 200
    assert error_for(page, "email") == "Enter an email address like name@example.com"
    assert page.find(class_="nhsuk-error-summary").find("a", href="#email")
    assert _patient(session, patient_client).email == before
    assert not _events(session, "profile_email_changed")


def test_consent_to_texts_can_be_turned_off_and_on(patient_client, session):
    assert _post(patient_client, "/profile/texts", {"sms_consent": "no"}).status_code == 302
    assert _patient(session, patient_client).sms_consent is False
    assert _post(patient_client, "/profile/texts", {"sms_consent": "yes"}).status_code == 302
    assert _patient(session, patient_client).sms_consent is True
    assert [e.detail for e in _events(session, "profile_sms_consent_changed")] == ["no", "yes"]


def test_a_missing_answer_about_texts_is_an_error_next_to_the_field(patient_client, session):
    response = _post(patient_client, "/profile/texts", {})
    assert error_for(parse(response), "sms_consent") == "Select yes if we can text you"
    assert _patient(session, patient_client).sms_consent is True


def test_communication_needs_are_saved_and_audited(patient_client, session):
    assert _post(patient_client, "/profile/communication-needs", ALL_NEEDS).status_code == 302
    patient = _patient(session, patient_client)
    assert patient.needs_large_print and patient.needs_easy_read and patient.needs_bsl_interpreter
    assert patient.interpreter_language == "Turkish"
    assert (patient.carer_name, patient.carer_phone) == ("Ayla Demir", "+442079460000")
    assert not patient.no_texts
    assert len(_events(session, "profile_communication_needs_changed")) == 1
    text = get_page(patient_client, "/profile").get_text(" ", strip=True)
    assert "Interpreter: Turkish" in text


@pytest.mark.parametrize("typed", ["+44 (0)20 7946 0000", "020 7946 0000", "+44 20 7946 0000", "0044 20 7946 0000",
                                   "(020) 7946-0000"])
def test_a_carers_phone_is_stored_as_one_diallable_number(patient_client, session, typed):
    response = _post(patient_client, "/profile/communication-needs", {**ALL_NEEDS, "carer_phone": typed})
    assert response.status_code == 302
    assert _patient(session, patient_client).carer_phone == "+442079460000"
    text = get_page(patient_client, "/profile").get_text(" ", strip=True)
    assert "Ayla Demir, 020 7946 0000" in text
    # Shown to edit as people write it, and saved again unchanged.
    shown = get_page(patient_client, "/profile/communication-needs").find("input", attrs={"name": "carer_phone"})
    assert shown["value"] == "020 7946 0000"


@pytest.mark.parametrize("typed", ["020 7946 000", "+44 20 7946 00001", "+1 212 555 0100", "020 7946 0000 ext 12",
                                   "0000000000", "phone me"])
def test_a_carers_phone_that_cannot_be_dialled_is_refused_next_to_the_field(patient_client, session, typed):
    response = _post(patient_client, "/profile/communication-needs", {**ALL_NEEDS, "carer_phone": typed})
    assert error_for(parse(response), "carer_phone") == "Enter a UK phone number, like 020 7946 0000 or 07700 900123"
    assert _patient(session, patient_client).carer_phone is None


def test_communication_needs_can_be_cleared(patient_client, session):
    _post(patient_client, "/profile/communication-needs", ALL_NEEDS)
    assert _post(patient_client, "/profile/communication-needs", NO_NEEDS).status_code == 302
    patient = _patient(session, patient_client)
    assert patient.communication_needs == []
    assert patient.interpreter_language is None and patient.carer_name is None and patient.carer_phone is None


def test_missing_needs_details_show_errors_next_to_their_fields_and_write_nothing(patient_client, session):
    response = _post(patient_client, "/profile/communication-needs", {
        "needs_large_print": "y", "needs_interpreter": "y", "has_carer": "y", "carer_phone": "not a phone"})
    page = parse(response)
    assert response.status_code == 200
    assert error_for(page, "interpreter_language") == "Enter the language you need an interpreter for"
    assert error_for(page, "carer_name") == "Enter the name of your carer or advocate"
    assert error_for(page, "carer_phone") == "Enter a UK phone number, like 020 7946 0000 or 07700 900123"
    summary = page.find(class_="nhsuk-error-summary")
    assert {a["href"] for a in summary.find_all("a")} == {"#interpreter_language", "#carer_name", "#carer_phone"}
    assert _patient(session, patient_client).communication_needs == []
    assert not _events(session, "profile_communication_needs_changed")


def test_needs_details_too_long_say_which_box_in_the_summary(patient_client, session):
    response = _post(patient_client, "/profile/communication-needs", {
        "needs_interpreter": "y", "interpreter_language": "x" * 61, "has_carer": "y", "carer_name": "x" * 101,
        "carer_phone": "020 7946 0000"})
    page = parse(response)
    summary = [item.get_text(strip=True) for item in page.find(class_="nhsuk-error-summary").find_all("li")]
    assert summary == ["The language must be 60 characters or fewer",
                       "Your carer or advocate's name must be 100 characters or fewer"]
    assert _patient(session, patient_client).communication_needs == []


def test_no_texts_stops_every_text(patient_client, session):
    _post(patient_client, "/profile/communication-needs", {"no_texts": "y"})
    patient = _patient(session, patient_client)
    assert patient.no_texts and patient.sms_consent and not patient.may_text
    assert not enqueue_sms(session, key="t1", patient=patient, kind="test", body="NHS: hello", now=utcnow())
    assert _sms_count(session) == 0


def _texts_row(page) -> str:
    key = page.find("dt", string=lambda text: text and text.strip() == "Texts")
    return key.find_next_sibling("dd").get_text(" ", strip=True)


def test_with_no_texts_needed_the_profile_says_no_to_texts_once(patient_client, session):
    _post(patient_client, "/profile/communication-needs", {"no_texts": "y"})
    page = get_page(patient_client, "/profile")
    assert _texts_row(page) == ("No. You asked us to contact you by phone or letter instead "
                                "(see communication needs)")
    assert "Yes, you can text me" not in page.get_text()
    links = page.find_all("a", href="/profile/communication-needs")
    assert any("whether we can text you" in link.get_text() for link in links)
    assert "We will not text you." in page.get_text()
    # The texts page says why a yes there would not bring texts back.
    texts_page = get_page(patient_client, "/profile/texts")
    assert "We will not text you, whatever you choose here" in texts_page.get_text()


def test_after_stop_the_profile_says_no_to_texts(patient_client, session):
    patient = _patient(session, patient_client)
    patient.opt_out_of_texts(utcnow())
    session.commit()
    page = get_page(patient_client, "/profile")
    assert _texts_row(page).startswith("No. You replied STOP")
    assert "Text START" in _texts_row(page)


def test_the_profile_says_yes_to_texts_only_when_we_text(patient_client):
    page = get_page(patient_client, "/profile")
    assert _texts_row(page) == "Yes, you can text me"
    assert "We will not text you" not in page.get_text()
    assert "We will not text you" not in get_page(patient_client, "/profile/texts").get_text()


@pytest.mark.parametrize("consent", [True, False])
@pytest.mark.parametrize("no_texts", [True, False])
@pytest.mark.parametrize("stopped", [True, False])
def test_the_rule_for_texting_is_the_same_in_python_and_sql(session, consent, no_texts, stopped):
    patient = factories.create_patient(session, sms_consent=consent, no_texts=no_texts)
    patient.sms_opted_out_at = utcnow() if stopped else None
    session.commit()
    in_sql = session.scalar(select(Patient.may_text).where(Patient.id == patient.id))
    assert bool(in_sql) is patient.may_text is (consent and not no_texts and not stopped)
    assert (patient.texts_setting == "yes") is patient.may_text


def test_consent_off_stops_every_text(patient_client, session):
    _post(patient_client, "/profile/texts", {"sms_consent": "no"})
    patient = _patient(session, patient_client)
    assert not enqueue_sms(session, key="t1", patient=patient, kind="test", body="NHS: hello", now=utcnow())
    assert _sms_count(session) == 0


def test_an_email_on_another_record_or_a_staff_account_is_refused_without_saying_whose(patient_client, session):
    factories.create_patient(session, email="taken@example.com")
    factories.create_staff(session, email="staff.member@test.nhs.uk")
    for email in ("Taken@Example.com", "staff.member@test.nhs.uk"):
        page = parse(_post(patient_client, "/profile/email", {"email": email}))
        assert error_for(page, "email") == "You cannot use this email address. Enter a different one"
    assert _patient(session, patient_client).email is None
    assert not _events(session, "profile_email_changed")


def test_after_three_refused_addresses_in_a_day_the_page_stops_saying_which_are_taken(patient_client, session):
    """Each refusal tells the patient that someone registered with us uses that address: a patient could test a
    neighbour's address. After three in a day, every new address gets the same answer, free or not."""
    for number in range(3):
        factories.create_patient(session, email=f"taken{number}@example.com")
        page = parse(_post(patient_client, "/profile/email", {"email": f"taken{number}@example.com"}))
        assert error_for(page, "email") == "You cannot use this email address. Enter a different one"
    assert len(_events(session, "profile_email_refused")) == 3
    assert {event.patient_id for event in _events(session, "profile_email_refused")} == {
        patient_client.user.patient_id}
    factories.create_patient(session, email="taken3@example.com")
    for email in ("taken3@example.com", "free@example.com"):
        response = _post(patient_client, "/profile/email", {"email": email})
        assert response.status_code == 200
        page = parse(response)
        assert error_for(page, "email").startswith(
            "You have tried several email addresses we could not use in the last 24 hours. Try again in 24 hours")
        assert page.find(class_="nhsuk-error-summary").find("a", href="#email")
    assert _patient(session, patient_client).email is None
    assert len(_events(session, "profile_email_refused")) == 3
    # Taking the address off, or keeping the one they have, still works.
    assert _post(patient_client, "/profile/email", {"email": ""}).status_code == 302


def test_refusals_from_more_than_a_day_ago_do_not_count(patient_client, session, monkeypatch):
    from portal.patients import routes

    factories.create_patient(session, email="taken@example.com")
    for _ in range(3):
        _post(patient_client, "/profile/email", {"email": "taken@example.com"})
    tomorrow = utcnow() + dt.timedelta(days=1, minutes=1)
    monkeypatch.setattr(routes, "utcnow", lambda: tomorrow)
    assert _post(patient_client, "/profile/email", {"email": "free@example.com"}).status_code == 302
    assert _patient(session, patient_client).email == "free@example.com"


def test_a_patient_sharing_their_mobile_keeps_their_email(patient_client, session):
    _post(patient_client, "/profile/email", {"email": "mine@example.com"})
    factories.create_patient(session, mobile=_patient(session, patient_client).mobile)
    page = parse(_post(patient_client, "/profile/email", {"email": ""}))
    assert error_for(page, "email") == ("You share your mobile number with someone else registered with us, so you "
                                        "need an email address to sign in")
    assert _patient(session, patient_client).email == "mine@example.com"


def test_a_mobile_someone_else_uses_needs_an_email_first(patient_client, session):
    """Whoever typed the code holds the phone: they may be told someone else registered uses it."""
    factories.create_patient(session, mobile=NEW_MOBILE_E164)
    old = _patient(session, patient_client).mobile
    _post(patient_client, "/profile/mobile", {"mobile": NEW_MOBILE, "password": factories.PASSWORD})
    code, _ = _texted_code(session)
    page = get_page(patient_client, "/profile/mobile/code")
    refused = parse(patient_client.post("/profile/mobile/code", data={"code": code, "csrf_token": csrf_token(page)}))
    assert error_for(refused, "code").startswith("Someone else registered with us uses this mobile number.")
    assert _patient(session, patient_client).mobile == old
    assert not _events(session, "mobile_changed")


def test_the_mobile_changes_only_with_the_password_and_the_code_sent_to_the_new_number(patient_client, session):
    old = _patient(session, patient_client).mobile
    response = _post(patient_client, "/profile/mobile", {"mobile": NEW_MOBILE, "password": factories.PASSWORD})
    assert response.headers["Location"] == "/profile/mobile/code"
    assert _patient(session, patient_client).mobile == old
    code, to_number = _texted_code(session)
    assert to_number == NEW_MOBILE_E164
    page = get_page(patient_client, "/profile/mobile/code")
    assert format_uk_mobile(NEW_MOBILE_E164) in page.get_text()
    response = patient_client.post("/profile/mobile/code", data={"code": code, "csrf_token": csrf_token(page)})
    assert response.status_code == 302
    assert _patient(session, patient_client).mobile == NEW_MOBILE_E164
    assert len(_events(session, "mobile_changed")) == 1


def test_a_wrong_password_sends_no_code_and_shows_an_error(patient_client, session):
    old = _patient(session, patient_client).mobile
    response = _post(patient_client, "/profile/mobile", {"mobile": NEW_MOBILE, "password": "not my password"})
    page = parse(response)
    assert error_for(page, "password") == "Your password is not right"
    assert _sms_count(session) == 0
    assert _patient(session, patient_client).mobile == old
    assert len(_events(session, "mobile_change_failed")) == 1
    assert patient_client.get("/profile/mobile/code").headers["Location"] == "/profile/mobile"


def test_a_bad_new_mobile_shows_an_error_next_to_the_field(patient_client, session):
    response = _post(patient_client, "/profile/mobile", {"mobile": "12345", "password": factories.PASSWORD})
    page = parse(response)
    assert error_for(page, "mobile")
    assert page.find(class_="nhsuk-error-summary").find("a", href="#mobile")
    assert _sms_count(session) == 0


def test_five_wrong_codes_use_up_the_code_and_the_old_number_stays(patient_client, session):
    old = _patient(session, patient_client).mobile
    _post(patient_client, "/profile/mobile", {"mobile": NEW_MOBILE, "password": factories.PASSWORD})
    code, _ = _texted_code(session)
    for _ in range(5):
        response = _post(patient_client, "/profile/mobile/code", {"code": _wrong(code)})
        assert error_for(parse(response), "code") == CODE_REFUSED
    response = _post(patient_client, "/profile/mobile/code", {"code": code})
    assert error_for(parse(response), "code") == CODE_REFUSED
    assert _patient(session, patient_client).mobile == old
    assert len(_events(session, "mobile_change_code_rejected")) == 6
    assert not _events(session, "mobile_changed")


def test_at_most_three_codes_an_hour_go_to_new_numbers(patient_client, session):
    """Each code is a paid text to whatever number was typed: a patient's account once sent one for every request,
    10 a minute, to any UK mobile."""
    def ask(mobile):
        return _post(patient_client, "/profile/mobile", {"mobile": mobile, "password": factories.PASSWORD})

    for n in range(3):
        assert ask(f"07700 90099{n}").headers["Location"] == "/profile/mobile/code"
    response = ask("07700 900995")
    assert response.status_code == 200
    assert error_for(parse(response), "mobile").startswith(
        "You have asked for 3 codes in the last hour. Wait an hour before you ask for another, or call")
    assert _sms_count(session) == 3
    # The last code sent still works.
    code, to_number = _texted_code(session)
    assert _post(patient_client, "/profile/mobile/code", {"code": code}).status_code == 302
    assert _patient(session, patient_client).mobile == to_number == "+447700900992"


def test_the_new_number_comes_from_the_server_not_the_form(patient_client, session):
    _post(patient_client, "/profile/mobile", {"mobile": NEW_MOBILE, "password": factories.PASSWORD})
    code, _ = _texted_code(session)
    _post(patient_client, "/profile/mobile/code", {"code": code, "mobile": "+447700900555"})
    assert _patient(session, patient_client).mobile == NEW_MOBILE_E164


def test_a_patient_who_asked_for_no_texts_is_told_to_phone(patient_client, session):
    _post(patient_client, "/profile/communication-needs", {"no_texts": "y"})
    response = _post(patient_client, "/profile/mobile", {"mobile": NEW_MOBILE, "password": factories.PASSWORD})
    assert "cannot text a code" in error_for(parse(response), "mobile")
    assert _sms_count(session) == 0


def test_needs_show_on_the_staff_record_and_list(patient_client, reception_client, session):
    _post(patient_client, "/profile/communication-needs", {**ALL_NEEDS, "no_texts": "y"})
    patient_id = patient_client.user.patient_id
    record = get_page(reception_client, f"/staff/patients/{patient_id}")
    callout = record.find(class_="nhsuk-card--warning")
    assert callout is not None and "Communication needs" in callout.get_text()
    assert "Interpreter: Turkish" in callout.get_text()
    assert "No texts" in callout.get_text()
    listing = get_page(reception_client, "/staff/patients")
    row = listing.find("a", href=f"/staff/patients/{patient_id}").find_parent("tr")
    tags = [tag.get_text(" ", strip=True) for tag in row.find_all(class_="nhsuk-tag")]
    assert any("Large print" in tag for tag in tags)
    assert "No texts" in tags


def test_a_patient_without_needs_has_no_callout(patient_client, reception_client):
    record = get_page(reception_client, f"/staff/patients/{patient_client.user.patient_id}")
    assert not any("Communication needs" in c.get_text() for c in record.find_all(class_="nhsuk-card--warning"))


def test_a_patient_changes_only_their_own_profile(patient_client, session):
    other = factories.create_patient_user(session)
    session.commit()
    other_mobile = other.patient.mobile
    _post(patient_client, "/profile/communication-needs", {"needs_large_print": "y"})
    _post(patient_client, "/profile/email", {"email": "mine@example.com"})
    session.expire_all()
    theirs = session.get(Patient, other.patient_id)
    assert not theirs.needs_large_print and theirs.email != "mine@example.com"
    assert theirs.mobile == other_mobile
    assert other_mobile not in get_page(patient_client, "/profile").get_text()
    # No profile route takes an id: what a patient sees and changes is always their own record.
    rules = [r for r in patient_client.application.url_map.iter_rules() if r.rule.startswith("/profile")]
    assert rules and all(not r.arguments for r in rules)


def test_staff_cannot_open_the_profile(reception_client):
    assert reception_client.get("/profile").status_code == 403


def test_anonymous_visitors_are_sent_to_sign_in(app):
    response = app.test_client().get("/profile")
    assert response.status_code == 302 and "/sign-in" in response.headers["Location"]
