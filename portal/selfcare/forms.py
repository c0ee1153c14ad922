"""Forms of the self-management reading pages."""

from __future__ import annotations

from flask_wtf import FlaskForm


class MarkDoneForm(FlaskForm):
    """The "Mark as done" button: only its CSRF token is checked."""
