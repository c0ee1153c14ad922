"""The register and day-list form (one set of radios per patient, built from the rows) and the review decision."""

from __future__ import annotations

import datetime as dt

from wtforms import RadioField, SelectChoice, StringField, TextAreaField
from wtforms.validators import AnyOf, InputRequired, Length, Optional, ValidationError

from portal.attendance.models import MARKS, REVIEW_ACTIONS
from portal.attendance.services import Row, too_early_for
from portal.forms import PortalForm
from portal.questionnaires.forms import plain_text
from portal.templating import local_time

ALL_ATTENDED = "all_attended"


class MarksForm(PortalForm):
    """Radios named ``mark_<key>`` for each row that may be marked now. A radio left alone keeps its mark."""

    rows: list[Row]
    now: dt.datetime
    # Which button: ALL_ATTENDED marks everyone not given another mark as attended; anything else saves.
    action = StringField()

    def field_for(self, row: Row) -> RadioField:
        return self[f"mark_{row.key}"]

    @property
    def marks_everyone(self) -> bool:
        return self.action.data == ALL_ATTENDED

    def marks(self) -> dict[int, str]:
        """The marks to save, by row key. Call after validate()."""
        chosen = {}
        for row in self.rows:
            value = self.field_for(row).data
            if value in MARKS:
                chosen[row.key] = value
            elif self.marks_everyone:
                chosen[row.key] = "attended"
        return chosen

    def validate(self, extra_validators=None) -> bool:
        if not super().validate(extra_validators):
            return False
        early = [row for row in self.rows if self.field_for(row).data != row.mark
                 and too_early_for(self.field_for(row).data, row.starts_at, self.now)]
        for row in early:
            field = self.field_for(row)
            field.errors = [*field.errors, f"{row.patient.full_name} can be marked as {MARKS[field.data].lower()} "
                                           f"once the {'appointment' if row.appointment else 'session'} starts, "
                                           f"at {local_time(row.starts_at)}"]
        if early:
            return False
        if self.rows and not self.marks():
            first = self.field_for(self.rows[0])
            first.errors = [*first.errors, "Choose a mark for at least one patient, or mark everyone as attended"]
            return False
        return True


def marks_form(rows: list[Row], *, now: dt.datetime) -> MarksForm:
    """A form for the rows that may be marked now, showing their current marks."""
    open_rows = [row for row in rows if row.state == "open"]
    fields = {
        f"mark_{row.key}": RadioField(
            row.patient.full_name,
            choices=[SelectChoice(value, label) for value, label in MARKS.items()],
            # Checked by AnyOf, with a message naming the patient, not WTForms' "Not a valid choice".
            validate_choice=False,
            validators=[Optional(), AnyOf(list(MARKS), message=f"Choose a mark for {row.patient.full_name} "
                                                                "from the list")],
        )
        for row in open_rows
    }
    form_class = type("RowMarksForm", (MarksForm,), {"rows": open_rows, "now": now, **fields})
    return form_class(data={f"mark_{row.key}": row.mark for row in open_rows if row.mark})


class DecisionForm(PortalForm):
    action = RadioField(
        "What have you decided?",
        choices=[SelectChoice(value, label) for value, label in REVIEW_ACTIONS.items()],
        validate_choice=False,
        validators=[InputRequired(message="Choose what you have decided"),
                    AnyOf(list(REVIEW_ACTIONS), message="Choose what you have decided")],
    )
    note = TextAreaField(
        "Note",
        validators=[Length(max=2000, message="Note must be 2000 characters or fewer"), plain_text],
    )

    def validate_note(self, field: TextAreaField) -> None:
        if (field.data or "").strip():
            return
        if self.action.data == "discharged":
            raise ValidationError("Enter the reason for discharging the patient back to the referrer")
        raise ValidationError("Enter a note of what you did or decided, and why")
