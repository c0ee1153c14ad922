"""Forms reception uses to book, move and cancel course places, and to run the waiting lists."""

from __future__ import annotations

from wtforms import RadioField, SelectField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from portal.forms import PlainText, PortalForm

_REASON_LENGTH = Length(max=500, message="Reason must be 500 characters or fewer")
_PLAIN = PlainText()


class StaffCohortForm(PortalForm):
    """Book or move a place: the cohort, and a reason (needed when overriding the booking window)."""

    cohort = RadioField("Group", choices=[], validate_choice=False,
                        validators=[InputRequired(message="Select a group")])
    reason = TextAreaField("Reason", validators=[Optional(), _REASON_LENGTH, _PLAIN])


class StaffCancelForm(PortalForm):
    reason = TextAreaField(
        "Why is the place being cancelled?",
        validators=[DataRequired(message="Enter why the place is being cancelled"), _REASON_LENGTH, _PLAIN],
    )


class LeaveWaitlistForm(PortalForm):
    reason = TextAreaField(
        "Why are they coming off the waiting list?",
        validators=[DataRequired(message="Enter why they are coming off the waiting list"), _REASON_LENGTH, _PLAIN],
    )


class StaffWaitlistForm(PortalForm):
    cohort = SelectField("Which groups", choices=[], validate_choice=False,
                         validators=[InputRequired(message="Select which groups the patient would take")])
    reason = TextAreaField("Reason", validators=[Optional(), _REASON_LENGTH, _PLAIN])


class ReorderForm(PortalForm):
    direction = RadioField(
        "Move this patient",
        choices=[SelectChoice("up", "Up one place"), SelectChoice("down", "Down one place")],
        validators=[InputRequired(message="Select up or down")],
    )
    reason = TextAreaField(
        "Why are you changing the order?",
        validators=[DataRequired(message="Enter why you are changing the order"), _REASON_LENGTH, _PLAIN],
    )
