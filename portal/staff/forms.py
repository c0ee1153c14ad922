from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, RadioField, SelectChoice, SelectField, StringField, ValidationError
from wtforms.validators import Email, InputRequired, Length, Optional

from portal.forms import DateParts
from portal.patients.identifiers import InvalidIdentifier, parse_nhs_number, parse_postcode, parse_uk_mobile
from portal.patients.services import Registration
from portal.settings import DomainConfig

FROM_POSTCODE = "postcode"


class RegisterPatientForm(FlaskForm):
    given_name = StringField(
        "First name", validators=[InputRequired("Enter the patient's first name"), Length(max=100)]
    )
    family_name = StringField(
        "Last name", validators=[InputRequired("Enter the patient's last name"), Length(max=100)]
    )
    nhs_number = StringField("NHS number", validators=[Length(max=20, message="NHS number must be 10 digits")])
    date_of_birth = DateParts("Date of birth", past_only=True)
    mobile = StringField("Mobile number", validators=[Length(max=20, message="Enter a UK mobile number")])
    email = EmailField(
        "Email address (optional)",
        validators=[Optional(), Email("Enter an email address like name@example.com"), Length(max=254)],
    )
    postcode = StringField("Postcode", validators=[Length(max=10, message="Enter a full UK postcode")])
    tier = RadioField(
        "Tier",
        choices=[SelectChoice("1", "Tier 1"), SelectChoice("2", "Tier 2")],
        validators=[InputRequired("Select the tier the patient was triaged to")],
    )
    team = SelectField("Tier 2 team", validate_choice=False)

    def __init__(self, *args, domain: DomainConfig, allow_drama_range: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.parsed: dict[str, str] = {}
        self._allow_drama_range = allow_drama_range
        self.team.choices = [SelectChoice(FROM_POSTCODE, "Work it out from the postcode")] + [
            SelectChoice(team.key, team.name) for team in domain.teams.teams
        ]
        self._team_keys = {team.key for team in domain.teams.teams}

    def _parse(self, field, parser) -> None:
        # The typed value stays in field.data, so a form shown again with errors keeps what was typed.
        try:
            self.parsed[field.name] = parser(field.data or "")
        except InvalidIdentifier as exc:
            raise ValidationError(str(exc)) from None

    def validate_nhs_number(self, field) -> None:
        self._parse(field, parse_nhs_number)

    def validate_mobile(self, field) -> None:
        self._parse(field, lambda raw: parse_uk_mobile(raw, allow_drama_range=self._allow_drama_range))

    def validate_postcode(self, field) -> None:
        self._parse(field, parse_postcode)

    def validate_team(self, field) -> None:
        if field.data in (None, "", FROM_POSTCODE):
            field.data = FROM_POSTCODE
            return
        if field.data not in self._team_keys:
            raise ValidationError("Select a team from the list")
        if self.tier.data != "2":
            raise ValidationError("Only Tier 2 patients have a team. Choose 'Work it out from the postcode'")

    def registration(self) -> Registration:
        return Registration(
            nhs_number=self.parsed["nhs_number"],
            given_name=self.given_name.data.strip(),
            family_name=self.family_name.data.strip(),
            date_of_birth=self.date_of_birth.data,
            mobile=self.parsed["mobile"],
            email=(self.email.data or "").strip().lower() or None,
            postcode=self.parsed["postcode"],
            tier=int(self.tier.data),
            team=None if self.team.data == FROM_POSTCODE else self.team.data,
        )
