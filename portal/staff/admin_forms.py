"""Forms of the admin pages: a venue, inviting a staff member, changing their role, making a set-up link."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email
from wtforms import HiddenField, RadioField, StringField, TextAreaField, ValidationError
from wtforms.fields.choices import SelectChoice
from wtforms.validators import StopValidation

from portal.auth.models import Role
from portal.auth.staff_accounts import STAFF_ROLES
from portal.booking import venues
from portal.forms import PortalForm
from portal.plain_text import CONTROL_CHARACTERS, has_symbols, number_id

ADDRESS_LENGTH = 500
ACCESS_NOTES_LENGTH = 1000
DISPLAY_NAME_LENGTH = 200
EMAIL_LENGTH = 254

# What each role does, as the invite and role forms explain it.
ROLE_HINTS = {
    Role.FACILITATOR.value: "Runs group sessions and takes their registers",
    Role.CLINICIAN.value: "Runs 1:1 clinics, marks them and decides did-not-attend reviews",
    Role.RECEPTION.value: "Registers patients, books for them and runs the waiting lists",
    Role.ADMIN.value: "Everything reception does, plus courses, clinics, venues, content and staff accounts",
}
ROLE_CHOICES = [SelectChoice(role.value, role.value.capitalize()) for role in STAFF_ROLES]


def _text(what: str, *, enter: str | None, length: int | None, lines: bool = False):
    """A validator: strips the value; refuses it empty (when ``enter`` says what to type), too long or with
    control characters. A refusal stops the field's other checks, so the message shown is the first problem."""

    def check(_form: PortalForm, field: StringField) -> None:
        value = (field.data or "").strip()
        if lines:
            value = value.replace("\r\n", "\n")
        field.data = value
        if not value:
            if enter:
                raise StopValidation(enter)
            return
        if length is not None and len(value) > length:
            raise StopValidation(f"{what} must be {length} characters or fewer")
        if CONTROL_CHARACTERS.search(value) or (not lines and "\n" in value):
            raise StopValidation(f"{what} must only use letters, numbers and punctuation")

    return check


class VenueForm(PortalForm):
    name = StringField("Name", validators=[
        _text("Name", enter="Enter the name of the venue", length=venues.NAME_LENGTH)])
    # Its length is the short-name rule's to check (venues.short_name_problem), with the texts' wording.
    short_name = StringField("Short name for texts", validators=[
        _text("Short name", enter="Enter a short name for texts", length=None)])
    address = TextAreaField("Address", validators=[
        _text("Address", enter="Enter the address", length=ADDRESS_LENGTH, lines=True)])
    access_notes = TextAreaField("Access notes", validators=[
        _text("Access notes", enter=None, length=ACCESS_NOTES_LENGTH, lines=True)])
    is_online = RadioField("Where is it?", choices=[SelectChoice("no", "In person"),
                                                    SelectChoice("yes", "Online, by video call")],
                           validate_choice=False)

    def validate_short_name(self, field: StringField) -> None:
        problem = venues.short_name_problem(field.data or "")
        if problem:
            raise ValidationError(problem)

    def validate_is_online(self, field: RadioField) -> None:
        if field.data not in ("yes", "no"):
            raise ValidationError("Select whether the venue is in person or online")

    @property
    def values(self) -> dict[str, object]:
        return {"name": self.name.data, "short_name": self.short_name.data, "address": self.address.data,
                "access_notes": self.access_notes.data, "is_online": self.is_online.data == "yes"}


def _role_field() -> RadioField:
    return RadioField("Role", choices=ROLE_CHOICES, validate_choice=False)


def _no_symbols(what: str):
    """A validator refusing emoji and other symbols: a name shows in every audit line and list a person appears in."""

    def check(_form: PortalForm, field: StringField) -> None:
        if has_symbols(field.data or ""):
            raise StopValidation(f"{what} must only use letters, numbers and punctuation")

    return check


def _check_role(field: RadioField) -> None:
    if field.data not in ROLE_HINTS:
        raise ValidationError("Select a role")


class InviteStaffForm(PortalForm):
    display_name = StringField("Full name", validators=[
        _text("Full name", enter="Enter their full name", length=DISPLAY_NAME_LENGTH), _no_symbols("Full name")])
    email = StringField("Email address", validators=[
        _text("Email address", enter="Enter their email address", length=EMAIL_LENGTH)])
    role = _role_field()

    def validate_email(self, field: StringField) -> None:
        try:
            field.data = validate_email(field.data, check_deliverability=False).normalized.lower()
        except EmailNotValidError:
            raise ValidationError("Enter an email address like name@nhs.net") from None

    def validate_role(self, field: RadioField) -> None:
        _check_role(field)


class ChangeRoleForm(PortalForm):
    role = _role_field()

    def validate_role(self, field: RadioField) -> None:
        _check_role(field)


class SetUpLinkForm(PortalForm):
    """The buttons that make a set-up link (reset second factor, make a new link). Besides the CSRF token they
    carry the id of the account's newest link when the page was made (0: none), so the same form sent again (a
    refreshed page, Back then Forward) is told from a new press: staff_accounts.refuse_resubmission."""

    newest_link = HiddenField()

    def newest_seen(self) -> int | None:
        """The newest link the form was made against; None from a form without the field (made before it was
        added). Anything but a number reads as 0, no link: at worst a page saying a link was made already."""
        return number_id(self.newest_link.data) if self.newest_link.raw_data else None
