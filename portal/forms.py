"""Form fields shared by several features."""

from __future__ import annotations

import datetime as dt
from typing import Any

from wtforms import Field
from wtforms.validators import StopValidation


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
        self.data = data if data is not None else (self.default() if callable(self.default) else self.default)
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
        label = self.label.text
        if self.data is not None and not self.raw:
            return
        missing = [part for part in self.PARTS if not self.raw.get(part)]
        if len(missing) == 3:
            self.bad_parts = set(self.PARTS)
            raise ValueError(f"Enter {label.lower()}")
        if missing:
            self.bad_parts = set(missing)
            raise ValueError(f"{label} must include a {' and a '.join(missing)}")
        if not all(self.raw[part].isdigit() for part in self.PARTS):
            self.bad_parts = {p for p in self.PARTS if not self.raw[p].isdigit()}
            raise ValueError(f"{label} must be a real date, in numbers")
        day, month, year = (int(self.raw[part]) for part in self.PARTS)
        if len(self.raw["year"]) != 4:
            self.bad_parts = {"year"}
            raise ValueError(f"{label} must have a 4-digit year, like 1970")
        if year < 1900:
            self.bad_parts = {"year"}
            raise ValueError(f"{label} must be after 1900")
        try:
            self.data = dt.date(year, month, day)
        except ValueError:
            self.bad_parts = set(self.PARTS)
            raise ValueError(f"{label} must be a real date") from None
        if self.past_only and self.data >= dt.datetime.now(dt.UTC).date():
            self.bad_parts = set(self.PARTS)
            self.data = None
            raise ValueError(f"{label} must be in the past")

    def _value(self) -> str:
        return ""
