"""Forms of the reception desk: patient search, the day and week view, moving a cancelled session's patients,
and the invitations queue."""

from __future__ import annotations

import datetime as dt

from wtforms import RadioField, SelectField, StringField, TextAreaField, ValidationError
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length

from portal.forms import PortalForm
from portal.plain_text import CONTROL_CHARACTERS, number_id

REASON_LENGTH = 500
# PostgreSQL refuses NUL in text, and no control character belongs in a reason staff type.


class PatientSearchForm(PortalForm):
    """A GET form: it changes nothing, so it carries no CSRF token and its address can be bookmarked."""

    class Meta:
        csrf = False

    q = StringField("Search for a patient")


class ScheduleForm(PortalForm):
    """Which venue, which service, and which day or week: read from the query string."""

    class Meta:
        csrf = False

    venue = SelectField("Venue", choices=[], validate_choice=False)
    service = SelectField("Service", choices=[], validate_choice=False)
    week = StringField("Week or day")
    view = SelectField("Show", choices=[SelectChoice("week", "The whole week"), SelectChoice("day", "One day")],
                       validate_choice=False)

    def set_choices(self, venues, services) -> None:
        self.venue.choices = [SelectChoice("", "All venues")] + [SelectChoice(str(v.id), v.name) for v in venues]
        self.service.choices = [SelectChoice("", "All services")] + [SelectChoice(s.key, s.name) for s in services]

    def chosen_venue(self, venue_ids: set[int]) -> int | None:
        value = (self.venue.data or "").strip()
        if not value:
            return None
        if number_id(value) not in venue_ids:
            self.venue.errors = ["Select a venue from the list"]
            return None
        return int(value)

    def chosen_service(self, service_keys: set[str]) -> str | None:
        value = (self.service.data or "").strip()
        if not value:
            return None
        if value not in service_keys:
            self.service.errors = ["Select a service from the list"]
            return None
        return value

    def chosen_day(self, today: dt.date) -> dt.date:
        value = (self.week.data or "").strip()
        if not value:
            return today
        try:
            day = dt.date.fromisoformat(value) if len(value) == 10 else None
        except ValueError:
            day = None
        if day is None or not dt.date(2000, 1, 1) <= day <= dt.date(2100, 12, 31):
            self.week.errors = ["Enter a date like 2026-03-30"]
            return today
        return day

    @property
    def by_day(self) -> bool:
        return self.view.data == "day"


class BulkMoveForm(PortalForm):
    """Move the patients of a cancelled session's cohort to another cohort of the course."""

    cohort = RadioField("Move them to", choices=[], validate_choice=False,
                        validators=[InputRequired(message="Select the group to move the patients to")])
    reason = TextAreaField(
        "Why are they moving?",
        validators=[Length(max=REASON_LENGTH, message=f"Reason must be {REASON_LENGTH} characters or fewer")],
    )

    def validate_reason(self, field) -> None:
        if not (field.data or "").strip():
            raise ValidationError("Enter why the patients are moving")
        if CONTROL_CHARACTERS.search(field.data):
            raise ValidationError("Reason must be plain text")


class InvitationQueueForm(PortalForm):
    class Meta:
        csrf = False

    days = StringField("Sent more than this many days ago")

    def chosen_days(self, default: int) -> int:
        value = (self.days.data or "").strip()
        if not value:
            return default
        if not (value.isascii() and value.isdigit() and len(value) <= 3) or not 0 <= int(value) <= 365:
            self.days.errors = ["Enter a number of days from 0 to 365"]
            return default
        return int(value)
