"""Form fields shared by several features."""

from __future__ import annotations

import datetime as dt
from typing import Any

from wtforms import Field
from wtforms.utils import unset_value
from wtforms.validators import StopValidation, ValidationError

from portal.dates import InvalidDate, parse_date_parts
from portal.plain_text import has_control_characters


class PlainText:
    """A validator refusing control characters, with a message fit to show next to the field."""

    def __init__(self, message: str = "Reason must be plain text") -> None:
        self.message = message

    def __call__(self, form: Any, field: Any) -> None:
        if has_control_characters(field.data):
            raise ValidationError(self.message)


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


def whole_number(value: str | None, *, label: str, example: int, low: int, high: int, unit: str = "") -> int:
    """A whole number typed into a box, between ``low`` and ``high``; ValidationError with an NHS.UK-style message
    otherwise. ``unit`` follows the range in the message (" minutes")."""
    typed = (value or "").strip()
    if not typed:
        raise ValidationError(f"Enter {label.lower()}, like {example}")
    digits = typed.removeprefix("-")
    if not (digits.isascii() and digits.isdigit()):
        raise ValidationError(f"{label} must be a whole number, like {example}")
    # A negative or very long number is a whole number all the same: what is wrong is its size.
    if typed.startswith("-") or len(digits) > 6 or not low <= int(digits) <= high:
        raise ValidationError(f"{label} must be between {low} and {high}{unit}")
    return int(digits)
