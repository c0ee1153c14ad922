"""Forms of the diary, goals and flare-up plan pages. Every message is fit to show next to its field."""

from __future__ import annotations

import datetime as dt
from typing import Any

from wtforms import HiddenField, RadioField, SelectChoice, SelectField, StringField, TextAreaField
from wtforms.validators import StopValidation, ValidationError

from portal.diary.models import (
    ACTIVITY_SCALE,
    CHECK_IN_NOTE_MAX,
    CHECK_IN_WORDS,
    GOAL_TEXT_MAX,
    GOAL_WHY_MAX,
    MOOD_SCALE,
    NOTE_MAX,
    PLAN_SECTION_MAX,
    PLAN_SECTIONS,
    SLEEP_SCALE,
)
from portal.forms import DateParts, PortalForm
from portal.plain_text import CONTROL_CHARACTERS

# PostgreSQL refuses NUL in text, and no control character belongs in something a person types
# (tabs and line breaks are fine).
# The printed plan fits one sheet of A4 when each part takes at most this many printed lines, counting a line
# of typing as one printed line for every PLAN_PRINT_LINE characters (an average line of the print view).
PLAN_SECTION_LINES = 9
PLAN_PRINT_LINE = 70
# How far ahead a goal's date may be: a goal for years away is not a goal for this course.
GOAL_HORIZON_DAYS = 2 * 365


def _required(message: str):
    def check(form: Any, field: Any) -> None:
        if not (field.data or "").strip():
            raise StopValidation(message)

    return check


def _at_most(limit: int, name: str):
    def check(form: Any, field: Any) -> None:
        if len(field.data or "") > limit:
            raise StopValidation(f"{name} must be {limit} characters or fewer")
        if CONTROL_CHARACTERS.search(field.data or ""):
            raise StopValidation(f"{name} must be plain text, without special characters")

    return check


def _one_of(message: str, values: tuple[str, ...] | None = None):
    """The submitted value is one of ``values`` (by default, the field's choices)."""

    def check(form: Any, field: Any) -> None:
        allowed = values if values is not None else {str(choice.value) for choice in field.choices}
        if field.data not in allowed:
            raise StopValidation(message)

    return check


def _scale(label: str, words: tuple[str, ...] | None, message: str, *, lowest: int = 1) -> RadioField:
    if words is None:
        choices = [SelectChoice(str(n), str(n)) for n in range(lowest, 11)]
    else:
        choices = [SelectChoice(str(n), word) for n, word in enumerate(words, start=lowest)]
    # validate_choice=False: a missing or tampered value gets our message, not WTForms' "Not a valid choice".
    return RadioField(label, choices=choices, validate_choice=False, validators=[_required(message), _one_of(message)])


class DiaryEntryForm(PortalForm):
    # The choices (today and the days before it that may be filled in) are set by the view.
    day = SelectField("Which day is this for?", choices=[], validate_choice=False,
                      validators=[_required("Select the day this is for"),
                                  _one_of("Select today or one of the 7 days before it")])
    pain = _scale("How bad was your pain?", None, "Select how bad your pain was, from 0 to 10", lowest=0)
    sleep = _scale("How did you sleep?", SLEEP_SCALE, "Select how you slept")
    mood = _scale("How was your mood?", MOOD_SCALE, "Select how your mood was")
    activity = _scale("How active were you?", ACTIVITY_SCALE, "Select how active you were")
    note = TextAreaField("Pacing note (optional)", validators=[_at_most(NOTE_MAX, "Pacing note")])
    # The day whose entry the form was showing when it was loaded. Only that day's entry may be replaced: choosing
    # another day that is already filled in must not overwrite it with answers the patient gave for this one.
    shown_day = HiddenField()

    def set_days(self, days: list[dt.date], labels: list[str]) -> None:
        self.day.choices = [SelectChoice(day.isoformat(), label) for day, label in zip(days, labels, strict=True)]

    def validate(self, extra_validators: Any = None) -> bool:
        valid = super().validate(extra_validators)
        # Empty (a form from before the field existed) means no day was shown, so nothing is replaced. Anything
        # else must be one of the fillable days written as YYYY-MM-DD, the only way the page writes it; the
        # message goes next to the day, as the hidden field has no place on the page.
        if self.shown_day.data and self.loaded_for is None and not self.day.errors:
            self.day.errors.append("This page was out of date. Check which day this is for and save again")
            return False
        return valid

    @property
    def chosen_day(self) -> dt.date:
        return dt.date.fromisoformat(self.day.data)

    @property
    def loaded_for(self) -> dt.date | None:
        """The day the form was showing, if it is one of the fillable days (None for a form that showed no day)."""
        shown = self.shown_day.data
        return dt.date.fromisoformat(shown) if shown in {choice.value for choice in self.day.choices} else None

    def score(self, name: str) -> int:
        return int(getattr(self, name).data)


class GoalForm(PortalForm):
    what = StringField("What do you want to do?",
                       validators=[_required("Enter what you want to do"), _at_most(GOAL_TEXT_MAX, "Your goal")])
    how_much = StringField("How much, or how often?",
                           validators=[_required("Enter how much or how often"),
                                       _at_most(GOAL_TEXT_MAX, "How much or how often")])
    target_date = DateParts("The date")
    why = TextAreaField("Why does it matter to you?",
                        validators=[_required("Enter why this goal matters to you"),
                                    _at_most(GOAL_WHY_MAX, "Why it matters")])
    confidence = _scale("How confident are you that you can do it?", None,
                        "Select how confident you are, from 0 to 10", lowest=0)

    def __init__(self, *args: Any, today: dt.date, keep_date: dt.date | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.today = today
        # Editing a goal whose date has passed: keeping that date is allowed, choosing another past one is not.
        self.keep_date = keep_date

    def validate_target_date(self, field: DateParts) -> None:
        if field.data is None or field.data == self.keep_date:
            return
        if field.data < self.today:
            field.bad_parts = {"day", "month", "year"}
            raise ValidationError("The date must be today or in the future")
        if field.data > self.today + dt.timedelta(days=GOAL_HORIZON_DAYS):
            field.bad_parts = {"year"}
            raise ValidationError("The date must be within the next 2 years. Choose a nearer step towards it")


class CheckInForm(PortalForm):
    outcome = RadioField("How did it go this week?",
                         choices=[SelectChoice(k, v) for k, v in CHECK_IN_WORDS.items()], validate_choice=False,
                         validators=[_required("Select how it went this week"),
                                     _one_of("Select how it went this week")])
    note = TextAreaField("Anything you want to remember? (optional)",
                         validators=[_at_most(CHECK_IN_NOTE_MAX, "Your note")])


class GoalStatusForm(PortalForm):
    """The buttons that finish a goal (achieved, stopped) or start it again (active)."""

    status = HiddenField(validators=[_one_of("Choose what to do with the goal", ("achieved", "stopped", "active"))])


PLAN_LABELS = {
    "what_helps": "What helps me in a flare-up",
    "what_to_reduce": "What I will cut down on or put off",
    "who_to_tell": "Who I will tell, and what I will ask them",
    "when_to_seek_help": "When I will get help",
}


def printed_lines(text: str) -> int:
    """About how many lines ``text`` takes on the printed plan."""
    if not text:
        return 0
    return sum(max(1, -(-len(line) // PLAN_PRINT_LINE)) for line in text.split("\n"))


def _plan_section(name: str) -> TextAreaField:
    label = PLAN_LABELS[name]

    def lines(form: Any, field: Any) -> None:
        if printed_lines(field.data or "") > PLAN_SECTION_LINES:
            raise StopValidation(f"{label} is too long to fit on one printed page. Use fewer or shorter lines")

    # Each message names its part: the error summary lists them all, and "This part" four times says nothing.
    return TextAreaField(label, validators=[_at_most(PLAN_SECTION_MAX, label), lines])


class FlarePlanForm(PortalForm):
    what_helps = _plan_section("what_helps")
    what_to_reduce = _plan_section("what_to_reduce")
    who_to_tell = _plan_section("who_to_tell")
    when_to_seek_help = _plan_section("when_to_seek_help")

    def validate(self, extra_validators: Any = None) -> bool:
        valid = super().validate(extra_validators)
        if valid and not any((getattr(self, name).data or "").strip() for name in PLAN_SECTIONS):
            self.what_helps.errors.append("Fill in at least one part of your plan")
            return False
        return valid

    @property
    def sections(self) -> dict[str, str]:
        return {name: getattr(self, name).data or "" for name in PLAN_SECTIONS}


class DeletePlanForm(PortalForm):
    """The button that deletes the patient's flare-up plan: its CSRF token alone."""
