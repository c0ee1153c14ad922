"""Forms of the appointment pages: patients', reception's and admins'."""

from __future__ import annotations

import datetime as dt
from typing import Any

from wtforms import RadioField, SelectChoice, SelectField, StringField, TextAreaField
from wtforms.validators import InputRequired, Length, Optional, ValidationError

from portal.forms import DateParts, PortalForm, box_limits, parse_time, whole_number

WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


class ActionForm(PortalForm):
    """A button that changes something named in the URL: only its CSRF token is checked."""


class ChooseTimeForm(PortalForm):
    # The choices are the free slots the view lists; a stale or tampered id is answered by the service,
    # so the message can say what happened.
    slot = RadioField("Choose a time", choices=[], validate_choice=False,
                      validators=[InputRequired(message="Select a time")])


CANCEL_REASONS = [
    ("cannot-attend", "I cannot make this time"),
    ("better", "I am feeling better"),
    ("not-needed", "I do not need this appointment any more"),
    ("other", "Another reason"),
]


class CancelAppointmentForm(PortalForm):
    reason = RadioField(
        "Why are you cancelling?", choices=[SelectChoice(value, label) for value, label in CANCEL_REASONS],
        validators=[InputRequired(message="Select why you are cancelling your appointment")],
    )
    # No Optional(): it would stop the chain on a blank box before validate_detail could ask for it. Hidden
    # characters are refused by PortalForm, in words that name the box as labelled.
    detail = TextAreaField("Tell us more",
                           validators=[Length(max=500, message="Tell us more must be 500 characters or fewer")])

    def validate_detail(self, field: TextAreaField) -> None:
        if self.reason.data == "other" and not (field.data or "").strip():
            raise ValidationError("Tell us why you are cancelling your appointment")

    @property
    def reason_text(self) -> str:
        label = dict(CANCEL_REASONS).get(self.reason.data or "", "")
        detail = (self.detail.data or "").strip()
        return f"{label}: {detail}" if detail else label


class StaffOverrideMixin:
    """A reason box for going past a rule (the cut-off, or the per-service limit): the view makes it
    required once a rule applies, with a message that names the rule.

    Each form gets its own box, made after the form's own fields: WTForms orders fields as they were made,
    and the error summary must list problems in the order the page shows them, the override box last."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.override_reason = TextAreaField(  # type: ignore[attr-defined]
            "Reason for overriding", validators=[Optional(), *box_limits("Reason for overriding", 500)])

    @property
    def override_text(self) -> str | None:
        return (self.override_reason.data or "").strip() or None  # type: ignore[attr-defined]


class StaffBookForm(StaffOverrideMixin, ChooseTimeForm):
    pass


class StaffRescheduleForm(StaffOverrideMixin, ChooseTimeForm):
    pass


# Inside the cut-off, who asked: a patient's late cancellation is recorded as one, the service's is not.
CANCELLED_BY = [
    ("patient", "The patient"),
    ("service", "The service, for example the clinician is away"),
]


class StaffCancelForm(StaffOverrideMixin, PortalForm):
    reason = TextAreaField("Why is the appointment being cancelled?", validators=[
        InputRequired(message="Enter why the appointment is being cancelled"),
        *box_limits("Why the appointment is being cancelled", 500),
    ])
    # Asked only inside the cut-off: the view requires it then, as it does the reason for overriding.
    cancelled_by = RadioField("Who asked to cancel?", choices=[SelectChoice(value, label)
                                                               for value, label in CANCELLED_BY],
                              validators=[Optional()])

    def validate_reason(self, field: TextAreaField) -> None:
        if not (field.data or "").strip():
            raise ValidationError("Enter why the appointment is being cancelled")


class TimeField(StringField):
    """A 24-hour time typed as 09:30 (or 9.30)."""

    def __init__(self, label: str = "", validators: Any = None, **kwargs: Any) -> None:
        super().__init__(label, validators, **kwargs)
        self.time: dt.time | None = None

    def pre_validate(self, form: Any) -> None:
        self.time = parse_time(self.data, label=self.label.text, example="09:30") if self.data else None


class OptionalDateParts(DateParts):
    """A date that may be left blank (all three boxes empty)."""

    def pre_validate(self, form: Any) -> None:
        if not any((self.raw.get(part) or "").strip() for part in self.PARTS):
            self.data = None
            return
        super().pre_validate(form)


class TemplateForm(PortalForm):
    clinician = SelectField("Clinician", validators=[InputRequired("Select a clinician")], validate_choice=False)
    service_key = SelectField("Service", validators=[InputRequired("Select a service")], validate_choice=False)
    team = SelectField("Team (Tier 2 services)", validate_choice=False)
    venue = SelectField("Venue", validators=[InputRequired("Select a venue")], validate_choice=False)
    weekday = RadioField("Day of the week", choices=[SelectChoice(str(i), d) for i, d in enumerate(WEEKDAYS)],
                         validators=[InputRequired("Select a day of the week")])
    start_time = TimeField("Start time", validators=[InputRequired("Enter a start time, like 09:00")])
    end_time = TimeField("End time", validators=[InputRequired("Enter an end time, like 12:30")])
    slot_minutes = StringField("Slot length in minutes", validators=[InputRequired("Enter the slot length in minutes")])
    valid_from = DateParts("First date")
    valid_until = OptionalDateParts("Last date")

    def __init__(self, *args: Any, clinicians: list, services: list, teams: list, venues: list, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.clinician.choices = [SelectChoice("", "Select a clinician")] + [
            SelectChoice(str(c.id), c.display_name) for c in clinicians]
        self.service_key.choices = [SelectChoice("", "Select a service")] + [
            SelectChoice(s.key, f"Tier {s.tier}: {s.name}") for s in services]
        self.team.choices = [SelectChoice("", "No team (Tier 1)")] + [SelectChoice(t.key, t.name) for t in teams]
        self.venue.choices = [SelectChoice("", "Select a venue")] + [SelectChoice(str(v.id), v.name) for v in venues]
        self._services = {s.key: s for s in services}
        self._team_keys = {t.key for t in teams}

    def validate_team(self, field: SelectField) -> None:
        service = self._services.get(self.service_key.data or "")
        if service is not None and service.team_scoped and field.data not in self._team_keys:
            raise ValidationError(f"Select the team whose patients book {service.name}")
        if service is not None and not service.team_scoped and field.data:
            raise ValidationError(f"{service.name} is not booked by one team. Select ‘No team (Tier 1)’")

    def validate_end_time(self, field: TimeField) -> None:
        # Checked here as well as in the service, so it shows together with the form's other problems.
        if field.time is not None and self.start_time.time is not None and field.time <= self.start_time.time:
            raise ValidationError("End time must be after the start time")

    def validate_slot_minutes(self, field: StringField) -> None:
        whole_number(field.data, label="Slot length", example=30, low=5, high=240, unit=" minutes")

    @property
    def minutes(self) -> int:
        return int(self.slot_minutes.data.strip())


class LeaveForm(PortalForm):
    clinician = SelectField("Clinician", validators=[InputRequired("Select a clinician")], validate_choice=False)
    first_day = DateParts("First day of leave")
    last_day = DateParts("Last day of leave")
    reason = StringField("Reason (optional)", validators=[Optional(), *box_limits("Reason", 200)])

    def __init__(self, *args: Any, clinicians: list, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.clinician.choices = [SelectChoice("", "Select a clinician")] + [
            SelectChoice(str(c.id), c.display_name) for c in clinicians]


class BlockSlotForm(PortalForm):
    reason = StringField("Why is this slot blocked?", validators=[
        InputRequired("Enter why this slot is blocked"), *box_limits("Why this slot is blocked", 200),
    ])

    def validate_reason(self, field: StringField) -> None:
        if not (field.data or "").strip():
            raise ValidationError("Enter why this slot is blocked")
