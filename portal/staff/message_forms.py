"""Forms for the staff queue of failed and unknown texts."""

from __future__ import annotations

from wtforms import BooleanField

from portal.forms import PortalForm


class RetryForm(PortalForm):
    """Send a text again. For a text whose fate is unknown the box must be ticked (the view checks it, since a
    failed text does not need it): retrying may text the patient twice."""

    checked_not_received = BooleanField("I have checked the patient did not get it")
