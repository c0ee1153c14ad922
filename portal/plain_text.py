"""What people type must be plain text: control characters (NUL and the rest, but not tab or newline) belong
in nothing staff or patients write, and PostgreSQL refuses NUL in text outright."""

from __future__ import annotations

import re

CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def has_control_characters(text: str | None) -> bool:
    return bool(text) and CONTROL_CHARACTERS.search(text) is not None
