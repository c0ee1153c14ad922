"""Forms of the self-management reading pages."""

from __future__ import annotations

from portal.forms import PortalForm


class MarkDoneForm(PortalForm):
    """The "Mark as done" button: only its CSRF token is checked."""
