"""Finding the patient a staff page's address names."""

from __future__ import annotations

from flask import abort

from portal.extensions import db_session
from portal.patients.models import Patient


def patient_or_404(patient_id: int) -> Patient:
    """The patient with this record number, or a 404. The ``int`` converter already refuses ids past the
    database's integer range, so every lookup here is one the database can answer."""
    patient = db_session().get(Patient, patient_id)
    if patient is None:
        abort(404)
    return patient
