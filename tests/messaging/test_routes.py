"""The web side of texting shared by the patient pages."""

from portal.appointments import routes as appointment_routes
from portal.booking import routes as booking_routes
from portal.messaging import routes


def test_course_and_appointment_pages_share_one_text_promise():
    # One rule for "We have sent you a text": a copy in each blueprint drifted apart once already.
    assert booking_routes.text_note is routes.text_note
    assert appointment_routes.text_note is routes.text_note
    assert not hasattr(booking_routes, "_text_note") and not hasattr(appointment_routes, "_text_note")
