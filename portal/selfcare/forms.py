"""Forms of the self-management reading pages."""

from __future__ import annotations

from portal.forms import PortalForm


class MarkDoneForm(PortalForm):
    """The "Mark as done" and "Mark as not done" buttons: only their CSRF token is checked."""
