"""The registration form as reception fills it in: valid answers, and posting them with changes."""

from __future__ import annotations

import datetime as dt

from tests.pages import csrf_token, get_page

TRIAGED = dt.date.today() - dt.timedelta(days=20)

VALID = {
    "given_name": "Ada",
    "family_name": "Lovelace",
    "nhs_number": "943 476 5919",
    "date_of_birth[day]": "10",
    "date_of_birth[month]": "12",
    "date_of_birth[year]": "1975",
    "mobile": "07700 900 456",
    "email": "",
    "postcode": "n19 5nf",
    "tier": "2",
    "team": "postcode",
    "triage_date[day]": str(TRIAGED.day),
    "triage_date[month]": str(TRIAGED.month),
    "triage_date[year]": str(TRIAGED.year),
    "pain_duration": "1-5-years",
    "diagnosis_recorded": "y",
    "investigations_recorded": "y",
    "treatment_recorded": "y",
    "letters_received": "y",
}


def date_fields(name: str, date: dt.date) -> dict[str, str]:
    return {f"{name}[day]": str(date.day), f"{name}[month]": str(date.month), f"{name}[year]": str(date.year)}


def years_ago(years: int, *, days: int = 0) -> dt.date:
    """The date ``years`` years before today (28 February for a 29 February), plus ``days`` days."""
    today = dt.date.today()
    try:
        date = today.replace(year=today.year - years)
    except ValueError:
        date = today.replace(year=today.year - years, day=28)
    return date + dt.timedelta(days=days)


def post_registration(client, *, omit: tuple[str, ...] = (), **changes):
    """Post the form with VALID answers, changed (keys with brackets: pass a dict via **{...})."""
    page = get_page(client, "/staff/patients/new")
    data = {**VALID, **changes, "csrf_token": csrf_token(page)}
    for name in omit:
        data.pop(name, None)
    return client.post("/staff/patients/new", data=data)
