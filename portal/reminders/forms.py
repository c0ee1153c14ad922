"""The form behind the call list's buttons."""

from __future__ import annotations

from wtforms import RadioField, SelectChoice
from wtforms.validators import InputRequired

from portal.forms import PortalForm

# What each button records. The page shows them as buttons named "outcome", not as radios.
OUTCOME_BUTTONS = (("reached", "Called"), ("no_answer", "No answer"))


class CallForm(PortalForm):
    """Record a reminder call: "Called" takes it off the list, "No answer" keeps it there to try again."""

    outcome = RadioField("How did the call go?", validators=[InputRequired()],
                         choices=[SelectChoice(value, label) for value, label in OUTCOME_BUTTONS])
