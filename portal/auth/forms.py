from __future__ import annotations

from wtforms import PasswordField, StringField
from wtforms.validators import EqualTo, InputRequired, Length, ValidationError

from portal.forms import DateParts, PortalForm
from portal.patients.identifiers import InvalidIdentifier, parse_postcode
from portal.plain_text import ascii_digits

DIGITS = "0123456789"


class SignInForm(PortalForm):
    identifier = StringField(
        "Email address or mobile number",
        validators=[InputRequired("Enter your email address or mobile number"), Length(max=254)],
    )
    password = PasswordField("Password", validators=[InputRequired("Enter your password"), Length(max=200)])


def _new_password(label: str, required: str) -> PasswordField:
    # Length and strength are the password rule's job (auth.services.password_problem), not the form's.
    return PasswordField(label, validators=[InputRequired(required)])


def _confirm_password() -> PasswordField:
    return PasswordField(
        "Type your password again",
        validators=[InputRequired("Type your password again"), EqualTo("password", "The passwords do not match")],
    )


def _uk_postcode(_form: PortalForm, field: StringField) -> None:
    try:
        parse_postcode(field.data or "")
    except InvalidIdentifier as problem:
        raise ValidationError(str(problem)) from None


class ActivateForm(PortalForm):
    date_of_birth = DateParts("Date of birth", past_only=True)
    postcode = StringField(
        "Postcode",
        validators=[
            InputRequired("Enter your postcode"),
            Length(max=10, message="Enter a full UK postcode, like N19 5NF"),
            _uk_postcode,
        ],
    )
    password = _new_password("Create a password", "Create a password")
    confirm_password = _confirm_password()


class SignOutForm(PortalForm):
    pass


class SignOutEverywhereForm(PortalForm):
    pass


class ChangePasswordForm(PortalForm):
    current_password = PasswordField(
        "Current password", validators=[InputRequired("Enter your current password"), Length(max=200)]
    )
    password = _new_password("New password", "Enter a new password")
    confirm_password = _confirm_password()


class ForgotPasswordForm(PortalForm):
    identifier = StringField(
        "Mobile number or email address",
        validators=[InputRequired("Enter your mobile number or email address"), Length(max=254)],
    )


class ResetCodeForm(PortalForm):
    code = StringField(
        "Code", validators=[InputRequired("Enter the 6-digit code from the text"), Length(max=20)]
    )

    def validate_code(self, field: StringField) -> None:
        typed = field.data = ascii_digits(field.data or "")
        if sum(ch in DIGITS for ch in typed) != 6 or any(ch not in DIGITS + " -" for ch in typed):
            raise ValidationError("Enter the 6 digits of the code, like 123456")


class NewPasswordForm(PortalForm):
    password = _new_password("New password", "Enter a new password")
    confirm_password = _confirm_password()
