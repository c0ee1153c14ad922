from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import EqualTo, InputRequired, Length

from portal.forms import DateParts


class SignInForm(FlaskForm):
    identifier = StringField(
        "Email address or mobile number",
        validators=[InputRequired("Enter your email address or mobile number"), Length(max=254)],
    )
    password = PasswordField("Password", validators=[InputRequired("Enter your password"), Length(max=200)])


class ActivateForm(FlaskForm):
    date_of_birth = DateParts("Date of birth", past_only=True)
    password = PasswordField("Create a password", validators=[InputRequired("Create a password")])
    confirm_password = PasswordField(
        "Type your password again",
        validators=[
            InputRequired("Type your password again"),
            EqualTo("password", "The passwords do not match"),
        ],
    )


class SignOutForm(FlaskForm):
    pass
