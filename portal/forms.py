"""Form fields shared by several features."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from flask import request
from flask_wtf import FlaskForm
from wtforms import Field, HiddenField, PasswordField, StringField
from wtforms.utils import unset_value
from wtforms.validators import Length, StopValidation, ValidationError

from portal.dates import InvalidDate, parse_date_parts
from portal.plain_text import ascii_digits, has_control_characters, without_control_characters


class PlainText:
    """A validator refusing control characters, with a message fit to show next to the field."""

    def __init__(self, message: str = "Reason must be plain text") -> None:
        self.message = message

    def __call__(self, form: Any, field: Any) -> None:
        if has_control_characters(field.data):
            raise ValidationError(self.message)


def box_limits(words: str, length: int) -> list[Any]:
    """A typed box's length limit and plain-text check, each message naming the box in ``words`` that match
    the label the page shows: "Tell us more", or for a question ("Why is the place being cancelled?") the
    question turned round ("Why the place is being cancelled"), as its "Enter why ..." message does."""
    return [Length(max=length, message=f"{words} must be {length} characters or fewer"),
            PlainText(f"{words} must not include hidden characters")]


class PortalForm(FlaskForm):
    """Every form of the portal, for two rules of every text box (a password's aside):

    - what is typed is tidied before any check: spaces at either end dropped, and a textarea's CRLF line breaks
      made one character each, so a length limit counts what is kept;
    - it must be plain text (portal.plain_text), checked after the fields' own checks. A hidden field is left
      to the view that reads it.

    A saved value put in a form to edit (``obj=``, ``data=`` or ``show``) is shown without the characters plain text
    refuses: a record saved before a character was refused can then be saved again as shown, rather than
    failing on an error about characters nobody can see.
    """

    class Meta:
        def wrap_formdata(self, form: Any, formdata: Any) -> Any:
            # A posted form is read from its fields alone. Flask-WTF would also take a file part or a JSON body in a
            # field's place, handing a file or a list to checks made for text; no form of the portal takes either.
            chosen = super().wrap_formdata(form, formdata)
            return chosen if chosen is None or chosen is formdata else request.form

        def bind_field(self, form: Any, unbound_field: Any, options: dict[str, Any]) -> Any:
            field_class = unbound_field.field_class
            if issubclass(field_class, StringField) and not issubclass(field_class, PasswordField):
                options["filters"] = [tidy_text, *unbound_field.kwargs.get("filters", ())]
            return unbound_field.bind(form=form, **options)

    def process(self, formdata: Any = None, obj: Any = None, data: Any = None, extra_filters: Any = None,
                **kwargs: Any) -> None:
        super().process(formdata, obj, data, extra_filters, **kwargs)
        for field in self:
            if not field.raw_data:
                _show_plain(field)

    def show(self, **values: Any) -> None:
        """Put saved values in the form's fields, to be edited."""
        for name, value in values.items():
            self[name].data = value
            _show_plain(self[name])

    def validate(self, extra_validators: Any = None) -> bool:
        valid = super().validate(extra_validators)
        for field in self:
            field.errors = [_in_our_words(field, error) for error in field.errors]
            if (isinstance(field, StringField) and not isinstance(field, PasswordField | HiddenField)
                    and not field.errors and has_control_characters(field.data)):
                field.errors = [f"{_plain_label(field.label.text)} must not include hidden characters"]
                valid = False
        return valid


def _show_plain(field: Field) -> None:
    if (isinstance(field, StringField) and not isinstance(field, PasswordField | HiddenField)
            and isinstance(field.data, str)):
        field.data = without_control_characters(field.data)


_TOO_LONG = re.compile(r"Field cannot be longer than (\d+) characters\.")


def _in_our_words(field: Field, error: str) -> str:
    """WTForms' own messages, where a field gives none of its own, in the portal's (NHS.UK) style."""
    if not isinstance(error, str):
        return error
    if too_long := _TOO_LONG.fullmatch(error):
        return f"{_plain_label(field.label.text)} must be {too_long.group(1)} characters or fewer"
    if error in ("Not a valid choice.", "Not a valid choice"):
        return "Select one of the options shown"
    if error == "This field is required.":
        return "Select one of the options shown" if hasattr(field, "choices") else \
            f"Enter {_plain_label(field.label.text).lower()}"
    return error


def tidy_text(value: Any) -> Any:
    return value.replace("\r\n", "\n").strip() if isinstance(value, str) else value


def _plain_label(text: str) -> str:
    """A field's label fit to start a sentence: "Pacing note (optional)" gives "Pacing note"."""
    return text.replace("(optional)", "").strip().rstrip("?:").strip() or "Your answer"


class DateParts(Field):
    """A date typed as day, month and year boxes (the NHS.UK date input), named ``name[day]`` etc."""

    PARTS = ("day", "month", "year")

    def __init__(self, label: str = "", validators: Any = None, *, past_only: bool = False, **kwargs: Any):
        super().__init__(label, validators, **kwargs)
        self.past_only = past_only
        self.raw: dict[str, str] = {}
        self.bad_parts: set[str] = set()

    def process_formdata(self, valuelist: list[str]) -> None:
        # Values arrive under name[day], name[month], name[year]: see process().
        pass

    def process(self, formdata: Any, data: Any = None, extra_filters: Any = None) -> None:
        self.process_errors = []
        # WTForms passes its unset_value marker when the form has no object data: that is "no date", not a date.
        if data is None or data is unset_value:
            data = self.default() if callable(self.default) else self.default
        self.data = None if data is unset_value else data
        if isinstance(self.data, dt.date):
            self.raw = {"day": str(self.data.day), "month": str(self.data.month), "year": str(self.data.year)}
        if formdata is not None and any(f"{self.name}[{part}]" in formdata for part in self.PARTS):
            self.raw = {part: (formdata.get(f"{self.name}[{part}]") or "").strip()[:10] for part in self.PARTS}
            self.data = None

    def pre_validate(self, form: Any) -> None:
        try:
            self._check()
        except ValueError as problem:
            raise StopValidation(str(problem)) from None

    def _check(self) -> None:
        if self.data is not None and not self.raw:
            return
        try:
            self.data = parse_date_parts(self.raw, label=self.label.text, past_only=self.past_only)
        except InvalidDate as problem:
            self.bad_parts = set(problem.bad_parts)
            self.data = None
            raise ValueError(str(problem)) from None

    def _value(self) -> str:
        return ""


_TIME = re.compile(r"^([01]?[0-9]|2[0-3])[:.]([0-5][0-9])$")


def parse_time(value: str | None, *, label: str, example: str = "18:00") -> dt.time:
    """'18:00', '9:30' or '18.00' (digits of any script) as a time; ValidationError with an NHS.UK-style message
    otherwise. ``example`` is the time the message shows, one that fits the field."""
    typed = ascii_digits((value or "").strip())
    if not typed:
        raise ValidationError(f"Enter {label.lower()}")
    match = _TIME.match(typed)
    if match is None:
        raise ValidationError(f"{label} must be a time in 24-hour format, like {example}")
    return dt.time(int(match.group(1)), int(match.group(2)))


def whole_number(value: str | None, *, label: str, example: int, low: int, high: int, unit: str = "") -> int:
    """A whole number typed into a box, between ``low`` and ``high``; ValidationError with an NHS.UK-style message
    otherwise. ``unit`` follows the range in the message (" minutes")."""
    typed = ascii_digits((value or "").strip())
    if not typed:
        raise ValidationError(f"Enter {label.lower()}, like {example}")
    digits = typed.removeprefix("-")
    if not (digits.isascii() and digits.isdigit()):
        raise ValidationError(f"{label} must be a whole number, like {example}")
    # A negative or very long number is a whole number all the same: what is wrong is its size.
    if typed.startswith("-") or len(digits) > 6 or not low <= int(digits) <= high:
        raise ValidationError(f"{label} must be between {low} and {high}{unit}")
    return int(digits)
