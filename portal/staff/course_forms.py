"""Forms of the course pages: create a cohort, change its places or cancel it, move or cancel one session, filter
the list of cohorts.

Numbers and times are typed into text boxes and parsed here, so every problem gets a message in the
NHS.UK style next to its field (WTForms' own IntegerField would say "Not a valid integer value").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from wtforms import SelectField, SelectMultipleField, StringField, TextAreaField, ValidationError
from wtforms.fields.choices import SelectChoice

from portal.auth.models import User
from portal.booking.models import Venue
from portal.booking.schedule import MIDNIGHT_RULE, ends_by_midnight
from portal.booking.sessions import (
    COHORT_STATUSES,
    NonexistentLocalTime,
    clocks_change_during,
    wall_clock_to_utc,
)
from portal.dates import london_today, written_date
from portal.forms import DateParts, PortalForm, box_limits, parse_time, whole_number
from portal.settings import DomainConfig

SESSION_MINUTES = (30, 240)
CAPACITY = (1, 40)
# How far ahead a cohort may start: further is almost certainly a typing slip in the year.
LONGEST_LEAD = dt.timedelta(days=2 * 366)
REASON_LENGTH = 500


def _require_date(field: DateParts) -> None:
    """DateParts lets a form with none of the date's boxes through holding WTForms' unset value: refuse it."""
    if not isinstance(field.data, dt.date):
        field.data = None
        field.bad_parts = {"day", "month", "year"}
        raise ValidationError(f"Enter {field.label.text.lower()}")


def _places(field: StringField) -> int:
    """The number of places typed, within the bounds every cohort keeps (a new one, or one whose places change)."""
    return whole_number(field.data, label="Number of places", example=12, low=CAPACITY[0], high=CAPACITY[1])


class _FacilitatorChoice:
    """The facilitators field: checkboxes of the active facilitator accounts (``sessions.facilitators``). Each
    form declares the field itself, where it comes in the form's order."""

    facilitators: SelectMultipleField

    def _offer_facilitators(self, facilitators: Sequence[User]) -> None:
        self._facilitators = {str(u.id): u for u in facilitators}
        self.facilitators.choices = [SelectChoice(key, u.display_name) for key, u in self._facilitators.items()]

    def validate_facilitators(self, field: SelectMultipleField) -> None:
        chosen = field.data or []
        if any(key not in self._facilitators for key in chosen):
            raise ValidationError("Select facilitators from the list")

    @property
    def chosen_facilitators(self) -> list[User]:
        return [self._facilitators[key] for key in (self.facilitators.data or []) if key in self._facilitators]


class FacilitatorsForm(_FacilitatorChoice, PortalForm):
    facilitators = SelectMultipleField("Facilitators", validate_choice=False)

    def __init__(self, *args: Any, facilitators: Sequence[User], current: Sequence[User], **kwargs: Any):
        """``current``: who runs the cohort now. Anyone of them who is no longer an active facilitator is offered
        too, ticked, so that saving never drops them unseen."""
        super().__init__(*args, **kwargs)
        offered = {user.id for user in facilitators}
        self._offer_facilitators([*facilitators, *(user for user in current if user.id not in offered)])
        for choice, user in zip(self.facilitators.choices, self._facilitators.values(), strict=True):
            if user.id not in offered:
                choice.label = f"{user.display_name} (no longer an active facilitator)"


class CreateCohortForm(_FacilitatorChoice, PortalForm):
    service = SelectField("Course", validate_choice=False)
    team = SelectField("Team", validate_choice=False)
    venue = SelectField("Venue", validate_choice=False)
    online_link = StringField("Joining link for the video call")
    first_date = DateParts("Date of the first session")
    start_time = StringField("Start time")
    session_minutes = StringField("Length of each session in minutes")
    capacity = StringField("Number of places")
    facilitators = SelectMultipleField("Facilitators", validate_choice=False)

    def __init__(
        self,
        *args: Any,
        domain: DomainConfig,
        venues: Sequence[Venue],
        facilitators: Sequence[User],
        now: dt.datetime,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        self._domain = domain
        self._now = now
        self._courses = {s.key: s for s in domain.catalogue.services if s.kind == "course"}
        self._venues = {str(v.id): v for v in venues}
        self._offer_facilitators(facilitators)
        self.service.choices = [SelectChoice("", "Select a course")] + [
            SelectChoice(s.key, f"{s.name} (Tier {s.tier})") for s in self._courses.values()
        ]
        self.team.choices = [SelectChoice("", "No team (Tier 1)")] + [
            SelectChoice(t.key, t.name) for t in domain.teams.teams
        ]
        self.venue.choices = [SelectChoice("", "Select a venue")] + [
            SelectChoice(key, _venue_label(v)) for key, v in self._venues.items()
        ]
        # Parsed values, set as each field validates.
        self.chosen_venue: Venue | None = None
        self.time: dt.time | None = None
        self.minutes: int | None = None
        self.places: int | None = None

    def validate_service(self, field: SelectField) -> None:
        if field.data not in self._courses:
            raise ValidationError("Select a course")

    def validate_team(self, field: SelectField) -> None:
        service = self._courses.get(self.service.data or "")
        if service is None or not service.team_scoped:
            # Only team-scoped courses (the Tier 2 programme) belong to a team.
            if field.data and service is not None:
                raise ValidationError(f"The {service.name} is not run by one team. Select ‘No team (Tier 1)’")
            field.data = None
            return
        if not field.data:
            raise ValidationError(f"Select the team that runs the {service.name}")
        if self._domain.teams.get(field.data) is None:
            raise ValidationError("Select a team from the list")

    def validate_venue(self, field: SelectField) -> None:
        self.chosen_venue = self._venues.get(field.data or "")
        if self.chosen_venue is None:
            raise ValidationError("Select a venue")

    def validate_online_link(self, field: StringField) -> None:
        link = (field.data or "").strip()
        field.data = link or None
        venue = self.chosen_venue
        if venue is None:
            if link:
                self._check_link(link)
            return
        if not venue.is_online:
            if link:
                raise ValidationError(
                    "Only an online venue has a joining link. Delete the link or choose an online venue"
                )
            return
        if not link:
            raise ValidationError("Enter the joining link for the video call")
        self._check_link(link)

    @staticmethod
    def _check_link(link: str) -> None:
        if len(link) > 300:
            raise ValidationError("Joining link must be 300 characters or fewer")
        try:
            parts = urlsplit(link) if link.isascii() else None
            host = parts.hostname if parts else None
        except ValueError:  # a malformed address, like an unclosed [ of an IPv6 host
            parts = host = None
        if (
            parts is None
            or parts.scheme != "https"
            or not host
            or "." not in host
            or any(ord(ch) < 0x21 or ch in "\x7f<>\"'`" for ch in link)
        ):
            raise ValidationError("Enter a joining link that starts with https://, like https://meet.nhs.net/abc")

    def validate_first_date(self, field: DateParts) -> None:
        _require_date(field)

    def validate_start_time(self, field: StringField) -> None:
        self.time = parse_time(field.data, label="Start time")

    def validate_session_minutes(self, field: StringField) -> None:
        self.minutes = whole_number(field.data, label="Session length", example=120, low=SESSION_MINUTES[0],
                                     high=SESSION_MINUTES[1], unit=" minutes")

    def validate_capacity(self, field: StringField) -> None:
        self.places = _places(field)

    def validate(self, extra_validators: Any = None) -> bool:
        valid = super().validate(extra_validators)
        # The first date against today and the start time: checked once both have parsed.
        first = self.first_date.data
        if first is None or self.first_date.errors:
            return False
        today = london_today(self._now)
        if first < today:
            self.first_date.errors = ["Date of the first session must be today or in the future"]
            self.first_date.bad_parts = {"day", "month", "year"}
            return False
        if first > today + LONGEST_LEAD:
            self.first_date.errors = ["Date of the first session must be within the next 2 years"]
            self.first_date.bad_parts = {"year"}
            return False
        service = self._courses.get(self.service.data or "")
        if self.time is None or service is None:
            return False
        if self.minutes is not None and not ends_by_midnight(self.time, self.minutes):
            self.session_minutes.errors = [f"{MIDNIGHT_RULE}. Enter a shorter length or an earlier start time"]
            return False
        timezone = self._domain.policy.service.timezone
        for week in range(service.weeks or 1):
            day = first + dt.timedelta(weeks=week)
            try:
                start = wall_clock_to_utc(day, self.time, timezone)
            except NonexistentLocalTime:
                self.start_time.errors = [
                    f"The clocks go forward at this time on {written_date(day)}. Enter another start time"
                ]
                return False
            if self.minutes is not None and clocks_change_during(start, dt.timedelta(minutes=self.minutes), timezone):
                self.start_time.errors = [
                    f"The clocks change during this session on {written_date(day)}. Enter another start time"
                ]
                return False
            if week == 0 and start <= self._now:
                self.start_time.errors = ["The first session must start later than now"]
                return False
        return valid


class _ReasonMixin:
    reason: TextAreaField

    def validate_reason(self, field: TextAreaField) -> None:
        field.data = (field.data or "").strip()
        if not field.data:
            raise ValidationError(self.REASON_MISSING)  # type: ignore[attr-defined]


class MoveSessionForm(_ReasonMixin, PortalForm):
    REASON_MISSING = "Enter why the session is moving"

    date = DateParts("New date")
    time = StringField("New start time")
    # PostgreSQL refuses NUL in text; no control character belongs in a reason staff type.
    reason = TextAreaField("Why is the session moving?",
                           validators=box_limits("Why the session is moving", REASON_LENGTH))

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.new_time: dt.time | None = None

    def validate_date(self, field: DateParts) -> None:
        _require_date(field)

    def validate_time(self, field: StringField) -> None:
        self.new_time = parse_time(field.data, label="New start time")


class CancelSessionForm(_ReasonMixin, PortalForm):
    REASON_MISSING = "Enter why the session is cancelled"

    reason = TextAreaField("Why is the session cancelled?",
                           validators=box_limits("Why the session is cancelled", REASON_LENGTH))


class CapacityForm(PortalForm):
    capacity = StringField("Number of places")

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.places: int | None = None

    def validate_capacity(self, field: StringField) -> None:
        self.places = _places(field)


class CancelCohortForm(_ReasonMixin, PortalForm):
    REASON_MISSING = "Enter why the cohort is cancelled"

    reason = TextAreaField("Why is the cohort cancelled?",
                           validators=box_limits("Why the cohort is cancelled", REASON_LENGTH))


STATUS_LABELS = {"open": "Open", "closed": "Closed", "cancelled": "Cancelled"}


class CohortFilterForm(PortalForm):
    """The filters of the list of cohorts: a GET form that changes nothing, so it has no CSRF token."""

    class Meta:
        csrf = False

    service = SelectField("Course", validate_choice=False)
    status = SelectField("Status", validate_choice=False)

    def __init__(self, *args: Any, domain: DomainConfig, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._courses = {s.key for s in domain.catalogue.services if s.kind == "course"}
        self.service.choices = [SelectChoice("", "All courses")] + [
            SelectChoice(s.key, f"{s.name} (Tier {s.tier})")
            for s in domain.catalogue.services if s.kind == "course"
        ]
        self.status.choices = [SelectChoice("", "Any status")] + [
            SelectChoice(key, STATUS_LABELS[key]) for key in COHORT_STATUSES
        ]

    def validate_service(self, field: SelectField) -> None:
        if field.data and field.data not in self._courses:
            raise ValidationError("Select a course from the list")

    def validate_status(self, field: SelectField) -> None:
        if field.data and field.data not in COHORT_STATUSES:
            raise ValidationError("Select a status from the list")


def _venue_label(venue: Venue) -> str:
    """A venue as the list names it: an online one says so, unless its name already does."""
    return f"{venue.name} (online)" if venue.is_online and "online" not in venue.name.lower() else venue.name
