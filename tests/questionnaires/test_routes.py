"""The patient's questionnaire pages, the urgent support they see, and who may open the staff pages."""

from __future__ import annotations

import pytest
from flask import render_template
from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.auth.models import Role
from portal.db import utcnow
from portal.questionnaires import services
from portal.questionnaires.instruments import GAD7, PAIN_INTENSITY, PAIN_INTERFERENCE, PHQ9
from tests import factories
from tests.conftest import sign_in
from tests.pages import accessible_name, csrf_token, error_for, get_page, parse
from tests.questionnaires.helpers import all_answers, flags, form_data, responses, signed_in_patient

URGENT_NUMBERS = ("111", "option 2", "116 123", "999", "A&E")


@pytest.fixture
def patient(app, session):
    """A patient activated now: their baseline questionnaires are due today."""
    return signed_in_patient(app, session)


def _post(client, key, answers, *, action="submit"):
    page = get_page(client, f"/questionnaires/{key}")
    return client.post(f"/questionnaires/{key}", data=form_data(answers, action=action, csrf=csrf_token(page)))


def _events(session, action):
    session.expire_all()
    return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def _has_urgent_support(soup) -> bool:
    card = soup.find(id="urgent-support")
    text = card.get_text(" ", strip=True) if card else ""
    return all(part in text for part in URGENT_NUMBERS)


def staff_client(app, session, role):
    user = factories.create_staff(session, role=role)
    client = app.test_client()
    assert sign_in(client, user.email).status_code == 302
    client.user = user
    return client


# The patient's pages.

def test_the_overview_lists_the_due_measures(patient):
    page = get_page(patient, "/questionnaires")
    assert page.h1.get_text(strip=True) == "Your questionnaires"
    rows = [r.get_text(" ", strip=True) for r in page.select(".nhsuk-summary-list__row")]
    assert rows == ["Your pain Not started", "How pain affects your life Not started",
                    "How you have been feeling Not started", "Worry and anxiety Not started"]
    [start] = page.select("main a.nhsuk-button")
    assert start["href"] == "/questionnaires/pain_intensity"
    # Named in full, for a screen reader's list of links: "Start" alone says nothing there.
    assert accessible_name(start) == "Start your questionnaires: Your pain"
    assert start.get_text(strip=True).startswith("Start")


def test_each_question_is_a_fieldset_with_a_legend_and_radios(patient):
    page = get_page(patient, "/questionnaires/phq9")
    assert page.h1.get_text(strip=True) == "How you have been feeling"
    assert "Questionnaire 3 of 4" in page.get_text()
    fieldsets = page.select("main form fieldset")
    assert len(fieldsets) == 10
    legends = [f.legend.get_text(" ", strip=True) for f in fieldsets]
    assert legends[0] == "1. Little interest or pleasure in doing things"
    assert legends[8] == "9. Thoughts that you would be better off dead or of hurting yourself in some way"
    assert legends[9].endswith("(optional)")
    assert [r["value"] for r in fieldsets[0].select("input[type=radio]")] == ["0", "1", "2", "3"]
    assert [lab.get_text(strip=True) for lab in fieldsets[0].select("label")] == [
        "Not at all", "Several days", "More than half the days", "Nearly every day"]
    buttons = [(b["value"], b.get_text(strip=True)) for b in page.select("main form button")]
    assert buttons == [("submit", "Send my answers"), ("draft", "Save and finish later")]


def test_a_pain_rating_offers_0_to_10_with_its_ends_named(patient):
    page = get_page(patient, "/questionnaires/pain_intensity")
    labels = [lab.get_text(strip=True) for lab in page.select("main form label")]
    assert labels[0] == "0 \u2013 no pain" and labels[10] == "10 \u2013 the worst pain you can imagine"
    assert len(labels) == 11


def test_submitting_with_answers_missing_shows_errors_next_to_each_and_keeps_the_answers(patient, session):
    answers = all_answers(GAD7, 2)
    del answers["gad7_3"], answers["gad7_6"]
    response = _post(patient, "gad7", answers)
    assert response.status_code == 200
    page = parse(response)
    assert page.title.string.startswith("Error:")
    bothered = "Select how often you have been bothered by"
    assert error_for(page, "gad7_3") == f"{bothered} worrying too much about different things"
    assert error_for(page, "gad7_6") == f"{bothered} becoming easily annoyed or irritable"
    assert error_for(page, "gad7_1") is None
    summary = [a["href"] for a in page.select(".nhsuk-error-summary a")]
    assert summary == ["#gad7_3", "#gad7_6"]
    checked = {i["name"]: i["value"] for i in page.select("input[type=radio][checked]")}
    assert checked == {key: "2" for key in answers}
    # Kept as a draft, unscored.
    [row] = responses(session, patient.user.patient_id)
    assert (row.status, row.score, row.answers) == ("draft", None, answers)


def test_a_draft_is_kept_and_shown_again(patient, session):
    response = _post(patient, "phq9", {"phq9_1": 2, "phq9_5": 0}, action="draft")
    assert (response.status_code, response.headers["Location"]) == (302, "/questionnaires")
    overview = get_page(patient, "/questionnaires")
    assert "Your answers are saved" in overview.get_text()
    assert "How you have been feeling Started" in [r.get_text(" ", strip=True)
                                                    for r in overview.select(".nhsuk-summary-list__row")]
    # "Continue" takes the patient back to the one they started, not to the first they have not.
    [resume] = overview.select("main a.nhsuk-button")
    assert resume["href"] == "/questionnaires/phq9"
    assert accessible_name(resume) == "Continue your questionnaires: How you have been feeling"
    page = get_page(patient, "/questionnaires/phq9")
    assert {i["name"]: i["value"] for i in page.select("input[type=radio][checked]")} == {"phq9_1": "2",
                                                                                         "phq9_5": "0"}
    assert page.select(".nhsuk-error-message") == []
    assert responses(session, patient.user.patient_id)[0].score is None


def test_answering_every_measure_in_turn(patient, session):
    order = [PAIN_INTENSITY, PAIN_INTERFERENCE, PHQ9, GAD7]
    for n, instrument in enumerate(order):
        response = _post(patient, instrument.key, all_answers(instrument, 0))
        assert response.status_code == 302
        expected = f"/questionnaires/{order[n + 1].key}" if n + 1 < len(order) else "/questionnaires"
        assert response.headers["Location"] == expected
    page = get_page(patient, "/questionnaires")
    assert "You have answered all the questions" in page.get_text()
    assert "no questionnaires to fill in" in page.get_text()
    rows = responses(session, patient.user.patient_id)
    assert [(r.instrument, r.status, r.score) for r in rows] == [
        ("pain_intensity", "submitted", 0), ("pain_interference", "submitted", 0), ("phq9", "submitted", 0),
        ("gad7", "submitted", 0)]
    # Sent answers cannot be sent again; a measure not due is not found.
    assert patient.get("/questionnaires/gad7").status_code == 404
    assert len(_events(session, "questionnaire_submitted")) == 4


def test_an_answered_measure_sends_the_patient_back(patient):
    _post(patient, "gad7", all_answers(GAD7, 1))
    response = patient.get("/questionnaires/gad7")
    assert (response.status_code, response.headers["Location"]) == (302, "/questionnaires")


@pytest.mark.parametrize("key", ["pgic", "bpi", "pseq", "nope", "1"])
def test_measures_not_due_are_not_found(patient, key):
    assert patient.get(f"/questionnaires/{key}").status_code == 404


# Item 9: urgent support at once, and the flag.

def test_item_9_answered_shows_urgent_support_and_raises_the_flag(patient, session):
    response = _post(patient, "phq9", all_answers(PHQ9, 0) | {"phq9_9": 1})
    assert response.status_code == 302
    support_url = response.headers["Location"]
    assert support_url.startswith("/questionnaires/support/")
    page = get_page(patient, support_url)
    assert _has_urgent_support(page)
    assert page.select_one(".nhsuk-card--care--urgent") and page.select_one(".nhsuk-card--care--emergency")
    assert page.find("a", href="tel:116123") and page.find("a", href="tel:111") and page.find("a", href="tel:999")
    assert page.find("a", string="Continue to the next questions")["href"] == "/questionnaires/gad7"
    [flag] = flags(session, patient.user.patient_id)
    [raised] = _events(session, "urgent_flag_raised")
    assert (raised.patient_id, raised.actor_user_id) == (patient.user.patient_id, patient.user.id)
    assert f"flag {flag.id}" in raised.detail


def test_saving_a_draft_with_item_9_shows_urgent_support_too(patient, session):
    response = _post(patient, "phq9", {"phq9_9": 3}, action="draft")
    page = get_page(patient, response.headers["Location"])
    assert _has_urgent_support(page)
    assert page.h1.get_text(strip=True) == "Your answers are saved"
    assert page.find("a", string="Go back to the questions")["href"] == "/questionnaires/phq9"
    assert len(flags(session, patient.user.patient_id)) == 1


def test_an_incomplete_submit_with_item_9_shows_urgent_support_with_the_errors(patient, session):
    page = parse(_post(patient, "phq9", {"phq9_9": 2}))
    assert _has_urgent_support(page)
    assert error_for(page, "phq9_1") == (
        "Select how often you have been bothered by little interest or pleasure in doing things")
    assert len(flags(session, patient.user.patient_id)) == 1


def test_the_flag_is_raised_once_per_response(patient, session):
    _post(patient, "phq9", {"phq9_9": 1}, action="draft")
    _post(patient, "phq9", {"phq9_9": 2}, action="draft")
    _post(patient, "phq9", all_answers(PHQ9, 2))
    assert len(flags(session, patient.user.patient_id)) == 1
    assert len(_events(session, "urgent_flag_raised")) == 1


def test_no_urgent_support_without_item_9(patient, session):
    response = _post(patient, "phq9", all_answers(PHQ9, 3) | {"phq9_9": 0})
    assert response.headers["Location"] == "/questionnaires/gad7"
    assert flags(session) == []


def test_another_patients_support_page_is_not_found(app, session, patient):
    other = signed_in_patient(app, session)
    location = _post(other, "phq9", {"phq9_9": 1}, action="draft").headers["Location"]
    assert patient.get(location).status_code == 404
    assert other.get(location).status_code == 200
    ok = _post(patient, "gad7", all_answers(GAD7, 1), action="draft")
    assert ok.status_code == 302
    own = responses(session, patient.user.patient_id)[0]
    assert patient.get(f"/questionnaires/support/{own.id}").status_code == 404  # GAD-7: no item 9
    assert patient.get("/questionnaires/support/99999999999").status_code == 404


def test_a_tampered_answer_is_refused_with_the_items_message(patient, session):
    page = parse(_post(patient, "pain_intensity", {"pain_average": 11}))
    assert error_for(page, "pain_average") == "Select how bad your pain has been on average"
    assert responses(session, patient.user.patient_id) == []


def test_an_expired_form_saves_nothing(patient, session):
    response = patient.post("/questionnaires/gad7", data=form_data(all_answers(GAD7, 1), csrf="stale"))
    assert response.status_code == 400  # the app-wide CSRF check answers first
    assert responses(session, patient.user.patient_id) == []


# The partials the lead includes.

def test_the_home_card_shows_what_is_due(app, session, patient):
    due = services.due_questionnaire(session, app.extensions["domain"], patient.user.patient, now=utcnow())
    with app.test_request_context():
        html = render_template("questionnaires/_home_card.html", due=due)
        assert render_template("questionnaires/_home_card.html", due=None).strip() == ""
    card = parse_html(html)
    assert card.find("a")["href"] == "/questionnaires"
    assert "4 sets of questions left" in card.get_text()


def parse_html(html):
    from bs4 import BeautifulSoup

    return BeautifulSoup(html, "html.parser")


# Staff pages.

def test_patients_get_403_on_staff_pages(patient, session):
    for url in ("/staff/urgent", "/staff/urgent/1", f"/staff/patients/{patient.user.patient_id}/questionnaires"):
        assert patient.get(url).status_code == 403, url


@pytest.mark.parametrize(("role", "urgent", "scores"), [
    (Role.FACILITATOR, 200, 200), (Role.ADMIN, 200, 200), (Role.RECEPTION, 403, 200)])
def test_who_may_open_the_staff_pages(app, session, role, urgent, scores):
    client = staff_client(app, session, role)
    other = factories.create_patient(session)
    assert client.get("/staff/urgent").status_code == urgent
    assert client.get(f"/staff/patients/{other.id}/questionnaires").status_code == scores
    assert client.get("/staff/patients/99999/questionnaires").status_code == 404


def test_a_clinician_sees_the_flag_until_they_acknowledge_it_with_a_note(app, session, patient):
    _post(patient, "phq9", all_answers(PHQ9, 1))
    [flag] = flags(session)
    clinician = staff_client(app, session, Role.FACILITATOR)
    page = get_page(clinician, "/staff/urgent")
    row = page.find(id=f"flag-{flag.id}")
    assert patient.user.patient.full_name in row.get_text() and "Several days" in row.get_text()
    assert "1 open flag" in page.get_text()

    # The note is required, and the error sits next to it.
    form = get_page(clinician, f"/staff/urgent/{flag.id}")
    missing = clinician.post(f"/staff/urgent/{flag.id}", data={"note": "  ", "csrf_token": csrf_token(form)})
    assert missing.status_code == 400 and error_for(parse(missing), "note") == "Enter the action you took"
    assert flags(session)[0].is_open

    response = clinician.post(f"/staff/urgent/{flag.id}", data={
        "note": "Phoned, safety plan agreed, GP informed.", "csrf_token": csrf_token(form)})
    assert (response.status_code, response.headers["Location"]) == (302, "/staff/urgent")
    page = get_page(clinician, "/staff/urgent")
    assert page.find(id=f"flag-{flag.id}") is None
    assert "No open urgent flags" in page.get_text()
    assert "Phoned, safety plan agreed, GP informed." in page.get_text()
    acknowledged = flags(session)[0]
    assert (acknowledged.acknowledged_by_id, acknowledged.action_note) == (
        clinician.user.id, "Phoned, safety plan agreed, GP informed.")
    [event] = _events(session, "urgent_flag_acknowledged")
    assert (event.actor_user_id, event.patient_id, event.detail) == (
        clinician.user.id, patient.user.patient_id, f"flag {flag.id}")
    assert "Phoned" not in event.detail  # the clinical note stays on the flag, not in the trail
    # A second acknowledgement is refused politely.
    again = clinician.post(f"/staff/urgent/{flag.id}", data={"note": "x", "csrf_token": csrf_token(form)})
    assert again.status_code == 302 and flags(session)[0].action_note.startswith("Phoned")


def test_reception_cannot_acknowledge(app, session, patient):
    _post(patient, "phq9", all_answers(PHQ9, 1))
    [flag] = flags(session)
    reception = staff_client(app, session, Role.RECEPTION)
    token = csrf_token(get_page(reception, "/staff"))
    assert reception.post(f"/staff/urgent/{flag.id}", data={"note": "x", "csrf_token": token}).status_code == 403
    assert flags(session)[0].is_open


def test_the_scores_page_shows_change_and_answers(app, session, patient):
    _post(patient, "phq9", {f"phq9_{n}": v for n, v in enumerate([1, 2, 1, 0, 3, 2, 1, 0, 1], start=1)})
    clinician = staff_client(app, session, Role.FACILITATOR)
    page = get_page(clinician, f"/staff/patients/{patient.user.patient_id}/questionnaires")
    text = page.get_text(" ", strip=True)
    assert "PHQ-9 (depression)" in text and "11 (moderate)" in text and "Baseline" in text
    assert "Reliable change: IAPT" in text
    assert "Thoughts that you would be better off dead or of hurting yourself in some way Several days" in text
    assert [e.patient_id for e in _events(session, "questionnaire_scores_viewed")] == [patient.user.patient_id]


def test_the_record_section_and_staff_home_link(app, session, patient):
    _post(patient, "phq9", all_answers(PHQ9, 2))
    clinician = staff_client(app, session, Role.FACILITATOR)
    get_page(clinician, "/staff")  # sign the test request context in below as this clinician
    with app.test_request_context():
        from flask_login import login_user

        login_user(clinician.user)
        section = parse_html(render_template("questionnaires/_record_section.html", patient=patient.user.patient))
        link = parse_html("<ul>" + render_template("questionnaires/_staff_home_link.html") + "</ul>")
    assert "Urgent flag: not yet acknowledged" in section.get_text()
    assert "18 (moderately severe)" in section.get_text(" ", strip=True)
    assert section.find("a", href=f"/staff/patients/{patient.user.patient_id}/questionnaires")
    assert link.find("a", href="/staff/urgent") and "1 open" in link.get_text()
    reception = factories.create_staff(session, role=Role.RECEPTION)
    with app.test_request_context():
        from flask_login import login_user

        login_user(reception)
        assert render_template("questionnaires/_staff_home_link.html").strip() == ""
