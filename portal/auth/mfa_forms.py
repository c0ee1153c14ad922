"""Forms of the staff second factor: a code from the app, a recovery code."""

from __future__ import annotations

from wtforms import StringField
from wtforms.validators import InputRequired, Length, Regexp

from portal.forms import PortalForm
from portal.plain_text import ascii_digits


def _digits_only(value: str | None) -> str | None:
    # People type "123 456" or paste "123-456": only the digits matter, in whichever script the keyboard writes them.
    return "".join(ch for ch in ascii_digits(value) if not ch.isspace() and ch != "-") if value else value


class AppCodeForm(PortalForm):
    code = StringField(
        "Security code",
        filters=[_digits_only],
        validators=[
            InputRequired("Enter the 6-digit code from your authenticator app"),
            Regexp(r"^[0-9]{6}$", message="The code must be 6 digits"),
        ],
    )


class RecoveryCodeForm(PortalForm):
    code = StringField(
        "Recovery code",
        validators=[InputRequired("Enter one of your recovery codes"), Length(max=40)],
    )
