from __future__ import annotations

from wtforms import HiddenField, RadioField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, ValidationError

from portal.forms import PortalForm


class BookSeatForm(PortalForm):
    """No fields: the cohort is in the URL; the form carries the CSRF token."""


class ActionForm(PortalForm):
    """A button that changes something named in the URL (leave a waiting list, decline an offer)."""


WITHDRAW_REASONS = {
    "dates": "I cannot make the dates",
    "better": "I am feeling better",
    "not-now": "The course is not right for me at the moment",
    "other": "Another reason",
}


class WithdrawForm(PortalForm):
    reason = RadioField(
        "Why are you cancelling?", choices=[SelectChoice(k, v) for k, v in WITHDRAW_REASONS.items()],
        validators=[InputRequired(message="Select why you are cancelling your place")],
    )
    detail = TextAreaField(
        # No Optional(): it would stop the chain before validate_detail checks "another reason" has words.
        "Tell us more", validators=[Length(max=500, message="Tell us more must be 500 characters or fewer")]
    )

    def validate_detail(self, field) -> None:
        if self.reason.data == "other" and not (field.data or "").strip():
            raise ValidationError("Tell us why you are cancelling your place")

    @property
    def reason_text(self) -> str:
        label = WITHDRAW_REASONS.get(self.reason.data or "", "")
        detail = (self.detail.data or "").strip()
        return f"{label}: {detail}" if detail else label


class MoveSeatForm(PortalForm):
    # Choices are the cohorts open to this patient, set by the view; a stale or tampered id is
    # answered by the service, so the message can say what happened.
    cohort = RadioField("Which group do you want to move to?", choices=[], validate_choice=False,
                        validators=[InputRequired(message="Select the group you want to move to")])


class JoinWaitlistForm(PortalForm):
    which = RadioField(
        "Which groups would you take a place in?",
        choices=[SelectChoice("this", "Only this group"), SelectChoice("any", "Any group of this course")],
        validators=[InputRequired(message="Select which groups you would take a place in")],
    )


class OfferForm(PortalForm):
    decision = RadioField(
        "Do you want this place?",
        choices=[SelectChoice("accept", "Yes, book me on this group"),
                 SelectChoice("decline", "No, offer it to someone else")],
        validators=[InputRequired(message="Select yes to book the place, or no to offer it to someone else")],
    )
    # The cohort whose seat the page offered (the view reads it): an answer is to that offer only.
    cohort = HiddenField()
