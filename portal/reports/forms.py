"""The reports' filters: a GET form (bookmarkable, nothing changes), so it carries no CSRF token."""

from __future__ import annotations

import datetime as dt

from wtforms import Form, SelectField

from portal.reports.services import MAX_MONTHS, Filters, add_months, default_filters, month_label
from portal.settings import DomainConfig

# How far back and ahead the month lists reach (the synthetic data and the real service span 18 months).
MONTHS_BACK = 47
MONTHS_AHEAD = 12


def month_value(month: dt.date) -> str:
    return month.strftime("%Y-%m")


class ReportFilterForm(Form):
    first_month = SelectField("From", validate_choice=False)
    last_month = SelectField("To", validate_choice=False)
    team = SelectField("Team", validate_choice=False)
    service = SelectField("Service", validate_choice=False)

    def __init__(self, formdata, *, domain: DomainConfig, today: dt.date) -> None:
        defaults = default_filters(today)
        super().__init__(formdata, first_month=month_value(defaults.first_month),
                         last_month=month_value(defaults.last_month), team="", service="")
        this_month = today.replace(day=1)
        months = [add_months(this_month, -n) for n in range(-MONTHS_AHEAD, MONTHS_BACK + 1)]
        month_choices = [(month_value(m), month_label(m)) for m in sorted(months)]
        self.first_month.choices = month_choices
        self.last_month.choices = month_choices
        self.team.choices = [("", "All teams")] + [(t.key, t.short_name) for t in domain.teams.teams]
        self.service.choices = [("", "All services")] + [
            (s.key, f"{s.name} (Tier {s.tier})") for s in domain.catalogue.services]
        self.filters: Filters | None = None

    def validate(self, extra_validators=None) -> bool:
        super().validate(extra_validators)
        choices = {
            self.first_month: "Select the first month from the list",
            self.last_month: "Select the last month from the list",
            self.team: "Select a team from the list",
            self.service: "Select a service from the list",
        }
        for field, message in choices.items():
            if field.data not in {value for value, _label in field.choices}:
                field.errors = [message]
        if self.first_month.errors or self.last_month.errors or self.team.errors or self.service.errors:
            return False
        first = dt.date.fromisoformat(self.first_month.data + "-01")
        last = dt.date.fromisoformat(self.last_month.data + "-01")
        if last < first:
            self.last_month.errors = ["The last month must be the same as the first month or after it"]
            return False
        if (last.year - first.year) * 12 + last.month - first.month + 1 > MAX_MONTHS:
            self.first_month.errors = [f"Choose a range of {MAX_MONTHS} months or fewer"]
            return False
        self.filters = Filters(first_month=first, last_month=last, team=self.team.data or None,
                               service=self.service.data or None)
        return True

    @property
    def errors(self):
        return {field.name: field.errors for field in self if field.errors}
