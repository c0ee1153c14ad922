from __future__ import annotations

from flask_wtf import FlaskForm


class BookSeatForm(FlaskForm):
    """No fields: the cohort is in the URL; the form carries the CSRF token."""
