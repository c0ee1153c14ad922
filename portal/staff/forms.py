from __future__ import annotations

import datetime as dt
from typing import Any

from wtforms import (
    BooleanField,
    EmailField,
    RadioField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
    ValidationError,
)
from wtforms.validators import InputRequired

from portal.forms import DateParts, PortalForm
from portal.patients.identifiers import InvalidIdentifier, parse_nhs_number
from portal.patients.intake import FROM_POSTCODE, Problems, check_registration
from portal.patients.models import PAIN_DURATIONS, REFERRAL_CHECKLIST, Patient
from portal.patients.referrals import NOTE_MAX, NewReferral, triage_date_problem
from portal.patients.services import Registration
from portal.settings import DomainConfig


class RegisterPatientForm(PortalForm):
    """The reception form. Its fields only carry and show values: every check is made by
    patients.intake.check_registration, the same code the triage import uses."""

    nhs_number = StringField("NHS number")
    given_name = StringField("First name")
    family_name = StringField("Last name")
    date_of_birth = DateParts("Date of birth")
    mobile = StringField("Mobile number")
    email = EmailField("Email address (optional)")
    postcode = StringField("Postcode")
    tier = RadioField("Tier", choices=[SelectChoice("1", "Tier 1"), SelectChoice("2", "Tier 2")])
    team = SelectField("Tier 2 team")
    triage_date = DateParts("Triage date")
    pain_duration = RadioField(
        "How long has the patient had pain?", choices=[SelectChoice(k, v) for k, v in PAIN_DURATIONS.items()]
    )
    diagnosis_recorded = BooleanField(REFERRAL_CHECKLIST["diagnosis_recorded"])
    investigations_recorded = BooleanField(REFERRAL_CHECKLIST["investigations_recorded"])
    treatment_recorded = BooleanField(REFERRAL_CHECKLIST["treatment_recorded"])
    letters_received = BooleanField(REFERRAL_CHECKLIST["letters_received"])
    override_reason = TextAreaField("Reason for overriding the warning")

    CHECKLIST = tuple(REFERRAL_CHECKLIST)

    def __init__(self, *args: Any, domain: DomainConfig, allow_drama_range: bool, today: dt.date, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._domain = domain
        self._allow_drama_range = allow_drama_range
        self._today = today
        self.team.choices = [SelectChoice(FROM_POSTCODE, "Work it out from the postcode")] + [
            SelectChoice(team.key, team.name) for team in domain.teams.teams
        ]
        self.registration: Registration | None = None
        # Eligibility warnings not yet overridden, by field name: shown next to their fields.
        self.warnings: dict[str, str] = {}

    def raw_values(self) -> dict[str, str]:
        """What was typed, under the same names as the triage export's columns."""
        raw: dict[str, str] = {}
        for field in self:
            if field.type == "DateParts":
                raw.update({f"{field.name}[{part}]": value for part, value in field.raw.items()})
            elif field.type == "BooleanField":
                raw[field.name] = "yes" if field.data else "no"
            elif field.name == "override_reason":
                # Only once the box was on the page: a blank reason is then an answer, not an omission.
                if field.raw_data:
                    raw[field.name] = field.data or ""
            elif field.type != "CSRFTokenField":
                raw[field.name] = field.data if isinstance(field.data, str) else ""
        return raw

    def validate(self, extra_validators: Any = None) -> bool:
        csrf_ok = self.csrf_token.validate(self) if self.meta.csrf else True
        result = check_registration(
            self.raw_values(), domain=self._domain, today=self._today, allow_drama_range=self._allow_drama_range
        )
        if isinstance(result, Problems):
            for name, message in result.errors.items():
                self[name].errors = [message]
            for name, parts in result.bad_date_parts.items():
                self[name].bad_parts = set(parts)
            self.warnings = {name: message for name, message in result.warnings.items() if name not in result.errors}
            return False
        self.registration = result
        return csrf_ok

    @property
    def needs_override(self) -> bool:
        """Show the reason box: warnings apply, or a reason was typed or asked for already."""
        return bool(self.warnings or self.override_reason.errors or (self.override_reason.data or "").strip())

    @property
    def nhs_number_digits(self) -> str | None:
        """The typed NHS number if it is valid, to look for a patient already registered with it."""
        try:
            return parse_nhs_number((self.nhs_number.data or "")[:30])
        except InvalidIdentifier:
            return None


class AssignTeamForm(PortalForm):
    team = SelectField("Team", validators=[InputRequired("Select a team")], validate_choice=False)

    def __init__(self, *args: Any, domain: DomainConfig, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._keys = {team.key for team in domain.teams.teams}
        self.team.choices = [SelectChoice("", "Select a team")] + [
            SelectChoice(team.key, f"{team.name} ({team.catchment})") for team in domain.teams.teams
        ]

    def validate_team(self, field: SelectField) -> None:
        if field.data not in self._keys:
            raise ValidationError("Select a team from the list")


class ActionForm(PortalForm):
    """A button that changes something: only its CSRF token is checked."""


class NewReferralForm(PortalForm):
    """A new referral for a discharged patient: the new triage, and who referred. The rules on the triage date
    (not in the future, not before the discharge) are the service's (patients.referrals.triage_date_problem)."""

    triage_date = DateParts("Triage date")
    tier = RadioField("Tier", choices=[SelectChoice("1", "Tier 1"), SelectChoice("2", "Tier 2")],
                      validators=[InputRequired("Select the tier the referral was triaged to")],
                      validate_choice=False)
    team = SelectField("Tier 2 team", validate_choice=False)
    note = TextAreaField("Who referred", validators=[InputRequired("Enter who referred the patient")])

    def __init__(self, *args: Any, domain: DomainConfig, patient: Patient, today: dt.date, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._patient = patient
        self._today = today
        self._keys = {team.key for team in domain.teams.teams}
        self.team.choices = [SelectChoice(FROM_POSTCODE, "Work it out from the postcode")] + [
            SelectChoice(team.key, team.name) for team in domain.teams.teams
        ]
        if not self.team.data:
            self.team.data = FROM_POSTCODE

    def validate_triage_date(self, field: DateParts) -> None:
        problem = triage_date_problem(self._patient, field.data, today=self._today)
        if problem:
            field.bad_parts = {"day", "month", "year"}
            raise ValidationError(problem)

    def validate_tier(self, field: RadioField) -> None:
        if field.data not in ("1", "2"):
            raise ValidationError("Select the tier the referral was triaged to")

    def validate_team(self, field: SelectField) -> None:
        if field.data in (None, "", FROM_POSTCODE):
            return
        if field.data not in self._keys:
            raise ValidationError("Select a team from the list")
        if self.tier.data == "1":
            raise ValidationError("Only Tier 2 patients have a team. Leave it to be worked out from the postcode")

    def validate_note(self, field: TextAreaField) -> None:
        if len(field.data or "") > NOTE_MAX:
            raise ValidationError(f"Who referred must be {NOTE_MAX} characters or fewer")

    @property
    def referral(self) -> NewReferral:
        team = self.team.data if self.tier.data == "2" and self.team.data in self._keys else None
        return NewReferral(triage_date=self.triage_date.data, tier=int(self.tier.data), team=team,
                           note=self.note.data or "")
