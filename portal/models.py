"""Imports every feature's models so that the metadata is complete (for Alembic and tests)."""

from portal import scheduler_lease  # noqa: I001
from portal.appointments import models as appointments_models  # noqa: F401 - registers its tables
from portal.attendance import models as attendance_models
from portal.audit import models as audit_models
from portal.auth import models as auth_models
from portal.booking import models as booking_models
from portal.db import Base
from portal.diary import models as diary_models
from portal.messaging import models as messaging_models
from portal.patients import models as patients_models
from portal.questionnaires import models as questionnaires_models
from portal.reminders import models as reminders_models
from portal.selfcare import models as selfcare_models

metadata = Base.metadata

__all__ = [
    "attendance_models", "audit_models", "auth_models", "booking_models", "diary_models", "messaging_models",
    "patients_models",
    "reminders_models", "questionnaires_models", "selfcare_models", "scheduler_lease",
    "metadata",
]
