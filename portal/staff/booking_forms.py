"""Forms reception uses to book, move and cancel course places, and to run the waiting lists."""

from __future__ import annotations

from wtforms import RadioField, SelectField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Optional

from portal.forms import PortalForm, box_limits

REASON_LENGTH = 500


class StaffCohortForm(PortalForm):
    """Book or move a place: the cohort, and a reason (needed when overriding the booking window)."""

    cohort = RadioField("Group", choices=[], validate_choice=False,
                        validators=[InputRequired(message="Select a group")])
    reason = TextAreaField("Reason", validators=[Optional(), *box_limits("Reason", REASON_LENGTH)])


class StaffCancelForm(PortalForm):
    reason = TextAreaField(
        "Why is the place being cancelled?",
        validators=[DataRequired(message="Enter why the place is being cancelled"),
                    *box_limits("Why the place is being cancelled", REASON_LENGTH)],
    )


class LeaveWaitlistForm(PortalForm):
    reason = TextAreaField(
        "Why are they coming off the waiting list?",
        validators=[DataRequired(message="Enter why they are coming off the waiting list"),
                    *box_limits("Why they are coming off the waiting list", REASON_LENGTH)],
    )


class StaffWaitlistForm(PortalForm):
    cohort = SelectField("Which groups", choices=[], validate_choice=False,
                         validators=[InputRequired(message="Select which groups the patient would take")])
    # Shown as "Note (optional)": a note for the audit trail, not a reason anything needs.
    reason = TextAreaField("Note (optional)", validators=[Optional(), *box_limits("Note", REASON_LENGTH)])


class ReorderForm(PortalForm):
    direction = RadioField(
        "Move this patient",
        choices=[SelectChoice("up", "Up one place"), SelectChoice("down", "Down one place")],
        validators=[InputRequired(message="Select up or down")],
    )
    reason = TextAreaField(
        "Why are you changing the order?",
        validators=[DataRequired(message="Enter why you are changing the order"),
                    *box_limits("Why you are changing the order", REASON_LENGTH)],
    )
