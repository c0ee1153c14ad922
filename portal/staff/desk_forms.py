"""Forms of the reception desk: patient search, the day and week view, moving a cancelled session's patients,
and the invitations queue."""

from __future__ import annotations

import datetime as dt

from wtforms import RadioField, SelectField, StringField, TextAreaField, ValidationError
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired

from portal.dates import InvalidDate, parse_date_parts
from portal.forms import DateParts, PortalForm, box_limits
from portal.plain_text import number_id

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
    # Typed by staff as day, month and year boxes (the NHS.UK date input); the page's own links carry the day as
    # ``week=2026-03-30`` instead, so they stay short. Both land on ``date``, the one field the page shows.
    date = DateParts("Day or week")
    week = StringField("Week or day")
    view = SelectField("Show", choices=[SelectChoice("week", "The whole week"), SelectChoice("day", "One day")],
                       validate_choice=False)

    FIRST_DAY, LAST_DAY = dt.date(2000, 1, 1), dt.date(2100, 12, 31)

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
        """The day typed in the boxes, else the day a link carried, else today. A refused day shows today, with
        the message next to the boxes; the boxes then keep what was typed."""
        try:
            day = self._typed_day() or self._linked_day() or today
        except InvalidDate as problem:
            self.date.errors, self.date.bad_parts = [str(problem)], set(problem.bad_parts)
            return today
        self.date.raw = {"day": str(day.day), "month": str(day.month), "year": str(day.year)}
        return day

    def _typed_day(self) -> dt.date | None:
        if not any(self.date.raw.values()):
            return None
        day = parse_date_parts(self.date.raw, label="The day")
        if not self.FIRST_DAY <= day <= self.LAST_DAY:
            raise InvalidDate(f"The day must be between {self.FIRST_DAY.year} and {self.LAST_DAY.year}", {"year"})
        return day

    def _linked_day(self) -> dt.date | None:
        value = (self.week.data or "").strip()
        if not value:
            return None
        try:
            day = dt.date.fromisoformat(value) if len(value) == 10 else None
        except ValueError:
            day = None
        if day is None or not self.FIRST_DAY <= day <= self.LAST_DAY:
            raise InvalidDate("The day in the page's address is not a real date: enter the day in the boxes",
                              {"day", "month", "year"})
        return day

    @property
    def by_day(self) -> bool:
        return self.view.data == "day"


class BulkMoveForm(PortalForm):
    """Move the patients of a cancelled session's cohort to another cohort of the course."""

    cohort = RadioField("Move them to", choices=[], validate_choice=False,
                        validators=[InputRequired(message="Select the group to move the patients to")])
    reason = TextAreaField("Why are they moving?", validators=box_limits("Why they are moving", REASON_LENGTH))

    def validate_reason(self, field) -> None:
        if not (field.data or "").strip():
            raise ValidationError("Enter why the patients are moving")


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
