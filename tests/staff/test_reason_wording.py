"""Every staff reason box's errors name the box in the words of the label the page shows.

They once all said "Reason must be ..." under labels such as "Why is the place being cancelled?" or
"Note (optional)". A question label is turned round, as the box's "Enter why ..." message does.
"""

import re
from pathlib import Path

import pytest
from werkzeug.datastructures import MultiDict

from portal.appointments import forms as appointment_forms
from portal.staff import booking_forms, course_forms, desk_forms

TEMPLATES = Path(appointment_forms.__file__).parents[1] / "templates"

# (template, field, label shown, form, words naming the box in its errors, length allowed)
BOXES = [
    ("appointments/staff/_override.html", "override_reason", "Reason for overriding",
     appointment_forms.StaffBookForm, "Reason for overriding", 500),
    ("appointments/staff/cancel.html", "reason", "Why is the appointment being cancelled?",
     appointment_forms.StaffCancelForm, "Why the appointment is being cancelled", 500),
    ("appointments/admin/leave_form.html", "reason", "Reason (optional)",
     appointment_forms.LeaveForm, "Reason", 200),
    ("appointments/admin/block_slot.html", "reason", "Why is this slot blocked?",
     appointment_forms.BlockSlotForm, "Why this slot is blocked", 200),
    ("staff/bookings/choose_cohort.html", "reason", "Reason", booking_forms.StaffCohortForm, "Reason", 500),
    ("staff/bookings/cancel.html", "reason", "Why is the place being cancelled?",
     booking_forms.StaffCancelForm, "Why the place is being cancelled", 500),
    ("staff/bookings/leave_waitlist.html", "reason", "Why are they coming off the waiting list?",
     booking_forms.LeaveWaitlistForm, "Why they are coming off the waiting list", 500),
    ("staff/bookings/join_waitlist.html", "reason", "Note (optional)", booking_forms.StaffWaitlistForm, "Note", 500),
    ("staff/bookings/reorder.html", "reason", "Why are you changing the order?",
     booking_forms.ReorderForm, "Why you are changing the order", 500),
    ("staff/courses/move_session.html", "reason", "Why is the session moving?",
     course_forms.MoveSessionForm, "Why the session is moving", 500),
    ("staff/courses/cancel_session.html", "reason", "Why is the session cancelled?",
     course_forms.CancelSessionForm, "Why the session is cancelled", 500),
    ("staff/courses/cancel_cohort.html", "reason", "Why is the cohort cancelled?",
     course_forms.CancelCohortForm, "Why the cohort is cancelled", 500),
    ("staff/schedule/move_patients.html", "reason", "Why are they moving?",
     desk_forms.BulkMoveForm, "Why they are moving", 500),
]
_REASON_BOX = re.compile(r"""(?:textarea|text)_field\(form\.((?:override_)?reason), "([^"]+)\"""")


def test_the_table_covers_every_reason_box_of_the_templates():
    # The registration form's override box is checked by the intake rules it shares with the triage import.
    found = {(str(path.relative_to(TEMPLATES)), field, label)
             for path in TEMPLATES.rglob("*.html") if path.name != "register_patient.html"
             for field, label in _REASON_BOX.findall(path.read_text())}
    assert found == {(template, field, label) for template, field, label, *_ in BOXES}


def _errors(app, form_class, field: str, typed: str) -> list[str]:
    kwargs = {"clinicians": []} if form_class is appointment_forms.LeaveForm else {}
    with app.test_request_context(method="POST"):
        form = form_class(formdata=MultiDict({field: typed}), meta={"csrf": False}, **kwargs)
        form.validate()
        return form[field].errors


@pytest.mark.parametrize(("template", "field", "label", "form_class", "words", "length"), BOXES,
                         ids=[box[0] for box in BOXES])
def test_a_reason_box_names_itself_as_labelled(app, template, field, label, form_class, words, length):
    assert _errors(app, form_class, field, "x" * (length + 1)) == [f"{words} must be {length} characters or fewer"]
    assert _errors(app, form_class, field, "Moved\x00away") == [f"{words} must not include hidden characters"]
    assert _errors(app, form_class, field, "x" * length) == []
