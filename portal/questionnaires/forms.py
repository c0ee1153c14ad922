"""The questionnaire form (built per measure from its items) and the clinician's acknowledgement form."""

from __future__ import annotations

from wtforms import RadioField, SelectChoice, StringField, TextAreaField
from wtforms.validators import AnyOf, InputRequired, Length, Optional, ValidationError

from portal.forms import PlainText, PortalForm
from portal.questionnaires.instruments import Instrument

# PostgreSQL refuses NUL in text, and no control character belongs in a note someone types.


class QuestionnaireForm(PortalForm):
    """One measure's items as radios. Every item is optional here: a draft may leave any out. On submit the
    view asks ``mark_missing`` to put an error next to each required item left out."""

    instrument: Instrument
    # Which button: "draft" saves for later; anything else submits.
    action = StringField()

    @property
    def item_fields(self) -> list[RadioField]:
        return [self[item.key] for item in self.instrument.items]

    @property
    def wants_draft(self) -> bool:
        return self.action.data == "draft"

    def answers(self) -> dict[str, int]:
        """The answered items, as the options' values. Call after validate(): only valid values are left."""
        return {item.key: int(self[item.key].data) for item in self.instrument.items
                if self[item.key].data and not self[item.key].errors}

    def mark_missing(self, keys: list[str]) -> None:
        for key in keys:
            self[key].errors = [*self[key].errors, self.instrument.item(key).error]


def questionnaire_form(instrument: Instrument, *, answers: dict[str, int] | None = None) -> QuestionnaireForm:
    """A form for this measure, showing ``answers`` (a draft) when not a submission."""
    fields = {
        item.key: RadioField(
            item.text,
            choices=[SelectChoice(str(o.value), o.label) for o in item.options],
            # The values are checked by AnyOf, with the item's own message, not "Not a valid choice".
            validate_choice=False,
            validators=[Optional(), AnyOf([str(o.value) for o in item.options], message=item.error)],
        )
        for item in instrument.items
    }
    form_class = type(f"{instrument.key.title().replace('_', '')}Form", (QuestionnaireForm,),
                      {"instrument": instrument, **fields})
    data = {key: str(value) for key, value in (answers or {}).items()}
    return form_class(data=data)


plain_text = PlainText("Note must be plain text")


class AcknowledgeForm(PortalForm):
    note = TextAreaField(
        "What action did you take?",
        validators=[
            InputRequired(message="Enter the action you took"),
            Length(max=2000, message="Note must be 2000 characters or fewer"),
            plain_text,
        ],
    )

    def validate_note(self, field: TextAreaField) -> None:
        if not (field.data or "").strip():
            raise ValidationError("Enter the action you took")
