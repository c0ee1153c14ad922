"""The patient's own profile forms: email, texts, communication needs and a new mobile."""

from __future__ import annotations

from typing import Any

from email_validator import EmailNotValidError, validate_email
from wtforms import BooleanField, PasswordField, RadioField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, ValidationError

from portal.forms import PortalForm
from portal.patients.identifiers import InvalidIdentifier, parse_uk_phone
from portal.plain_text import ascii_digits

DIGITS = "0123456789"


class EmailForm(PortalForm):
    email = StringField("Email address (optional)")

    def validate_email(self, field: StringField) -> None:
        value = (field.data or "").strip()
        if not value:
            field.data = None
            return
        if len(value) > 254:
            raise ValidationError("Email address must be 254 characters or fewer")
        try:
            field.data = validate_email(value, check_deliverability=False).normalized.lower()
        except EmailNotValidError:
            raise ValidationError("Enter an email address like name@example.com") from None


class TextsForm(PortalForm):
    sms_consent = RadioField(
        "Can we text you?",
        choices=[SelectChoice("yes", "Yes, you can text me"), SelectChoice("no", "No, do not text me")],
        validators=[InputRequired("Select yes if we can text you")],
    )


class NeedsForm(PortalForm):
    needs_large_print = BooleanField("Large print")
    needs_easy_read = BooleanField("Easy read")
    needs_bsl_interpreter = BooleanField("A British Sign Language (BSL) interpreter")
    needs_interpreter = BooleanField("An interpreter for another language")
    # Each message names its box: in the error summary, "Use 60 characters or fewer" twice over said neither which.
    interpreter_language = StringField(
        "Language", validators=[Length(max=60, message="The language must be 60 characters or fewer")]
    )
    has_carer = BooleanField("A carer or advocate who gets messages for me")
    carer_name = StringField(
        "Their name",
        validators=[Length(max=100, message="Your carer or advocate's name must be 100 characters or fewer")],
    )
    carer_phone = StringField("Their phone number")
    no_texts = BooleanField("No texts: contact me by phone or letter instead")

    def __init__(self, *args: Any, allow_drama_range: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Outside production the Ofcom drama mobiles (07700 900xxx) are accepted, as for the patient's own mobile.
        self.allow_drama_range = allow_drama_range

    def validate_interpreter_language(self, field: StringField) -> None:
        field.data = (field.data or "").strip() or None
        if self.needs_interpreter.data and not field.data:
            raise ValidationError("Enter the language you need an interpreter for")

    def validate_carer_name(self, field: StringField) -> None:
        field.data = (field.data or "").strip() or None
        if self.has_carer.data and not field.data:
            raise ValidationError("Enter the name of your carer or advocate")

    def validate_carer_phone(self, field: StringField) -> None:
        typed = (field.data or "").strip()
        field.data = typed or None
        if not self.has_carer.data:
            return
        if not typed:
            raise ValidationError("Enter the phone number of your carer or advocate")
        try:
            field.data = parse_uk_phone(typed, allow_drama_range=self.allow_drama_range)
        except InvalidIdentifier as problem:
            raise ValidationError(str(problem)) from None


class MobileForm(PortalForm):
    mobile = StringField(
        "New mobile number", validators=[InputRequired("Enter your new mobile number"), Length(max=20)]
    )
    password = PasswordField(
        "Your password", validators=[InputRequired("Enter your password"), Length(max=200)]
    )


class MobileCodeForm(PortalForm):
    code = StringField("Code", validators=[InputRequired("Enter the 6-digit code from the text"), Length(max=20)])

    def validate_code(self, field: StringField) -> None:
        typed = field.data = ascii_digits(field.data or "")
        if sum(ch in DIGITS for ch in typed) != 6 or any(ch not in DIGITS + " -" for ch in typed):
            raise ValidationError("Enter the 6 digits of the code, like 123456")
