"""The patient's pages: choose a service, a day, a time, confirm; see, move and cancel appointments."""

import datetime as dt

import pytest
from sqlalchemy import func, select, update

from portal.appointments.models import Appointment, AppointmentSlot
from portal.db import utcnow
from portal.messaging.models import SmsMessage
from tests import factories
from tests.appointments import factories as appt
from tests.appointments.conftest import signed_in_patient
from tests.pages import csrf_token, error_for, get_page, parse


def _day(slot) -> str:
    return slot.starts_at.astimezone(appt.LONDON).date().isoformat()


def _count(session, model, *where):
    return session.scalar(select(func.count()).select_from(model).where(*where))


def _post(client, url, data=None, *, page_url=None):
    token = csrf_token(get_page(client, page_url or url))
    return client.post(url, data={**(data or {}), "csrf_token": token})


def test_a_patient_books_through_service_day_time_and_confirm(patient_client, session):
    slot, later = appt.create_slots(session, 2, venue=factories.create_venue(session, name="Archway Centre"))
    services_page = get_page(patient_client, "/appointments/book")
    links = [a["href"] for a in services_page.select("a.nhsuk-card__link")]
    assert links == ["/appointments/book/t1-physio", "/appointments/book/t1-pharmacy"]

    days = get_page(patient_client, "/appointments/book/t1-physio")
    day_link = days.find("a", href=f"/appointments/book/t1-physio/{_day(slot)}")
    assert day_link and "2 times free" in day_link.parent.get_text(" ", strip=True)

    times = get_page(patient_client, f"/appointments/book/t1-physio/{_day(slot)}")
    radios = times.select("input[name=slot]")
    assert [r["value"] for r in radios] == [str(slot.id), str(later.id)]
    assert "Archway Centre" in times.get_text()
    response = patient_client.post(f"/appointments/book/t1-physio/{_day(slot)}",
                                   data={"slot": str(later.id), "csrf_token": csrf_token(times)})
    assert response.status_code == 302 and response.headers["Location"] == f"/appointments/slots/{later.id}"
    assert _count(session, Appointment) == 0  # choosing a time books nothing

    response = _post(patient_client, f"/appointments/slots/{later.id}")
    assert response.status_code == 302 and response.headers["Location"] == "/appointments"
    appointment = session.scalars(select(Appointment)).one()
    assert (appointment.patient_id, appointment.slot_id) == (patient_client.user.patient_id, later.id)
    assert session.scalars(select(SmsMessage.idempotency_key)).one() == f"appointment-booked:{appointment.id}"
    listing = get_page(patient_client, "/appointments")
    text = listing.get_text(" ", strip=True)
    assert "Your pain management physiotherapy appointment is booked" in text
    card = listing.find(id=f"appointment-{appointment.id}").find_parent("section")
    assert card.find("a", href=f"/appointments/{appointment.id}/reschedule")
    assert card.find("a", href=f"/appointments/{appointment.id}/cancel")


def test_the_time_page_wants_a_choice_next_to_the_field(patient_client, session):
    slot = appt.create_slot(session)
    url = f"/appointments/book/t1-physio/{_day(slot)}"
    response = _post(patient_client, url)
    assert response.status_code == 400
    page = parse(response)
    assert error_for(page, "slot") == "Select a time"
    assert page.title.string.startswith("Error:")
    response = _post(patient_client, url, {"slot": "99999999"})
    assert response.status_code == 400 and error_for(parse(response), "slot") == "Select one of the times shown"


def test_a_time_taken_while_choosing_says_so_next_to_the_field(patient_client, session):
    slot, other = appt.create_slots(session, 2)
    url = f"/appointments/book/t1-physio/{_day(slot)}"
    token = csrf_token(get_page(patient_client, url))
    appt.book(session, factories.create_patient(session), slot)
    response = patient_client.post(url, data={"slot": str(slot.id), "csrf_token": token})
    assert response.status_code == 409
    page = parse(response)
    assert error_for(page, "slot") == "That time was just taken. Choose another time"
    assert [r["value"] for r in page.select("input[name=slot]")] == [str(other.id)]


def test_a_slot_taken_before_confirming_offers_the_next_free_times(patient_client, session):
    slot, *others = appt.create_slots(session, 3)
    token = csrf_token(get_page(patient_client, f"/appointments/slots/{slot.id}"))
    appt.book(session, factories.create_patient(session), slot)
    response = patient_client.post(f"/appointments/slots/{slot.id}", data={"csrf_token": token})
    assert response.status_code == 409
    page = parse(response)
    assert page.h1.get_text(strip=True) == "That time was just taken"
    assert [a["href"] for a in page.select("main li a")] == [f"/appointments/slots/{s.id}" for s in others]
    assert _count(session, Appointment, Appointment.patient_id == patient_client.user.patient_id) == 0


def test_the_limit_sends_the_patient_to_reschedule_instead(patient_client, session):
    first, second = appt.create_slots(session, 2)
    booked = appt.book(session, patient_client.user.patient, first)
    for url in ("/appointments/book/t1-physio", f"/appointments/slots/{second.id}"):
        page = get_page(patient_client, url)
        assert page.h1.get_text(strip=True) == "You already have an appointment for this service"
        assert page.find("a", href=f"/appointments/{booked.id}/reschedule")
    token = csrf_token(get_page(patient_client, "/appointments"))
    response = patient_client.post(f"/appointments/slots/{second.id}", data={"csrf_token": token})
    assert response.status_code == 409
    assert _count(session, Appointment) == 1
    # Another service is not limited by this one.
    assert "Choose a day" in get_page(patient_client, "/appointments/book/t1-pharmacy").get_text()


@pytest.mark.parametrize("kind", ["unknown", "past", "blocked", "booked", "other-tier", "staff-only", "huge"])
def test_slots_that_cannot_be_booked_answer_404(app, session, kind):
    client = signed_in_patient(app, session, tier=2, team="whittington")
    slot_id = {
        "unknown": lambda: 999_999,
        "past": lambda: appt.create_slot(session, service_key="t2-physio",
                                         starts_at=appt.days_ahead(-1)).id,
        "blocked": lambda: appt.create_slot(session, service_key="t2-physio", status="blocked").id,
        "booked": lambda: appt.book(session, factories.create_patient(session, tier=2),
                                    appt.create_slot(session, service_key="t2-physio")).slot_id,
        "other-tier": lambda: appt.create_slot(session, service_key="t1-physio").id,
        "staff-only": lambda: appt.create_slot(session, service_key="t2-psychology").id,
        "huge": lambda: 2**40,
    }[kind]()
    assert client.get(f"/appointments/slots/{slot_id}").status_code == 404
    token = csrf_token(get_page(client, "/appointments"))
    assert client.post(f"/appointments/slots/{slot_id}", data={"csrf_token": token}).status_code in (404, 409)
    assert _count(session, Appointment, Appointment.patient_id == client.user.patient_id) == 0


@pytest.mark.parametrize("url", ["/appointments/book/t2-physio", "/appointments/book/t1-group",
                                 "/appointments/book/nope", "/appointments/book/t1-physio/2027-02-30",
                                 "/appointments/book/t1-physio/tomorrow", "/appointments/1/cancel",
                                 "/appointments/1/reschedule", "/appointments/1/reschedule/2027-01-01"])
def test_other_urls_answer_404(patient_client, url):
    assert patient_client.get(url).status_code == 404


def test_a_tier_2_patient_sees_only_their_own_teams_slots(tier2_client, session):
    own = appt.create_slot(session, service_key="t2-acupuncture", team="whittington", starts_at=appt.days_ahead(3))
    other = appt.create_slot(session, service_key="t2-acupuncture", team="haringey", starts_at=appt.days_ahead(4))
    page = get_page(tier2_client, "/appointments/book/t2-acupuncture")
    assert page.find("a", href=f"/appointments/book/t2-acupuncture/{_day(own)}")
    assert not page.find("a", href=f"/appointments/book/t2-acupuncture/{_day(other)}")
    assert tier2_client.get(f"/appointments/slots/{other.id}").status_code == 404
    offered = [a["href"] for a in get_page(tier2_client, "/appointments/book").select("a.nhsuk-card__link")]
    assert offered == ["/appointments/book/t2-physio", "/appointments/book/t2-acupuncture",
                       "/appointments/book/t2-pharmacology"]


def test_a_tier_2_patient_without_a_team_is_told_why_there_are_no_times(app, session):
    client = signed_in_patient(app, session, tier=2, team=None, postcode="N4 3LS")
    appt.create_slot(session, service_key="t2-physio")
    page = get_page(client, "/appointments/book/t2-physio")
    assert "still deciding which of the Tier 2 pain teams" in page.get_text()
    assert not page.select("main ul a")


def test_cancel_needs_a_reason_shown_next_to_the_field(patient_client, session):
    appointment = appt.book(session, patient_client.user.patient, appt.create_slot(session))
    url = f"/appointments/{appointment.id}/cancel"
    response = _post(patient_client, url)
    assert response.status_code == 400
    assert error_for(parse(response), "reason") == "Select why you are cancelling your appointment"
    response = _post(patient_client, url, {"reason": "other", "detail": "  "})
    assert error_for(parse(response), "detail") == "Tell us why you are cancelling your appointment"
    session.expire_all()
    assert session.get(Appointment, appointment.id).status == "active"
    # PostgreSQL refuses NUL in text: refused here, next to the field, on every backend.
    response = _post(patient_client, url, {"reason": "other", "detail": "Moving\x00away"})
    assert response.status_code == 400
    assert error_for(parse(response), "detail") == "Tell us more must not include hidden characters"
    response = _post(patient_client, url, {"reason": "other", "detail": "x" * 501})
    assert error_for(parse(response), "detail") == "Tell us more must be 500 characters or fewer"
    response = _post(patient_client, url, {"reason": "other", "detail": "Moving away"})
    assert response.status_code == 302 and response.headers["Location"] == "/appointments"
    session.expire_all()
    cancelled = session.get(Appointment, appointment.id)
    assert (cancelled.status, cancelled.cancel_reason) == ("cancelled", "Another reason: Moving away")
    assert session.get(AppointmentSlot, appointment.slot_id).status == "open"
    assert "appointment is cancelled" in get_page(patient_client, "/appointments").get_text()


def test_after_the_cut_off_the_patient_is_asked_to_call(patient_client, session):
    slot = appt.create_slot(session, starts_at=utcnow() + dt.timedelta(hours=20))
    appointment = appt.book(session, patient_client.user.patient, slot)
    listing = get_page(patient_client, "/appointments")
    assert not listing.find("a", href=f"/appointments/{appointment.id}/cancel")
    assert "too late to change this appointment online" in listing.get_text()
    for action in ("cancel", "reschedule"):
        page = get_page(patient_client, f"/appointments/{appointment.id}/{action}")
        assert "020 3316 8888" in page.get_text() and not page.find("form", method="post", action=None)
    token = csrf_token(listing)
    response = patient_client.post(f"/appointments/{appointment.id}/cancel",
                                   data={"reason": "better", "csrf_token": token})
    assert response.status_code == 409 and "call us on 020 3316 8888" in parse(response).get_text()
    session.expire_all()
    assert session.get(Appointment, appointment.id).status == "active"


def test_a_patient_reschedules_and_the_old_slot_is_released(patient_client, session):
    clinician = appt.create_clinician(session)
    old_slot = appt.create_slot(session, clinician=clinician, starts_at=appt.days_ahead(3))
    new_slot = appt.create_slot(session, clinician=clinician, starts_at=appt.days_ahead(5, 14))
    old = appt.book(session, patient_client.user.patient, old_slot)
    days = get_page(patient_client, f"/appointments/{old.id}/reschedule")
    assert days.find("a", href=f"/appointments/{old.id}/reschedule/{_day(new_slot)}")
    assert not days.find("a", href=f"/appointments/{old.id}/reschedule/{_day(old_slot)}")
    response = _post(patient_client, f"/appointments/{old.id}/reschedule/{_day(new_slot)}", {"slot": str(new_slot.id)})
    assert response.status_code == 302
    session.expire_all()
    assert session.get(Appointment, old.id).status == "moved"
    assert session.get(AppointmentSlot, old_slot.id).status == "open"
    new = session.scalars(select(Appointment).where(Appointment.status == "active")).one()
    assert new.slot_id == new_slot.id
    assert "appointment has moved" in get_page(patient_client, "/appointments").get_text()


def _booked_with_two_later(session, patient, *, days: int):
    """An appointment in 3 days, and two free times of the same clinician on one later day."""
    clinician = appt.create_clinician(session)
    old_slot = appt.create_slot(session, clinician=clinician, starts_at=appt.days_ahead(3))
    first, second = appt.create_slots(session, 2, clinician=clinician, first=appt.days_ahead(days, 9))
    return appt.book(session, patient, old_slot), old_slot, first, second


def test_a_reschedule_to_a_time_just_taken_keeps_the_old_one_and_offers_the_next(patient_client, session):
    old, old_slot, wanted, next_free = _booked_with_two_later(session, patient_client.user.patient, days=6)
    url = f"/appointments/{old.id}/reschedule/{_day(wanted)}"
    token = csrf_token(get_page(patient_client, url))
    appt.book(session, factories.create_patient(session), wanted)
    response = patient_client.post(url, data={"slot": str(wanted.id), "csrf_token": token})
    assert response.status_code == 409
    page = parse(response)
    assert error_for(page, "slot").startswith("That time was just taken. Your appointment has not changed")
    assert [r["value"] for r in page.select("input[name=slot]")] == [str(next_free.id)]
    session.expire_all()
    assert session.get(Appointment, old.id).status == "active"
    assert session.get(AppointmentSlot, old_slot.id).status == "booked"


def test_patients_see_only_their_own_appointments(app, session):
    owner = signed_in_patient(app, session)
    other = signed_in_patient(app, session)
    appointment = appt.book(session, owner.user.patient, appt.create_slot(session))
    assert f"appointment-{appointment.id}" not in other.get("/appointments").get_data(as_text=True)
    for url in (f"/appointments/{appointment.id}/cancel", f"/appointments/{appointment.id}/reschedule"):
        assert other.get(url).status_code == 404
    token = csrf_token(get_page(other, "/appointments"))
    response = other.post(f"/appointments/{appointment.id}/cancel", data={"reason": "better", "csrf_token": token})
    assert response.status_code == 404
    session.expire_all()
    assert session.get(Appointment, appointment.id).status == "active"


def test_staff_cannot_use_the_patient_pages(reception_client):
    for url in ("/appointments", "/appointments/book", "/appointments/book/t1-physio"):
        assert reception_client.get(url).status_code == 403


def test_booking_a_time_inside_the_cut_off_warns_that_it_cannot_be_changed_online(patient_client, session):
    soon, later = appt.create_slots(session, 1)[0], appt.create_slots(session, 1)[0]
    soon.starts_at = utcnow() + dt.timedelta(hours=18)
    session.commit()
    warning = get_page(patient_client, f"/appointments/slots/{soon.id}").select_one(".nhsuk-warning-callout")
    assert warning is not None and "You cannot change this appointment online" in warning.get_text()
    assert "less than 24 hours" in warning.get_text()
    page = get_page(patient_client, f"/appointments/slots/{later.id}")
    assert page.select_one(".nhsuk-warning-callout") is None
    assert "until 24 hours before it starts" in page.get_text()


def test_a_second_cancel_or_back_says_the_appointment_is_already_cancelled(patient_client, session):
    appointment = appt.book(session, patient_client.user.patient, appt.create_slot(session))
    url = f"/appointments/{appointment.id}/cancel"
    token = csrf_token(get_page(patient_client, url))
    data = {"reason": "better", "csrf_token": token}
    assert patient_client.post(url, data=data).status_code == 302
    for again in (patient_client.post(url, data=data), patient_client.get(url),
                  patient_client.get(f"/appointments/{appointment.id}/reschedule")):
        assert again.status_code == 302 and again.headers["Location"] == "/appointments"
    assert "This appointment is already cancelled." in get_page(patient_client, "/appointments").get_text()


def test_a_second_reschedule_says_the_appointment_has_already_moved(patient_client, session):
    old, _, first, second = _booked_with_two_later(session, patient_client.user.patient, days=5)
    url = f"/appointments/{old.id}/reschedule/{_day(first)}"
    token = csrf_token(get_page(patient_client, url))
    assert patient_client.post(url, data={"slot": str(first.id), "csrf_token": token}).status_code == 302
    again = patient_client.post(url, data={"slot": str(second.id), "csrf_token": token})
    assert again.status_code == 302 and again.headers["Location"] == "/appointments"
    assert "This appointment has already moved to a new time." in get_page(patient_client, "/appointments").get_text()
    session.expire_all()
    assert session.get(AppointmentSlot, second.id).status == "open"


def test_another_patients_cancelled_appointment_still_answers_404(app, session):
    owner = signed_in_patient(app, session)
    other = signed_in_patient(app, session)
    appointment = appt.book(session, owner.user.patient, appt.create_slot(session))
    _post(owner, f"/appointments/{appointment.id}/cancel", {"reason": "better"})
    session.expire_all()
    assert session.get(Appointment, appointment.id).status == "cancelled"
    for url in (f"/appointments/{appointment.id}/cancel", f"/appointments/{appointment.id}/reschedule"):
        response = other.get(url)
        assert response.status_code == 404 and "already" not in response.get_data(as_text=True)


def test_a_patient_who_gets_no_texts_is_not_promised_one(app, session):
    client = signed_in_patient(app, session, no_texts=True)
    appointment = appt.book(session, client.user.patient, appt.create_slot(session))
    _post(client, f"/appointments/{appointment.id}/cancel", {"reason": "better"})
    listing = get_page(client, "/appointments").get_text()
    assert "appointment is cancelled." in listing and "We have sent you a text" not in listing
    assert _count(session, SmsMessage) == 0


def test_a_patient_who_gets_texts_is_told_one_is_on_its_way(patient_client, session):
    appointment = appt.book(session, patient_client.user.patient, appt.create_slot(session))
    _post(patient_client, f"/appointments/{appointment.id}/cancel", {"reason": "better"})
    assert "cancelled. We have sent you a text to confirm." in get_page(patient_client, "/appointments").get_text()


def test_a_time_from_another_day_is_refused_next_to_the_field(patient_client, session):
    clinician = appt.create_clinician(session)
    shown = appt.create_slot(session, clinician=clinician, starts_at=appt.days_ahead(4))
    other_day = appt.create_slot(session, clinician=clinician, starts_at=appt.days_ahead(11))
    response = _post(patient_client, f"/appointments/book/t1-physio/{_day(shown)}", {"slot": str(other_day.id)})
    assert response.status_code == 400 and error_for(parse(response), "slot") == "Select one of the times shown"
    old = appt.book(session, patient_client.user.patient, appt.create_slot(session, starts_at=appt.days_ahead(2)))
    response = _post(patient_client, f"/appointments/{old.id}/reschedule/{_day(shown)}", {"slot": str(other_day.id)})
    assert response.status_code == 400 and error_for(parse(response), "slot") == "Select one of the times shown"
    session.expire_all()
    assert session.get(Appointment, old.id).status == "active"


def test_a_next_free_time_on_a_later_day_can_still_be_chosen(patient_client, session):
    old, _, wanted, _ = _booked_with_two_later(session, patient_client.user.patient, days=6)
    later = appt.create_slot(session, starts_at=appt.days_ahead(8))
    url = f"/appointments/{old.id}/reschedule/{_day(wanted)}"
    token = csrf_token(get_page(patient_client, url))
    appt.book(session, factories.create_patient(session), wanted)
    session.execute(update(AppointmentSlot).where(AppointmentSlot.starts_at < later.starts_at,
                                                  AppointmentSlot.status == "open").values(status="blocked",
                                                                                           blocked_reason="Test"))
    session.commit()
    offered = parse(patient_client.post(url, data={"slot": str(wanted.id), "csrf_token": token}))
    assert [r["value"] for r in offered.select("input[name=slot]")] == [str(later.id)]
    action = offered.find("input", attrs={"name": "slot"}).find_parent("form")["action"]
    assert action == f"?after={wanted.id}"
    assert patient_client.post(url, data={"slot": str(later.id), "csrf_token": token}).status_code == 400
    moved = patient_client.post(f"{url}{action}", data={"slot": str(later.id), "csrf_token": token})
    assert moved.status_code == 302


def _london_today() -> dt.date:
    return utcnow().astimezone(appt.LONDON).date()


@pytest.mark.parametrize(("offset", "said"), [
    (-1, "has passed. Choose another day."),
    (-2000, "has passed. Choose another day."),
    (7 * 6 + 1, "You can book up to 6 weeks ahead, and"),
    (7 * 52 * 40, "You can book up to 6 weeks ahead, and"),
])
def test_a_day_outside_the_booking_window_goes_back_to_the_days_saying_why(patient_client, session, offset, said):
    # Once a past day showed "no free times" as if it were full, while a far one answered 404: both now go back.
    day = (_london_today() + dt.timedelta(days=offset)).isoformat()
    url = f"/appointments/book/t1-physio/{day}"
    for response in (patient_client.get(url), _post(patient_client, url, {"slot": "1"}, page_url="/appointments")):
        assert response.status_code == 302 and response.headers["Location"] == "/appointments/book/t1-physio"
    page = get_page(patient_client, "/appointments/book/t1-physio").get_text()
    assert said in page and "Choose a day" in page


def test_today_and_the_last_day_of_the_window_still_open(patient_client, session):
    for day in (_london_today().isoformat(), (_london_today() + dt.timedelta(weeks=6)).isoformat()):
        assert patient_client.get(f"/appointments/book/t1-physio/{day}").status_code == 200


def test_moving_to_a_day_outside_the_window_goes_back_to_the_new_days(patient_client, session):
    appointment = appt.book(session, patient_client.user.patient, appt.create_slot(session))
    past = (_london_today() - dt.timedelta(days=1)).isoformat()
    response = patient_client.get(f"/appointments/{appointment.id}/reschedule/{past}")
    assert response.status_code == 302 and response.headers["Location"] == f"/appointments/{appointment.id}/reschedule"
    assert "has passed. Choose another day." in get_page(patient_client, response.headers["Location"]).get_text()
